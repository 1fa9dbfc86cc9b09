package master_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/safeclock"
	"github.com/rs/zerolog"
)

// pool is a set of real members and runners over in-memory storage, under
// fake time (synctest): the wiring the daemon does, without processes.
type pool struct {
	t     *testing.T
	mem   *area.Mem
	lst   *lease.MemStorage
	hd    ondisk.Header
	mu    sync.Mutex
	hosts []*node
}

// all is a snapshot of the hosts (the watcher reads them while hosts start).
func (p *pool) all() []*node {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*node(nil), p.hosts...)
}

type node struct {
	name   string
	m      *heartbeat.Member
	r      atomic.Pointer[master.Runner]
	cancel context.CancelFunc
	done   chan error
	// ended is closed when the node's goroutine has returned (done may
	// have been read by then).
	ended chan struct{}
}

func newPool(t *testing.T, slots int) *pool {
	t.Helper()
	p, err := timing.Profile("default")
	if err != nil {
		t.Fatal(err)
	}
	h, err := ondisk.NewHeader(ondisk.NewUUID(), 512, slots, p, "default", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return &pool{t: t, mem: area.NewMem(h), lst: lease.NewMemStorage(h), hd: h}
}

// start joins a host and starts its runner before its first round, as the
// daemon does.
func (p *pool) start(name string, id byte) *node {
	n := &node{name: name, done: make(chan error, 1), ended: make(chan struct{})}
	m, err := heartbeat.New(p.mem.Handle(name), heartbeat.Config{
		Self:  join.Identity{Name: name, MachineID: ondisk.UUID{id, 9}},
		Log:   zerolog.New(io.Discard),
		Clock: safeclock.Go(), // synctest's fake time
		OnRenewal: func(issued, done time.Time) {
			if r := n.r.Load(); r != nil {
				r.Renewed(issued, done)
			}
		},
		OnRead: func(issued, done time.Time, peers []liveness.Peer) {
			if r := n.r.Load(); r != nil {
				r.Observed(issued, done, peers)
			}
		},
		BeforeLeave: func() {
			if r := n.r.Load(); r != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*p.hd.Timing.IOTimeout)
				defer cancel()
				r.Release(ctx)
				r.Stop()
			}
		},
	})
	if err != nil {
		p.t.Fatal(err)
	}
	n.m = m
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	go func() {
		defer close(n.ended)
		if err := m.Join(ctx); err != nil {
			n.done <- err
			return
		}
		r, err := master.Start(master.Config{Self: m.Self(), Header: p.hd, FirstRenewalBy: m.FirstRenewalBy(),
			Storage: p.lst, Log: zerolog.New(io.Discard), Clock: safeclock.Go()})
		if err != nil {
			n.done <- err
			return
		}
		n.r.Store(r)
		n.done <- m.Run(ctx)
	}()
	p.mu.Lock()
	p.hosts = append(p.hosts, n)
	p.mu.Unlock()
	return n
}

// kill is a power loss: the member stops writing without leaving, and its
// runner stops without releasing.
func (n *node) kill() {
	n.m.Abort(errors.New("killed"))
	<-n.done
	if r := n.r.Load(); r != nil {
		r.Stop()
	}
}

// acting returns the hosts that act as master now, with their epochs.
func (p *pool) acting() map[string]uint64 {
	out := map[string]uint64{}
	for _, n := range p.all() {
		if r := n.r.Load(); r != nil {
			if ms, ok := r.Master(time.Now()); ok {
				out[n.name] = ms.Epoch
			}
		}
	}
	return out
}

// watch checks, every 50 ms of fake time until stop is closed, that at
// most one host acts as master and that the acting epoch never goes back.
func (p *pool) watch(stop <-chan struct{}) *watcher {
	w := &watcher{}
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			a := p.acting()
			w.mu.Lock()
			if len(a) > 1 {
				w.violations = append(w.violations, fmt.Sprintf("at %v: %d masters at once: %v", time.Now().Format(time.TimeOnly), len(a), a))
			}
			for _, e := range a {
				if e < w.maxEpoch {
					w.violations = append(w.violations, fmt.Sprintf("epoch %d acts after epoch %d did", e, w.maxEpoch))
				}
				w.maxEpoch = max(w.maxEpoch, e)
			}
			w.mu.Unlock()
		}
	}()
	return w
}

type watcher struct {
	mu         sync.Mutex
	violations []string
	maxEpoch   uint64
}

func (w *watcher) check(t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.violations {
		t.Error(v)
	}
}

// waitJoined waits until every host has joined and runs its lease.
func (p *pool) waitJoined(within time.Duration) {
	p.t.Helper()
	start := time.Now()
	for time.Since(start) <= within {
		all := true
		for _, n := range p.all() {
			if n.r.Load() == nil {
				all = false
				select {
				case err := <-n.done:
					p.t.Fatalf("%s: %v", n.name, err)
				default:
				}
			}
		}
		if all {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("not every host joined within %v", within)
}

// waitMaster waits until exactly one host acts as master, other than
// except, and returns it.
func (p *pool) waitMaster(within time.Duration, except string) (string, uint64, time.Duration) {
	p.t.Helper()
	start := time.Now()
	for time.Since(start) <= within {
		a := p.acting()
		if len(a) == 1 {
			for name, e := range a {
				if name != except {
					return name, e, time.Since(start)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.t.Fatalf("no single master (other than %q) within %v: %v", except, within, p.acting())
	return "", 0, 0
}

func (p *pool) node(name string) *node {
	for _, n := range p.all() {
		if n.name == name {
			return n
		}
	}
	p.t.Fatalf("no host %s", name)
	return nil
}

// stopAll stops every node and waits until each has left: a synctest
// bubble whose test returns while a node still releases its lease (its
// wait is on the bubble's clock, which no longer advances once the test
// has returned) ends in a deadlock panic.
func (p *pool) stopAll() {
	for _, n := range p.all() {
		n.cancel()
	}
	for _, n := range p.all() {
		<-n.ended
	}
}

// threeHosts starts three hosts on an 8-slot pool under the watcher and
// waits until all have joined.
func threeHosts(t *testing.T) (*pool, chan struct{}, *watcher) {
	p := newPool(t, 8)
	stop := make(chan struct{})
	w := p.watch(stop)
	for i := range 3 {
		p.start(fmt.Sprintf("h%d", i), byte(i+1))
	}
	p.waitJoined(2 * p.hd.Timing.HostDead)
	return p, stop, w
}

// Hosts joining at once elect exactly one master, and every host reads the
// same holder.
func TestOneMasterAmongHostsJoiningAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPool(t, 16)
		stop := make(chan struct{})
		w := p.watch(stop)
		for i := range 6 {
			p.start(fmt.Sprintf("h%d", i), byte(i+1))
		}
		tm := p.hd.Timing
		p.waitJoined(2 * tm.HostDead)
		name, epoch, _ := p.waitMaster(2*tm.HostDead, "")
		if epoch != 1 {
			t.Errorf("first master %s has epoch %d, want 1", name, epoch)
		}
		time.Sleep(3 * tm.Interval)
		for _, n := range p.all() {
			st := n.r.Load().Status(time.Now())
			if st.Name != name || st.Epoch != 1 {
				t.Errorf("%s sees master %q epoch %d, want %s epoch 1", n.name, st.Name, st.Epoch, name)
			}
			if st.Self.Acting != (n.name == name) {
				t.Errorf("%s: acting %v", n.name, st.Self.Acting)
			}
		}
		close(stop)
		p.stopAll()
		w.check(t)
	})
}

// A master that loses power is replaced about host_dead after its last
// renewal, with the next epoch; the replacement is logged by the others.
func TestMasterKilledIsReplaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, stop, w := threeHosts(t)
		tm := p.hd.Timing
		old, epoch, _ := p.waitMaster(2*tm.HostDead, "")
		time.Sleep(2 * tm.Interval)
		p.node(old).kill()
		killed := time.Now()
		name, e2, _ := p.waitMaster(tm.HostDead+2*tm.Interval+time.Second, old)
		took := time.Since(killed)
		if e2 != epoch+1 {
			t.Errorf("new master %s has epoch %d, want %d", name, e2, epoch+1)
		}
		if took < tm.HostDead-tm.Interval {
			t.Errorf("replaced %v after the kill, before host_dead − interval (%v): the old master was not yet known fenced", took, tm.HostDead-tm.Interval)
		}
		t.Logf("master %s killed; %s took epoch %d after %v (%.2f × host_dead)", old, name, e2, took, took.Seconds()/tm.HostDead.Seconds())
		close(stop)
		p.stopAll()
		w.check(t)
	})
}

// A planned hand-over moves the role to the named host with the next
// epoch, within about two intervals, with no gap in which two act.
func TestHandOverMovesTheRole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, stop, w := threeHosts(t)
		tm := p.hd.Timing
		old, epoch, _ := p.waitMaster(2*tm.HostDead, "")
		time.Sleep(2 * tm.Interval)
		var target *node
		for _, n := range p.all() {
			if n.name != old {
				target = n
				break
			}
		}
		target.r.Load().ReadOften(time.Now().Add(3 * tm.Interval))
		start := time.Now()
		e, err := p.node(old).r.Load().HandOver(context.Background(), target.m.Self(), time.Now().Add(3*tm.IOTimeout))
		if err != nil || e.Kind != lease.HandedOver {
			t.Fatalf("hand-over: %v, %v", e, err)
		}
		name, e2, _ := p.waitMaster(2*tm.Interval, old)
		took := time.Since(start)
		if name != target.name || e2 != epoch+1 {
			t.Fatalf("after the hand-over, %s is master with epoch %d; want %s with %d", name, e2, target.name, epoch+1)
		}
		t.Logf("hand-over %s → %s took %v (%.2f intervals)", old, name, took, took.Seconds()/tm.Interval.Seconds())
		st := p.node(old).r.Load().Status(time.Now())
		if st.LastHandOver == nil || st.LastHandOver.To != target.name || st.LastHandOver.Outcome != "handed-over" {
			t.Errorf("old master's last hand-over: %+v", st.LastHandOver)
		}
		time.Sleep(tm.Interval)
		ts := target.r.Load().Status(time.Now())
		if ts.LastHandOver == nil || ts.LastHandOver.Outcome != "taken" || ts.LastHandOver.From != old {
			t.Errorf("target's last hand-over: %+v", ts.LastHandOver)
		}
		close(stop)
		p.stopAll()
		w.check(t)
	})
}

// A master stopped cleanly releases the lease before it writes "left":
// another host takes over at once, long before host_dead.
func TestCleanStopReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, stop, w := threeHosts(t)
		tm := p.hd.Timing
		old, epoch, _ := p.waitMaster(2*tm.HostDead, "")
		time.Sleep(2 * tm.Interval)
		n := p.node(old)
		start := time.Now()
		n.cancel()
		if err := <-n.done; err != nil {
			t.Fatalf("clean stop: %v", err)
		}
		name, e2, _ := p.waitMaster(2*tm.Interval, old)
		if e2 != epoch+1 {
			t.Errorf("after the release, %s has epoch %d, want %d", name, e2, epoch+1)
		}
		t.Logf("%s stopped; %s master after %v", old, name, time.Since(start))
		close(stop)
		p.stopAll()
		w.check(t)
	})
}
