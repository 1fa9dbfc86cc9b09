package daemon

import (
	"time"

	"golang.org/x/sys/unix"
)

// The daemon's absolute clock readings: the mono_ns of its log lines, and
// the last renewal's issue time handed from one image of the process to
// the next across a re-exec. Go's time.Time carries a monotonic reading
// relative to the process, which an exec does not keep; these functions
// convert through the kernel clock. Safety times move to
// CLOCK_MONOTONIC_RAW in one place: here (safetyClock).
const safetyClock = unix.CLOCK_MONOTONIC

// monoNow is the kernel clock's reading now, in nanoseconds.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(safetyClock, &ts); err != nil {
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
