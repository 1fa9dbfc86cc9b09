package safeclock

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// Clock is what a driver needs of the safety clock: the current instant.
// Raw is the real one; tests inject a Fake or a Slewed.
type Clock interface {
	Now() time.Time
}

// Raw is CLOCK_MONOTONIC_RAW.
var Raw Clock = rawClock{}

type rawClock struct{}

func (rawClock) Now() time.Time { return Now() }

// Now reads CLOCK_MONOTONIC_RAW and returns it as time.Unix(0, ns): a
// time.Time without a monotonic reading, compared by value, in 1970 plus the
// machine's uptime. It panics if the clock cannot be read (Linux has had it
// since 2.6.28; a kernel without it cannot run the daemon safely).
func Now() time.Time {
	ns, err := RawNanos()
	if err != nil {
		panic(err)
	}
	return FromNanos(ns)
}

// RawNanos reads CLOCK_MONOTONIC_RAW in nanoseconds.
func RawNanos() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_MONOTONIC_RAW): %w", err)
	}
	return ts.Nano(), nil
}

// FromNanos turns an absolute CLOCK_MONOTONIC_RAW reading (nanoseconds, as
// Nanos returns and as a re-executed daemon reads back from its hand-over
// state) into the instant Now would have returned.
func FromNanos(ns int64) time.Time { return time.Unix(0, ns) }

// Nanos is the inverse of FromNanos: the absolute raw reading of a safety
// instant, for serialising across an exec (the clock is system-wide, so the
// figure means the same to the next image on this boot). It panics on a
// time that is not a raw reading (see Check).
func Nanos(t time.Time) int64 {
	mustRaw(t)
	return t.UnixNano()
}

// rawCeiling: a raw reading is the time since boot; 30 years of uptime are
// not expected, so any later instant is a wall-clock time.Now.
var rawCeiling = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Check reports whether t can be a safety instant of this package: no
// monotonic reading (time.Now returns one; a raw instant never has one) and
// before 2000-01-01 (a raw instant is the machine's uptime after the Unix
// epoch). Comparing a raw instant with a time.Now instant would compare
// uptime with the wall clock, 56 years apart: Check is how drivers and tests
// catch a time.Now that slipped into a safety decision. The zero time passes.
func Check(t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if t != t.Round(0) {
		return fmt.Errorf("safety instant %v carries a Go monotonic reading: it came from time.Now, not safeclock.Now", t)
	}
	if !t.Before(rawCeiling) {
		return fmt.Errorf("safety instant %v is a wall-clock time, not a CLOCK_MONOTONIC_RAW reading (safeclock.Now)", t)
	}
	return nil
}

func mustRaw(t time.Time) {
	if err := Check(t); err != nil {
		panic(err)
	}
}

// Since is Raw.Now().Sub(t); it panics if t is not a raw instant.
func Since(t time.Time) time.Duration {
	mustRaw(t)
	return Now().Sub(t)
}

// Until is t.Sub(Raw.Now()); it panics if t is not a raw instant.
func Until(t time.Time) time.Duration {
	mustRaw(t)
	return t.Sub(Now())
}

// SleepUntil waits until c.Now() is at or after t, or ctx is done (then it
// returns ctx.Err()). It never returns nil before t on c.
//
// Go's timers run on CLOCK_MONOTONIC, which NTP may slew by up to ±10 %
// (the kernel's tick limit): a timer of d can fire after only d/1.1 on the
// raw clock. SleepUntil therefore re-reads c after each timer and waits
// again for what is left. Each timer is set to nine tenths of what is left
// (down to a millisecond), so that a CLOCK_MONOTONIC slowed by the full
// 10 % fires at t, not 10 % late: a "not before" wait is never early and
// is late by at most the scheduler's delay plus about a millisecond.
func SleepUntil(ctx context.Context, c Clock, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for {
		left := t.Sub(c.Now())
		if left <= 0 {
			return nil
		}
		timer := time.NewTimer(chunk(left))
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// Sleep is SleepUntil(ctx, c, c.Now().Add(d)).
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	return SleepUntil(ctx, c, c.Now().Add(d))
}

// TimerFor returns the Go timer duration to arm for a wait until t on c
// inside a select loop that re-checks c.Now() when it fires (as the
// heartbeat member's loop does): nine tenths of what is left, so that a
// slowed CLOCK_MONOTONIC does not make the wake late; never negative.
func TimerFor(c Clock, t time.Time) time.Duration {
	left := t.Sub(c.Now())
	if left <= 0 {
		return 0
	}
	return chunk(left)
}

func chunk(left time.Duration) time.Duration {
	if left <= time.Millisecond {
		return left
	}
	return max(left-left/10, time.Millisecond)
}

// After returns a channel that is closed once c.Now() has reached
// c.Now() + d at the call (SleepUntil), or when ctx is done; for a select
// that must not end a "not before" wait early, where time.After would.
func After(ctx context.Context, c Clock, d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	t := c.Now().Add(d)
	go func() {
		_ = SleepUntil(ctx, c, t)
		close(ch)
	}()
	return ch
}
