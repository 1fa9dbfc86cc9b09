package fence

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/timing"
)

var p, _ = timing.Profile("default") // rf 15 s, watchdog 10 s, host_dead 27 s

var t0 = time.Unix(10_000, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestWatchdogRuleWithEffectiveTime(t *testing.T) {
	if _, err := New(p, 10*time.Second); err != nil {
		t.Errorf("the pool's own watchdog figure is refused: %v", err)
	}
	// An iTCO-like watchdog set to 10 s fires after 20 s: 15+20+1 >= 27.
	_, err := New(p, 20*time.Second)
	var re *timing.RuleError
	if !errors.As(err, &re) || re.Rule != "host_dead > renewal_fail + watchdog + margin" {
		t.Fatalf("got %v, want the rule named", err)
	}
	for _, want := range []string{"20s", "15s", "27s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := New(p, 0); err == nil {
		t.Error("a zero watchdog is accepted")
	}
}

func TestNotArmedBeforeTheFirstRenewal(t *testing.T) {
	f, _ := New(p, p.Watchdog)
	for d := time.Duration(0); d < time.Minute; d += time.Second {
		if a := f.Tick(at(d)); a != nil {
			t.Fatalf("at %v without a renewal: %v", d, a)
		}
	}
	f.Renewed(at(time.Minute))
	if a := f.Tick(at(time.Minute + time.Second)); !slices.Equal(a, []Action{Arm, Feed}) {
		t.Fatalf("first tick after a renewal: %v, want arm, feed", a)
	}
	// A renewal already older than renewal_fail arms nothing.
	g, _ := New(p, p.Watchdog)
	g.Renewed(at(0))
	if a := g.Tick(at(p.RenewalFail)); a != nil {
		t.Errorf("stale first renewal armed the watchdog: %v", a)
	}
}

func TestTimeline(t *testing.T) {
	f, _ := New(p, p.Watchdog)
	f.Renewed(at(0))
	f.Tick(at(time.Millisecond))
	// Fed until just before renewal_fail after the last renewal's start.
	if a := f.Tick(at(p.RenewalFail - time.Nanosecond)); !slices.Equal(a, []Action{Feed}) {
		t.Fatalf("just before the deadline: %v", a)
	}
	if a := f.Tick(at(p.RenewalFail)); !slices.Equal(a, []Action{KillGuests}) {
		t.Fatalf("at the deadline: %v, want kill-guests", a)
	}
	if f.Status().State != Fencing {
		t.Fatalf("state %v", f.Status().State)
	}
	// Latched: a late renewal does not bring feeding back.
	f.Renewed(at(p.RenewalFail + time.Second))
	if a := f.Tick(at(p.RenewalFail + 2*time.Second)); a != nil {
		t.Fatalf("fed after fencing began: %v", a)
	}
	if a := f.GuestsKilled(at(p.RenewalFail+3*time.Second), nil); !slices.Equal(a, []Action{Disarm}) {
		t.Fatalf("guests confirmed gone: %v, want disarm", a)
	}
	if st := f.Status(); st.State != Fenced || st.Reason == "" {
		t.Fatalf("status %+v", st)
	}
}

func TestGuestKillUnconfirmedResets(t *testing.T) {
	f, _ := New(p, p.Watchdog)
	f.Renewed(at(0))
	f.Tick(at(time.Second))
	f.Tick(at(p.RenewalFail))
	if a := f.GuestsKilled(at(p.RenewalFail+time.Second), errors.New("xl destroy: timed out")); a != nil {
		t.Fatalf("actions %v after a failed kill", a)
	}
	if st := f.Status(); st.State != Resetting || st.KillError == "" {
		t.Fatalf("status %+v, want resetting with the kill error", st)
	}
}

func TestGuestKillConfirmedTooLate(t *testing.T) {
	f, _ := New(p, p.Watchdog)
	f.Renewed(at(0))
	lastFeed := p.RenewalFail - 500*time.Millisecond
	f.Tick(at(lastFeed))
	f.Tick(at(p.RenewalFail))
	// The watchdog fires at lastFeed + watchdog; a confirmation after
	// that comes from a machine that has been reset.
	if a := f.GuestsKilled(at(lastFeed+p.Watchdog), nil); a != nil || f.Status().State != Resetting {
		t.Fatalf("late confirmation: %v %v", a, f.Status().State)
	}
	g, _ := New(p, p.Watchdog)
	g.Renewed(at(0))
	g.Tick(at(lastFeed))
	g.Tick(at(p.RenewalFail))
	g.Tick(at(lastFeed + p.Watchdog))
	if g.Status().State != Resetting {
		t.Errorf("no confirmation by the watchdog's firing: %v, want resetting", g.Status().State)
	}
}

func TestOrderFencesAtOnce(t *testing.T) {
	f, _ := New(p, p.Watchdog)
	f.Renewed(at(0))
	f.Tick(at(time.Second))
	if a := f.Order(at(2*time.Second), "slot 3 is no longer ours"); !slices.Equal(a, []Action{KillGuests}) {
		t.Fatalf("order: %v", a)
	}
	if a := f.Order(at(3*time.Second), "again"); a != nil {
		t.Errorf("second order: %v", a)
	}
	if f.Status().Reason != "slot 3 is no longer ours" {
		t.Errorf("reason %q", f.Status().Reason)
	}
	// Ordered before ever arming: the kill is confirmed, nothing to disarm.
	g, _ := New(p, p.Watchdog)
	g.Order(at(0), "poison pill")
	if a := g.GuestsKilled(at(time.Second), nil); a != nil || g.Status().State != Fenced {
		t.Errorf("unarmed fence: %v %v", a, g.Status().State)
	}
}

// The whole timeline under storage stalls: a host whose I/O stalls for
// stall at a time, with renewals in between, is fenced exactly when a stall
// is at least renewal_fail, and then is reset or guest-free before any
// observer may declare it dead (host_dead after the start of the last
// successful renewal).
func TestStallsTimeline(t *testing.T) {
	for _, prof := range timing.ProfileNames() {
		pp, _ := timing.Profile(prof)
		for _, frac := range []float64{0.5, 0.8, 0.95, 1.0, 1.05, 1.5, 3} {
			stall := time.Duration(frac * float64(pp.RenewalFail))
			f, err := New(pp, pp.Watchdog)
			if err != nil {
				t.Fatal(err)
			}
			period := f.FeedPeriod()
			now := at(0)
			var lastOK, lastFeed, fencedAt time.Time
			// Ten cycles: renew every interval for a while, then stall.
			for cycle := 0; cycle < 10 && fencedAt.IsZero(); cycle++ {
				for end := now.Add(5 * pp.Interval); now.Before(end) && fencedAt.IsZero(); now = now.Add(period) {
					if now.Sub(lastOK) >= pp.Interval {
						f.Renewed(now)
						lastOK = now
					}
					for _, a := range f.Tick(now) {
						switch a {
						case Feed:
							lastFeed = now
						case KillGuests:
							fencedAt = now
						}
					}
				}
				for end := now.Add(stall); now.Before(end) && fencedAt.IsZero(); now = now.Add(period) {
					for _, a := range f.Tick(now) {
						switch a {
						case Feed:
							lastFeed = now
						case KillGuests:
							fencedAt = now
						}
					}
				}
			}
			// A stall is measured from the last renewal's start; the
			// longest silence is the stall plus the time from the last
			// renewal to the stall's start (< interval).
			if frac < 1-float64(pp.Interval)/float64(pp.RenewalFail) && !fencedAt.IsZero() {
				t.Errorf("%s: stalls of %.2f × renewal_fail fenced the host", prof, frac)
			}
			if frac >= 1 && fencedAt.IsZero() {
				t.Errorf("%s: stalls of %.2f × renewal_fail did not fence", prof, frac)
			}
			if fencedAt.IsZero() {
				continue
			}
			if fencedAt.Sub(lastOK) < pp.RenewalFail {
				t.Errorf("%s: fenced %v after the last renewal, before renewal_fail", prof, fencedAt.Sub(lastOK))
			}
			reset := lastFeed.Add(pp.Watchdog)
			dead := lastOK.Add(pp.HostDead)
			if !reset.Before(dead) {
				t.Errorf("%s: watchdog fires at %v, observers may declare dead at %v", prof, reset.Sub(lastOK), dead.Sub(lastOK))
			}
			if margin := dead.Sub(reset); margin < pp.Margin() {
				t.Errorf("%s: margin between reset and dead %v < %v", prof, margin, pp.Margin())
			}
		}
	}
}

// A watchdog that cannot be armed fences the host, with nothing to disarm.
func TestArmFailed(t *testing.T) {
	f, _ := New(p, p.Watchdog)
	f.Renewed(at(0))
	if a := f.Tick(at(time.Second)); !slices.Equal(a, []Action{Arm, Feed}) {
		t.Fatalf("first tick: %v", a)
	}
	if a := f.ArmFailed(at(time.Second), "no supervisor is reading the FIFO"); !slices.Equal(a, []Action{KillGuests}) {
		t.Fatalf("arm failed: %v, want kill-guests", a)
	}
	if a := f.GuestsKilled(at(2*time.Second), nil); a != nil {
		t.Errorf("disarm asked of a watchdog never armed: %v", a)
	}
	if f.Status().State != Fenced {
		t.Errorf("state %v", f.Status().State)
	}
}
