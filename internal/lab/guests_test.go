package lab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// guestPool is three hosts under the watchdog stand-in with the process
// driver, a master, and guests added and started through it; it waits
// until every guest runs.
func guestPool(t *testing.T, guests ...lab.GuestSpec) (*lab.Pool, []*lab.Host, *lab.Host) {
	t.Helper()
	p := newPool(t, lab.Options{Watchdog: true, Guests: true})
	hosts := startHosts(t, p, "v1", "v2", "v3")
	waitAllArmed(t, hosts...)
	m, _ := waitActing(t, hosts, 0, 2*hostDead)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AddGuests(context.Background(), m, self, guests...); err != nil {
		t.Fatal(err)
	}
	waitGuests(t, m, 10*time.Second, "every guest running", func(gs map[string]agent.GuestStatus) bool {
		for _, g := range guests {
			if gs[g.Name].State != restart.Running {
				return false
			}
		}
		return true
	})
	return p, hosts, m
}

func waitGuests(t *testing.T, h *lab.Host, timeout time.Duration, what string, cond func(map[string]agent.GuestStatus) bool) map[string]agent.GuestStatus {
	t.Helper()
	gs, err := h.WaitGuests(context.Background(), timeout, what, cond)
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

func hostByName(hosts []*lab.Host, name string) *lab.Host {
	for _, h := range hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// waitWriters waits until each named guest's disk shows at least the
// given number of writers (a restarted copy has written its first record).
func waitWriters(t *testing.T, p *lab.Pool, want map[string]int) {
	t.Helper()
	err := lab.WaitUntil(context.Background(), 10*time.Second, 50*time.Millisecond, fmt.Sprintf("writers %v on the disks", want), func() (bool, error) {
		for n, k := range want {
			w, err := lab.ReadDisk(p.Disk(n))
			if err != nil || len(w) < k {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkDisks(t *testing.T, p *lab.Pool, names ...string) map[string][]lab.Writer {
	t.Helper()
	bad, all, err := p.CheckDisks(names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
	return all
}

// A host killed with SIGKILL: its HA guests run again on other hosts once
// it is dead (a manual one only on a preferred host), its guest without HA
// does not, and no disk ever had two writers.
func TestGuestsFailOverOnHostKill(t *testing.T) {
	guests := []lab.GuestSpec{
		{Name: "a1", HA: true, Placement: "manual", Preferred: []string{"v2", "v3"}},
		{Name: "a2", HA: true}, {Name: "a3", HA: true}, {Name: "a4", HA: true},
		{Name: "n1", HA: false, Placement: "manual", Preferred: []string{"v2"}},
	}
	p, hosts, _ := guestPool(t, guests...)
	v2 := hostByName(hosts, "v2")
	obs := hostByName(hosts, "v1")
	gs, err := obs.Guests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var lost []string
	for _, g := range guests {
		if gs[g.Name].Host == "v2" && g.HA {
			lost = append(lost, g.Name)
		}
	}
	if gs["n1"].Host != "v2" {
		t.Fatalf("n1 (manual, preferred v2) runs on %q", gs["n1"].Host)
	}
	killed := time.Now()
	if err := v2.Kill(); err != nil {
		t.Fatal(err)
	}
	gs = waitGuests(t, obs, 3*hostDead, "v2's HA guests running elsewhere", func(gs map[string]agent.GuestStatus) bool {
		for _, n := range lost {
			if gs[n].State != restart.Running || gs[n].Host == "v2" {
				return false
			}
		}
		return gs["n1"].State == restart.Stopped
	})
	took := time.Since(killed)
	if took < hostDead-interval {
		t.Errorf("guests restarted %v after the kill, before v2 could be known fenced", took)
	}
	if gs["a1"].Host != "v3" {
		t.Errorf("a1 (manual, preferred v2, v3) runs on %q", gs["a1"].Host)
	}
	if !strings.Contains(gs["n1"].Message, "HA is disabled on the guest") {
		t.Errorf("the guest without HA: %+v", gs["n1"])
	}
	t.Logf("v2 killed: its HA guests %v ran again elsewhere %v later (%.2f × host_dead)", lost, took.Round(time.Millisecond), took.Seconds()/hostDead.Seconds())
	want := map[string]int{}
	for _, n := range lost {
		want[n] = 2
	}
	waitWriters(t, p, want)
	all := checkDisks(t, p, "a1", "a2", "a3", "a4", "n1")
	for _, n := range lost {
		if w := all[n]; len(w) != 2 || w[0].Host != "v2" || w[1].Host == "v2" {
			t.Errorf("%s's disk shows writers %+v, want v2 then another host", n, w)
		}
	}
	if w := all["n1"]; len(w) != 1 {
		t.Errorf("n1's disk shows writers %+v, want only v2's", w)
	}
}

// The daemon of a host restarts (SIGKILL of the daemon alone): its guests
// keep running, the new incarnation adopts them, and nothing is started
// anywhere else.
func TestDaemonRestartAdoptsGuests(t *testing.T) {
	guests := []lab.GuestSpec{{Name: "k1", HA: true, Placement: "manual", Preferred: []string{"v2"}}, {Name: "k2", HA: true}}
	p, hosts, _ := guestPool(t, guests...)
	v2 := hostByName(hosts, "v2")
	before, err := v2.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := v2.RestartDaemon(); err != nil {
		t.Fatal(err)
	}
	err = lab.WaitUntil(context.Background(), 10*time.Second, 50*time.Millisecond, "v2 back as a new generation", func() (bool, error) {
		st, err := v2.Status(context.Background())
		return err == nil && st.Joined && st.Generation == before.Generation+1, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Several rounds of every host, and a master's: k1 stays on v2
	// throughout, as v1 sees it.
	for end := time.Now().Add(8 * interval); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		gs, err := hostByName(hosts, "v1").Guests(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if gs["k1"].State != restart.Running || gs["k1"].Host != "v2" {
			t.Fatalf("k1 after v2's daemon restarted: %+v; want still running on v2", gs["k1"])
		}
	}
	if resets := v2.Resets(); len(resets) != 0 {
		t.Fatalf("the restart reset the machine: %+v", resets)
	}
	all := checkDisks(t, p, "k1", "k2")
	if w := all["k1"]; len(w) != 1 || w[0].Host != "v2" {
		t.Errorf("k1's disk shows writers %+v: want the one copy on v2, never restarted", w)
	}
	// The new incarnation itself counts k1 as its own.
	if gs, err := v2.Guests(context.Background()); err != nil || gs["k1"].State != restart.Running || gs["k1"].Host != "v2" {
		t.Errorf("k1 as v2's new incarnation sees it: %+v (%v)", gs["k1"], err)
	}
}

// A host stopped the way systemd stops it: its guests are stopped,
// reported, and run again elsewhere at once, long before host_dead; a
// manual guest whose only preferred host left waits pending, and starts
// when that host returns.
func TestPlannedStopAndPending(t *testing.T) {
	guests := []lab.GuestSpec{
		{Name: "s1", HA: true, Placement: "manual", Preferred: []string{"v3", "v1"}},
		{Name: "s2", HA: true, Placement: "manual", Preferred: []string{"v3"}},
	}
	p, hosts, _ := guestPool(t, guests...)
	v3 := hostByName(hosts, "v3")
	obs := hostByName(hosts, "v1")
	stopped := time.Now()
	if err := v3.Stop(context.Background()); err != nil {
		t.Fatalf("v3 did not stop cleanly: %v", err)
	}
	gs := waitGuests(t, obs, hostDead, "s1 on v1, s2 pending", func(gs map[string]agent.GuestStatus) bool {
		return gs["s1"].State == restart.Running && gs["s1"].Host == "v1" && gs["s2"].State == restart.Pending
	})
	took := time.Since(stopped)
	if took > hostDead/2 {
		t.Errorf("the guests of a host stopped cleanly moved after %v: not \"at once\"", took)
	}
	t.Logf("v3 stopped: s1 running on v1 %v later; s2 %s (%s)", took.Round(time.Millisecond), gs["s2"].State, gs["s2"].Message)
	if err := v3.Start(); err != nil {
		t.Fatal(err)
	}
	waitGuests(t, obs, 3*hostDead, "s2 running on v3 again", func(gs map[string]agent.GuestStatus) bool {
		return gs["s2"].State == restart.Running && gs["s2"].Host == "v3"
	})
	waitWriters(t, p, map[string]int{"s2": 2})
	all := checkDisks(t, p, "s1", "s2")
	if w := all["s2"]; len(w) != 2 || !slices.ContainsFunc(w, func(w lab.Writer) bool { return w.Host == "v3" }) {
		t.Errorf("s2's disk: %+v", w)
	}
}

// hbfence host evacuate empties a host before a planned shutdown: a guest
// to migrate whose driver cannot (the process driver) is stopped and
// restarted elsewhere like the others, and the command shows each guest's
// progress until the host runs none.
func TestEvacuate(t *testing.T) {
	guests := []lab.GuestSpec{{Name: "e1", HA: true}, {Name: "e2", HA: true}, {Name: "e3", HA: false}}
	p, hosts, m := guestPool(t, guests...)
	gs, err := m.Guests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	victim := gs["e1"].Host
	var moved []string
	for _, g := range guests {
		if gs[g.Name].Host == victim {
			moved = append(moved, g.Name)
		}
	}
	start := time.Now()
	out, err := p.Run(context.Background(), "host", "evacuate", victim, "--migrate", "e1", "--wait", "30s", "--socket", m.Socket)
	if err != nil {
		t.Fatalf("hbfence host evacuate %s: %v\n%s", victim, err, out)
	}
	t.Logf("hbfence host evacuate %s (%v):\n%s", victim, time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "runs none of the pool's guests") {
		t.Errorf("the progress does not end with the host empty")
	}
	if log := hostByName(hosts, victim).Log(); !strings.Contains(log, "guest migration failed") || !strings.Contains(log, "cannot migrate") {
		t.Errorf("%s's log does not show e1's migration failing (the process driver cannot migrate)", victim)
	}
	gs = waitGuests(t, m, 10*time.Second, "every moved guest running elsewhere", func(gs map[string]agent.GuestStatus) bool {
		for _, n := range moved {
			if gs[n].State != restart.Running || gs[n].Host == victim {
				return false
			}
		}
		return true
	})
	if h := hostByName(hosts, victim); h.Exited() {
		t.Errorf("%s's daemon exited: an evacuation only empties it", victim)
	}
	// A while longer, so that a stray copy left on the victim would have
	// written over the moved one before the disks are read.
	time.Sleep(4 * interval)
	checkDisks(t, p, "e1", "e2", "e3")
}

// An evacuation that no host can take (every other host lacks the vm role)
// returns as soon as the guests settle, with each one's outcome, instead of
// waiting out --wait (issue 11); --json gives the same outcome, and
// --cancel ends the evacuation.
func TestEvacuateReturnsWhenNothingCanMove(t *testing.T) {
	p, hosts, m := guestPool(t, lab.GuestSpec{Name: "x1", HA: true}, lab.GuestSpec{Name: "x2", HA: true})
	ctx := context.Background()
	gs, err := m.Guests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := gs["x1"].Host
	for _, h := range hosts {
		if h.Name != victim {
			if out, err := p.Run(ctx, "pool", "role", h.Name, "utility", "--socket", m.Socket); err != nil {
				t.Fatalf("pool role %s utility: %v\n%s", h.Name, err, out)
			}
		}
	}
	start := time.Now()
	out, err := p.Run(ctx, "host", "evacuate", victim, "--json", "--wait", "5m", "--socket", m.Socket)
	took := time.Since(start)
	var res struct {
		Host     string `json:"host"`
		NotMoved int    `json:"not_moved"`
		Guests   []struct {
			Name  string `json:"name"`
			State string `json:"state"`
			Moved bool   `json:"moved"`
		} `json:"guests"`
	}
	if jerr := json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &res); jerr != nil {
		t.Fatalf("host evacuate --json: %v: %v\n%s", err, jerr, out)
	}
	if err == nil || res.NotMoved == 0 || res.Host != victim {
		t.Fatalf("host evacuate with nowhere to go: %v, %+v; want an error and the guests not moved", err, res)
	}
	for _, g := range res.Guests {
		if g.Moved || g.State != string(restart.Pending) {
			t.Errorf("guest %s: %+v; want pending, not moved", g.Name, g)
		}
	}
	if took > time.Minute {
		t.Errorf("host evacuate returned after %v: it waited instead of returning once nothing could move", took)
	}
	t.Logf("host evacuate %s with nowhere to go returned after %v: %s", victim, took.Round(time.Millisecond), strings.TrimSpace(out))
	if out, err := p.Run(ctx, "host", "evacuate", victim, "--cancel", "--socket", m.Socket); err != nil || !strings.Contains(out, "cancelled") {
		t.Fatalf("host evacuate --cancel: %v\n%s", err, out)
	}
	if out, err := p.Run(ctx, "host", "evacuate", victim, "--cancel", "--socket", m.Socket); err == nil || !strings.Contains(out, "not being evacuated") {
		t.Fatalf("a second --cancel: %v\n%s", err, out)
	}
	// Cancelled: the victim may run guests again.
	waitGuests(t, m, 20*time.Second, "x1 and x2 running again once the evacuation is cancelled", func(gs map[string]agent.GuestStatus) bool {
		return gs["x1"].State == restart.Running && gs["x2"].State == restart.Running
	})
	checkDisks(t, p, "x1", "x2")
}
