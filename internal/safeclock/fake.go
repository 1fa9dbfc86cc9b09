package safeclock

import (
	"sync"
	"time"
)

// Fake is a Clock set by hand, for tests of drivers that never sleep.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

// NewFake starts a Fake at raw instant start (e.g. FromNanos(1e12)).
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the Fake's instant.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the Fake on by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// Slewed is a raw clock derived from Go's clock, for tests inside a
// testing/synctest bubble (where Go's timers run on fake time): Go's clock
// plays CLOCK_MONOTONIC slewed by PPM relative to the raw clock. With PPM
// = +100 000 (the kernel's maximum), Go's clock runs 10 % fast, so a Go
// timer of d ends after d/1.1 of raw time — the early wake SleepUntil
// exists to prevent.
type Slewed struct {
	goStart  time.Time // Go's clock at creation
	rawStart time.Time // the raw instant at creation
	ppm      float64
}

// NewSlewed starts a Slewed clock at raw instant start, with Go's clock
// slewed by ppm parts per million relative to it.
func NewSlewed(start time.Time, ppm float64) *Slewed {
	return &Slewed{goStart: time.Now(), rawStart: start, ppm: ppm}
}

// Now is the raw instant: Go's elapsed time divided by (1 + ppm/1e6).
func (s *Slewed) Now() time.Time {
	mono := time.Since(s.goStart)
	raw := time.Duration(float64(mono) / (1 + s.ppm/1e6))
	return s.rawStart.Add(raw)
}

// Go returns a Clock that is Go's own time.Now (CLOCK_MONOTONIC, slewed).
// It is for tests inside a testing/synctest bubble, where Go's clock is the
// fake one the test drives, so that a test may compare a driver's instants
// with its own time.Now. Its instants carry a monotonic reading and fail
// Check. Never use it in a daemon.
func Go() Clock { return goClock{} }

type goClock struct{}

func (goClock) Now() time.Time { return time.Now() }
