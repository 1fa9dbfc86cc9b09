package agent

import (
	"testing"
	"time"

	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/store"
)

// A host put in maintenance in the pool record is emptied through the
// agents (the mem driver cannot migrate: the guest is stopped there and
// started elsewhere), gets nothing while in maintenance, and is given
// guests again once out of it. A move by hand (guest migrate --restart,
// then start --on) lands where asked.
func TestAgentsMaintenanceAndMoves(t *testing.T) {
	_, nodes, cfg := setup(t, "a", "b", "c")
	rounds(nodes, 1)
	update := func(f func(c *store.PoolConfig)) {
		t.Helper()
		if err := nodes["a"].a.Update(func(c *store.PoolConfig) error { f(c); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	update(func(c *store.PoolConfig) {
		c.HA = true
		c.Guests = append(c.Guests, store.GuestDef{UUID: g1, Name: "web", Driver: "mem", Config: cfg, HA: true, Placement: restart.Auto, StartSeq: 1, StartOn: "b"})
	})
	rounds(nodes, 3)
	if on := where(nodes); len(on) != 1 || on[0] != "b" {
		t.Fatalf("started --on b, runs on %v", on)
	}
	update(func(c *store.PoolConfig) {
		c.Maintenance = map[string]store.Maintenance{"b": {Since: time.Now()}}
	})
	for i := 0; i < 12; i++ {
		rounds(nodes, 1)
		on := where(nodes)
		if len(on) > 1 {
			t.Fatalf("round %d: runs on %v", i, on)
		}
		if len(on) == 1 && on[0] != "b" {
			break
		}
	}
	if on := where(nodes); len(on) != 1 || on[0] == "b" {
		t.Fatalf("after b entered maintenance the guest runs on %v (%+v)", on, nodes["a"].a.Guests())
	}
	if p := nodes["c"].a.Pool(); p.Maintenance["b"].Since.IsZero() {
		t.Fatalf("c does not see b in maintenance: %+v", p.Maintenance)
	}
	// A move to b, in maintenance, is refused by the plan: it stays.
	from := where(nodes)[0]
	update(func(c *store.PoolConfig) {
		g := &c.Guests[0]
		g.MoveSeq, g.MoveTo, g.MoveRestart = g.MoveSeq+1, "b", true
	})
	rounds(nodes, 3)
	if on := where(nodes); len(on) != 1 || on[0] != from {
		t.Fatalf("a move to b in maintenance: runs on %v, want %s", on, from)
	}
	// Out of maintenance: the move by restart goes to b.
	update(func(c *store.PoolConfig) {
		delete(c.Maintenance, "b")
		g := &c.Guests[0]
		g.MoveSeq, g.MoveTo, g.MoveRestart = g.MoveSeq+1, "b", true
	})
	for i := 0; i < 12; i++ {
		rounds(nodes, 1)
		if on := where(nodes); len(on) > 1 {
			t.Fatalf("round %d: runs on %v", i, on)
		}
	}
	if on := where(nodes); len(on) != 1 || on[0] != "b" {
		t.Fatalf("moved to b by restart, runs on %v (%+v)", on, nodes["a"].a.Guests())
	}
}
