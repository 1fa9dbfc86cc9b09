package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/driver"
	"github.com/hbfence/hbfence/restart/store"
	"github.com/rs/zerolog"
)

// The master of a second pool on the same cluster root (its heartbeat area
// re-created at the same path: issue 9, item 6) finds the first pool's
// records: it places none of that pool's guests, writes no plan over them,
// refuses every change, and says why; the first pool goes on undisturbed.
// Before records named their pool, the second master read the first
// pool's guests as its own and wrote its plan over the first one's.
func TestAMasterOfAnotherPoolLeavesThePoolsRecordsAlone(t *testing.T) {
	_, nodes, cfg := setup(t, "a", "b")
	poolA := ondisk.NewUUID()
	for _, n := range nodes {
		n.a.cfg.Store.BindPool(poolA)
	}
	rounds(nodes, 1)
	if err := nodes["a"].a.Update(func(c *store.PoolConfig) error {
		c.HA = true
		c.Guests = append(c.Guests, store.GuestDef{UUID: g1, Name: "web", Driver: "mem", Config: cfg, HA: true, Placement: restart.Auto, StartSeq: 1})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rounds(nodes, 3)
	if on := where(nodes); len(on) != 1 {
		t.Fatalf("pool A's guest runs on %v, want one host", on)
	}
	root := filepath.Dir(cfg)
	planPath := filepath.Join(root, store.Dir, "plan")
	planBefore, err := os.ReadFile(planPath)
	if err != nil {
		t.Fatal(err)
	}

	// Pool B: one host, x, master of its own epoch 1, on the same root.
	st, err := store.Open(root, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.BindPool(ondisk.NewUUID())
	tm, _ := timing.Profile("fast")
	wb := &world{epoch: 1, master: "x", slots: map[string]uint32{"x": 0}, states: map[string]liveness.State{"x": liveness.Live}}
	dx := &memDriver{}
	x := New(Config{Cluster: fakeCluster{wb, "x"}, Store: st, Drivers: map[string]driver.Driver{"mem": dx}, Timing: tm, Log: zerolog.New(io.Discard)})
	for range 4 {
		x.Round(context.Background())
	}
	if run, _ := dx.Running(context.Background()); slices.Contains(run, g1) {
		t.Fatal("pool B's host started pool A's guest")
	}
	if planAfter, _ := os.ReadFile(planPath); !slices.Equal(planAfter, planBefore) {
		t.Fatal("pool B's master wrote its plan over pool A's")
	}
	if err := x.Foreign(); !errors.Is(err, store.ErrOtherPool) {
		t.Fatalf("pool B's agent: Foreign() = %v, want the other pool's records named", err)
	}
	if err := x.Update(func(c *store.PoolConfig) error { c.HA = false; return nil }); err == nil {
		t.Fatal("pool B's master changed pool A's pool record")
	}
	// Pool A goes on: its guest still runs once, and a change is accepted.
	rounds(nodes, 2)
	if on := where(nodes); len(on) != 1 {
		t.Fatalf("after pool B's rounds, pool A's guest runs on %v", on)
	}
	if err := nodes["a"].a.Foreign(); err != nil {
		t.Fatalf("pool A's own master: Foreign() = %v", err)
	}
}
