package daemon

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/hbfence/hbfence/internal/safeclock"
)

// clk is the safety clock of every instant the daemon hands to the member,
// the lease runner, the fencer and the agent (CLOCK_MONOTONIC_RAW). Tests
// of this package run the drivers inside testing/synctest and set it to
// safeclock.Go().
var clk safeclock.Clock = safeclock.Raw

// The last renewal's issue time crosses a re-exec as an absolute reading
// of clk: CLOCK_MONOTONIC_RAW is system-wide, so the next image on this
// boot reads the same figure as the same instant. toHandover and
// fromHandover are the one place the hand-over's clock is named.
func toHandover(t time.Time) int64 { return t.UnixNano() }

func fromHandover(ns int64) time.Time { return time.Unix(0, ns) }

// logClock is the clock of the mono_ns field of the daemon's log lines and
// of the exec's duration: CLOCK_MONOTONIC, which the lab's watchdog
// supervisor and guest probes read too, so that their records and the
// daemon's log line up.
const logClock = unix.CLOCK_MONOTONIC

// monoNow is logClock's reading now, in nanoseconds.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(logClock, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
