package restart

import (
	"strings"
	"testing"
)

// started: a guest the operator started (a new guest runs once started).
func started(uuid string) Guest { return with2(haGuest(uuid), func(g *Guest) { g.StartSeq = 1 }) }

func TestMaintenance(t *testing.T) {
	pool := Pool{HA: true}
	a := id("a")
	// a is in maintenance: its guest is migrated off, a new guest is
	// never placed there even though it is the least loaded.
	in := Input{Epoch: 1, Pool: pool, Maintenance: []string{"a"},
		Guests: []Guest{haGuest("g1"), haGuest("g2"), haGuest("g3")},
		Hosts:  []Host{host("a", 1, "g1"), host("b", 1, "g3"), host("c", 1, "g2")}}
	p, _ := Reconcile(in)
	want(t, p, "g1", a, Migrating)
	if tg := p.Guests["g1"].Target; tg.Name == "a" || tg.IsZero() {
		t.Errorf("g1 migrates to %v", tg)
	}
	// The driver cannot migrate: the failure stops it on a, the target
	// is asked, and it is started elsewhere, never on a.
	mig := p.Guests["g1"]
	in.Prev = p
	in.Hosts[0] = with(host("a", 1, "g1"), func(h *Host) {
		h.Report.Seq = 2
		h.Report.Failed = map[string]Failure{"g1": {Attempt: mig.Attempt, Message: "this driver cannot migrate"}}
	})
	p2, _ := Reconcile(in)
	want(t, p2, "g1", a, Stopping)
	if !p2.Guests["g1"].Restart {
		t.Fatalf("g1 after a failed migration: %+v", p2.Guests["g1"])
	}
	// Stopped (two reports without it), the target answers.
	in.Prev = p2
	in.Hosts[0] = with(host("a", 1), func(h *Host) { h.Report.Seq = 3; h.Report.Failed = in.Hosts[0].Report.Failed })
	p3, _ := Reconcile(in)
	in.Prev = p3
	in.Hosts[0] = with(host("a", 1), func(h *Host) { h.Report.Seq = 4; h.Report.Failed = in.Hosts[0].Report.Failed })
	p4, _ := Reconcile(in)
	tgt := mig.Target.Name
	for i, h := range in.Hosts {
		if h.ID.Name == tgt {
			in.Hosts[i] = with(h, func(h *Host) { h.Report.Absent = map[string]AttemptID{"g1": mig.Attempt} })
		}
	}
	in.Prev = p4
	p5, _ := Reconcile(in)
	if g1 := p5.Guests["g1"]; g1.State != Starting || g1.Host == a {
		t.Fatalf("g1 after it stopped for the maintenance: %+v (plans %+v, %+v)", g1, p3.Guests["g1"], p4.Guests["g1"])
	}
	// A later incarnation of a is still in maintenance (by name): given
	// nothing, its adopted guests moved off.
	in2 := Input{Epoch: 2, Pool: pool, Maintenance: []string{"a"}, Guests: []Guest{started("g4"), haGuest("g5")},
		Hosts: []Host{with(host("a", 2, "g5"), func(h *Host) { h.ID.Generation = 2; h.Report.Host.Generation = 2 }), host("b", 2, "g3")}}
	q, _ := Reconcile(in2)
	want(t, q, "g4", id("b"), Starting)
	if g5 := q.Guests["g5"]; g5.State != Migrating || g5.Target != id("b") {
		t.Errorf("g5 on a/2 in maintenance: %+v", g5)
	}
	// Out of maintenance: a is given guests again.
	in2.Maintenance = nil
	in2.Guests = append(in2.Guests, started("g6"))
	q2, _ := Reconcile(in2)
	want(t, q2, "g5", HostID{"a", 2}, Running)
	if q2.Guests["g4"].Host.Name != "a" && q2.Guests["g6"].Host.Name != "a" {
		t.Errorf("a out of maintenance got nothing: %+v", q2.Guests)
	}
	// Every host in maintenance: the guest waits, a host in maintenance
	// gets none.
	q3, _ := Reconcile(Input{Epoch: 1, Pool: pool, Maintenance: []string{"a", "b"}, Guests: []Guest{started("g7")},
		Hosts: []Host{host("a", 1), host("b", 1)}})
	if g7 := q3.Guests["g7"]; g7.State != Pending || !strings.Contains(g7.Message, "no available host") {
		t.Errorf("g7: %+v", g7)
	}
}

func TestManualMigrate(t *testing.T) {
	pool := Pool{HA: true}
	a, b, c := id("a"), id("b"), id("c")
	g := with2(haGuest("g1"), func(g *Guest) { g.MoveSeq, g.MoveTo = 1, "c" })
	in := Input{Epoch: 1, Pool: pool, Guests: []Guest{g}, Hosts: []Host{host("a", 1, "g1"), host("b", 1), host("c", 1)},
		Prev: planOf(1, map[string]Assignment{"g1": {Host: a, State: Running, Attempt: AttemptID{1, 1}}})}
	p, _ := Reconcile(in)
	want(t, p, "g1", a, Migrating)
	if e := p.Guests["g1"]; e.Target != c || e.MoveSeq != 1 || e.Attempt != (AttemptID{1, 2}) {
		t.Fatalf("g1: %+v; want migrating to c with a new order", e)
	}
	acts := Decide(HostInput{Self: a, Epoch: 1, Plan: p, Running: []string{"g1"}, Attempted: map[string]AttemptID{}})
	if len(acts) != 1 || acts[0] != (Action{Kind: Migrate, Guest: "g1", Attempt: AttemptID{1, 2}, Target: "c"}) {
		t.Fatalf("a's actions: %+v", acts)
	}
	// Under way: both list it, no alarm, same order; then on c only.
	in.Prev = p
	in.Hosts = []Host{with(host("a", 1, "g1"), func(h *Host) { h.Report.Seq = 2 }), host("b", 1), host("c", 1, "g1")}
	p2, notes := Reconcile(in)
	for _, n := range notes {
		if n.Alarm {
			t.Fatalf("alarm during the move: %s", n.Text)
		}
	}
	if e := p2.Guests["g1"]; e.State != Migrating || e.Attempt != (AttemptID{1, 2}) {
		t.Fatalf("g1 under way: %+v", e)
	}
	in.Prev = p2
	in.Hosts = []Host{with(host("a", 1), func(h *Host) { h.Report.Seq = 3 }), host("b", 1), host("c", 1, "g1")}
	p3, _ := Reconcile(in)
	want(t, p3, "g1", c, Running)
	// Acted on once: the next plan moves nothing.
	in.Prev = p3
	p4, _ := Reconcile(in)
	want(t, p4, "g1", c, Running)

	// Refusals: the entry stays where it runs and says why.
	for _, tc := range []struct {
		name  string
		to    string
		hosts []Host
		maint []string
		g     func(*Guest)
		why   string
	}{
		{"in maintenance", "b", nil, []string{"b"}, nil, "in maintenance"},
		{"no vm role", "b", []Host{host("a", 1, "g1"), with(host("b", 1), func(h *Host) { h.Roles = []Role{RoleUtility} })}, nil, nil, "lacks the vm role"},
		{"not preferred", "b", nil, nil, func(g *Guest) { g.Placement, g.Preferred = Manual, []string{"a", "c"} }, "not among its preferred hosts"},
		{"unknown", "z", nil, nil, nil, "not in the pool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := with2(haGuest("g1"), func(g *Guest) { g.MoveSeq, g.MoveTo = 1, tc.to })
			if tc.g != nil {
				tc.g(&g)
			}
			hosts := tc.hosts
			if hosts == nil {
				hosts = []Host{host("a", 1, "g1"), host("b", 1), host("c", 1)}
			}
			p, _ := Reconcile(Input{Epoch: 1, Pool: pool, Guests: []Guest{g}, Hosts: hosts, Maintenance: tc.maint})
			want(t, p, "g1", a, Running)
			if e := p.Guests["g1"]; e.MoveSeq != 1 || !strings.Contains(e.Message, tc.why) {
				t.Errorf("g1: %+v; want a refusal saying %q", e, tc.why)
			}
		})
	}
	_ = b
}

func TestManualMigrateByRestart(t *testing.T) {
	pool := Pool{HA: false} // no HA: the operator's move is carried out all the same
	a, c := id("a"), id("c")
	g := with2(haGuest("g1"), func(g *Guest) { g.HA, g.MoveSeq, g.MoveTo, g.MoveRestart = false, 1, "c", true })
	in := Input{Epoch: 1, Pool: pool, Guests: []Guest{g}, Hosts: []Host{host("a", 1, "g1"), host("b", 1), host("c", 1)}}
	p, _ := Reconcile(in)
	want(t, p, "g1", a, Stopping)
	if e := p.Guests["g1"]; !e.Restart || e.On != "c" {
		t.Fatalf("g1: %+v", e)
	}
	// Two reports of a without it, then started on c (not b, the least
	// loaded would be b by name).
	in.Prev = p
	in.Hosts[0] = with(host("a", 1), func(h *Host) { h.Report.Seq = 2 })
	p2, _ := Reconcile(in)
	want(t, p2, "g1", a, Stopping)
	in.Prev = p2
	in.Hosts[0] = with(host("a", 1), func(h *Host) { h.Report.Seq = 3 })
	p3, _ := Reconcile(in)
	want(t, p3, "g1", c, Starting)
	if e := p3.Guests["g1"]; e.On != "" {
		t.Errorf("On kept once placed: %+v", e)
	}

	// A failed live migration falls back to a stop and a start on the
	// target, after the target was asked.
	g2 := with2(haGuest("g2"), func(g *Guest) { g.MoveSeq, g.MoveTo = 1, "c" })
	mig := Assignment{Host: a, State: Migrating, Target: c, Attempt: AttemptID{1, 2}, MoveSeq: 1}
	in = Input{Epoch: 1, Pool: Pool{HA: true}, Guests: []Guest{g2},
		Hosts: []Host{with(host("a", 1, "g2"), func(h *Host) {
			h.Report.Failed = map[string]Failure{"g2": {Attempt: AttemptID{1, 2}, Message: "this driver cannot migrate"}}
		}), host("b", 1), host("c", 1)},
		Prev: planOf(1, map[string]Assignment{"g2": mig})}
	q, _ := Reconcile(in)
	want(t, q, "g2", a, Stopping)
	if e := q.Guests["g2"]; !e.Restart || e.On != "c" || e.Target != c {
		t.Fatalf("g2 after its failed migration: %+v", e)
	}
	failed := in.Hosts[0].Report.Failed
	for seq := uint64(2); seq <= 4; seq++ {
		in.Prev = q
		in.Hosts[0] = with(host("a", 1), func(h *Host) { h.Report.Seq = seq; h.Report.Failed = failed })
		q, _ = Reconcile(in)
		if q.Guests["g2"].State == Starting {
			t.Fatalf("g2 started before c answered: %+v", q.Guests["g2"])
		}
	}
	in.Prev = q
	in.Hosts[2] = with(host("c", 1), func(h *Host) { h.Report.Absent = map[string]AttemptID{"g2": {1, 2}} })
	q, _ = Reconcile(in)
	want(t, q, "g2", c, Starting)
}

func TestStartOn(t *testing.T) {
	pool := Pool{HA: true}
	g := with2(haGuest("g1"), func(g *Guest) { g.StartSeq, g.StartOn = 1, "c" })
	in := Input{Epoch: 1, Pool: pool, Guests: []Guest{g}, Hosts: []Host{host("a", 1), host("b", 1), host("c", 1, "x")}}
	p, _ := Reconcile(in)
	want(t, p, "g1", id("c"), Starting) // not a, the least loaded
	// c not available (in maintenance): placed where HA would, and said.
	in.Maintenance = []string{"c"}
	p, _ = Reconcile(in)
	if e := p.Guests["g1"]; e.State != Starting || e.Host.Name == "c" || !strings.Contains(e.Message, "c, which the operator asked for") {
		t.Errorf("g1: %+v", e)
	}
	// A manual guest: a host outside its preferred list is not taken.
	in.Maintenance = nil
	in.Guests[0] = with2(g, func(g *Guest) { g.Placement, g.Preferred = Manual, []string{"b"} })
	p, _ = Reconcile(in)
	want(t, p, "g1", id("b"), Starting)
}
