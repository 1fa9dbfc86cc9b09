package probe

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/timing"
)

const wd = 10 * time.Second

// covers checks what every advice must hold: it validates, and covers the
// observations with the factor.
func covers(t *testing.T, a Advice, obs Observed, factor float64, watchdog time.Duration) {
	t.Helper()
	p := a.Params
	if err := p.Validate(); err != nil {
		t.Fatalf("advice %v does not validate: %v", p, err)
	}
	if p.Watchdog != watchdog {
		t.Errorf("watchdog %v, want the %v given", p.Watchdog, watchdog)
	}
	if p.IOTimeout < scale(obs.PairMax, factor) || p.IOTimeout < MinIOTimeout {
		t.Errorf("io_timeout %v does not cover %g × worst pair %v (or the floor %v)", p.IOTimeout, factor, obs.PairMax, MinIOTimeout)
	}
	if p.Interval < scale(obs.PairP999, factor) || p.Interval < MinInterval {
		t.Errorf("interval %v does not cover %g × p99.9 pair %v (or the floor)", p.Interval, factor, obs.PairP999)
	}
	if p.RenewalFail < scale(obs.LongestStall, factor)+StallIntervals*p.Interval {
		t.Errorf("renewal_fail %v does not cover %g × stall %v + %d intervals", p.RenewalFail, factor, obs.LongestStall, StallIntervals)
	}
	if len(a.Why) != 5 {
		t.Fatalf("%d reasons, want 5", len(a.Why))
	}
	for i, name := range []string{"interval", "io_timeout", "renewal_fail", "watchdog", "host_dead"} {
		if a.Why[i].Name != name || a.Why[i].Text == "" {
			t.Errorf("reason %d: %+v", i, a.Why[i])
		}
	}
}

// minimal checks that no host_dead a step lower validates with the same
// figures: the advice is the least on its step.
func minimal(t *testing.T, p timing.Params) {
	t.Helper()
	q := p
	q.HostDead -= hdStep
	if q.Validate() == nil {
		t.Errorf("host_dead %v is not the least: %v validates too", p.HostDead, q.HostDead)
	}
}

// leastInterval checks the claim of Advise that the advised interval is
// the least of the grid that covers its need, and that no larger interval,
// with any io_timeout Advise could take with it, gives a smaller
// host_dead (which holds as long as better ranks host_dead first).
func leastInterval(t *testing.T, a Advice, obs Observed, factor float64) {
	t.Helper()
	if want := gridAtLeast(max(scale(obs.PairP999, factor), MinInterval)); a.Params.Interval != want {
		t.Errorf("interval %v, want %v: the least of the grid covering the need", a.Params.Interval, want)
	}
	ioLow := roundUp(max(scale(obs.PairMax, factor), MinIOTimeout))
	for _, iv := range grid {
		if iv <= a.Params.Interval {
			continue
		}
		for _, io := range ioCandidates(iv, ioLow) {
			p := timing.Params{Interval: iv, IOTimeout: io, Watchdog: a.Params.Watchdog,
				RenewalFail: roundUp(max(3*io, scale(obs.LongestStall, factor)+StallIntervals*iv))}
			// A larger interval with the same host_dead is worse too:
			// it is seen dead later (DeadWithin).
			if hd, ok := LeastHostDead(p); ok && hd < a.Params.HostDead {
				t.Errorf("interval %v io_timeout %v gives host_dead %v, below the advice %v", iv, io, hd, a.Params)
			}
		}
	}
}

func TestAdviceFastLocalStorage(t *testing.T) {
	obs := Observed{PairMax: 2 * ms1, PairP999: ms1, LongestStall: 105 * ms1}
	a, err := Advise(obs, DefaultFactor, wd)
	if err != nil {
		t.Fatal(err)
	}
	covers(t, a, obs, DefaultFactor, wd)
	minimal(t, a.Params)
	// Floors bind: io_timeout 500ms, renewal_fail 3 × io_timeout;
	// host_dead is set by the watchdog rule: 1.5s + 10s + margin (100ms
	// + 11.7ms) < 11.7s. An interval of 300 ms would give the same
	// host_dead (margin 150ms + 11.7ms), but a power loss would be seen
	// up to 100 ms later: the interval stays at its 200 ms floor.
	want := timing.Params{Interval: 200 * ms1, IOTimeout: 500 * ms1, RenewalFail: 1500 * ms1, Watchdog: wd, HostDead: 11700 * ms1}
	if a.Params != want {
		t.Errorf("advice %v, want %v", a.Params, want)
	}
	if a.Binding != "host_dead > renewal_fail + watchdog + margin" {
		t.Errorf("binding rule %q", a.Binding)
	}
	if !strings.Contains(a.Why[1].Text, "floor") || !strings.Contains(a.Why[2].Text, "3 × io_timeout") {
		t.Errorf("reasons do not say the floor and the rule bind: %q / %q", a.Why[1].Text, a.Why[2].Text)
	}
	if got := a.InitFlags(); got != "--interval 200ms --io-timeout 500ms --renewal-fail 1.5s --watchdog 10s --host-dead 11.7s" {
		t.Errorf("init flags %q", got)
	}
}

func TestAdviceSlowStorageWithStalls(t *testing.T) {
	// 200 ms per I/O, a 4 s stall.
	obs := Observed{PairMax: 410 * ms1, PairP999: 405 * ms1, LongestStall: 4 * time.Second}
	a, err := Advise(obs, DefaultFactor, wd)
	if err != nil {
		t.Fatal(err)
	}
	covers(t, a, obs, DefaultFactor, wd)
	minimal(t, a.Params)
	p := a.Params
	// interval >= 1.215s: 1.3s of the grid; io_timeout >= 1.23s and above
	// the interval; renewal_fail = 12s + 2.6s, rounded up to 15s, which
	// leaves io_timeout room up to 5s at no cost; host_dead > 15s + 10s +
	// margin (650ms + 25.7ms).
	want := timing.Params{Interval: 1300 * ms1, IOTimeout: 5 * time.Second, RenewalFail: 15 * time.Second, Watchdog: wd, HostDead: 25700 * ms1}
	if p != want {
		t.Errorf("advice %v, want %v", p, want)
	}
	if a.DeadWithin() != 27*time.Second {
		t.Errorf("DeadWithin %v, want host_dead + interval = 27s", a.DeadWithin())
	}
	if !strings.Contains(a.Why[2].Text, "longest stall (4s)") {
		t.Errorf("renewal_fail reason does not name the stall: %q", a.Why[2].Text)
	}
}

func TestAdviceFactorAndWatchdog(t *testing.T) {
	obs := Observed{PairMax: 100 * ms1, PairP999: 50 * ms1, LongestStall: 300 * ms1}
	var prev time.Duration
	for _, f := range []float64{1, 2, 3, 5, 10} {
		a, err := Advise(obs, f, wd)
		if err != nil {
			t.Fatal(err)
		}
		covers(t, a, obs, f, wd)
		minimal(t, a.Params)
		if a.Params.HostDead < prev {
			t.Errorf("factor %g gives host_dead %v, below %v of a smaller factor", f, a.Params.HostDead, prev)
		}
		prev = a.Params.HostDead
	}
	// A 2 s watchdog: host_dead may shrink, and the 5 × io_timeout rule
	// can bind.
	a, err := Advise(obs, 3, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	covers(t, a, obs, 3, 2*time.Second)
	minimal(t, a.Params)
	if a.Params.HostDead >= 6*time.Second {
		t.Errorf("with a 2 s watchdog, host_dead %v is not below the fast profile's 6s", a.Params.HostDead)
	}
}

// Every observation, across many magnitudes, gives an advice that
// validates and covers it, or an error when nothing can.
func TestAdviceGridSweep(t *testing.T) {
	// 700, 800 and 970 ms put the interval's need (3 × the p99.9, half
	// the worst) at 1.05, 1.2 and 1.455 s: the grid's 100 ms steps.
	for _, pair := range []time.Duration{10 * time.Microsecond, ms1, 30 * ms1, 300 * ms1, 700 * ms1, 800 * ms1, 970 * ms1, 3 * time.Second, 30 * time.Second, 5 * time.Minute} {
		for _, stall := range []time.Duration{100 * ms1, time.Second, 20 * time.Second, 3 * time.Minute} {
			for _, w := range []time.Duration{time.Second, 10 * time.Second, time.Minute} {
				obs := Observed{PairMax: pair, PairP999: pair / 2, LongestStall: max(stall, pair)}
				a, err := Advise(obs, 3, w)
				if err != nil {
					if pair < time.Minute {
						t.Errorf("pair %v stall %v watchdog %v: %v", pair, stall, w, err)
					}
					continue
				}
				covers(t, a, obs, 3, w)
				minimal(t, a.Params)
				leastInterval(t, a, obs, 3)
			}
		}
	}
}

func TestAdviceRefusals(t *testing.T) {
	obs := Observed{PairMax: ms1, PairP999: ms1, LongestStall: 100 * ms1}
	for _, c := range []struct {
		obs    Observed
		factor float64
		wd     time.Duration
		want   string
	}{
		{obs, 0.5, wd, "at least 1"},
		{obs, math.NaN(), wd, "at least 1"},
		{obs, math.Inf(1), wd, "at least 1"},
		{obs, 3, 0, "effective firing time"},
		{obs, 3, 2 * time.Hour, "effective firing time"},
		{Observed{}, 3, wd, "no write+read pair completed"},
		{Observed{PairMax: 30 * time.Minute, PairP999: time.Minute, LongestStall: 30 * time.Minute}, 3, wd, "too slow"},
	} {
		_, err := Advise(c.obs, c.factor, c.wd)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Advise(%+v, %g, %v) = %v, want an error saying %q", c.obs, c.factor, c.wd, err, c.want)
		}
	}
}

func TestRoundUp(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		1:                       10 * ms1,
		10 * ms1:                10 * ms1,
		999 * ms1:               time.Second,
		1001 * ms1:              1100 * ms1,
		9950 * ms1:              10 * time.Second,
		10*time.Second + 1:      11 * time.Second,
		2*time.Minute + 500*ms1: 2*time.Minute + time.Second,
	} {
		if got := roundUp(in); got != want {
			t.Errorf("roundUp(%v) = %v, want %v", in, got, want)
		}
	}
}

// The observations of the one-hour soak's probe (docs/timing.md: stalls
// up to 0.5 s, a 3 s watchdog): the advice must keep a power loss's
// detection, and so the guests' failover, well under the 10 s target.
func TestAdviceForHalfSecondStalls(t *testing.T) {
	obs := Observed{PairMax: 421600 * time.Microsecond, PairP999: 391 * ms1, LongestStall: 520800 * time.Microsecond}
	a, err := Advise(obs, DefaultFactor, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	covers(t, a, obs, DefaultFactor, 3*time.Second)
	minimal(t, a.Params)
	leastInterval(t, a, obs, DefaultFactor)
	// interval >= 3 × 391ms = 1.173s: 1.2s; io_timeout >= 1.265s: 1.3s;
	// renewal_fail >= 3 × 520.8ms + 2 × 1.2s = 3.96s: 4s; host_dead >
	// 4s + 3s + margin (600ms + 7.7ms): 7.7s.
	want := timing.Params{Interval: 1200 * ms1, IOTimeout: 1300 * ms1, RenewalFail: 4 * time.Second, Watchdog: 3 * time.Second, HostDead: 7700 * ms1}
	if a.Params != want {
		t.Errorf("advice %v, want %v", a.Params, want)
	}
	if a.DeadWithin() != 8900*ms1 {
		t.Errorf("DeadWithin %v, want 8.9s", a.DeadWithin())
	}
}
