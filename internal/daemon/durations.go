package daemon

import (
	"time"

	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/config"
)

// durations are every bound the lifecycle waits by, in one place, each
// derived from the pool's timing (the header) and the configuration. The
// safety argument (doc.go) refers to them by these names.
type durations struct {
	// leaveStop bounds a clean stop's guest side: stopping every guest
	// of the pool here and reporting them stopped ([guests] op_timeout
	// for the hypervisor, host_dead for the storage). Past it, "left"
	// would be a lie: the host fences instead.
	leaveStop time.Duration
	// agentStop bounds the wait for the guest agent's round under way
	// once an incarnation has ended.
	agentStop time.Duration
	// releaseWithin bounds the release of the master lease before a
	// leave or a re-exec: two lease I/Os. Past it the others take over
	// once they read "left" (or the lease's epoch runs out).
	releaseWithin time.Duration
	// rejoinAfter is the pause between a fence that confirmed the
	// guests gone and the next join (a new incarnation).
	rejoinAfter time.Duration
	// joinRetry is the pause between two failed joins of a host that
	// fenced already (nothing at risk: its guests are gone).
	joinRetry time.Duration
	// progress: the member's loop has finished an I/O within this long,
	// or systemd's service watchdog is no longer fed.
	progress time.Duration
	// reexecBudget is how long a re-exec may take, from the feed just
	// before exec to the new image's first feed, counted against the
	// last renewal: the old image goes ahead only while its last
	// renewal is younger than renewal_fail minus this (see resumeBy).
	reexecBudget time.Duration
}

func durationsOf(t timing.Params, c *config.Config) durations {
	return durations{
		leaveStop:     c.Guests.OpTimeout.Duration + t.HostDead,
		agentStop:     t.HostDead,
		releaseWithin: 2 * t.IOTimeout,
		rejoinAfter:   t.Interval,
		joinRetry:     t.HostDead,
		progress:      progressWithin(t),
		reexecBudget:  t.IOTimeout,
	}
}

func progressWithin(t timing.Params) time.Duration { return t.Interval + 2*t.IOTimeout }
