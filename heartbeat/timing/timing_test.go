package timing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The rules as Validate names them. They are spelled out here rather than
// taken from the code so that renaming a rule (which docs, tools and
// operators' scripts quote) fails a test.
const (
	ruleInterval    = "interval < io_timeout"
	ruleRenewal     = "renewal_fail >= 3 × io_timeout"
	ruleHostDead    = "host_dead > renewal_fail + watchdog + margin"
	ruleHostDeadIO  = "host_dead > renewal_fail + io_timeout"
	ruleJoin        = "host_dead > 5 × io_timeout + margin"
	boundsFmtSuffix = " between 10ms and 1h0m0s"
)

// base is a valid set of parameters, far from every rule's boundary, that
// each case below changes in one place.
var base = Params{
	Interval:    2 * time.Second,
	IOTimeout:   5 * time.Second,
	RenewalFail: 15 * time.Second,
	Watchdog:    10 * time.Second,
	HostDead:    27 * time.Second,
}

func with(f func(*Params)) Params {
	p := base
	f(&p)
	return p
}

func TestValidateRules(t *testing.T) {
	const ns = time.Nanosecond
	tests := []struct {
		name string
		p    Params
		rule string // "" means valid
	}{
		{"base", base, ""},

		// Bounds on every single field.
		{"interval zero", with(func(p *Params) { p.Interval = 0 }), "interval" + boundsFmtSuffix},
		{"interval negative", with(func(p *Params) { p.Interval = -time.Second }), "interval" + boundsFmtSuffix},
		{"interval 2ns (typo)", with(func(p *Params) { p.Interval = 2 }), "interval" + boundsFmtSuffix},
		{"interval just below min", with(func(p *Params) { p.Interval = MinDuration - ns }), "interval" + boundsFmtSuffix},
		{"interval at min", with(func(p *Params) { p.Interval = MinDuration }), ""},
		{"io_timeout zero", with(func(p *Params) { p.IOTimeout = 0 }), "io_timeout" + boundsFmtSuffix},
		{"io_timeout above max", with(func(p *Params) { p.IOTimeout = MaxDuration + ns }), "io_timeout" + boundsFmtSuffix},
		{"renewal_fail zero", with(func(p *Params) { p.RenewalFail = 0 }), "renewal_fail" + boundsFmtSuffix},
		{"renewal_fail above max", with(func(p *Params) { p.RenewalFail = MaxDuration + ns }), "renewal_fail" + boundsFmtSuffix},
		{"watchdog zero", with(func(p *Params) { p.Watchdog = 0 }), "watchdog" + boundsFmtSuffix},
		{"watchdog below min", with(func(p *Params) { p.Watchdog = 9 * time.Millisecond }), "watchdog" + boundsFmtSuffix},
		{"watchdog at min", with(func(p *Params) { p.Watchdog = MinDuration }), ""},
		{"host_dead zero", with(func(p *Params) { p.HostDead = 0 }), "host_dead" + boundsFmtSuffix},
		{"host_dead 2000h", with(func(p *Params) { p.HostDead = 2000 * time.Hour }), "host_dead" + boundsFmtSuffix},
		{"host_dead negative", with(func(p *Params) { p.HostDead = -27 * time.Second }), "host_dead" + boundsFmtSuffix},
		{"all at max breaks interval rule", Params{MaxDuration, MaxDuration, MaxDuration, MaxDuration, MaxDuration}, ruleInterval},

		// interval < io_timeout
		{"interval equals io_timeout", with(func(p *Params) { p.Interval = p.IOTimeout }), ruleInterval},
		{"interval above io_timeout", with(func(p *Params) { p.Interval = 6 * time.Second }), ruleInterval},
		{"interval just below io_timeout", with(func(p *Params) { p.Interval = p.IOTimeout - ns; p.HostDead = 30 * time.Second }), ""},

		// renewal_fail >= 3 × io_timeout
		{"renewal_fail 1ns short of 3 io", with(func(p *Params) { p.RenewalFail = 3*p.IOTimeout - ns }), ruleRenewal},
		{"renewal_fail 2 io", with(func(p *Params) { p.RenewalFail = 10 * time.Second }), ruleRenewal},
		{"renewal_fail exactly 3 io", with(func(p *Params) { p.RenewalFail = 3 * p.IOTimeout }), ""},
		{"io_timeout raised past renewal_fail/3", with(func(p *Params) { p.IOTimeout = 5*time.Second + ns }), ruleRenewal},

		// host_dead > renewal_fail + watchdog + margin (margin 1 s here)
		{"host_dead equals sum", with(func(p *Params) { p.HostDead = 26 * time.Second }), ruleHostDead},
		// The margin grows with host_dead (1000 ppm of it): at 26.026 s it is
		// 1.026026 s and the sum 26.026026 s; at 26.027 s the sum is 26.026027 s.
		{"host_dead just below sum", with(func(p *Params) { p.HostDead = 26026 * time.Millisecond }), ruleHostDead},
		{"host_dead just above sum", with(func(p *Params) { p.HostDead = 26027 * time.Millisecond }), ""},
		{"host_dead below sum", with(func(p *Params) { p.HostDead = 20 * time.Second }), ruleHostDead},
		{"watchdog raised to sum", with(func(p *Params) { p.Watchdog = 11 * time.Second }), ruleHostDead},
		{"interval raised grows margin", with(func(p *Params) { p.Interval = 4 * time.Second; p.HostDead = 27 * time.Second }), ruleHostDead},
		// With a 10 ms interval the scheduling term is its 100 ms floor,
		// not 5 ms, plus host_dead/1000.
		{"margin floor: host_dead at floor sum", with(func(p *Params) {
			p.Interval = 10 * time.Millisecond
			p.HostDead = 25125 * time.Millisecond // sum 25.125125 s
		}), ruleHostDead},
		{"margin floor: host_dead above floor sum", with(func(p *Params) {
			p.Interval = 10 * time.Millisecond
			p.HostDead = 25126 * time.Millisecond // sum 25.125126 s
		}), ""},

		// host_dead > renewal_fail + io_timeout: reachable only when
		// io_timeout exceeds watchdog + margin.
		{"io_timeout above watchdog+margin", with(func(p *Params) {
			p.Watchdog = time.Second // sum with margin: 15+1+1 = 17 s
			p.HostDead = 20 * time.Second
		}), ruleHostDeadIO},
		{"io_timeout above watchdog+margin, host_dead just enough", with(func(p *Params) {
			p.RenewalFail = 25 * time.Second
			p.Watchdog = time.Second
			p.HostDead = 30*time.Second + ns
		}), ""},

		// host_dead > 5 × io_timeout + margin: a join is proven in time.
		{"join rule: host_dead at 5 io + margin", with(func(p *Params) {
			p.Watchdog = time.Second // the other rules hold: 15+1+1 = 17, 15+5 = 20
			p.HostDead = 26 * time.Second
		}), ruleJoin},
		{"join rule: host_dead just above 5 io + margin", with(func(p *Params) {
			p.Watchdog = time.Second
			p.HostDead = 26027 * time.Millisecond
		}), ""},

		// The first broken rule is the one reported.
		{"several broken: bounds first", Params{Interval: 0, IOTimeout: 0}, "interval" + boundsFmtSuffix},
		{"several broken: interval before renewal", with(func(p *Params) { p.Interval = 5 * time.Second; p.RenewalFail = time.Second }), ruleInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("Validate(%v) = %v, want nil", tt.p, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%v) = nil, want rule %q broken", tt.p, tt.rule)
			}
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("Validate(%v) = %T %v, want *RuleError", tt.p, err, err)
			}
			if re.Rule != tt.rule {
				t.Fatalf("Validate(%v) broke rule %q, want %q (%v)", tt.p, re.Rule, tt.rule, err)
			}
			if re.Detail == "" {
				t.Errorf("RuleError.Detail is empty")
			}
			if msg := err.Error(); !strings.Contains(msg, tt.rule) || !strings.Contains(msg, re.Detail) {
				t.Errorf("Error() = %q, does not name rule %q and detail %q", msg, tt.rule, re.Detail)
			}
		})
	}
}

// A RuleError survives wrapping, as the header decoder wraps it.
func TestRuleErrorWrapped(t *testing.T) {
	err := with(func(p *Params) { p.HostDead = 20 * time.Second }).Validate()
	wrapped := fmt.Errorf("header timing: %w", err)
	var re *RuleError
	if !errors.As(wrapped, &re) || re.Rule != ruleHostDead {
		t.Fatalf("errors.As through wrapping: got %v", wrapped)
	}
	// The detail carries the figures an operator needs.
	for _, want := range []string{"20s", "15s", "10s", "1.02s", "26.02s"} {
		if !strings.Contains(re.Detail, want) {
			t.Errorf("detail %q does not mention %s", re.Detail, want)
		}
	}
}

func TestProfilesValidate(t *testing.T) {
	names := ProfileNames()
	if !slices.IsSorted(names) {
		t.Errorf("ProfileNames() = %v, not sorted", names)
	}
	for _, want := range []string{"default", "fast"} {
		if !slices.Contains(names, want) {
			t.Errorf("ProfileNames() = %v, lacks %q (the issue requires it)", names, want)
		}
	}
	for _, n := range names {
		p, err := Profile(n)
		if err != nil {
			t.Errorf("Profile(%q): %v", n, err)
			continue
		}
		if err := p.Validate(); err != nil {
			t.Errorf("profile %q (%v) does not validate: %v", n, p, err)
		}
	}
}

// The default profile is the table of DESIGN.md.
func TestDefaultProfileIsDesign(t *testing.T) {
	p, err := Profile("default")
	if err != nil {
		t.Fatal(err)
	}
	want := Params{
		Interval:    2 * time.Second,
		IOTimeout:   5 * time.Second,
		RenewalFail: 15 * time.Second,
		Watchdog:    10 * time.Second,
		HostDead:    27 * time.Second,
	}
	if p != want {
		t.Errorf("default profile = %v, want %v", p, want)
	}
}

func TestProfileUnknown(t *testing.T) {
	for _, name := range []string{"", "Default", "fastest", "default "} {
		p, err := Profile(name)
		if err == nil {
			t.Errorf("Profile(%q) = %v, nil; want an error", name, p)
			continue
		}
		if p != (Params{}) {
			t.Errorf("Profile(%q) returned %v with its error, want zero Params", name, p)
		}
		msg := err.Error()
		if !strings.Contains(msg, `"`+name+`"`) {
			t.Errorf("error %q does not quote the unknown name %q", msg, name)
		}
		for _, known := range ProfileNames() {
			if !strings.Contains(msg, known) {
				t.Errorf("error %q does not list known profile %q", msg, known)
			}
		}
	}
}

func TestMargin(t *testing.T) {
	tests := []struct {
		interval, hostDead, want time.Duration
	}{
		{10 * time.Millisecond, 0, 100 * time.Millisecond},
		{150 * time.Millisecond, 0, 100 * time.Millisecond},
		{199 * time.Millisecond, 0, 100 * time.Millisecond},
		{200 * time.Millisecond, 0, 100 * time.Millisecond},
		{202 * time.Millisecond, 0, 101 * time.Millisecond},
		{250 * time.Millisecond, 0, 125 * time.Millisecond},
		{2 * time.Second, 0, time.Second},
		{5 * time.Second, 0, 2500 * time.Millisecond},
		// Clock-rate drift of 1000 ppm over a long host_dead, added to
		// the scheduling term.
		{200 * time.Millisecond, time.Hour, 3600*time.Millisecond + 100*time.Millisecond},
		{2 * time.Second, 27 * time.Second, time.Second + 27*time.Millisecond},
		{2 * time.Second, 1800 * time.Second, 1800*time.Millisecond + time.Second},
		{250 * time.Millisecond, 6 * time.Second, 131 * time.Millisecond},
		{5 * time.Second, 80 * time.Second, 2580 * time.Millisecond},
		{2 * time.Second, 27*time.Second + 1, time.Second + 27*time.Millisecond}, // rounds down below 1 ns
	}
	for _, tt := range tests {
		p := Params{Interval: tt.interval, HostDead: tt.hostDead}
		if got := p.Margin(); got != tt.want {
			t.Errorf("Margin() with interval %v, host_dead %v = %v, want %v", tt.interval, tt.hostDead, got, tt.want)
		}
	}
}

// The margin must absorb clock rate and scheduling delay together: for
// every profile it is at least the sum of the two, not the larger one.
func TestMarginIsSumOfTerms(t *testing.T) {
	for _, name := range ProfileNames() {
		p, _ := Profile(name)
		rate := p.HostDead / 1000 // 2 × 500 ppm
		sched := max(p.Interval/2, 100*time.Millisecond)
		if got, want := p.Margin(), rate+sched; got < want {
			t.Errorf("profile %s: Margin() = %v, below rate term %v + scheduling term %v = %v", name, got, rate, sched, want)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("profile %s with the summed margin: %v", name, err)
		}
		t.Logf("profile %s: margin %v, host_dead − (renewal_fail + watchdog + margin) = %v",
			name, p.Margin(), p.HostDead-p.RenewalFail-p.Watchdog-p.Margin())
	}
}

func TestJoinWait(t *testing.T) {
	for _, io := range []time.Duration{10 * time.Millisecond, time.Second, 5 * time.Second, 15 * time.Second} {
		p := Params{IOTimeout: io}
		if got := p.JoinWait(); got != 2*io {
			t.Errorf("JoinWait() with io_timeout %v = %v, want %v", io, got, 2*io)
		}
	}
	p, _ := Profile("default")
	if got := p.JoinWait(); got != 10*time.Second {
		t.Errorf("default JoinWait() = %v, want 10s", got)
	}
}

func TestString(t *testing.T) {
	want := "interval=2s io_timeout=5s renewal_fail=15s watchdog=10s host_dead=27s"
	if got := base.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
