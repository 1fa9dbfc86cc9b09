package timing

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hbfence/hbfence/internal/safeclock"
)

// Params are the pool's timeouts. They are stored in the heartbeat area's
// header so that every host of a pool runs with the same figures.
type Params struct {
	// Interval is how often a host writes its slot and reads all slots.
	Interval time.Duration
	// IOTimeout bounds one read or write of the area: an I/O that has not
	// returned after IOTimeout has failed.
	IOTimeout time.Duration
	// RenewalFail is how long a host may go without a successful renewal
	// before it fences itself (kills its HA guests, stops feeding its
	// watchdog).
	RenewalFail time.Duration
	// Watchdog is how long after the last feed the watchdog resets the host.
	Watchdog time.Duration
	// HostDead is how long an observer waits, on its own monotonic clock,
	// without seeing a host's slot change before it declares the host dead.
	HostDead time.Duration
}

// Bounds on any single parameter, so that a typo such as "2" (nanoseconds)
// or "2000h" is caught when a pool is formatted.
const (
	MinDuration = 10 * time.Millisecond
	MaxDuration = time.Hour
)

var profiles = map[string]Params{
	// The defaults of DESIGN.md: failover in about 30 s on local-latency
	// shared storage.
	"default": {
		Interval:    2 * time.Second,
		IOTimeout:   5 * time.Second,
		RenewalFail: 15 * time.Second,
		Watchdog:    10 * time.Second,
		HostDead:    27 * time.Second,
	},
	// For the demonstration pool and tests on one machine: detection in
	// six seconds. Not for production storage.
	"fast": {
		Interval:    250 * time.Millisecond,
		IOTimeout:   1 * time.Second,
		RenewalFail: 3 * time.Second,
		Watchdog:    2 * time.Second,
		HostDead:    6 * time.Second,
	},
	// For storage that can pause for tens of seconds (an NFS server
	// fail-over): a stall of up to 45 s is survived without a fence.
	"slow": {
		Interval:    5 * time.Second,
		IOTimeout:   15 * time.Second,
		RenewalFail: 45 * time.Second,
		Watchdog:    30 * time.Second,
		HostDead:    80 * time.Second,
	},
}

// Profile returns the named timing profile.
func Profile(name string) (Params, error) {
	p, ok := profiles[name]
	if !ok {
		return Params{}, fmt.Errorf("unknown timing profile %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}

// ProfileNames lists the known profiles, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ClockPPM is the bound assumed on each host's safety clock's rate error
// (CLOCK_MONOTONIC_RAW, the oscillator's error): ±500 ppm, checked at run
// time by package safeclock (safeclock.AssumedPPM, safeclock.CheckRate).
const ClockPPM = safeclock.AssumedPPM

// MinSchedDelay is the least scheduling delay the margin allows for, however
// short the interval.
const MinSchedDelay = 100 * time.Millisecond

// Margin is the slack the timing rule keeps between the latest moment a
// failed host can still be running guests and the earliest moment an
// observer may declare it dead. It absorbs, together, the two terms of
// MarginTerms: their SUM, since a host's clock may run slow and the
// observer's read be delayed at once.
func (p Params) Margin() time.Duration {
	rate, sched := p.MarginTerms()
	return rate + sched
}

// MarginTerms are what Margin absorbs:
//
//   - rate: the difference in rate between two hosts' safety clocks
//     (CLOCK_MONOTONIC_RAW, each within ClockPPM of true time, so 2 ×
//     ClockPPM between two hosts) over host_dead: host_dead/1000;
//   - sched: scheduling delay around the observer's read and between the
//     host's deadline and its fence acting: half an interval, and at least
//     MinSchedDelay.
//
// NTP's slew of CLOCK_MONOTONIC (up to 100 000 ppm) is not a term: no
// safety instant is taken on it, and waits re-check the raw clock
// (safeclock.SleepUntil).
func (p Params) MarginTerms() (rate, sched time.Duration) {
	rate = p.HostDead / (1_000_000 / (2 * ClockPPM)) // host_dead × 1000 ppm
	sched = max(p.Interval/2, MinSchedDelay)
	return rate, sched
}

// JoinWait is how long a joining host waits between writing its claim on a
// slot and reading it back. A competitor that read the slot as free before
// our claim landed writes its own claim within IOTimeout of that read (it
// gives up otherwise), and that write lands within a further IOTimeout; so
// after 2 × IOTimeout every competing claim has landed and the read-back
// shows the winner.
func (p Params) JoinWait() time.Duration { return 2 * p.IOTimeout }

// RuleError reports a timing rule that a set of parameters breaks.
type RuleError struct {
	Rule   string // the rule, as written in DESIGN.md and docs/timing.md
	Detail string // the figures that break it
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("timing rule %q is broken: %s", e.Rule, e.Detail)
}

// Validate checks the rules that make restarts safe. It returns the first
// rule broken, as a *RuleError naming it.
func (p Params) Validate() error {
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"interval", p.Interval},
		{"io_timeout", p.IOTimeout},
		{"renewal_fail", p.RenewalFail},
		{"watchdog", p.Watchdog},
		{"host_dead", p.HostDead},
	} {
		if f.d < MinDuration || f.d > MaxDuration {
			return &RuleError{
				Rule:   fmt.Sprintf("%s between %v and %v", f.name, MinDuration, MaxDuration),
				Detail: fmt.Sprintf("%s is %v", f.name, f.d),
			}
		}
	}
	if p.Interval >= p.IOTimeout {
		return &RuleError{
			Rule:   "interval < io_timeout",
			Detail: fmt.Sprintf("interval %v is not below io_timeout %v", p.Interval, p.IOTimeout),
		}
	}
	if p.RenewalFail < 3*p.IOTimeout {
		return &RuleError{
			Rule:   "renewal_fail >= 3 × io_timeout",
			Detail: fmt.Sprintf("renewal_fail %v is below 3 × io_timeout = %v", p.RenewalFail, 3*p.IOTimeout),
		}
	}
	if need := p.RenewalFail + p.Watchdog + p.Margin(); p.HostDead <= need {
		return &RuleError{
			Rule: "host_dead > renewal_fail + watchdog + margin",
			Detail: fmt.Sprintf("host_dead %v is not above renewal_fail %v + watchdog %v + margin %v = %v",
				p.HostDead, p.RenewalFail, p.Watchdog, p.Margin(), need),
		}
	}
	if need := p.RenewalFail + p.IOTimeout; p.HostDead <= need {
		return &RuleError{
			Rule: "host_dead > renewal_fail + io_timeout",
			Detail: fmt.Sprintf("host_dead %v is not above renewal_fail %v + io_timeout %v = %v",
				p.HostDead, p.RenewalFail, p.IOTimeout, need),
		}
	}
	if need := 5*p.IOTimeout + p.Margin(); p.HostDead <= need {
		// A join writes its claim (io_timeout), waits JoinWait (2 ×
		// io_timeout), reads it back (io_timeout) and renews (io_timeout)
		// before a watcher of its name may judge the claim dead.
		return &RuleError{
			Rule: "host_dead > 5 × io_timeout + margin",
			Detail: fmt.Sprintf("host_dead %v is not above 5 × io_timeout %v + margin %v = %v (a join could not be proven in time)",
				p.HostDead, p.IOTimeout, p.Margin(), need),
		}
	}
	return nil
}

// String renders the parameters the way the flags of hbfence init take them.
func (p Params) String() string {
	return fmt.Sprintf("interval=%v io_timeout=%v renewal_fail=%v watchdog=%v host_dead=%v",
		p.Interval, p.IOTimeout, p.RenewalFail, p.Watchdog, p.HostDead)
}
