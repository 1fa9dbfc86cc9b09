package agent

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/driver"
	"github.com/hbfence/hbfence/restart/store"
	"github.com/rs/zerolog"
)

// corruptPool flips bytes of the pool record's payload: it reads as torn.
func corruptPool(t *testing.T, root string) []byte {
	t.Helper()
	path := filepath.Join(root, store.Dir, "pool")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 64; i < 128 && i < len(b); i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

// A pool record that cannot be read is repaired (issue 10, item 17: every
// edit was refused, and nothing could write a good one): from the copy the
// master last read, or, on a master that never read one, from the backup
// written after every change. The unreadable file is kept; a readable
// record is not "repaired".
func TestRepairPool(t *testing.T) {
	_, nodes, cfg := setup(t, "a")
	a := nodes["a"].a
	root := filepath.Dir(cfg)
	if _, err := a.RepairPool(); err == nil || !strings.Contains(err.Error(), "no pool record") {
		t.Fatalf("repair with no pool record: %v", err)
	}
	add := func(ag *Agent, name, uuid string) error {
		return ag.Update(func(c *store.PoolConfig) error {
			c.HA = true
			c.Guests = append(c.Guests, store.GuestDef{UUID: uuid, Name: name, Driver: "mem", Config: cfg, Placement: restart.Auto})
			return nil
		})
	}
	if err := add(a, "web", g1); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RepairPool(); err == nil || !strings.Contains(err.Error(), "reads fine") {
		t.Fatalf("repair of a readable record: %v", err)
	}

	bad := corruptPool(t, root)
	if err := add(a, "db", "22222222-2222-3333-4444-555555555555"); err == nil {
		t.Fatal("an edit of an unreadable pool record was accepted")
	}
	r, err := a.RepairPool()
	if err != nil {
		t.Fatalf("repair from the master's copy: %v", err)
	}
	if r.Guests != 1 || r.Kept == "" {
		t.Errorf("repaired: %+v, want the one guest and the unreadable file kept", r)
	}
	if kept, err := os.ReadFile(r.Kept); err != nil || !slices.Equal(kept, bad) {
		t.Errorf("the unreadable record was not kept as it was at %s (%v)", r.Kept, err)
	}
	if _, c, err := a.cfg.Store.ReadPool(); err != nil || len(c.Guests) != 1 || c.Guests[0].Name != "web" || !c.HA {
		t.Fatalf("after the repair the pool record reads %+v, %v", c, err)
	}
	if err := add(a, "db", "22222222-2222-3333-4444-555555555555"); err != nil {
		t.Fatalf("an edit after the repair: %v", err)
	}

	// A new master (a fresh agent on the same root) that never read a
	// good copy repairs from the backup, which holds the last change.
	corruptPool(t, root)
	st, err := store.Open(root, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tm, _ := timing.Profile("fast")
	fresh := New(Config{Cluster: a.cfg.Cluster, Store: st, Drivers: map[string]driver.Driver{"mem": &memDriver{}}, Timing: tm, Log: zerolog.New(io.Discard)})
	r, err = fresh.RepairPool()
	if err != nil {
		t.Fatalf("repair from the backup: %v", err)
	}
	if r.From != "backup" || r.Guests != 2 {
		t.Errorf("repaired from %q with %d guests, want the backup with 2", r.From, r.Guests)
	}
	if _, c, err := st.ReadPool(); err != nil || len(c.Guests) != 2 {
		t.Fatalf("after the repair from the backup: %+v, %v", c, err)
	}

	// Neither a good copy in memory nor a readable backup: refused, and
	// the record is left as it is.
	corruptPool(t, root)
	bk := filepath.Join(root, store.Dir, "pool.backup")
	if err := os.WriteFile(bk, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	st2, _ := store.Open(root, true, time.Second)
	t.Cleanup(func() { st2.Close() })
	lost := New(Config{Cluster: a.cfg.Cluster, Store: st2, Drivers: map[string]driver.Driver{"mem": &memDriver{}}, Timing: tm, Log: zerolog.New(io.Discard)})
	if _, err := lost.RepairPool(); err == nil || !strings.Contains(err.Error(), "no good copy") {
		t.Fatalf("repair with no good copy: %v", err)
	}
	if _, _, err := st2.ReadPool(); err == nil || errors.Is(err, store.ErrEmpty) {
		t.Fatalf("the refused repair changed the record: %v", err)
	}
}
