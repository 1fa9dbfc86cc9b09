package lab_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// noneOn checks, over a few rounds of every host and of the master, that
// no guest runs on host, as obs sees them.
func noneOn(t *testing.T, obs *lab.Host, host string, rounds int) {
	t.Helper()
	for end := time.Now().Add(time.Duration(rounds) * interval); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		gs, err := obs.Guests(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for n, g := range gs {
			if g.Host == host {
				t.Fatalf("%s is %s on %s, which is in maintenance: %+v", n, g.State, host, g)
			}
		}
	}
}

// hbfence host maintenance enter on the master: the master role moves to
// another host, the host is emptied (the process driver cannot migrate:
// each guest is stopped and started elsewhere, one writer per disk at a
// time), and it is given no guest, also after a restart of its daemon,
// until hbfence host maintenance exit; status --check warns meanwhile.
func TestMaintenance(t *testing.T) {
	guests := []lab.GuestSpec{{Name: "m1", HA: true}, {Name: "m2", HA: true}, {Name: "m3", HA: true}}
	p, hosts, m := guestPool(t, guests...)
	gs, err := m.Guests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	victim := m
	var moved []string
	for _, g := range guests {
		if gs[g.Name].Host == victim.Name {
			moved = append(moved, g.Name)
		}
	}
	if len(moved) == 0 {
		t.Fatalf("the master %s runs no guest: %+v", victim.Name, gs)
	}
	start := time.Now()
	out, err := p.Run(context.Background(), "host", "maintenance", "enter", victim.Name, "--wait", "40s", "--socket", victim.Socket)
	if err != nil {
		t.Fatalf("hbfence host maintenance enter %s: %v\n%s", victim.Name, err, out)
	}
	t.Logf("hbfence host maintenance enter %s (%v):\n%s", victim.Name, time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "the master role moved from "+victim.Name) || !strings.Contains(out, "runs none of the pool's guests") {
		t.Errorf("the output does not say the master role moved and the host is empty")
	}
	var obs *lab.Host
	for _, h := range hosts {
		if h != victim {
			obs = h
			break
		}
	}
	ms, err := obs.Master(context.Background())
	if err != nil || ms.Name == victim.Name || ms.Name == "" {
		t.Fatalf("the master after %s entered maintenance: %+v (%v)", victim.Name, ms, err)
	}
	gs = waitGuests(t, obs, 10*time.Second, "every moved guest running elsewhere", func(gs map[string]agent.GuestStatus) bool {
		for _, n := range moved {
			if gs[n].State != restart.Running || gs[n].Host == victim.Name {
				return false
			}
		}
		return true
	})
	// A start, by hand on it, is refused; without --on it goes elsewhere.
	if out, err := p.Run(context.Background(), "guest", "stop", moved[0], "--socket", obs.Socket); err != nil {
		t.Fatalf("guest stop: %v\n%s", err, out)
	}
	waitGuests(t, obs, 10*time.Second, moved[0]+" stopped", func(gs map[string]agent.GuestStatus) bool { return gs[moved[0]].State == restart.Stopped })
	out, err = p.Run(context.Background(), "guest", "start", moved[0], "--on", victim.Name, "--socket", obs.Socket)
	if err == nil || !strings.Contains(out, victim.Name+" is in maintenance") {
		t.Errorf("guest start --on a host in maintenance: %v\n%s", err, out)
	}
	if out, err := p.Run(context.Background(), "guest", "start", moved[0], "--socket", obs.Socket); err != nil {
		t.Fatalf("guest start: %v\n%s", err, out)
	}
	waitGuests(t, obs, 10*time.Second, moved[0]+" running", func(gs map[string]agent.GuestStatus) bool { return gs[moved[0]].State == restart.Running })
	noneOn(t, obs, victim.Name, 4)

	// status --check warns; pool show lists it.
	out, err = p.Run(context.Background(), "status", "--check", "--socket", obs.Socket)
	if !strings.Contains(out, "WARNING") || !strings.Contains(out, "host "+victim.Name+" in maintenance") {
		t.Errorf("status --check with %s in maintenance: %v\n%s", victim.Name, err, out)
	}
	if out, err := p.Run(context.Background(), "status", "--socket", obs.Socket); err != nil || !strings.Contains(out, "WARNING: host "+victim.Name+" in maintenance since ") {
		t.Errorf("status with %s in maintenance: %v\n%s", victim.Name, err, out)
	}
	poolShows := func(h *lab.Host) bool {
		out, err := p.Run(context.Background(), "pool", "show", "--json", "--socket", h.Socket)
		var v daemon.PoolView
		if err != nil || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("pool show --json: %v\n%s", err, out)
		}
		_, in := v.Maintenance[victim.Name]
		return in
	}
	if !poolShows(obs) {
		t.Errorf("pool show does not list %s in maintenance", victim.Name)
	}

	// Its daemon restarts (systemctl restart: a clean stop, then a
	// start; the lab's RestartDaemon needs a guest to keep the machine's
	// process group, and this host runs none): a new generation, still
	// in maintenance.
	before, err := victim.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := victim.Stop(context.Background()); err != nil {
		t.Fatalf("%s did not stop cleanly: %v", victim.Name, err)
	}
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	err = lab.WaitUntil(context.Background(), 15*time.Second, 50*time.Millisecond, victim.Name+" back as a new generation", func() (bool, error) {
		st, err := victim.Status(context.Background())
		return err == nil && st.Joined && st.Generation > before.Generation, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := p.Run(context.Background(), "guest", "stop", moved[0], "--socket", obs.Socket); err != nil {
		t.Fatalf("guest stop: %v\n%s", err, out)
	}
	waitGuests(t, obs, 10*time.Second, moved[0]+" stopped", func(gs map[string]agent.GuestStatus) bool { return gs[moved[0]].State == restart.Stopped })
	if out, err := p.Run(context.Background(), "guest", "start", moved[0], "--socket", obs.Socket); err != nil {
		t.Fatalf("guest start: %v\n%s", err, out)
	}
	waitGuests(t, obs, 10*time.Second, moved[0]+" running", func(gs map[string]agent.GuestStatus) bool { return gs[moved[0]].State == restart.Running })
	noneOn(t, obs, victim.Name, 4)
	if !poolShows(victim) {
		t.Errorf("after its daemon restarted, %s's pool show does not list it in maintenance", victim.Name)
	}

	// Out of maintenance (asked on the host itself, forwarded to the
	// master): it is available again; a start --on it runs there.
	out, err = p.Run(context.Background(), "host", "maintenance", "exit", victim.Name, "--socket", victim.Socket)
	if err != nil || !strings.Contains(out, "out of maintenance") {
		t.Fatalf("hbfence host maintenance exit: %v\n%s", err, out)
	}
	if out, err := p.Run(context.Background(), "guest", "stop", moved[0], "--socket", obs.Socket); err != nil {
		t.Fatalf("guest stop: %v\n%s", err, out)
	}
	waitGuests(t, obs, 10*time.Second, moved[0]+" stopped", func(gs map[string]agent.GuestStatus) bool { return gs[moved[0]].State == restart.Stopped })
	if out, err := p.Run(context.Background(), "guest", "start", moved[0], "--on", victim.Name, "--socket", obs.Socket); err != nil {
		t.Fatalf("guest start --on %s after the maintenance: %v\n%s", victim.Name, err, out)
	}
	waitGuests(t, obs, 10*time.Second, moved[0]+" running on "+victim.Name, func(gs map[string]agent.GuestStatus) bool {
		return gs[moved[0]].State == restart.Running && gs[moved[0]].Host == victim.Name
	})
	if out, _ := p.Run(context.Background(), "status", "--check", "--socket", obs.Socket); strings.Contains(out, "in maintenance") {
		t.Errorf("status --check after the maintenance: %s", out)
	}
	// A while longer, so that a stray copy would have written over a
	// moved one before the disks are read.
	time.Sleep(4 * interval)
	checkDisks(t, p, "m1", "m2", "m3")
}

// Moving a guest by hand with the process driver, which cannot migrate:
// guest migrate without --restart is refused and says so, with --restart
// (asked on a host that is not the master) it moves; a stopped guest
// starts on the host asked for; one writer per disk at a time.
func TestMoveByHand(t *testing.T) {
	guests := []lab.GuestSpec{{Name: "h1", HA: true}, {Name: "h2", HA: false}}
	p, hosts, m := guestPool(t, guests...)
	var other *lab.Host
	for _, h := range hosts {
		if h != m {
			other = h
			break
		}
	}
	gs, err := m.Guests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	from := gs["h1"].Host
	var to string
	for _, h := range hosts {
		if h.Name != from {
			to = h.Name
			break
		}
	}
	out, err := p.Run(context.Background(), "guest", "migrate", "h1", to, "--socket", other.Socket)
	if err == nil || !strings.Contains(out, "the process driver cannot live-migrate") || !strings.Contains(out, "--restart") {
		t.Fatalf("guest migrate with the process driver: %v\n%s", err, out)
	}
	out, err = p.Run(context.Background(), "guest", "migrate", "h1", "nosuch", "--restart", "--socket", other.Socket)
	if err == nil || !strings.Contains(out, `no host "nosuch"`) {
		t.Errorf("guest migrate to an unknown host: %v\n%s", err, out)
	}
	start := time.Now()
	if out, err := p.Run(context.Background(), "guest", "migrate", "h1", to, "--restart", "--socket", other.Socket); err != nil {
		t.Fatalf("guest migrate --restart: %v\n%s", err, out)
	}
	waitGuests(t, m, 15*time.Second, "h1 running on "+to, func(gs map[string]agent.GuestStatus) bool {
		return gs["h1"].State == restart.Running && gs["h1"].Host == to
	})
	t.Logf("h1 moved from %s to %s by restart in %v", from, to, time.Since(start).Round(time.Millisecond))

	// A stopped guest (no HA) started on a chosen host.
	if out, err := p.Run(context.Background(), "guest", "stop", "h2", "--socket", m.Socket); err != nil {
		t.Fatalf("guest stop: %v\n%s", err, out)
	}
	gs = waitGuests(t, m, 10*time.Second, "h2 stopped", func(gs map[string]agent.GuestStatus) bool { return gs["h2"].State == restart.Stopped })
	on := ""
	for _, h := range hosts {
		if h.Name != gs["h2"].Host && h.Name != from {
			on = h.Name
		}
	}
	out, err = p.Run(context.Background(), "guest", "start", "h1", "--on", on, "--socket", m.Socket)
	if err == nil || !strings.Contains(out, "start --on is for a stopped guest") {
		t.Errorf("guest start --on of a running guest: %v\n%s", err, out)
	}
	if out, err := p.Run(context.Background(), "guest", "start", "h2", "--on", on, "--socket", m.Socket); err != nil {
		t.Fatalf("guest start --on %s: %v\n%s", on, err, out)
	}
	waitGuests(t, m, 10*time.Second, "h2 running on "+on, func(gs map[string]agent.GuestStatus) bool {
		return gs["h2"].State == restart.Running && gs["h2"].Host == on
	})
	waitWriters(t, p, map[string]int{"h1": 2, "h2": 2})
	time.Sleep(4 * interval)
	all := checkDisks(t, p, "h1", "h2")
	if w := all["h1"]; len(w) != 2 || w[0].Host != from || w[1].Host != to {
		t.Errorf("h1's disk: %+v; want %s then %s", w, from, to)
	}
}
