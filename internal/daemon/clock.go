package daemon

import (
	"time"

	"golang.org/x/sys/unix"
)

// The daemon's absolute clock readings: the mono_ns of its log lines (the
// lab compares them with CLOCK_MONOTONIC), and the last renewal's issue
// time handed from one image of the process to the next across a re-exec.
// Go's time.Time carries a monotonic reading relative to the process,
// which an exec does not keep; toMono and fromMono convert it through the
// kernel clock that reading is taken on (CLOCK_MONOTONIC). When the safety
// times become CLOCK_MONOTONIC_RAW readings of their own, the hand-over
// carries those as they are, and only toMono and fromMono change: they
// are the one place the hand-over's clock is named.
const handoverClock = unix.CLOCK_MONOTONIC

// monoNow is the kernel clock's reading now, in nanoseconds.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(handoverClock, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}

// toMono is t as a kernel clock reading (t must carry Go's monotonic
// reading: a time.Now() of this process).
func toMono(t time.Time) int64 { return monoNow() - int64(time.Since(t)) }

// fromMono is a kernel clock reading as a time.Time of this process, with
// its monotonic reading.
func fromMono(ns int64) time.Time { return time.Now().Add(-time.Duration(monoNow() - ns)) }
