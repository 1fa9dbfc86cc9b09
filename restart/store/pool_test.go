package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/restart"
)

// A store bound to a pool writes the pool into every record and refuses a
// record of another pool, naming both pools and what to do; a record that
// names no pool (an older build's) is still read. Issue 9, item 6: the
// split pool's two masters accepted each other's plans.
func TestRecordsOfAnotherPoolAreRefused(t *testing.T) {
	root := t.TempDir()
	poolA, poolB := ondisk.NewUUID(), ondisk.NewUUID()

	legacy, err := Open(root, true, 5*time.Second) // bound to no pool
	if err != nil {
		t.Fatal(err)
	}
	if err := legacy.WritePool(3, PoolConfig{HA: true}); err != nil {
		t.Fatal(err)
	}

	a, err := Open(root, true, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a.BindPool(poolA)
	h, c, err := a.ReadPool()
	if err != nil || !c.HA || h.Pool != (ondisk.UUID{}) {
		t.Fatalf("a record of no pool, read by pool A: %+v %+v %v; want it read, naming no pool", h, c, err)
	}
	if err := a.WritePool(4, PoolConfig{HA: true, MaxAttempts: 2}); err != nil {
		t.Fatal(err)
	}
	if err := a.WritePlan(restart.Plan{Epoch: 4, Seq: 1}, ondisk.Owner{Slot: 0, Generation: 1}); err != nil {
		t.Fatal(err)
	}
	if h, _, err := a.ReadPool(); err != nil || h.Pool != poolA {
		t.Fatalf("pool A's own record: %+v %v; want it read, naming pool A", h, err)
	}

	b, err := Open(root, true, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	b.BindPool(poolB)
	_, c, err = b.ReadPool()
	var op *OtherPoolError
	if !errors.As(err, &op) || !errors.Is(err, ErrOtherPool) {
		t.Fatalf("pool A's record read by pool B: %+v, %v; want an *OtherPoolError", c, err)
	}
	if c.HA || c.MaxAttempts != 0 {
		t.Errorf("a refused record's content was returned: %+v", c)
	}
	for _, want := range []string{poolA.String(), poolB.String(), "pool", "re-formatted", "[guests] root"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if _, _, _, err := b.ReadPlan(); !errors.Is(err, ErrOtherPool) {
		t.Errorf("pool A's plan read by pool B: %v; want ErrOtherPool", err)
	}
	// A store bound to no pool (the CLI's dump of a root) reads both.
	if _, _, err := legacy.ReadPool(); err != nil {
		t.Errorf("an unbound store reading pool A's record: %v", err)
	}
}
