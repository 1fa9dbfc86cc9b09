package heartbeat_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/safeclock"
	"github.com/rs/zerolog"
)

func memPool(t *testing.T, slots int) *area.Mem {
	t.Helper()
	p, _ := timing.Profile("default")
	h, err := ondisk.NewHeader(ondisk.NewUUID(), 512, slots, p, "default", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return area.NewMem(h)
}

func machine(b byte) ondisk.UUID { return ondisk.UUID{b, 1, 2, 3} }

type host struct {
	name   string
	member *heartbeat.Member
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	events []liveness.Event
}

func startHost(t *testing.T, mem *area.Mem, name string, id byte) *host {
	t.Helper()
	return startHostOn(t, mem.Handle(name), name, id)
}

// startHostOn starts a member on st (a handle of a Mem, or a wrapper
// injecting faults).
func startHostOn(t *testing.T, st heartbeat.Storage, name string, id byte) *host {
	t.Helper()
	h := &host{name: name, done: make(chan error, 1)}
	m, err := heartbeat.New(st, heartbeat.Config{
		Self:  join.Identity{Name: name, MachineID: machine(id), Agent: "test"},
		Log:   zerolog.New(io.Discard),
		Clock: safeclock.Go(), // synctest's fake time
		Observer: func(e liveness.Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.member = m
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		if err := m.Join(ctx); err != nil {
			h.done <- err
			return
		}
		h.done <- m.Run(ctx)
	}()
	return h
}

func (h *host) stateOf(slotName string) liveness.State {
	for _, p := range h.member.Status(time.Now()).Hosts {
		if p.Name == slotName {
			return p.State
		}
	}
	return -1
}

// Three hosts join an empty pool at the same instant: each gets its own
// slot, all see each other live within one interval of joining.
func TestJoinThreeHostsConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8)
		hosts := []*host{startHost(t, mem, "a", 1), startHost(t, mem, "b", 2), startHost(t, mem, "c", 3)}
		waitAllLive(t, []*heartbeat.Member{hosts[0].member, hosts[1].member, hosts[2].member}, "a", "b", "c")
		slots := map[int]string{}
		for _, h := range hosts {
			st := h.member.Status(time.Now())
			if !st.Joined {
				t.Fatalf("%s did not join", h.name)
			}
			if other, dup := slots[st.Slot]; dup {
				t.Fatalf("%s and %s both own slot %d", h.name, other, st.Slot)
			}
			slots[st.Slot] = h.name
			for _, o := range hosts {
				if s := h.stateOf(o.name); s != liveness.Live {
					t.Errorf("%s sees %s as %v, want live", h.name, o.name, s)
				}
			}
		}
		for _, h := range hosts {
			h.cancel()
			if err := <-h.done; err != nil {
				t.Errorf("%s: %v", h.name, err)
			}
		}
	})
}

// A host that stops writing is suspect after renewal_fail and dead after
// host_dead, as measured by the observer; a host that leaves is left at
// once.
func TestSilentHostGoesSuspectThenDead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8)
		a := startHost(t, mem, "a", 1)
		b := startHost(t, mem, "b", 2)
		waitAllLive(t, []*heartbeat.Member{a.member, b.member}, "a", "b")
		if s := a.stateOf("b"); s != liveness.Live {
			t.Fatalf("b is %v, want live", s)
		}
		// Freeze b's storage: every I/O of b fails.
		mem.SetFault(func(op area.Op) area.Fault {
			if op.Host == "b" {
				return area.Fault{Err: errors.New("EIO")}
			}
			return area.Fault{}
		})
		frozen := time.Now()
		var suspectAt, deadAt time.Duration
		for i := 0; i < 400 && deadAt == 0; i++ {
			time.Sleep(100 * time.Millisecond)
			switch a.stateOf("b") {
			case liveness.Suspect:
				if suspectAt == 0 {
					suspectAt = time.Since(frozen)
				}
			case liveness.Dead:
				deadAt = time.Since(frozen)
			}
		}
		p, _ := timing.Profile("default")
		if suspectAt <= p.RenewalFail-p.Interval || suspectAt > p.RenewalFail+2*p.Interval {
			t.Errorf("suspect after %v, want about renewal_fail %v", suspectAt, p.RenewalFail)
		}
		if deadAt < p.HostDead-p.Interval || deadAt > p.HostDead+2*p.Interval {
			t.Errorf("dead after %v, want about host_dead %v", deadAt, p.HostDead)
		}
		// b's own last renewal is as old as its storage failure: the
		// fencer (package fence) would have fenced it at renewal_fail.
		if age := time.Since(b.member.LastRenewal()); age < time.Since(frozen) {
			t.Errorf("b's last renewal is %v old, its storage failed %v ago", age, time.Since(frozen))
		}
		stopped := errors.New("stopped by the test")
		b.member.Abort(stopped)
		if err := <-b.done; err != stopped {
			t.Errorf("b ended with %v, want the abort error", err)
		}
		mem.SetFault(nil)
		c := startHost(t, mem, "c", 3)
		time.Sleep(30 * time.Second)
		c.cancel()
		if err := <-c.done; err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if s := a.stateOf("c"); s != liveness.Left {
			t.Errorf("c is %v after a clean stop, want left", s)
		}
		a.cancel()
		<-a.done
	})
}

// A second host with a name that a live host uses refuses to join and
// names the slot.
func TestDuplicateNameRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8)
		a := startHost(t, mem, "a", 1)
		time.Sleep(30 * time.Second)
		dup := startHost(t, mem, "a", 9)
		err := <-dup.done
		var inUse *join.NameInUseError
		if !errors.As(err, &inUse) {
			t.Fatalf("duplicate got %v, want NameInUseError", err)
		}
		if inUse.Slot != a.member.Status(time.Now()).Slot {
			t.Errorf("error names slot %d, a is in %d", inUse.Slot, a.member.Status(time.Now()).Slot)
		}
		a.cancel()
		<-a.done
	})
}

// waitAllLive waits, on the bubble's clock, until every member has joined
// and sees every named host live. Hosts joining at once race for slots and
// retry; ten minutes covers every attempt a join may make.
func waitAllLive(t *testing.T, members []*heartbeat.Member, names ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		all := true
		for _, m := range members {
			st := m.Status(time.Now())
			live := 0
			for _, h := range st.Hosts {
				for _, n := range names {
					if h.Name == n && h.State == liveness.Live {
						live++
					}
				}
			}
			all = all && st.Joined && live == len(names)
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v not all joined and live after ten minutes", names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A member suspended between two rounds and resumed by a new member (an
// upgrade's new image) keeps its slot, generation and join nonce: no join,
// the sequence goes on from the last write, the record names the new agent,
// and a peer never sees the host change generation or leave.
func TestResumeKeepsSlotWithoutJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8)
		a := startHost(t, mem, "a", 1)
		b := startHost(t, mem, "b", 2)
		waitAllLive(t, []*heartbeat.Member{a.member, b.member}, "a", "b")
		time.Sleep(5 * time.Second)
		before := peerOf(t, b.member, "a")
		errSuspend := errors.New("re-exec")
		a.member.Abort(errSuspend)
		if err := <-a.done; !errors.Is(err, errSuspend) {
			t.Fatalf("Run returned %v, want the abort's error", err)
		}
		rs, err := a.member.Suspend()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := heartbeat.New(mem.Handle("a"), heartbeat.Config{
			Self: join.Identity{Name: "a", MachineID: machine(1), Agent: "test-v2"},
			Log:  zerolog.New(io.Discard),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.Resume(rs); err != nil {
			t.Fatal(err)
		}
		if got := m2.LastRenewal(); !got.Equal(rs.LastRenewal) {
			t.Fatalf("LastRenewal %v, want the previous image's %v", got, rs.LastRenewal)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m2.Run(ctx) }()
		time.Sleep(5 * time.Second)
		after := peerOf(t, b.member, "a")
		if after.Slot != before.Slot || after.Generation != before.Generation {
			t.Fatalf("slot/generation %d/%d after the resume, want %d/%d", after.Slot, after.Generation, before.Slot, before.Generation)
		}
		if after.Sequence <= before.Sequence || after.Agent != "test-v2" || after.State != liveness.Live {
			t.Fatalf("after the resume b sees %+v (before: %+v)", after, before)
		}
		for _, e := range b.eventsCopy() {
			if e.Name == "a" && e.Kind == liveness.Transition && e.To != liveness.Live {
				t.Fatalf("b saw a turn %v across the resume", e.To)
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		b.cancel()
		<-b.done
	})
}

// Resume refuses a record that is not this host's, and a resumed member
// whose slot was taken meanwhile stops at its first round.
func TestResumeRefusesForeignOrTakenSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8)
		a := startHost(t, mem, "a", 1)
		waitAllLive(t, []*heartbeat.Member{a.member}, "a")
		a.member.Abort(errors.New("re-exec"))
		<-a.done
		rs, err := a.member.Suspend()
		if err != nil {
			t.Fatal(err)
		}
		other, _ := heartbeat.New(mem.Handle("a"), heartbeat.Config{
			Self: join.Identity{Name: "z", MachineID: machine(1), Agent: "test"}, Log: zerolog.New(io.Discard)})
		if err := other.Resume(rs); err == nil {
			t.Fatal("a record of host a resumed as host z")
		}
		// Someone else takes the slot: a record of another generation.
		rec, _, _ := ondisk.DecodeSlot(rs.Record, mem.Handle("x").Header().PoolUUID, rs.Slot)
		rec.Generation++
		rec.JoinNonce++
		if err := mem.Handle("x").WriteSlot(rs.Slot, rec.Encode()); err != nil {
			t.Fatal(err)
		}
		m2, _ := heartbeat.New(mem.Handle("a"), heartbeat.Config{
			Self: join.Identity{Name: "a", MachineID: machine(1), Agent: "test"}, Log: zerolog.New(io.Discard)})
		if err := m2.Resume(rs); err != nil {
			t.Fatal(err)
		}
		var lost *heartbeat.SlotLostError
		if err := m2.Run(context.Background()); !errors.As(err, &lost) {
			t.Fatalf("Run after a resume onto a taken slot returned %v, want a *SlotLostError", err)
		}
	})
}

func peerOf(t *testing.T, m *heartbeat.Member, name string) heartbeat.HostStatus {
	t.Helper()
	for _, h := range m.Status(time.Now()).Hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no host %s in the status", name)
	return heartbeat.HostStatus{}
}

func (h *host) eventsCopy() []liveness.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// A late write of an older generation over a member's own slot (its
// predecessor's "left", landing after this incarnation joined) is not a
// loss of the slot: the member renews over it and runs on, and its peer
// keeps it live in its own generation (issue 9 items 2 and 3).
func TestOlderGenerationOverOwnSlotIsNotALoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8)
		pool := mem.Handle("x").Header().PoolUUID
		// Host z/1 left every slot cleanly; a and b claim two of them as
		// generation 2.
		left := func(i int, seq uint64) ondisk.Slot {
			return ondisk.Slot{Version: ondisk.SlotVersion, State: ondisk.StateLeft, Index: uint32(i), PoolUUID: pool,
				Generation: 1, Sequence: seq, JoinNonce: 77, HostName: "z", MachineID: machine(9), Agent: "test"}
		}
		for i := range 8 {
			if err := mem.Handle("x").WriteSlot(i, left(i, 40).Encode()); err != nil {
				t.Fatal(err)
			}
		}
		a := startHost(t, mem, "a", 1)
		b := startHost(t, mem, "b", 2)
		defer func() {
			a.cancel()
			b.cancel()
			<-a.done
			<-b.done
		}()
		waitAllLive(t, []*heartbeat.Member{a.member, b.member}, "a", "b")
		st := a.member.Status(time.Now())
		if st.Generation != 2 {
			t.Fatalf("a joined slot %d generation %d, want generation 2", st.Slot, st.Generation)
		}
		// z/1's "left", retried by its NFS client, lands again over a/2.
		if err := mem.Handle("x").WriteSlot(st.Slot, left(st.Slot, 41).Encode()); err != nil {
			t.Fatal(err)
		}
		p, _ := timing.Profile("default")
		time.Sleep(10 * p.Interval)
		select {
		case err := <-a.done:
			t.Fatalf("a stopped after a late write of z generation 1 over its slot: %v", err)
		default:
		}
		for _, h := range b.member.Status(time.Now()).Hosts {
			if h.Name == "a" && (h.State != liveness.Live || h.Generation != 2) {
				t.Fatalf("b sees a as %v generation %d, want live generation 2", h.State, h.Generation)
			}
		}
	})
}

// A host that goes silent is declared dead by the read issued at its
// deadline, also when that deadline falls inside a round: with host_dead a
// whole number of intervals and reads that take time, the deadline (the
// completion of the read that last saw a change, + host_dead) always
// passes while the round host_dead later is reading. The read must then
// come at once, not a round later: the silence that decides is host_dead
// and the round's write, not host_dead + an interval.
func TestDeadlineInsideARoundIsReadAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := timing.Params{Interval: time.Second, IOTimeout: 2 * time.Second, RenewalFail: 6 * time.Second, Watchdog: 10 * time.Second, HostDead: 17 * time.Second}
		hdr, err := ondisk.NewHeader(ondisk.NewUUID(), 512, 8, p, "custom", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		mem := area.NewMem(hdr)
		const latency = 20 * time.Millisecond
		var frozen atomic.Bool
		mem.SetFault(func(op area.Op) area.Fault {
			if op.Host == "b" && frozen.Load() {
				return area.Fault{Delay: latency, Err: errors.New("EIO")}
			}
			return area.Fault{Delay: latency}
		})
		a := startHost(t, mem, "a", 1)
		b := startHost(t, mem, "b", 2)
		waitAllLive(t, []*heartbeat.Member{a.member, b.member}, "a", "b")
		frozen.Store(true)
		var dead *liveness.Event
		for i := 0; i < 300 && dead == nil; i++ {
			time.Sleep(100 * time.Millisecond)
			for _, e := range a.eventsCopy() {
				if e.Kind == liveness.Transition && e.To == liveness.Dead && e.Name == "b" {
					dead = &e
				}
			}
		}
		if dead == nil {
			t.Fatal("a never declared b dead")
		}
		// The deciding read comes at once after the round in which the
		// deadline passed: the silence is host_dead + that round's write.
		if dead.Silence < p.HostDead || dead.Silence > p.HostDead+2*latency {
			t.Errorf("b declared dead after a silence of %v, want host_dead %v and at most one round's I/O (%v) more", dead.Silence, p.HostDead, 2*latency)
		}
		b.member.Abort(errors.New("stopped by the test"))
		<-b.done
		a.cancel()
		<-a.done
	})
}

// The read at a deadline is issued once the clock has reached it, and
// only once: a timer that fires early (safeclock.TimerFor sleeps 90% of
// the time left, then looks again) issues no read short of the deadline,
// which could not decide it. From b's silence to a declaring it dead, a
// reads once per round and once more, at b's deadline.
func TestEarlyReadOnlyAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8) // default: host_dead 27 s, interval 2 s: the deadline falls between rounds
		var mu sync.Mutex
		var frozen, counting bool
		reads, writes := 0, 0
		mem.SetFault(func(op area.Op) area.Fault {
			mu.Lock()
			defer mu.Unlock()
			if op.Host == "a" && counting {
				if op.Write {
					writes++
				} else {
					reads++
				}
			}
			if op.Host == "b" && frozen {
				return area.Fault{Err: errors.New("EIO")}
			}
			return area.Fault{}
		})
		a := startHost(t, mem, "a", 1)
		b := startHost(t, mem, "b", 2)
		waitAllLive(t, []*heartbeat.Member{a.member, b.member}, "a", "b")
		mu.Lock()
		frozen = true
		mu.Unlock()
		// Count from a's next round on, so that the count starts with a
		// read and a write in step.
		synctest.Wait()
		mu.Lock()
		counting = true
		mu.Unlock()
		for i := 0; i < 400 && a.stateOf("b") != liveness.Dead; i++ {
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
		mu.Lock()
		counting = false
		r, w := reads, writes
		mu.Unlock()
		if a.stateOf("b") != liveness.Dead {
			t.Fatal("a never declared b dead")
		}
		if r > w+1 || r < w {
			t.Errorf("a read %d times and wrote %d times until b was dead: want one read per round and one at the deadline", r, w)
		}
		b.member.Abort(errors.New("stopped by the test"))
		<-b.done
		a.cancel()
		<-a.done
	})
}
