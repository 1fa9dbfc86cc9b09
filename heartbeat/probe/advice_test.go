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
	// + 11.7ms) < 11.7s. The interval may rise from its 200 ms floor to
	// 300 ms (margin 150ms + 11.7ms) at no cost: fewer I/Os.
	want := timing.Params{Interval: 300 * ms1, IOTimeout: 500 * ms1, RenewalFail: 1500 * ms1, Watchdog: wd, HostDead: 11700 * ms1}
	if a.Params != want {
		t.Errorf("advice %v, want %v", a.Params, want)
	}
	if a.Binding != "host_dead > renewal_fail + watchdog + margin" {
		t.Errorf("binding rule %q", a.Binding)
	}
	if !strings.Contains(a.Why[1].Text, "floor") || !strings.Contains(a.Why[2].Text, "3 × io_timeout") {
		t.Errorf("reasons do not say the floor and the rule bind: %q / %q", a.Why[1].Text, a.Why[2].Text)
	}
	if got := a.InitFlags(); got != "--interval 300ms --io-timeout 500ms --renewal-fail 1.5s --watchdog 10s --host-dead 11.7s" {
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
	// interval >= 1.215s: 1.5s of the grid; io_timeout >= 1.23s and above
	// the interval; renewal_fail = 12s + 3s = 15s, which leaves
	// io_timeout room up to 5s at no cost.
	if p.Interval != 1500*ms1 || p.RenewalFail != 15*time.Second || p.IOTimeout != 5*time.Second {
		t.Errorf("advice %v, want interval 1.5s, io_timeout 5s, renewal_fail 15s", p)
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
	for _, pair := range []time.Duration{10 * time.Microsecond, ms1, 30 * ms1, 300 * ms1, 3 * time.Second, 30 * time.Second, 5 * time.Minute} {
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
