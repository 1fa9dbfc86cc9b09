package fence

import (
	"fmt"
	"github.com/hbfence/hbfence/internal/textenum"
	"time"

	"github.com/hbfence/hbfence/heartbeat/timing"
)

// State is where a host is on the fencing path.
type State int

const (
	// Unarmed: no renewal has succeeded in this incarnation; the watchdog
	// is not armed by it (an earlier incarnation may have left it armed,
	// and then it runs down).
	Unarmed State = iota
	// Healthy: the last successful renewal began less than renewal_fail
	// ago; the watchdog is fed.
	Healthy
	// Fencing: renewals failed for renewal_fail, or fencing was ordered;
	// the watchdog is no longer fed and the HA guests are being killed.
	Fencing
	// Fenced: the HA guests are confirmed gone and the watchdog disarmed;
	// the host lives on without guests and must join again as a new
	// incarnation.
	Fenced
	// Resetting: the HA guests could not be confirmed gone in time; the
	// watchdog is not fed and resets the machine.
	Resetting
)

var stateNames = []string{"unarmed", "healthy", "fencing", "fenced", "resetting"}

func (s State) String() string { return textenum.Name(stateNames, int(s), "state") }

// MarshalText renders the state for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state rendered by MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	i, err := textenum.Parse(stateNames, b, "fence state")
	if err != nil {
		return err
	}
	*s = State(i)
	return nil
}

// Action is what the driver must do.
type Action int

const (
	// Arm: open the watchdog (arming it) before the first feed.
	Arm Action = iota + 1
	// Feed: feed the watchdog.
	Feed
	// KillGuests: destroy every HA guest of this host and report with
	// GuestsKilled.
	KillGuests
	// Disarm: the guests are gone; disarm the watchdog (magic close).
	Disarm
)

func (a Action) String() string {
	switch a {
	case Arm:
		return "arm"
	case Feed:
		return "feed"
	case KillGuests:
		return "kill-guests"
	case Disarm:
		return "disarm"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Fencer decides, from the start times of successful renewals and the
// monotonic clock, when to feed the watchdog and when to fence. It is a
// pure state machine: it does no I/O and reads no clock. See doc.go for why
// it is safe.
type Fencer struct {
	p          timing.Params
	watchdog   time.Duration // the watchdog's effective firing time
	state      State
	renewed    time.Time // start of the last successful renewal
	armed      bool
	lastFeed   time.Time
	fencedAt   time.Time
	reason     string
	killResult error
	// reset: the machine must be reset even if the guests are confirmed
	// gone (a poison pill asking for a reset).
	reset bool
}

// New returns a fencer for a pool with timing p and a watchdog that fires
// watchdog after its last feed (its effective firing time, not the
// number written to it). It refuses a watchdog that breaks the pool's
// timing rule.
func New(p timing.Params, watchdog time.Duration) (*Fencer, error) {
	if err := CheckWatchdog(p, watchdog); err != nil {
		return nil, err
	}
	return &Fencer{p: p, watchdog: watchdog}, nil
}

// CheckWatchdog checks the pool's timing rule with the watchdog's
// effective firing time: host_dead > renewal_fail + watchdog + margin.
func CheckWatchdog(p timing.Params, watchdog time.Duration) error {
	if watchdog <= 0 {
		return fmt.Errorf("the watchdog's effective firing time is %v; it must be positive", watchdog)
	}
	if need := p.RenewalFail + watchdog + p.Margin(); p.HostDead <= need {
		return &timing.RuleError{
			Rule: "host_dead > renewal_fail + watchdog + margin",
			Detail: fmt.Sprintf("with this host's watchdog firing %v after the last feed, renewal_fail %v + watchdog %v + margin %v = %v is not below the pool's host_dead %v; "+
				"use a watchdog with a shorter timeout, or re-format the pool with a longer host_dead",
				watchdog, p.RenewalFail, watchdog, p.Margin(), need, p.HostDead),
		}
	}
	return nil
}

// Renewed reports a renewal that began at start and completed within
// io_timeout: a heartbeat write, or the proven claim write of the join
// (heartbeat.Member.LastRenewal gives the latest). It has no effect
// once fencing has begun: the fence is latched.
func (f *Fencer) Renewed(start time.Time) {
	if f.state > Healthy {
		return
	}
	if start.After(f.renewed) {
		f.renewed = start
	}
}

// Deadline is when the host fences unless a renewal succeeds first: the
// start of the last successful renewal plus renewal_fail. Zero before the
// first renewal.
func (f *Fencer) Deadline() time.Time {
	if f.renewed.IsZero() {
		return time.Time{}
	}
	return f.renewed.Add(f.p.RenewalFail)
}

// Tick is called at least every FeedPeriod; it returns what to do now.
func (f *Fencer) Tick(now time.Time) []Action {
	switch f.state {
	case Unarmed:
		if f.renewed.IsZero() || !now.Before(f.Deadline()) {
			return nil
		}
		f.state, f.armed, f.lastFeed = Healthy, true, now
		return []Action{Arm, Feed}
	case Healthy:
		if !now.Before(f.Deadline()) {
			return f.fence(now, fmt.Sprintf("no renewal succeeded for renewal_fail (%v): the last began %v ago",
				f.p.RenewalFail, now.Sub(f.renewed).Round(time.Millisecond)))
		}
		f.lastFeed = now
		return []Action{Feed}
	case Fencing:
		// Give up on the guest kill in time for the watchdog: it fires
		// watchdog after the last feed regardless.
		if !now.Before(f.lastFeed.Add(f.watchdog)) {
			f.state = Resetting
		}
	}
	return nil
}

// ArmFailed reports that arming the watchdog failed: the host cannot keep
// the pool's promise and fences at once. There is nothing to disarm.
func (f *Fencer) ArmFailed(now time.Time, reason string) []Action {
	f.armed = false
	return f.Order(now, reason)
}

// OrderReset fences at once and lets the watchdog reset the machine even
// when the guests are confirmed gone: a poison pill asking for a reset.
func (f *Fencer) OrderReset(now time.Time, reason string) []Action {
	if f.state >= Fencing {
		return nil
	}
	f.reset = true
	return f.fence(now, reason)
}

// Order fences at once: a poison pill, a slot taken by another host, a
// broken invariant. It returns what to do now.
func (f *Fencer) Order(now time.Time, reason string) []Action {
	if f.state >= Fencing {
		return nil
	}
	return f.fence(now, reason)
}

func (f *Fencer) fence(now time.Time, reason string) []Action {
	f.state, f.fencedAt, f.reason = Fencing, now, reason
	if f.lastFeed.IsZero() {
		// Never fed by this incarnation: count from now, the latest
		// moment anything could have fed it.
		f.lastFeed = now
	}
	return []Action{KillGuests}
}

// GuestsKilled reports the result of KillGuests: nil when every HA guest
// is confirmed gone. It returns what to do now.
func (f *Fencer) GuestsKilled(now time.Time, err error) []Action {
	if f.state != Fencing {
		return nil
	}
	f.killResult = err
	if err != nil || f.reset || !now.Before(f.lastFeed.Add(f.watchdog)) {
		// Not confirmed, or confirmed too late to stop the watchdog:
		// the machine resets.
		f.state = Resetting
		return nil
	}
	f.state = Fenced
	if !f.armed {
		return nil
	}
	return []Action{Disarm}
}

// StopWithin bounds how long a heartbeat loop told to stop may take: the
// rest of a round, one read and one write of io_timeout each, and the wait
// for its next wake-up.
func (f *Fencer) StopWithin() time.Duration {
	return f.p.Interval + 2*f.p.IOTimeout
}

// FeedPeriod is how often Tick must be called: often enough that a feed
// is never more than a quarter of the watchdog's firing time late.
func (f *Fencer) FeedPeriod() time.Duration {
	return min(f.p.Interval, f.watchdog/4)
}

// Status is a snapshot of the fencer, for hbfence status.
type Status struct {
	State    State     `json:"state"`
	Reason   string    `json:"reason,omitempty"`
	Deadline time.Time `json:"-"`
	// FencedAt is when fencing began (zero while not fencing).
	FencedAt time.Time `json:"-"`
	// LastFeed is when the watchdog was last fed.
	LastFeed time.Time `json:"-"`
	// KillError is why the guests could not be confirmed gone.
	KillError string `json:"kill_error,omitempty"`
}

// Status returns the fencer's state.
func (f *Fencer) Status() Status {
	s := Status{State: f.state, Reason: f.reason, Deadline: f.Deadline(), FencedAt: f.fencedAt, LastFeed: f.lastFeed}
	if f.killResult != nil {
		s.KillError = f.killResult.Error()
	}
	return s
}
