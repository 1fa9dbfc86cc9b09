package agent

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/runstate"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/driver"
	"github.com/hbfence/hbfence/restart/store"
)

// settleDriver is a lateDriver with a settle time.
type settleDriver struct {
	lateDriver
	settle time.Duration
}

func (d *settleDriver) Settle() time.Duration { return d.settle }

// successor is host a's new incarnation: its run-state file holds the
// start order of g1 its predecessor wrote ahead and did not confirm (the
// daemon died during the create); g1 is an HA guest of the pool.
func successor(t *testing.T, content string) (*node, *settleDriver, *runstate.File, *time.Time) {
	t.Helper()
	_, nodes, cfg := setup(t, "a")
	n := nodes["a"]
	rs, err := runstate.Open(t.TempDir(), "pool1", "a")
	if err != nil {
		t.Fatal(err)
	}
	if content != "" {
		if err := os.WriteFile(rs.Path(), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	} else if err := rs.Update(func(s *runstate.State) error {
		s.Orders = append(s.Orders, runstate.Order{Guest: g1, Driver: "mem", Op: "start", Attempt: "1.1", Generation: 5, ID: 1, PID: 1})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	d := &settleDriver{settle: 2 * time.Second}
	clock := time.Unix(1000, 0)
	n.a.cfg.Drivers["mem"] = d
	n.a.cfg.RunState = rs
	n.a.cfg.Now = func() time.Time { return clock }
	if err := n.a.Update(func(c *store.PoolConfig) error {
		c.HA = true
		c.Guests = append(c.Guests, store.GuestDef{UUID: g1, Name: "web", Driver: "mem", Config: cfg, HA: true, Placement: restart.Auto, StartSeq: 1})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n, d, rs, &clock
}

func lastReport(t *testing.T, n *node) restart.Report {
	t.Helper()
	_, r, err := n.a.cfg.Store.ReadReport("a")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A start under way when the daemon died lands after the successor's
// first two reports: those hold g1 unsettled (never absent), and once the
// hypervisor lists it the guest is adopted, not started a second time.
func TestSuccessorHoldsAStartUnderWayThenAdopts(t *testing.T) {
	n, d, rs, clock := successor(t, "")
	d.mu.Lock()
	d.lands = 4 // after the two listings of each of the first two rounds
	d.mu.Unlock()
	for i := range 4 {
		n.a.Round(context.Background())
		*clock = clock.Add(100 * time.Millisecond)
		r := lastReport(t, n)
		running, held := slices.Contains(r.Running, g1), slices.Contains(r.Unsettled, g1)
		if i < 2 && (running || !held) {
			t.Fatalf("report %d: running %v unsettled %v, want g1 unsettled (its create may still land)", i+1, r.Running, r.Unsettled)
		}
		if !running && !held {
			t.Fatalf("report %d frees g1 (neither running nor unsettled) while its start may be under way", i+1)
		}
		if i == 3 && (!running || held) {
			t.Fatalf("report %d: running %v unsettled %v, want g1 adopted", i+1, r.Running, r.Unsettled)
		}
	}
	d.mu.Lock()
	copies := 0
	for _, u := range d.run {
		if u == g1 {
			copies++
		}
	}
	d.mu.Unlock()
	if copies != 1 {
		t.Fatalf("g1 runs %d times here", copies)
	}
	if s, _ := rs.Load(); len(s.Orders) != 0 {
		t.Fatalf("orders left after the guest was adopted: %+v", s.Orders)
	}
}

// A start that never happens frees the guest only once two listings a
// settle time apart have not shown it.
func TestSuccessorFreesAStartThatNeverLandsAfterTheSettleTime(t *testing.T) {
	n, _, rs, clock := successor(t, "")
	start := *clock
	for clock.Sub(start) < 2*time.Second {
		n.a.Round(context.Background())
		if r := lastReport(t, n); !slices.Contains(r.Unsettled, g1) || slices.Contains(r.Running, g1) {
			t.Fatalf("%v after the first listing, before the settle time: running %v unsettled %v, want g1 unsettled and not started again", clock.Sub(start), r.Running, r.Unsettled)
		}
		*clock = clock.Add(500 * time.Millisecond)
	}
	n.a.Round(context.Background())
	if r := lastReport(t, n); slices.Contains(r.Unsettled, g1) {
		t.Fatalf("g1 still unsettled after the settle time: %+v", r)
	}
	if s, _ := rs.Load(); len(s.Orders) != 0 {
		t.Fatalf("orders left after settling: %+v", s.Orders)
	}
}

// A run-state file that cannot be read is not taken as empty: every guest
// of the pool this host could run is unsettled, nothing is started, and
// the file is left as it is for the operator.
func TestCorruptRunStateHoldsEveryGuest(t *testing.T) {
	const bad = `{"format":1,"pool":"pool1","host":"a","orders":[{"guest":"` + g1
	n, d, rs, clock := successor(t, bad)
	for range 4 {
		n.a.Round(context.Background())
		*clock = clock.Add(time.Second)
		if r := lastReport(t, n); !slices.Contains(r.Unsettled, g1) {
			t.Fatalf("report with a corrupt run-state file: %+v, want g1 unsettled", r)
		}
	}
	if run, _ := d.Running(context.Background()); len(run) != 0 {
		t.Fatalf("started %v with an unreadable run-state file", run)
	}
	if _, err := rs.Load(); !errors.Is(err, runstate.ErrBadFile) {
		t.Fatalf("the file was overwritten: %v", err)
	}
}

// An order whose record cannot be written is not issued.
func TestOrderNotIssuedWithoutItsRecord(t *testing.T) {
	n, d, rs, _ := successor(t, "")
	os.WriteFile(rs.Path(), []byte(`{"format":1,"pool":"pool1","host":"a"}`), 0o600)
	n.a.Round(context.Background()) // loads: nothing unsettled
	os.WriteFile(rs.Path(), []byte(`garbage`), 0o600)
	for range 3 {
		n.a.Round(context.Background())
	}
	if run, _ := d.Running(context.Background()); len(run) != 0 {
		t.Fatalf("started %v without a record of the order", run)
	}
}

// The agent's own start is recorded before it is issued and removed once
// the guest is listed.
func TestOwnStartRecordedThenRemoved(t *testing.T) {
	n, d, rs, _ := successor(t, `{"format":1,"pool":"pool1","host":"a"}`)
	var seen []runstate.Order
	inner := &memDriver{}
	d.lateDriver.memDriver.run = nil
	n.a.cfg.Drivers["mem"] = recordingDriver{memDriver: inner, rs: rs, seen: &seen}
	for range 3 {
		n.a.Round(context.Background())
	}
	if run, _ := inner.Running(context.Background()); !slices.Contains(run, g1) {
		t.Fatalf("g1 not started: %v", run)
	}
	if len(seen) != 1 || seen[0].Guest != g1 || seen[0].Op != "start" {
		t.Fatalf("orders on file when the start was issued: %+v, want g1's start", seen)
	}
	if s, _ := rs.Load(); len(s.Orders) != 0 {
		t.Fatalf("orders left after the start was confirmed: %+v", s.Orders)
	}
}

type recordingDriver struct {
	*memDriver
	rs   *runstate.File
	seen *[]runstate.Order
}

func (d recordingDriver) Start(ctx context.Context, g driver.Spec) error {
	s, _ := d.rs.Load()
	*d.seen = s.Orders
	return d.memDriver.Start(ctx, g)
}
