package probe

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/timing"
)

// Floors of the advice: however fast the storage, the advice goes no lower.
const (
	// MinInterval: below 200 ms the margin's scheduling term stays at
	// timing.MinSchedDelay (100 ms), so a shorter interval shortens
	// host_dead only by the renewal_fail allowance for it, and costs a
	// read of the whole slot region every interval on every host.
	MinInterval = 200 * time.Millisecond
	// MinIOTimeout: an I/O's time is measured by a Go process, which a
	// loaded host can deschedule for hundreds of milliseconds; below
	// 500 ms an I/O timeout measures the scheduler as much as the
	// storage.
	MinIOTimeout = 500 * time.Millisecond
	// DefaultFactor is the default safety factor on every observation.
	DefaultFactor = 3.0
	// StallIntervals: renewal_fail covers the longest stall plus this
	// many intervals: the last renewal before a stall may have begun up
	// to an interval before it, and the first after it begins up to an
	// interval after it ends.
	StallIntervals = 2
)

// grid is the set of intervals and io_timeouts the advice chooses from
// (io_timeout also takes the least value that covers the observations):
// 100 ms steps up to 2 s, where the interval weighs most in how soon a
// power loss is seen (Advice.DeadWithin), and readable steps above.
var grid = []time.Duration{
	200 * time.Millisecond, 250 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond,
	500 * time.Millisecond, 600 * time.Millisecond, 700 * time.Millisecond, 750 * time.Millisecond,
	800 * time.Millisecond, 900 * time.Millisecond, 1 * time.Second, 1100 * time.Millisecond,
	1200 * time.Millisecond, 1300 * time.Millisecond, 1400 * time.Millisecond, 1500 * time.Millisecond,
	1600 * time.Millisecond, 1700 * time.Millisecond, 1800 * time.Millisecond, 1900 * time.Millisecond,
	2 * time.Second, 2500 * time.Millisecond, 3 * time.Second, 4 * time.Second,
	5 * time.Second, 6 * time.Second, 7500 * time.Millisecond, 10 * time.Second, 15 * time.Second, 20 * time.Second,
	30 * time.Second, 45 * time.Second, time.Minute, 90 * time.Second, 2 * time.Minute,
	3 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 20 * time.Minute,
}

// Observed is what the advice is built from.
type Observed struct {
	// PairMax is the worst write+read of one cycle (both returned OK);
	// PairP999 its 99.9th percentile.
	PairMax, PairP999 time.Duration
	// LongestStall is the longest span without a completed write.
	LongestStall time.Duration
	// Timeouts counts the I/Os that timed out: they are in the stall,
	// not in the pairs.
	Timeouts int
}

// ObservedOf takes the observations from a run's statistics.
func ObservedOf(st Stats) Observed {
	return Observed{PairMax: st.Pair.Max, PairP999: st.Pair.P999, LongestStall: st.LongestStall, Timeouts: st.Timeouts}
}

// Advice is the fastest timing the rules allow for what was observed.
type Advice struct {
	Params timing.Params
	Factor float64
	// Why explains each figure, in the order interval, io_timeout,
	// renewal_fail, watchdog, host_dead.
	Why []Reason
	// Binding is the rule of timing.Validate that sets host_dead.
	Binding string
}

// DeadWithin bounds the time from a power loss to the master declaring
// the host dead: host_dead + interval, plus the latencies of the reads
// and of a round's write. The master counts the silence from the
// completion of its first read showing the host's last renewal, which
// its next round issues at most an interval after the renewal landed
// (and the power loss comes after that landing); it reads again at the
// deadline itself, or at once after a round during which it passed
// (heartbeat.Member.Run), so no further interval is added. It assumes
// the master's reads succeed (a failed one adds up to an interval) and
// the slot still reads valid after the power loss (a torn last write
// decides nothing until it is rewritten). The guests start after this,
// plus the master's plan and the guest's own boot.
func (a Advice) DeadWithin() time.Duration {
	return a.Params.HostDead + a.Params.Interval
}

// Reason explains one figure of the advice.
type Reason struct {
	Name  string // "interval", "io_timeout", ...
	Value time.Duration
	Text  string
}

// InitFlags are the flags of hbfence init that format a pool with the
// advised timing.
func (a Advice) InitFlags() string {
	p := a.Params
	return fmt.Sprintf("--interval %v --io-timeout %v --renewal-fail %v --watchdog %v --host-dead %v",
		p.Interval, p.IOTimeout, p.RenewalFail, p.Watchdog, p.HostDead)
}

// Advise returns the timing with the smallest host_dead that validates
// (timing.Params.Validate) and covers the observations with the safety
// factor:
//
//   - io_timeout >= factor × the worst write+read pair, and at least
//     MinIOTimeout;
//   - interval >= factor × the 99.9th percentile write+read pair, at least
//     MinInterval, and below io_timeout;
//   - renewal_fail >= factor × the longest stall + StallIntervals ×
//     interval, and >= 3 × io_timeout (the rule);
//   - watchdog is the effective firing time given;
//   - host_dead is the least value on a 100 ms step that validates.
//
// It searches intervals and io_timeouts of a grid; renewal_fail and
// host_dead take the least value for each pair, since larger values only
// raise host_dead. Of equal host_dead it prefers the smaller interval,
// which shortens DeadWithin, then the larger io_timeout: more tolerance
// at no cost. A larger interval never lowers host_dead (it raises the
// stall allowance of renewal_fail, the margin, and the least io_timeout
// above it), so the advised interval is the least of the grid that covers
// its need, and the advice has the least DeadWithin of the grid too.
func Advise(obs Observed, factor float64, watchdog time.Duration) (Advice, error) {
	if !(factor >= 1) || math.IsInf(factor, 1) { // also NaN
		return Advice{}, fmt.Errorf("safety factor %v: it must be a number of at least 1", factor)
	}
	if watchdog < timing.MinDuration || watchdog > timing.MaxDuration {
		return Advice{}, fmt.Errorf("watchdog %v: the watchdog's effective firing time must lie between %v and %v", watchdog, timing.MinDuration, timing.MaxDuration)
	}
	if obs.PairMax <= 0 {
		return Advice{}, errors.New("no write+read pair completed: nothing to base the advice on")
	}
	ioNeed := scale(obs.PairMax, factor)
	ioLow := roundUp(max(ioNeed, MinIOTimeout))
	ivNeed := scale(obs.PairP999, factor)
	ivLow := max(ivNeed, MinInterval)
	stallNeed := scale(obs.LongestStall, factor)

	var best timing.Params
	found := false
	for _, iv := range grid {
		if iv < ivLow {
			continue
		}
		for _, io := range ioCandidates(iv, ioLow) {
			rf := roundUp(max(3*io, stallNeed+StallIntervals*iv))
			p := timing.Params{Interval: iv, IOTimeout: io, RenewalFail: rf, Watchdog: watchdog}
			hd, ok := LeastHostDead(p)
			if !ok {
				continue
			}
			p.HostDead = hd
			if !found || better(p, best) {
				best, found = p, true
			}
		}
	}
	if !found {
		return Advice{}, fmt.Errorf("no timing within %v..%v covers what was observed (worst write+read %v, longest stall %v, factor %v): the storage is too slow for hbfence",
			timing.MinDuration, timing.MaxDuration, obs.PairMax, obs.LongestStall, factor)
	}
	return Advice{Params: best, Factor: factor, Binding: binding(best),
		Why: explain(best, obs, factor, ioNeed, ivNeed, stallNeed)}, nil
}

// ioCandidates are the io_timeouts the advice tries with interval iv: the
// least above both iv and ioLow (off the grid, so as not to waste the
// tolerance between grid steps), and the grid's above that.
func ioCandidates(iv, ioLow time.Duration) []time.Duration {
	ios := []time.Duration{max(ioLow, roundUp(iv+1))}
	for _, g := range grid {
		if g > ios[0] {
			ios = append(ios, g)
		}
	}
	return ios
}

func better(p, q timing.Params) bool {
	if p.HostDead != q.HostDead {
		return p.HostDead < q.HostDead
	}
	if p.Interval != q.Interval {
		return p.Interval < q.Interval
	}
	return p.IOTimeout > q.IOTimeout
}

// LeastHostDead is the least host_dead on a 100 ms step with which p
// validates, if any.
func LeastHostDead(p timing.Params) (time.Duration, bool) {
	// The rules are lower bounds on host_dead; the margin grows with it
	// by host_dead/1000, so start from the bound without that term and
	// step up.
	_, sched := p.MarginTerms()
	low := max(p.RenewalFail+p.Watchdog+sched, p.RenewalFail+p.IOTimeout, 5*p.IOTimeout+sched)
	hd := low / hdStep * hdStep
	for range 1000 {
		if hd > timing.MaxDuration {
			return 0, false
		}
		p.HostDead = hd
		err := p.Validate()
		if err == nil {
			return hd, true
		}
		var re *timing.RuleError
		if !errors.As(err, &re) || !strings.HasPrefix(re.Rule, "host_dead") {
			// A rule host_dead cannot fix (interval, io_timeout,
			// renewal_fail out of range).
			return 0, false
		}
		hd += hdStep
	}
	return 0, false
}

const hdStep = 100 * time.Millisecond

// binding names the host_dead rule that the advised host_dead only just
// satisfies: the one that fails one step lower.
func binding(p timing.Params) string {
	p.HostDead -= hdStep
	var re *timing.RuleError
	if err := p.Validate(); errors.As(err, &re) {
		return re.Rule
	}
	return "host_dead step"
}

func explain(p timing.Params, obs Observed, factor float64, ioNeed, ivNeed, stallNeed time.Duration) []Reason {
	f := fmt.Sprintf("%g", factor)
	var iv, io, rf, hd string
	if ivNeed >= MinInterval {
		iv = fmt.Sprintf("covers %s × the 99.9th percentile write+read (%v) = %v, so a heartbeat round fits in the interval", f, ms(obs.PairP999), ms(ivNeed))
	} else {
		iv = fmt.Sprintf("the floor %v (%s × the 99.9th percentile write+read %v = %v is below it; a shorter interval would barely shorten host_dead and would read the slot region more often)", MinInterval, f, ms(obs.PairP999), ms(ivNeed))
	}
	switch {
	case ioNeed >= MinIOTimeout:
		io = fmt.Sprintf("covers %s × the worst write+read (%v) = %v: a renewal as slow as the worst seen still counts", f, ms(obs.PairMax), ms(ioNeed))
	default:
		io = fmt.Sprintf("the floor %v (%s × the worst write+read %v = %v is below it; below the floor the timeout would measure the scheduler)", MinIOTimeout, f, ms(obs.PairMax), ms(ioNeed))
	}
	if obs.Timeouts > 0 {
		n := fmt.Sprintf("%d I/Os", obs.Timeouts)
		if obs.Timeouts == 1 {
			n = "1 I/O"
		}
		io += "; " + n + " timed out: a timeout counts in the longest stall, which renewal_fail covers"
	}
	if p.IOTimeout > roundUp(max(ioNeed, MinIOTimeout)) {
		io += fmt.Sprintf("; raised to %v, to stay above the interval or at no cost to host_dead", p.IOTimeout)
	}
	stallRF := stallNeed + StallIntervals*p.Interval
	if stallRF >= 3*p.IOTimeout {
		rf = fmt.Sprintf("covers %s × the longest stall (%v) + %d × interval (%v) = %v: a stall that long does not fence a host",
			f, ms(obs.LongestStall), StallIntervals, p.Interval, ms(stallRF))
	} else {
		rf = fmt.Sprintf("3 × io_timeout (the rule renewal_fail >= 3 × io_timeout); it also covers %s × the longest stall (%v) + %d × interval (%v) = %v",
			f, ms(obs.LongestStall), StallIntervals, p.Interval, ms(stallRF))
	}
	wd := "the watchdog's effective firing time on this host, as given (--watchdog): the rules are only as good as this figure"
	hd = fmt.Sprintf("the least value on a %v step that keeps every rule; the rule that sets it: %s (margin %v)", hdStep, binding(p), p.Margin())
	return []Reason{
		{"interval", p.Interval, iv},
		{"io_timeout", p.IOTimeout, io},
		{"renewal_fail", p.RenewalFail, rf},
		{"watchdog", p.Watchdog, wd},
		{"host_dead", p.HostDead, hd},
	}
}

// gridAtLeast is the least interval of the grid at or above d.
func gridAtLeast(d time.Duration) time.Duration {
	for _, g := range grid {
		if g >= d {
			return g
		}
	}
	return d
}

func scale(d time.Duration, factor float64) time.Duration {
	return time.Duration(float64(d) * factor)
}

// roundUp rounds d up to a readable step: 10 ms below 1 s, 100 ms below
// 10 s, 1 s above.
func roundUp(d time.Duration) time.Duration {
	step := time.Second
	switch {
	case d < time.Second:
		step = 10 * time.Millisecond
	case d < 10*time.Second:
		step = 100 * time.Millisecond
	}
	return (d + step - 1) / step * step
}

// ms renders a measured duration to a readable precision.
func ms(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
