package watchdog

import (
	"testing"
	"time"
)

func TestQuirkTable(t *testing.T) {
	seen := map[string]bool{}
	for _, q := range Quirks {
		if q.Identity == "" || q.Factor < 1 || q.Why == "" {
			t.Errorf("incomplete entry %+v", q)
		}
		if seen[q.Identity] {
			t.Errorf("%q twice", q.Identity)
		}
		seen[q.Identity] = true
	}
	q, ok := LookupQuirk("iTCO_wdt\x00\x00\x00")
	if !ok || q.Factor != 2 {
		t.Errorf("iTCO_wdt (NUL-padded as the ioctl returns it): %+v, %v; want factor 2", q, ok)
	}
	if q, ok := LookupQuirk("i6300ESB timer"); ok || q.Factor != 1 {
		t.Errorf("unknown driver: %+v, %v; want factor 1, not found", q, ok)
	}
	if q, ok := LookupQuirk("itco_wdt"); ok {
		t.Errorf("identities are exact; got %+v", q)
	}
}

func TestEffectiveAndRequest(t *testing.T) {
	for _, c := range []struct {
		identity string
		reported time.Duration
		want     time.Duration
	}{
		{"iTCO_wdt", 5 * time.Second, 10 * time.Second},
		{"iTCO_wdt", 30 * time.Second, 60 * time.Second},
		{"Software Watchdog", 10 * time.Second, 10 * time.Second},
		{"some_wdt", 7 * time.Second, 7 * time.Second},
	} {
		if got := EffectiveTimeout(c.identity, c.reported); got != c.want {
			t.Errorf("EffectiveTimeout(%q, %v) = %v, want %v", c.identity, c.reported, got, c.want)
		}
	}
	for _, c := range []struct {
		identity string
		want     time.Duration
		secs     int
	}{
		{"iTCO_wdt", 10 * time.Second, 5},
		{"iTCO_wdt", 15 * time.Second, 7}, // rounded down: fires at 14 s, not 16
		{"iTCO_wdt", 2 * time.Second, 1},
		{"iTCO_wdt", 1999 * time.Millisecond, 0},
		{"some_wdt", 2 * time.Second, 2},
		{"some_wdt", 2500 * time.Millisecond, 2},
		{"some_wdt", 999 * time.Millisecond, 0},
	} {
		got := RequestSeconds(c.identity, c.want)
		if got != c.secs {
			t.Errorf("RequestSeconds(%q, %v) = %d, want %d", c.identity, c.want, got, c.secs)
		}
		if got > 0 {
			if eff := EffectiveTimeout(c.identity, time.Duration(got)*time.Second); eff > c.want {
				t.Errorf("%q asked %d s fires at %v, later than the %v wanted", c.identity, got, eff, c.want)
			}
		}
	}
}
