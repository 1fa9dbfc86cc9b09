package agent

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/hbfence/hbfence/internal/runstate"
	"github.com/hbfence/hbfence/restart/driver"
)

// unsettled is a guest with a hypervisor order not yet confirmed settled.
type unsettled struct {
	driver string
	// absentSince is the time of the first listing, since the order was
	// taken over, that did not show the guest (zero: none yet).
	absentSince time.Time
}

func (a *Agent) now() time.Time {
	if a.cfg.Now != nil {
		return a.cfg.Now()
	}
	return time.Now()
}

func (a *Agent) gen() uint64 { return a.cfg.Cluster.Self().Generation }

// loadOrders reads, once, the orders earlier incarnations left in the
// run-state file: each guest named there is unsettled until settle
// confirms it. A file that cannot be read is retried every round; until
// it can, every guest of the pool that a driver of this host could run is
// unsettled (badRunState), and no order is issued (the write-ahead record
// cannot be written).
func (a *Agent) loadOrders() {
	rs := a.cfg.RunState
	if rs == nil || a.loaded {
		return
	}
	s, err := rs.Load()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if a.badRunState == nil {
			a.log.Error().Err(err).Msg("the run-state file cannot be read: every guest of the pool this host could run is reported unsettled, and no guest is started, stopped or migrated here, until the file is fixed or removed")
		}
		a.badRunState = err
		return
	}
	if a.badRunState != nil {
		a.log.Info().Str("file", rs.Path()).Msg("the run-state file reads again")
	}
	a.badRunState, a.loaded = nil, true
	for _, o := range s.Orders {
		if _, ok := a.unsettled[o.Guest]; !ok {
			a.log.Warn().Str("uuid", o.Guest).Str("driver", o.Driver).Str("op", o.Op).Uint64("order_generation", o.Generation).
				Str("attempt", o.Attempt).Msg("an earlier incarnation's order may still be under way: the guest is held until it is settled")
		}
		a.unsettled[o.Guest] = &unsettled{driver: o.Driver}
	}
}

// record writes an order ahead of issuing it. An error: the order must
// not be issued.
func (a *Agent) record(guest, drv, op, attempt string) (uint64, error) {
	rs := a.cfg.RunState
	if rs == nil {
		return 0, nil
	}
	a.mu.Lock()
	a.orderSeq++
	id := a.orderSeq
	a.mu.Unlock()
	err := rs.Update(func(s *runstate.State) error {
		s.Orders = append(s.Orders, runstate.Order{Guest: guest, Driver: drv, Op: op, Attempt: attempt,
			Generation: a.gen(), ID: id, PID: a.pid, Issued: time.Now()})
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("recording the %s order of guest %s in the run-state file (not issued): %w", op, guest, err)
	}
	return id, nil
}

// forget removes this agent's order id, confirmed settled.
func (a *Agent) forget(id uint64) {
	rs := a.cfg.RunState
	if rs == nil || id == 0 {
		return
	}
	if err := rs.Update(func(s *runstate.State) error {
		s.Orders = slices.DeleteFunc(s.Orders, func(o runstate.Order) bool { return o.ID == id && o.PID == a.pid && o.Generation == a.gen() })
		return nil
	}); err != nil {
		a.note("removing a settled order from the run-state file: %v", err)
	}
}

// hold makes guest unsettled: this agent's own order id whose outcome is
// not confirmed yet stays in the file, and is settled like an inherited
// one.
func (a *Agent) hold(guest, drv string) {
	if a.cfg.RunState == nil {
		return
	}
	a.mu.Lock()
	a.unsettled[guest] = &unsettled{driver: drv}
	a.mu.Unlock()
}

// settle looks at each unsettled guest in one listing: running here, it
// is adopted and its orders are removed; absent from this listing and from
// one at least the driver's settle time earlier, it is gone and its orders
// are removed.
func (a *Agent) settle(running []string) {
	a.mu.Lock()
	pending := maps.Clone(a.unsettled)
	a.mu.Unlock()
	now := a.now()
	for u, p := range pending {
		switch {
		case slices.Contains(running, u):
			a.log.Info().Str("uuid", u).Msg("an order under way settled: the guest runs here, adopted")
		case p.absentSince.IsZero():
			a.mu.Lock()
			p.absentSince = now
			a.mu.Unlock()
			continue
		case now.Sub(p.absentSince) < settleOf(a.cfg.Drivers[p.driver]):
			continue
		default:
			a.log.Info().Str("uuid", u).Msg("an order under way settled: the guest is confirmed gone (two listings a settle time apart)")
		}
		if err := a.cfg.RunState.Update(func(s *runstate.State) error {
			s.Orders = slices.DeleteFunc(s.Orders, func(o runstate.Order) bool { return o.Guest == u })
			return nil
		}); err != nil {
			a.note("removing settled orders from the run-state file: %v", err)
			continue
		}
		a.mu.Lock()
		delete(a.unsettled, u)
		a.mu.Unlock()
	}
}

func settleOf(d driver.Driver) time.Duration {
	if s, ok := d.(driver.Settler); ok {
		return s.Settle()
	}
	return 0
}

// unsettledList is what the report lists as unsettled (under a.mu).
func (a *Agent) unsettledList(running []string) []string {
	out := slices.Collect(maps.Keys(a.unsettled))
	if a.badRunState != nil {
		for _, g := range a.pool.Guests {
			if _, ok := a.cfg.Drivers[g.Driver]; ok && !slices.Contains(running, g.UUID) {
				out = append(out, g.UUID)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// isUnsettled: no new order for this guest until it is settled.
func (a *Agent) isUnsettled(u string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.unsettled[u]
	return ok || a.badRunState != nil
}

// confirmStarted removes a start order once a listing shows the guest;
// otherwise the guest is held until settled.
func (a *Agent) confirmStarted(ctx context.Context, id uint64, u, drv string) {
	if run, err := a.listRunning(ctx); err == nil && slices.Contains(run, u) {
		a.forget(id)
		return
	}
	a.hold(u, drv)
}

// RecordKills writes ahead, in rs, the kill orders of the fence path for
// guests of driver drv (nil rs: nothing). A failure does not stop the
// kill: a kill can only take a guest away, and the fence confirms it gone
// before it returns; the caller logs it.
func RecordKills(rs *runstate.File, drv string, guests []string) error {
	if rs == nil || len(guests) == 0 {
		return nil
	}
	return rs.Update(func(s *runstate.State) error {
		for _, u := range guests {
			s.Orders = append(s.Orders, runstate.Order{Guest: u, Driver: drv, Op: "kill", PID: os.Getpid(), Issued: time.Now()})
		}
		return nil
	})
}

// ForgetKills removes the fence's kill orders of guests, confirmed gone.
func ForgetKills(rs *runstate.File, guests []string) error {
	if rs == nil || len(guests) == 0 {
		return nil
	}
	return rs.Update(func(s *runstate.State) error {
		s.Orders = slices.DeleteFunc(s.Orders, func(o runstate.Order) bool {
			return o.Op == "kill" && o.PID == os.Getpid() && slices.Contains(guests, o.Guest)
		})
		return nil
	})
}
