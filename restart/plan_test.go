package restart

import (
	"strings"
	"testing"

	"github.com/hbfence/hbfence/heartbeat/liveness"
)

// host builds a live, caught-up vm host of generation 1 on epoch e.
func host(name string, e uint64, running ...string) Host {
	id := HostID{Name: name, Generation: 1}
	return Host{ID: id, State: liveness.Live, Roles: []Role{RoleVM},
		Report: &Report{Host: id, Seq: 1, Epoch: e, Running: running}}
}

func with(h Host, f func(*Host)) Host { f(&h); return h }

func haGuest(uuid string) Guest { return Guest{UUID: uuid, Name: uuid, HA: true, Placement: Auto} }

func planOf(e uint64, entries map[string]Assignment) Plan {
	return Plan{Epoch: e, Seq: 1, Guests: entries}
}

func id(name string) HostID { return HostID{Name: name, Generation: 1} }

func TestReconcile(t *testing.T) {
	pool := Pool{HA: true, MaxAttempts: 2}
	cases := []struct {
		name  string
		in    Input
		check func(t *testing.T, p Plan, notes []Note)
	}{
		{
			name: "a guest a host reports running is adopted there",
			in:   Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")}, Hosts: []Host{host("a", 1, "g1"), host("b", 1)}},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", id("a"), Running)
			},
		},
		{
			name: "the HA guests of a dead host go to the least loaded available hosts",
			in: Input{Epoch: 2, Pool: pool, Guests: []Guest{haGuest("g1"), haGuest("g2"), haGuest("g3")},
				Hosts: []Host{
					with(host("a", 2), func(h *Host) { h.State = liveness.Dead }),
					host("b", 2, "g3"), host("c", 2),
				},
				Prev: planOf(2, map[string]Assignment{
					"g1": {Host: id("a"), State: Running}, "g2": {Host: id("a"), State: Running}, "g3": {Host: id("b"), State: Running}})},
			check: func(t *testing.T, p Plan, notes []Note) {
				want(t, p, "g1", id("c"), Starting)
				want(t, p, "g2", id("b"), Starting) // b has g3, c has g1: tie broken by name
				want(t, p, "g3", id("b"), Running)
				if p.Guests["g1"].Tries != 1 || p.Guests["g1"].Attempt != (AttemptID{Epoch: 2, N: 1}) || !strings.Contains(p.Guests["g1"].Message, "dead, hence fenced") {
					t.Errorf("g1: %+v", p.Guests["g1"])
				}
			},
		},
		{
			name: "a dead host without a watchdog keeps its guests: it is not known fenced",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.State, h.Unsafe = liveness.Dead, true }), host("b", 1)},
				Prev:  planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running}})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", id("a"), Running)
				if !strings.Contains(p.Guests["g1"].Message, "not known fenced") {
					t.Errorf("message %q", p.Guests["g1"].Message)
				}
			},
		},
		{
			name: "a suspect host keeps its guests",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.State = liveness.Suspect; h.Report.Running = nil }), host("b", 1)},
				Prev:  planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Starting, Attempt: AttemptID{1, 1}, Tries: 1}})},
			check: func(t *testing.T, p Plan, _ []Note) { want(t, p, "g1", id("a"), Starting) },
		},
		{
			name: "the guests of a host that left restart at once",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.State = liveness.Left; h.Report.Running = nil }), host("b", 1)},
				Prev:  planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running}})},
			check: func(t *testing.T, p Plan, _ []Note) { want(t, p, "g1", id("b"), Starting) },
		},
		{
			name: "nothing is placed while a host that is not gone has not reported on this epoch",
			in: Input{Epoch: 3, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 3), func(h *Host) { h.State = liveness.Dead }), host("b", 3),
					with(host("c", 2), func(h *Host) { h.State = liveness.Suspect })},
				Prev: planOf(2, map[string]Assignment{"g1": {Host: id("a"), State: Running}})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", HostID{}, Pending)
				if !strings.Contains(p.Guests["g1"].Message, "waiting for c to report on epoch 3") || !AwaitingReports(p.Guests["g1"].Message) {
					t.Errorf("message %q", p.Guests["g1"].Message)
				}
			},
		},
		{
			name: "manual placement uses only available preferred hosts, else pending",
			in: Input{Epoch: 1, Pool: pool,
				Guests: []Guest{{UUID: "g1", HA: true, Placement: Manual, Preferred: []string{"a", "c"}}, {UUID: "g2", HA: true, Placement: Manual, Preferred: []string{"a"}}},
				Hosts:  []Host{with(host("a", 1), func(h *Host) { h.State = liveness.Dead }), host("b", 1), host("c", 1)},
				Prev:   planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running}, "g2": {Host: id("a"), State: Running}})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", id("c"), Starting)
				want(t, p, "g2", HostID{}, Pending)
				if !strings.Contains(p.Guests["g2"].Message, "preferred hosts [a]") {
					t.Errorf("message %q", p.Guests["g2"].Message)
				}
			},
		},
		{
			name: "a pending guest starts when a host becomes available",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{{UUID: "g2", HA: true, Placement: Manual, Preferred: []string{"a"}}},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.ID.Generation = 2; h.Report.Host.Generation = 2 }), host("b", 1)},
				Prev:  planOf(1, map[string]Assignment{"g2": {State: Pending}})},
			check: func(t *testing.T, p Plan, _ []Note) { want(t, p, "g2", HostID{Name: "a", Generation: 2}, Starting) },
		},
		{
			name: "hosts without the vm role, leaving, or without a watchdog get no guests",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{
					with(host("a", 1), func(h *Host) { h.Roles = []Role{RoleUtility} }),
					with(host("b", 1), func(h *Host) { h.Report.Leaving = true }),
					with(host("c", 1), func(h *Host) { h.Unsafe = true }),
					with(host("d", 1), func(h *Host) { h.State = liveness.Left }),
				},
				Prev: planOf(1, map[string]Assignment{"g1": {Host: id("d"), State: Running}})},
			check: func(t *testing.T, p Plan, _ []Note) { want(t, p, "g1", HostID{}, Pending) },
		},
		{
			name: "a failed start is tried on another host, then the guest is in error",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{
					with(host("a", 1), func(h *Host) {
						h.Report.Failed = map[string]Failure{"g1": {Attempt: AttemptID{1, 2}, Message: "no memory"}}
					}),
					host("b", 1), host("c", 1)},
				Prev: planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Starting, Attempt: AttemptID{1, 2}, Tries: 2, Tried: []string{"b"}}})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", HostID{}, Error)
				if !strings.Contains(p.Guests["g1"].Message, "no memory") {
					t.Errorf("message %q", p.Guests["g1"].Message)
				}
			},
		},
		{
			name: "the first failed start moves the guest to a host not yet tried",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{
					with(host("a", 1), func(h *Host) {
						h.Report.Failed = map[string]Failure{"g1": {Attempt: AttemptID{1, 1}, Message: "no memory"}}
					}),
					host("b", 1)},
				Prev: planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Starting, Attempt: AttemptID{1, 1}, Tries: 1}})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", id("b"), Starting)
				if a := p.Guests["g1"]; a.Tries != 2 || a.Attempt != (AttemptID{1, 2}) || len(a.Tried) != 1 || a.Tried[0] != "a" {
					t.Errorf("g1: %+v", a)
				}
			},
		},
		{
			name: "a guest without HA whose host failed is stopped, and says why",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{{UUID: "g1"}, {UUID: "g2", HA: true, Management: true}},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.State = liveness.Dead }), host("b", 1)},
				Prev:  planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running}, "g2": {Host: id("a"), State: Running}})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", HostID{}, Stopped)
				want(t, p, "g2", HostID{}, Stopped)
				if !strings.Contains(p.Guests["g1"].Message, "HA is disabled on the guest") || !strings.Contains(p.Guests["g2"].Message, "management instance") {
					t.Errorf("messages %q, %q", p.Guests["g1"].Message, p.Guests["g2"].Message)
				}
			},
		},
		{
			name: "HA off on the pool: nothing restarts",
			in: Input{Epoch: 1, Pool: Pool{HA: false}, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.State = liveness.Dead }), host("b", 1)},
				Prev:  planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running}})},
			check: func(t *testing.T, p Plan, _ []Note) { want(t, p, "g1", HostID{}, Stopped) },
		},
		{
			name: "a guest reported on two hosts is in error and raises an alarm",
			in:   Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")}, Hosts: []Host{host("a", 1, "g1"), host("b", 1, "g1")}},
			check: func(t *testing.T, p Plan, notes []Note) {
				want(t, p, "g1", HostID{}, Error)
				if len(notes) != 1 || !notes[0].Alarm {
					t.Errorf("notes %+v", notes)
				}
			},
		},
		{
			name: "a guest stopped by the operator is stopping on its host, then stopped",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{with2(haGuest("g1"), func(g *Guest) { g.Stopped = true }), with2(haGuest("g2"), func(g *Guest) { g.Stopped = true })},
				Hosts: []Host{host("a", 1, "g1"), with(host("b", 1), func(h *Host) { h.Report.Seq = 3 })},
				Prev:  planOf(1, map[string]Assignment{"g2": {Host: id("b"), State: Stopping, AbsentGen: 1, AbsentSeq: 2}})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", id("a"), Stopping)
				want(t, p, "g2", HostID{}, Stopped)
			},
		},
		{
			name: "a new guest stays stopped until the operator starts it; a start places it",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1"), with2(haGuest("g2"), func(g *Guest) { g.StartSeq = 1 })},
				Hosts: []Host{host("a", 1)}},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", HostID{}, Stopped)
				want(t, p, "g2", id("a"), Starting)
			},
		},
		{
			name: "a guest that stopped on its live host (a newer report) is restarted elsewhere if HA",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1"), {UUID: "g2"}},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.Report.Seq = 6 }), host("b", 1)},
				Prev:  planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running, ReportSeq: 4, AbsentSeq: 5, AbsentGen: 1}, "g2": {Host: id("a"), State: Running, ReportSeq: 4, AbsentSeq: 5, AbsentGen: 1}})},
			check: func(t *testing.T, p Plan, _ []Note) {
				// Counted as a failed attempt on a: tried elsewhere.
				want(t, p, "g1", id("b"), Starting)
				want(t, p, "g2", HostID{}, Stopped)
			},
		},
		{
			name: "one report without a running guest is not enough: it may be rebooting",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.Report.Seq = 5 }), host("b", 1)},
				Prev:  planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running, ReportSeq: 4}})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", id("a"), Running)
				if p.Guests["g1"].AbsentSeq != 5 {
					t.Errorf("AbsentSeq %d, want 5", p.Guests["g1"].AbsentSeq)
				}
			},
		},
		{
			name: "a start that was carried out but does not run counts as a failed try",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.Report.Done = map[string]AttemptID{"g1": {1, 1}}; h.Report.Seq = 3 }), host("b", 1)},
				Prev:  planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Starting, Attempt: AttemptID{1, 1}, Tries: 1, AbsentGen: 1, AbsentSeq: 2}})},
			check: func(t *testing.T, p Plan, _ []Note) { want(t, p, "g1", id("b"), Starting) },
		},
		{
			name: "an older report without the guest changes nothing",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.Report.Seq = 4 })},
				Prev:  planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running, ReportSeq: 4}})},
			check: func(t *testing.T, p Plan, _ []Note) { want(t, p, "g1", id("a"), Running) },
		},
		{
			name: "a restarted daemon that has not reported yet holds its host's guests",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 1), func(h *Host) { h.ID.Generation = 2 }), host("b", 1)},
				Prev:  planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running}})},
			check: func(t *testing.T, p Plan, _ []Note) { want(t, p, "g1", id("a"), Running) },
		},
		{
			// A crashed a/1 left its start of g1 in flight (xl create
			// outlives the daemon); a/2 lists g1 unsettled. Two reports of
			// a/2 without g1 would free it: the hold keeps it.
			name: "a start a crashed incarnation left in flight holds the guest, however many reports omit it",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1"), haGuest("g2")},
				Hosts: []Host{with(host("a", 1), func(h *Host) {
					h.ID.Generation = 2
					h.Report = &Report{Host: h.ID, Seq: 3, Epoch: 1, Unsettled: []string{"g1", "g2"}}
				}), host("b", 1)},
				Prev: planOf(1, map[string]Assignment{
					"g1": {Host: id("a"), State: Starting, Attempt: AttemptID{1, 1}, Tries: 1, AbsentGen: 2, AbsentSeq: 1},
					"g2": {State: Pending, Attempt: AttemptID{1, 1}},
				})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", id("a"), Starting)
				want(t, p, "g2", HostID{}, Pending)
				for _, u := range []string{"g1", "g2"} {
					if !strings.Contains(p.Guests[u].Message, "held") {
						t.Errorf("%s: message %q does not say why it is held", u, p.Guests[u].Message)
					}
				}
			},
		},
		{
			name: "once settled, the two-reports rule frees the guest",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 1), func(h *Host) {
					h.ID.Generation = 2
					h.Report = &Report{Host: h.ID, Seq: 3, Epoch: 1}
				}), host("b", 1)},
				Prev: planOf(1, map[string]Assignment{
					"g1": {Host: id("a"), State: Starting, Attempt: AttemptID{1, 1}, Tries: 1, AbsentGen: 2, AbsentSeq: 1},
				})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", HostID{Name: "a", Generation: 2}, Starting) // a fresh placement (a/2 is least loaded, first by name)
			},
		},
		{
			// A host with no driver lists nothing: its "left" and its
			// reports say nothing about what runs there (issue 10 item 4).
			name: "a host that cannot list its guests frees none by leaving or reporting, and is given none",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1"), haGuest("g2"), with2(haGuest("g3"), func(g *Guest) { g.StartSeq = 1 })},
				Hosts: []Host{
					with(host("a", 1), func(h *Host) { h.State, h.GuestsUnknown = liveness.Left, true }),
					with(host("b", 1), func(h *Host) { h.GuestsUnknown = true; h.Report.Seq = 5 }),
					with(host("c", 1), func(h *Host) { h.GuestsUnknown = true }),
				},
				Prev: planOf(1, map[string]Assignment{
					"g1": {Host: id("a"), State: Running},
					"g2": {Host: id("b"), State: Running, ReportSeq: 3, AbsentGen: 1, AbsentSeq: 4},
				})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", id("a"), Running)
				want(t, p, "g2", id("b"), Running)
				want(t, p, "g3", HostID{}, Pending) // started by the operator: no host may take it
				if !strings.Contains(p.Guests["g1"].Message, "cannot list its guests") {
					t.Errorf("g1: message %q does not say why it is kept", p.Guests["g1"].Message)
				}
			},
		},
		{
			name: "a host that cannot list its guests is not available for a failover",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{
					with(host("a", 1), func(h *Host) { h.State = liveness.Dead }),
					with(host("b", 1), func(h *Host) { h.GuestsUnknown = true }),
				},
				Prev: planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running}})},
			check: func(t *testing.T, p Plan, _ []Note) { want(t, p, "g1", HostID{}, Pending) },
		},
		{
			// Attempt IDs never go back: a host starts a guest at most
			// once per ID (H2), so a reused ID is an order it refuses,
			// and the guest stays starting for ever (the placement
			// simulation's seed 1636 found it).
			name: "a guest in error keeps its attempt number, and its next placement is a new order",
			in: Input{Epoch: 3, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{host("a", 3, "g1"), host("b", 3, "g1")},
				Prev:  planOf(3, map[string]Assignment{"g1": {Host: id("a"), State: Running, Attempt: AttemptID{3, 2}}})},
			check: func(t *testing.T, p Plan, _ []Note) {
				want(t, p, "g1", HostID{}, Error)
				if got := p.Guests["g1"].Attempt; got != (AttemptID{3, 2}) {
					t.Errorf("g1 in error: attempt %v; want {3 2} kept", got)
				}
				next, _ := Reconcile(Input{Epoch: 3, Pool: pool, Prev: p, Hosts: []Host{host("a", 3), host("b", 3)},
					Guests: []Guest{with2(haGuest("g1"), func(g *Guest) { g.StartSeq = 1 })}})
				if a := next.Guests["g1"]; a.State != Starting || !(AttemptID{3, 2}).Before(a.Attempt) {
					t.Errorf("g1 started again: %+v; want starting with an attempt after {3 2}", a)
				}
			},
		},
		{
			name: "an unsettled list of a gone host holds nothing",
			in: Input{Epoch: 1, Pool: pool, Guests: []Guest{haGuest("g1")},
				Hosts: []Host{with(host("a", 1), func(h *Host) {
					h.State = liveness.Dead
					h.Report.Unsettled = []string{"g1"}
				}), host("b", 1)},
				Prev: planOf(1, map[string]Assignment{"g1": {Host: id("a"), State: Running}})},
			check: func(t *testing.T, p Plan, _ []Note) { want(t, p, "g1", id("b"), Starting) },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, notes := Reconcile(c.in)
			c.check(t, p, notes)
		})
	}
}

func with2(g Guest, f func(*Guest)) Guest { f(&g); return g }

func want(t *testing.T, p Plan, uuid string, h HostID, st State) {
	t.Helper()
	a, ok := p.Guests[uuid]
	if !ok {
		t.Fatalf("%s is not in the plan", uuid)
	}
	if a.Host != h || a.State != st {
		t.Errorf("%s: on %v %s (%s); want on %v %s", uuid, a.Host, a.State, a.Message, h, st)
	}
}

func TestDecide(t *testing.T) {
	self := id("a")
	p := Plan{Epoch: 2, Seq: 7, Guests: map[string]Assignment{
		"g1": {Host: self, State: Starting, Attempt: AttemptID{2, 1}},
		"g2": {Host: self, State: Running},
		"g3": {Host: id("b"), State: Starting, Attempt: AttemptID{2, 1}},
		"g4": {Host: self, State: Stopping},
		"g5": {Host: self, State: Starting, Attempt: AttemptID{1, 7}},
		// Running here, gone: the master's to place again, never this
		// host's to restart (an adopted guest has no attempt here).
		"g6": {Host: self, State: Running, Attempt: AttemptID{2, 1}},
	}}
	got := Decide(HostInput{Self: self, Epoch: 2, Plan: p, Running: []string{"g2", "g4"}, Attempted: map[string]AttemptID{"g5": {1, 7}}})
	wantActs := []Action{{Kind: Start, Guest: "g1", Attempt: AttemptID{2, 1}}, {Kind: Stop, Guest: "g4"}}
	if len(got) != len(wantActs) {
		t.Fatalf("actions %+v, want %+v", got, wantActs)
	}
	for i := range got {
		if got[i] != wantActs[i] {
			t.Errorf("action %d: %+v, want %+v", i, got[i], wantActs[i])
		}
	}
	for _, e := range []uint64{1, 3} {
		if acts := Decide(HostInput{Self: self, Epoch: e, Plan: p}); len(acts) != 0 {
			t.Errorf("a plan of epoch 2 obeyed by a host on epoch %d: %+v", e, acts)
		}
	}
	if acts := Decide(HostInput{Self: HostID{Name: "a", Generation: 2}, Epoch: 2, Plan: p}); len(acts) != 0 {
		t.Errorf("another incarnation obeyed an assignment to generation 1: %+v", acts)
	}
}

func TestEvacuation(t *testing.T) {
	pool := Pool{HA: true}
	a := id("a")
	ev := []Evacuation{{Host: a, Migrate: []string{"g1"}}}
	// Round 1: g1 migrates to the least loaded host, g2 (not to migrate,
	// and without HA) is stopped on a to be restarted elsewhere.
	in := Input{Epoch: 1, Pool: pool, Evacuations: ev,
		Guests: []Guest{haGuest("g1"), {UUID: "g2"}, haGuest("g3")},
		Hosts:  []Host{host("a", 1, "g1", "g2"), host("b", 1, "g3"), host("c", 1)}}
	p, _ := Reconcile(in)
	want(t, p, "g1", a, Migrating)
	if tg := p.Guests["g1"].Target; tg != id("c") {
		t.Errorf("g1 migrates to %v, want c (least loaded)", tg)
	}
	want(t, p, "g2", a, Stopping)
	if !p.Guests["g2"].Restart {
		t.Error("g2 is not marked to restart elsewhere")
	}
	acts := Decide(HostInput{Self: a, Epoch: 1, Plan: p, Running: []string{"g1", "g2"}, Attempted: map[string]AttemptID{}})
	if len(acts) != 2 || acts[0] != (Action{Kind: Migrate, Guest: "g1", Attempt: p.Guests["g1"].Attempt, Target: "c"}) || acts[1].Kind != Stop || acts[1].Guest != "g2" {
		t.Fatalf("a's actions: %+v", acts)
	}
	// Round 2: the migration is under way (both hosts list g1), g2 is
	// stopped: g1 keeps its target, g2 is placed elsewhere (not on a).
	in.Prev = p
	in.Hosts = []Host{with(host("a", 1, "g1"), func(h *Host) { h.Report.Seq = 2 }), host("b", 1, "g3"), host("c", 1, "g1")}
	p2, notes := Reconcile(in)
	for _, n := range notes {
		if n.Alarm {
			t.Fatalf("a migration under way raised an alarm: %s", n.Text)
		}
	}
	want(t, p2, "g1", a, Migrating)
	if p2.Guests["g1"].Target != id("c") || p2.Guests["g1"].Attempt != p.Guests["g1"].Attempt {
		t.Errorf("g1 during its migration: %+v (was %+v)", p2.Guests["g1"], p.Guests["g1"])
	}
	// g2 is absent from one report of a: not yet enough.
	want(t, p2, "g2", a, Stopping)
	// Round 3: g1 runs on c only: done; g2 is still absent from a later
	// report of a: placed on another host.
	in.Prev = p2
	in.Hosts = []Host{with(host("a", 1), func(h *Host) { h.Report.Seq = 3 }), host("b", 1, "g3"), host("c", 1, "g1")}
	p3, _ := Reconcile(in)
	want(t, p3, "g1", id("c"), Running)
	if g2 := p3.Guests["g2"]; g2.State != Starting || g2.Host == a {
		t.Errorf("g2 after it stopped for the evacuation: %+v; want starting on another host", g2)
	}
}

func TestEvacuationFallbacks(t *testing.T) {
	pool := Pool{HA: true}
	a := id("a")
	ev := []Evacuation{{Host: a, All: true}}
	// A migration that fails (the driver cannot migrate) stops the guest
	// there to restart it elsewhere.
	mig := Assignment{Host: a, State: Migrating, Target: id("b"), Attempt: AttemptID{1, 2}}
	in := Input{Epoch: 1, Pool: pool, Evacuations: ev, Guests: []Guest{haGuest("g1")},
		Hosts: []Host{with(host("a", 1, "g1"), func(h *Host) {
			h.Report.Failed = map[string]Failure{"g1": {Attempt: AttemptID{1, 2}, Message: "this driver cannot migrate"}}
		}), host("b", 1)},
		Prev: planOf(1, map[string]Assignment{"g1": mig})}
	p, _ := Reconcile(in)
	want(t, p, "g1", a, Stopping)
	if !strings.Contains(p.Guests["g1"].Message, "cannot migrate") {
		t.Errorf("message %q", p.Guests["g1"].Message)
	}
	// The source then no longer lists it, its reports still carrying the
	// migration's failure: the guest is not freed by that failure. Two
	// reports of the source without it, then the target's answer, come
	// first (the migration may have gone on after its client gave up).
	for seq := uint64(2); seq <= 3; seq++ {
		in.Prev = p
		in.Hosts = []Host{with(host("a", 1), func(h *Host) {
			h.Report.Seq = seq
			h.Report.Failed = map[string]Failure{"g1": {Attempt: AttemptID{1, 2}, Message: "this driver cannot migrate"}}
		}), host("b", 1)}
		p, _ = Reconcile(in)
		want(t, p, "g1", a, Stopping)
	}
	if !p.Guests["g1"].SourceDone {
		t.Errorf("after two reports of the source without it: %+v; want the target asked", p.Guests["g1"])
	}
	// No host to migrate to: it keeps running where it is, and says so.
	in = Input{Epoch: 1, Pool: pool, Evacuations: ev, Guests: []Guest{haGuest("g1")}, Hosts: []Host{host("a", 1, "g1")}}
	p, _ = Reconcile(in)
	want(t, p, "g1", a, Running)
	if !strings.Contains(p.Guests["g1"].Message, "no available host to migrate to") {
		t.Errorf("message %q", p.Guests["g1"].Message)
	}
	// An evacuation of an older incarnation does not apply.
	in = Input{Epoch: 1, Pool: pool, Evacuations: []Evacuation{{Host: HostID{"a", 0}, All: true}}, Guests: []Guest{haGuest("g1")},
		Hosts: []Host{host("a", 1, "g1"), host("b", 1)}}
	p, _ = Reconcile(in)
	want(t, p, "g1", a, Running)
}

// The master's view of a host may be of an older incarnation than the one
// the plan names (a late write of generation 5 read back over a/6's slot,
// or a view not caught up): that view's "left", "dead" or reports say
// nothing about a/6, which keeps its guest (issue 9 item 3).
func TestOlderIncarnationViewKeepsGuest(t *testing.T) {
	a5 := HostID{Name: "a", Generation: 5}
	a6 := HostID{Name: "a", Generation: 6}
	for _, st := range []liveness.State{liveness.Left, liveness.Dead, liveness.Live} {
		a := Host{ID: a5, State: st, Roles: []Role{RoleVM}, Report: &Report{Host: a5, Seq: 9, Epoch: 3}}
		in := Input{Epoch: 3, Pool: Pool{HA: true}, Guests: []Guest{haGuest("g1")}, Hosts: []Host{a, host("b", 3)},
			Prev: Plan{Epoch: 3, Seq: 7, Guests: map[string]Assignment{"g1": {Host: a6, State: Running, ReportSeq: 4}}}}
		for round := 0; round < 3; round++ {
			plan, notes := Reconcile(in)
			if got := plan.Guests["g1"]; got.Host != a6 || got.State != Running {
				t.Fatalf("view a/5 %v, round %d: g1 %+v (notes %v), want kept running on a/6", st, round, got, notes)
			}
			in.Prev = plan
			in.Hosts[0].Report = &Report{Host: a5, Seq: a.Report.Seq + uint64(round) + 1, Epoch: 3}
		}
	}
}

// A pending guest, or one whose start failed, is placed again only while
// what asked for it still holds: HA on (pool and guest), or the operator's
// start; otherwise it becomes stopped (issue 10 item 5).
func TestRetryNeedsHAOrOperator(t *testing.T) {
	failedOnA := func(h *Host) {
		h.Report.Failed = map[string]Failure{"g1": {Attempt: AttemptID{1, 1}, Message: "no memory"}}
	}
	starting := Assignment{Host: id("a"), State: Starting, Attempt: AttemptID{1, 1}, Tries: 1}
	byOperator := func(a Assignment) Assignment { a.ByOperator = true; return a }
	noHA := Guest{UUID: "g1", Name: "g1", Placement: Auto}
	cases := []struct {
		name   string
		pool   Pool
		guest  Guest
		prev   Assignment
		failed bool
		want   State
	}{
		{"pending, pool HA switched off", Pool{HA: false}, haGuest("g1"), Assignment{State: Pending}, false, Stopped},
		{"pending, guest HA switched off", Pool{HA: true}, noHA, Assignment{State: Pending}, false, Stopped},
		{"pending, stopped by the operator", Pool{HA: true}, with2(haGuest("g1"), func(g *Guest) { g.Stopped = true }), Assignment{State: Pending}, false, Stopped},
		{"pending, HA on", Pool{HA: true}, haGuest("g1"), Assignment{State: Pending}, false, Starting},
		{"pending after the operator's start, HA off", Pool{HA: true}, noHA, byOperator(Assignment{State: Pending}), false, Starting},
		{"failed start, HA switched off", Pool{HA: false}, haGuest("g1"), starting, true, Stopped},
		{"failed start of the operator's start, HA off", Pool{HA: false}, haGuest("g1"), byOperator(starting), true, Starting},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := host("a", 1)
			if c.failed {
				a = with(a, failedOnA)
			}
			in := Input{Epoch: 1, Pool: c.pool, Guests: []Guest{c.guest}, Hosts: []Host{a, host("b", 1)},
				Prev: planOf(1, map[string]Assignment{"g1": c.prev})}
			p, _ := Reconcile(in)
			if got := p.Guests["g1"]; got.State != c.want {
				t.Fatalf("g1 is %s (%s); want %s", got.State, got.Message, c.want)
			}
			if c.want == Stopped {
				// And it stays stopped once a host is available again.
				in.Prev = p
				in.Hosts = []Host{host("a", 1), host("b", 1), host("c", 1)}
				if p, _ := Reconcile(in); p.Guests["g1"].State != Stopped {
					t.Fatalf("later: g1 is %s", p.Guests["g1"].State)
				}
			}
		})
	}
}

// The operator's start of a guest without HA, made while no host is
// available, waits pending and starts once one is.
func TestOperatorStartWithoutHAWaitsForAHost(t *testing.T) {
	g := Guest{UUID: "g1", Name: "g1", Placement: Auto, StartSeq: 1}
	dead := with(host("a", 1), func(h *Host) { h.State = liveness.Dead })
	in := Input{Epoch: 1, Pool: Pool{HA: true}, Guests: []Guest{g}, Hosts: []Host{dead}, Prev: planOf(1, map[string]Assignment{"g1": {State: Stopped}})}
	p, _ := Reconcile(in)
	want(t, p, "g1", HostID{}, Pending)
	in.Prev, in.Hosts = p, []Host{dead, host("b", 1)}
	p, _ = Reconcile(in)
	want(t, p, "g1", id("b"), Starting)
}
