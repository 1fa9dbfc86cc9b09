package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/driver"
	"github.com/hbfence/hbfence/restart/store"
)

// gateDriver is a memDriver whose starts block until the test lets each
// one through: entered receives a guest whose start is under way, and a
// send on release lets one start return. It counts the starts under way
// and the most there ever were at once.
type gateDriver struct {
	memDriver
	entered chan string
	release chan struct{}

	cmu        sync.Mutex
	now, most  int
	startCalls int
}

func (d *gateDriver) Start(ctx context.Context, g driver.Spec) error {
	d.cmu.Lock()
	d.now++
	d.startCalls++
	d.most = max(d.most, d.now)
	d.cmu.Unlock()
	d.entered <- g.UUID
	<-d.release
	d.cmu.Lock()
	d.now--
	d.cmu.Unlock()
	return d.memDriver.Start(ctx, g)
}

func (d *gateDriver) counts() (now, most, calls int) {
	d.cmu.Lock()
	defer d.cmu.Unlock()
	return d.now, d.most, d.startCalls
}

// manyGuests is a one-host pool whose master (the host itself) has placed
// n HA guests on it: the next round starts them all.
func manyGuests(t *testing.T, n, bound int) (*Agent, *gateDriver) {
	t.Helper()
	_, nodes, cfg := setup(t, "a")
	a := nodes["a"].a
	d := &gateDriver{entered: make(chan string), release: make(chan struct{})}
	a.cfg.Drivers["mem"] = d
	a.cfg.MaxConcurrentStarts = bound
	dir := filepath.Dir(cfg)
	if err := a.Update(func(c *store.PoolConfig) error {
		c.HA = true
		for i := range n {
			g := filepath.Join(dir, fmt.Sprintf("g%d.json", i))
			if err := os.WriteFile(g, []byte(`{}`), 0o600); err != nil {
				return err
			}
			c.Guests = append(c.Guests, store.GuestDef{UUID: fmt.Sprintf("%08d-2222-3333-4444-555555555555", i), Name: fmt.Sprintf("g%d", i),
				Driver: "mem", Config: g, HA: true, Placement: restart.Auto, StartSeq: 1})
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a.Round(context.Background()) // the master's round writes the plan
	return a, d
}

// A host given more guests than max_concurrent_starts runs exactly that
// many starts at once; the others wait their turn, and each one that
// returns lets the next begin, until all have run.
func TestStartsAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const guests, bound = 11, 3
		a, d := manyGuests(t, guests, bound)
		done := make(chan struct{})
		go func() {
			a.Round(context.Background())
			close(done)
		}()
		started := map[string]bool{}
		for i := 0; i < guests; i++ {
			if i < bound {
				started[<-d.entered] = true
				continue
			}
			synctest.Wait() // every goroutine blocked: no start beyond the bound began
			if now, _, calls := d.counts(); now != bound || calls != i {
				t.Fatalf("after %d starts let through: %d under way and %d begun, want %d under way", i-bound, now, calls, bound)
			}
			d.release <- struct{}{}
			started[<-d.entered] = true
		}
		for range bound {
			d.release <- struct{}{}
		}
		<-done
		if _, most, calls := d.counts(); most != bound || calls != guests || len(started) != guests {
			t.Fatalf("%d starts, %d guests, at most %d at once; want %d, %d and %d", calls, len(started), most, guests, guests, bound)
		}
		run, _ := d.Running(context.Background())
		if len(run) != guests {
			t.Fatalf("%d guests run after the round, want %d", len(run), guests)
		}
	})
}

// Halt waits for the starts under way, and the starts still waiting for
// their turn are never issued: a fence that halted the agent kills
// everything it could start.
func TestHaltLeavesWaitingStartsUnissued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const guests, bound = 6, 2
		a, d := manyGuests(t, guests, bound)
		done := make(chan struct{})
		go func() {
			a.Round(context.Background())
			close(done)
		}()
		for range bound {
			<-d.entered
		}
		halted := make(chan error)
		go func() {
			// Fake time: a Halt that never gets its turn fails here.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			halted <- a.Halt(ctx)
		}()
		synctest.Wait()
		select {
		case err := <-halted:
			t.Fatalf("Halt returned (%v) with %d starts under way", err, bound)
		default:
		}
		for range bound {
			d.release <- struct{}{}
		}
		if err := <-halted; err != nil {
			t.Fatal(err)
		}
		<-done
		if _, _, calls := d.counts(); calls != bound {
			t.Fatalf("%d starts issued, want only the %d under way when Halt was called", calls, bound)
		}
	})
}
