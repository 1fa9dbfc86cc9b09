package lease_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// allLive is a view in which the given slots are live (generation 1).
func allLive(slots ...int) map[int]liveness.State {
	m := map[int]liveness.State{}
	for _, s := range slots {
		m[s] = liveness.Live
	}
	return m
}

func leaderOf(t *testing.T, st *lease.MemStorage) ondisk.LeaderDecoded {
	t.Helper()
	buf := make([]byte, st.Header().SectorSize)
	if err := st.ReadLeader(buf); err != nil {
		t.Fatal(err)
	}
	return ondisk.DecodeLeaderSector(buf, testPool)
}

func ballotOf(t *testing.T, st *lease.MemStorage, slot int) ondisk.BallotDecoded {
	t.Helper()
	buf := make([]byte, st.Header().BallotsLen())
	if err := st.ReadBallots(buf); err != nil {
		t.Fatal(err)
	}
	return ondisk.DecodeBallots(buf, st.Header())[slot]
}

// acquireAlone makes h master of the next epoch on a storage nobody else
// uses, and returns the number of I/Os it took.
func acquireAlone(t *testing.T, h *host, st *lease.MemStorage) int {
	t.Helper()
	before := st.Stats()
	if err := h.l.Acquire(h.now); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if _, ok := h.l.Master(h.now); ok {
			return st.Stats().Sub(before).IOs()
		}
		h.step(h.now.Add(time.Hour))
	}
	t.Fatalf("not master after 30 steps: %+v, events %v", h.l.Status(), h.ev)
	return 0
}

func TestFreeLeaseAcquisition(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	h := newHost(t, st, 2, 3, t0)
	h.renew()
	h.view(allLive(2), map[int]uint64{2: 3})
	n := acquireAlone(t, h, st)
	if n != 7 {
		t.Errorf("first acquisition of an incarnation took %d I/Os, want 7 (leader read, ballot read, write, read, write, read, leader write)", n)
	}
	m, _ := h.l.Master(h.now)
	if m.Epoch != 1 || !m.Until.Equal(t0.Add(p.RenewalFail)) || !m.Since.Equal(h.now) {
		t.Errorf("mastership %+v, want epoch 1 until renewed + renewal_fail", m)
	}
	d := leaderOf(t, st)
	if d.Status != ondisk.RecordOK || d.Leader.Epoch != 1 || d.Leader.Owner != owner(2, 3) || d.Leader.Flags != 0 {
		t.Errorf("leader record %+v", d)
	}
	b := ballotOf(t, st, 2)
	if b.Status != ondisk.RecordOK || b.Ballot.Lver != 1 || b.Ballot.Bal != b.Ballot.Mbal || b.Ballot.Mbal != 3 ||
		b.Ballot.Value != owner(2, 3) || b.Ballot.Generation != 3 {
		t.Errorf("ballot block %+v (mbal of slot 2 in round 0 of 4 slots is 3)", b)
	}
	var kinds []string
	for _, e := range h.ev {
		kinds = append(kinds, e.Kind.String())
	}
	if got := strings.Join(kinds, " "); got != "holder-changed decided acquired" {
		t.Errorf("events %q", got)
	}
	if !h.l.Holder().Known || h.l.Holder().Epoch != 0 {
		t.Errorf("holder %v: the master's own record shows at its next read", h.l.Holder())
	}

	// Released and taken again by the same incarnation: its own block is
	// known, so no ballot read before phase 1.
	h.now = h.now.Add(time.Second)
	h.renew()
	if err := h.l.Release(h.now); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.l.Master(h.now); ok {
		t.Fatal("still master right after Release")
	}
	h.run(h.now.Add(time.Second), 5)
	if d := leaderOf(t, st); !d.Leader.Released() || d.Leader.Epoch != 1 {
		t.Fatalf("after release: %+v", d.Leader)
	}
	if n := acquireAlone(t, h, st); n != 6 {
		t.Errorf("second acquisition took %d I/Os, want 6", n)
	}
	if m, _ := h.l.Master(h.now); m.Epoch != 2 {
		t.Errorf("epoch %d after re-acquiring, want 2", m.Epoch)
	}
}

// TestRaceForFreeLease: two or three hosts ask for a free lease at once,
// their I/O interleaved in random orders: exactly one wins epoch 1, every
// ballot that completes learns it, and TryAcquire losers report Busy.
func TestRaceForFreeLease(t *testing.T) {
	p := profile(t, "default")
	for n := 2; n <= 3; n++ {
		for seed := uint64(0); seed < 600; seed++ {
			r := rand.New(rand.NewPCG(seed, uint64(n)))
			st := lease.NewMemStorage(header(t, 4, p))
			var hs []*host
			slots := []int{0, 1, 2, 3}
			for i := 0; i < n; i++ {
				h := newHost(t, st, slots[i], 1, t0)
				h.renew()
				h.view(allLive(slots...), nil)
				if i%2 == 0 {
					h.l.TryAcquire(h.now)
				} else {
					h.l.Acquire(h.now)
				}
				hs = append(hs, h)
			}
			for step := 0; step < 400; step++ {
				h := hs[r.IntN(n)]
				if _, ok := h.l.Master(h.now); ok || h.l.Role() == lease.Follower {
					continue
				}
				h.step(h.now.Add(time.Hour))
				h.renew()
				done := 0
				for _, x := range hs {
					if _, ok := x.l.Master(x.now); ok || x.l.Role() == lease.Follower {
						done++
					}
				}
				if done == n {
					break
				}
			}
			winners := 0
			for i, h := range hs {
				for _, e := range h.ev {
					switch e.Kind {
					case lease.Acquired:
						winners++
						if e.Epoch != 1 {
							t.Fatalf("n=%d seed %d: host %d acquired epoch %d", n, seed, i, e.Epoch)
						}
					case lease.Decided:
						if e.Epoch == 1 && !hasAcquired(hs, e.Owner) {
							t.Fatalf("n=%d seed %d: host %d learnt %v for epoch 1, which did not acquire", n, seed, i, e.Owner)
						}
					}
				}
				if _, ok := h.l.Master(h.now); !ok && i%2 == 0 && len(h.events(lease.Busy)) != 1 {
					t.Fatalf("n=%d seed %d: TryAcquire loser %d ended %v with events %v", n, seed, i, h.l.Role(), h.ev)
				}
			}
			if winners != 1 {
				t.Fatalf("n=%d seed %d: %d hosts acquired", n, seed, winners)
			}
		}
	}
}

func hasAcquired(hs []*host, o ondisk.Owner) bool {
	for _, h := range hs {
		for _, e := range h.events(lease.Acquired) {
			if e.Owner == o {
				return true
			}
		}
	}
	return false
}

// TestEligibility: the lease of an owner may be taken only when the owner
// is gone in the caller's view; TryAcquire on a lease it may not take
// reports Busy after one leader read, with no ballot I/O.
func TestEligibility(t *testing.T) {
	p := profile(t, "default")
	type row struct {
		name   string
		state  liveness.State
		gen    uint64 // generation the view shows for the owner's slot
		absent bool   // the view has no record of the owner's slot
		take   bool
		why    string
		// how long ago the view first saw gen (0: an hour; -1: not known)
		genAge time.Duration
	}
	q := lease.Quarantine(p)
	rows := []row{
		{"live", liveness.Live, 1, false, false, "is live", 0},
		{"suspect", liveness.Suspect, 1, false, false, "is suspect", 0},
		{"unknown", liveness.Unknown, 1, false, false, "is unknown", 0},
		{"never read", liveness.Unknown, 1, true, false, "not been read", 0},
		{"dead", liveness.Dead, 1, false, true, "", 0},
		{"left", liveness.Left, 1, false, true, "", 0},
		{"later generation, live", liveness.Live, 2, false, true, "", 0},
		// A later generation seen less than a quarantine ago: writes
		// of generation 1 may still land (doc.go, "Late writes").
		{"later generation, seen just now", liveness.Live, 2, false, false, "for only", time.Second},
		{"later generation, seen a quarantine ago", liveness.Live, 2, false, true, "", q},
		{"later generation, seen at a moment not known", liveness.Live, 2, false, false, "not known", -1},
		{"older generation in view", liveness.Dead, 0, false, false, "older generation", 0},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			st := lease.NewMemStorage(header(t, 4, p))
			a := newHost(t, st, 0, 1, t0)
			a.renew()
			a.view(allLive(0), nil)
			acquireAlone(t, a, st)

			b := newHost(t, st, 1, 1, t0)
			b.renew()
			v := lease.Static{1: {State: liveness.Live, Generation: 1, Name: hostName(1)}}
			if !r.absent {
				g := r.gen
				if g == 0 {
					g = 0 // the view shows an older generation than the record
				}
				peer := lease.Peer{State: r.state, Generation: g, Name: hostName(0)}
				switch {
				case r.genAge == 0:
					peer.GenerationSince = b.now.Add(-time.Hour)
				case r.genAge > 0:
					peer.GenerationSince = b.now.Add(-r.genAge)
				}
				v[0] = peer
				if r.gen == 0 {
					// Make the record's generation newer than the view's.
					v[0] = lease.Peer{State: r.state, Generation: 0, Name: hostName(0)}
				}
			}
			b.l.SetView(b.now, v)
			before := st.Stats()
			b.l.TryAcquire(b.now)
			b.run(b.now.Add(time.Second), 20)
			ios := st.Stats().Sub(before)
			_, master := b.l.Master(b.now)
			if master != r.take {
				t.Fatalf("master = %v, want %v; status %+v events %v", master, r.take, b.l.Status(), b.ev)
			}
			if !r.take {
				busy := b.events(lease.Busy)
				if len(busy) != 1 || busy[0].Epoch != 1 || busy[0].Owner != owner(0, 1) || !strings.Contains(busy[0].Detail, r.why) {
					t.Fatalf("events %v, want one busy naming epoch 1 of a-host (%q)", b.ev, r.why)
				}
				if ios.IOs() != 1 || ios.Writes != 0 {
					t.Errorf("a refused TryAcquire did %+v, want one leader read", ios)
				}
				return
			}
			if m, _ := b.l.Master(b.now); m.Epoch != 2 {
				t.Errorf("took epoch %d, want 2", m.Epoch)
			}
		})
	}
}

// TestAcquireWaitsForDeath: a host that keeps trying takes the lease as
// soon as its view says the owner is dead, without waiting for its next
// periodic read.
func TestAcquireWaitsForDeath(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	a := newHost(t, st, 0, 1, t0)
	a.renew()
	a.view(allLive(0), nil)
	acquireAlone(t, a, st)

	b := newHost(t, st, 1, 1, t0)
	b.renew()
	b.view(allLive(0, 1), nil)
	b.l.Acquire(b.now)
	b.run(b.now.Add(time.Second), 10)
	if b.l.Role() != lease.Acquiring || !strings.Contains(b.l.Status().Waiting, "is live") {
		t.Fatalf("status %+v", b.l.Status())
	}
	if next := b.l.Next(); next.Kind != lease.ReadLeader || !next.NotBefore.Equal(b.now.Add(p.Interval)) {
		t.Fatalf("next %+v, want a leader read one interval on", next)
	}
	b.now = b.now.Add(300 * time.Millisecond)
	b.view(map[int]liveness.State{0: liveness.Dead, 1: liveness.Live}, nil)
	if next := b.l.Next(); !next.NotBefore.Equal(b.now) {
		t.Fatalf("after the view says dead, next %+v, want a read now", next)
	}
	b.run(b.now.Add(time.Second), 10)
	if m, ok := b.l.Master(b.now); !ok || m.Epoch != 2 {
		t.Fatalf("not master of epoch 2: %+v", b.l.Status())
	}
}

// TestHandOver: the master stops acting before its first write, proposes
// the target in instance e+1, writes its record released for it, and the
// target takes epoch e+1 at its next read; a third host does not take it
// while the target is live.
func TestHandOver(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	a := newHost(t, st, 0, 1, t0)
	a.renew()
	a.view(allLive(0, 1, 2), nil)
	acquireAlone(t, a, st)
	b := newHost(t, st, 1, 1, t0)
	b.renew()
	b.view(allLive(0, 1, 2), nil)
	b.run(b.now, 1) // follower: reads the leader record
	c := newHost(t, st, 2, 1, t0)
	c.renew()
	c.view(allLive(0, 1, 2), nil)
	c.l.Acquire(c.now)
	c.run(c.now, 2)

	a.now = a.now.Add(time.Second)
	a.renew()
	before := st.Stats()
	if err := a.l.ProposeSuccessor(a.now, owner(1, 1), a.now.Add(4*p.IOTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.l.Master(a.now); ok {
		t.Fatal("still acting as master after ProposeSuccessor")
	}
	if err := a.l.ProposeSuccessor(a.now, owner(2, 1), a.now.Add(time.Second)); !errors.Is(err, lease.ErrHandOver) {
		t.Errorf("second ProposeSuccessor: %v", err)
	}
	a.run(a.now.Add(time.Second), 10)
	if ev := a.events(lease.HandedOver); len(ev) != 1 || ev[0].Owner != owner(1, 1) || ev[0].Epoch != 1 {
		t.Fatalf("events %v", a.ev)
	}
	ho := st.Stats().Sub(before)
	d := leaderOf(t, st)
	if !d.Leader.Released() || !d.Leader.HasSuccessor() || d.Leader.Successor != owner(1, 1) || d.Leader.Epoch != 1 {
		t.Fatalf("leader record %+v", d.Leader)
	}
	if a.l.Role() != lease.Acquiring {
		t.Errorf("old master is %v; it called Acquire, so it keeps trying", a.l.Role())
	}

	// The third host, waiting, reads the record and still waits: the
	// successor is live.
	c.run(c.now.Add(p.Interval), 3)
	if _, ok := c.l.Master(c.now); ok || !strings.Contains(c.l.Status().Waiting, "handed over") {
		t.Fatalf("third host: %+v", c.l.Status())
	}
	// The successor takes epoch 2 at its next periodic read.
	before = st.Stats()
	b.now = b.now.Add(p.Interval)
	b.renew()
	b.run(b.now.Add(time.Second), 10)
	m, ok := b.l.Master(b.now)
	if !ok || m.Epoch != 2 {
		t.Fatalf("successor: %+v, events %v", b.l.Status(), b.ev)
	}
	takeover := st.Stats().Sub(before)
	t.Logf("hand-over: old master %d I/Os (%d bytes written), successor %d I/Os", ho.IOs(), ho.BytesWritten, takeover.IOs())
	if ev := b.events(lease.Decided); len(ev) != 1 || ev[0].Epoch != 2 || ev[0].Owner != owner(1, 1) {
		t.Errorf("successor learnt %v", ev)
	}
}

// TestHandOverFailsAndResumes: the hand-over ballot cannot complete
// before the deadline (its writes fail); the master reads its record,
// still held, and acts again. Its proposal had been accepted: when it
// releases later, the next ballot must choose the target.
func TestHandOverFailsAndResumes(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	a := newHost(t, st, 0, 1, t0)
	a.renew()
	a.view(allLive(0, 1, 2), nil)
	acquireAlone(t, a, st)

	// The hand-over's phase 1 read succeeds; every ballot read after it
	// fails, so its phase 2 write lands but the ballot never completes.
	var reads int
	st.SetFault(func(op lease.MemOp) error {
		if !op.Write && !op.Leader {
			reads++
			if reads >= 2 {
				return errors.New("EIO")
			}
		}
		return nil
	})
	a.now = a.now.Add(time.Second)
	a.renew()
	deadline := a.now.Add(2 * p.IOTimeout)
	if err := a.l.ProposeSuccessor(a.now, owner(1, 1), deadline); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100000 && a.l.Role() == lease.HandingOver; i++ {
		a.step(a.now.Add(time.Hour))
		a.renew()
	}
	ev := a.events(lease.HandOverFailed)
	if len(ev) != 1 || !ev[0].Resumed || ev[0].Owner != owner(1, 1) {
		t.Fatalf("events %v", a.ev)
	}
	if a.now.Before(deadline) {
		t.Errorf("resumed at %v, before the deadline %v", a.now, deadline)
	}
	if m, ok := a.l.Master(a.now); !ok || m.Epoch != 1 {
		t.Fatalf("not master of epoch 1 again: %+v", a.l.Status())
	}
	st.SetFault(nil)
	if b := ballotOf(t, st, 0); b.Ballot.Lver != 2 || b.Ballot.Bal == 0 || b.Ballot.Value != owner(1, 1) ||
		b.Ballot.ValueFlags != ondisk.ValueHandOver {
		t.Fatalf("the proposal is not in the master's block: %+v", b.Ballot)
	}

	// Released later: another host runs instance 2 and must learn the
	// target, which is live, so it waits for it.
	a.renew()
	a.l.Release(a.now)
	a.run(a.now.Add(time.Second), 5)
	c := newHost(t, st, 2, 1, a.now)
	c.renew()
	c.view(allLive(0, 1, 2), nil)
	c.l.Acquire(c.now)
	c.run(c.now.Add(time.Second), 20)
	if ev := c.events(lease.Decided); len(ev) != 1 || ev[0].Epoch != 2 || ev[0].Owner != owner(1, 1) {
		t.Fatalf("third host learnt %v, want epoch 2 for b-host", c.ev)
	}
	if _, ok := c.l.Master(c.now); ok {
		t.Fatal("third host took the epoch the target won")
	}
	// The target, keeping trying, takes it.
	b := newHost(t, st, 1, 1, a.now)
	b.renew()
	b.view(allLive(0, 1, 2), nil)
	b.l.Acquire(b.now)
	b.run(b.now.Add(time.Second), 20)
	if m, ok := b.l.Master(b.now); !ok || m.Epoch != 2 {
		t.Fatalf("target: %+v %v", b.l.Status(), b.ev)
	}
}

// TestSuperseded: a master that reads a later epoch, or its own epoch
// owned by another, stops at once.
func TestSuperseded(t *testing.T) {
	p := profile(t, "default")
	for _, c := range []struct {
		name string
		rec  ondisk.Leader
	}{
		{"later epoch", ondisk.Leader{Epoch: 2, Owner: owner(3, 1)}},
		{"own epoch, other owner", ondisk.Leader{Epoch: 1, Owner: owner(3, 1)}},
		{"own epoch, other generation", ondisk.Leader{Epoch: 1, Owner: owner(0, 2)}},
		{"newer version", ondisk.Leader{Version: 2, Epoch: 1, Owner: owner(0, 1)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := lease.NewMemStorage(header(t, 4, p))
			a := newHost(t, st, 0, 1, t0)
			a.renew()
			a.view(allLive(0), nil)
			acquireAlone(t, a, st)
			r := c.rec
			if r.Version == 0 {
				r.Version = ondisk.LeaseVersion
			}
			r.PoolUUID = testPool
			st.WriteLeader(r.Encode())
			a.now = a.now.Add(p.Interval)
			a.renew()
			a.step(a.now)
			if _, ok := a.l.Master(a.now); ok {
				t.Fatal("still master")
			}
			if ev := a.events(lease.Lost); len(ev) != 1 || ev[0].Epoch != 1 {
				t.Fatalf("events %v", a.ev)
			}
		})
	}
}

// TestMasterRepairsItsRecord: a master that reads its record torn,
// zeroed or of an older epoch writes it again and goes on acting.
func TestMasterRepairsItsRecord(t *testing.T) {
	p := profile(t, "default")
	for _, c := range []struct {
		name string
		rec  []byte
	}{
		{"corrupt", []byte("garbage")},
		{"zeroed", nil},
		{"older epoch", ondisk.Leader{Version: 1, PoolUUID: testPool, Epoch: 1, Owner: owner(3, 1)}.Encode()},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := lease.NewMemStorage(header(t, 4, p))
			a := newHost(t, st, 0, 1, t0)
			a.renew()
			a.view(allLive(0), nil)
			acquireAlone(t, a, st)
			a.l.Release(a.now)
			a.run(a.now.Add(time.Second), 3)
			acquireAlone(t, a, st) // epoch 2
			st.WriteLeader(c.rec)
			a.now = a.now.Add(p.Interval)
			a.renew()
			a.run(a.now.Add(time.Second), 2)
			if m, ok := a.l.Master(a.now); !ok || m.Epoch != 2 {
				t.Fatalf("not master: %+v", a.l.Status())
			}
			if d := leaderOf(t, st); d.Status != ondisk.RecordOK || d.Leader.Epoch != 2 || d.Leader.Owner != owner(0, 1) {
				t.Fatalf("record not repaired: %+v", d)
			}
		})
	}
}

// TestRenewalsLapse: the lease latches as soon as renewals lapse, and a
// renewal that succeeds afterwards does not bring it back.
func TestRenewalsLapse(t *testing.T) {
	p := profile(t, "default")
	for _, c := range []struct {
		name  string
		lapse func(h *host)
	}{
		{"queried after renewal_fail", func(h *host) { h.now = h.now.Add(p.RenewalFail) }},
		{"renewal returns too late", func(h *host) {
			issued := h.now.Add(p.RenewalFail - time.Second)
			h.now = issued.Add(2 * time.Second)
			h.l.Renewed(issued, h.now)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := lease.NewMemStorage(header(t, 4, p))
			a := newHost(t, st, 0, 1, t0)
			a.renew()
			a.view(allLive(0), nil)
			acquireAlone(t, a, st)
			m, _ := a.l.Master(a.now)
			c.lapse(a)
			if _, ok := a.l.Master(a.now); ok {
				t.Fatal("master after renewals lapsed")
			}
			a.renew()
			if _, ok := a.l.Master(a.now); ok || a.l.Role() != lease.Fenced {
				t.Fatalf("a later renewal brought it back: %v", a.l.Role())
			}
			a.ev = append(a.ev, a.l.Events()...)
			if len(a.events(lease.Lost)) != 1 || len(a.events(lease.FencedEvent)) != 1 {
				t.Errorf("events %v", a.ev)
			}
			if err := a.l.Acquire(a.now); !errors.Is(err, lease.ErrFenced) {
				t.Errorf("Acquire after fencing: %v", err)
			}
			if a.l.Next().Kind != lease.None {
				t.Errorf("a fenced lease asks for %v", a.l.Next())
			}
			if !m.Until.Equal(t0.Add(p.RenewalFail)) {
				t.Errorf("until %v", m.Until)
			}
		})
	}
}

// TestFirstRenewalAfterItsDeadline: an incarnation whose first slot write
// failed (but may have landed, starting other hosts' count) and whose
// first successful renewal comes after the join's deadline fences: other
// hosts may have judged it dead meanwhile. Found by the simulation.
func TestFirstRenewalAfterItsDeadline(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	a := newHost(t, st, 0, 1, t0)
	renewBy := t0.Add(p.HostDead - p.IOTimeout - p.Margin())
	a.now = renewBy.Add(time.Millisecond)
	a.renew()
	if a.l.Role() != lease.Fenced {
		t.Fatalf("first renewal after the deadline: role %v", a.l.Role())
	}
	b := newHost(t, st, 1, 1, t0)
	b.now = renewBy
	b.renew()
	b.view(allLive(1), nil)
	acquireAlone(t, b, st)
	c := newHost(t, st, 2, 1, t0)
	c.now = renewBy.Add(2 * p.IOTimeout)
	c.l.Acquire(c.now)
	if c.l.Role() != lease.Fenced {
		t.Fatalf("no renewal by the deadline + io_timeout: role %v", c.l.Role())
	}
}

// TestLeaderWriteTimesOut: the leader write times out; the lease waits
// until the write can no longer land before reading the record back,
// and finds it landed.
func TestLeaderWriteTimesOut(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	st.SetFault(func(op lease.MemOp) error {
		if op.Write && op.Leader {
			return fmt.Errorf("stuck: %w", area.ErrTimeout)
		}
		return nil
	})
	a := newHost(t, st, 0, 1, t0)
	a.renew()
	a.view(allLive(0), nil)
	a.l.Acquire(a.now)
	for a.l.Next().Kind != lease.WriteLeader {
		a.step(a.now.Add(time.Hour))
	}
	issued := a.now
	a.step(a.now)
	next := a.l.Next()
	if next.Kind != lease.ReadLeader || next.NotBefore.Before(issued.Add(lease.LateWrite(p))) {
		t.Fatalf("after a timed-out leader write: %+v, want a read no earlier than %v", next, issued.Add(lease.LateWrite(p)))
	}
	// The stuck write lands meanwhile.
	st.SetFault(nil)
	st.WriteLeader(ondisk.Leader{Version: 1, PoolUUID: testPool, Epoch: 1, Owner: owner(0, 1)}.Encode())
	a.now = next.NotBefore
	a.renew()
	a.step(a.now)
	if m, ok := a.l.Master(a.now); !ok || m.Epoch != 1 {
		t.Fatalf("not master: %+v", a.l.Status())
	}
}

// TestCorruptBlockBlocks: a ballot block that reads corrupt may hide a
// higher ballot (a torn read of a write under way): no ballot completes
// while it does. When its owner writes it again, acquisition proceeds.
func TestCorruptBlockBlocks(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	st.WriteBallot(3, []byte("scribbled"))
	a := newHost(t, st, 0, 1, t0)
	a.renew()
	a.view(allLive(0), nil)
	a.l.Acquire(a.now)
	for i := 0; i < 20; i++ {
		a.step(a.now.Add(time.Hour))
		a.renew()
	}
	if _, ok := a.l.Master(a.now); ok {
		t.Fatal("acquired over a corrupt block")
	}
	if !strings.Contains(a.l.Status().LastAbort, "slot 3 is corrupt") {
		t.Errorf("last abort %q", a.l.Status().LastAbort)
	}
	st.WriteBallot(3, make([]byte, 512))
	for i := 0; i < 20; i++ {
		a.step(a.now.Add(time.Hour))
		a.renew()
	}
	if _, ok := a.l.Master(a.now); !ok {
		t.Fatalf("not master once the block reads well: %+v", a.l.Status())
	}
}

// TestSkipDecidedEpochOfGoneOwner: instance 1 was decided for a host that
// died before writing its record. A host that learns it goes on to
// instance 2 at once, and the leader record jumps from 0 to 2.
func TestSkipDecidedEpochOfGoneOwner(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	// Host a's phase 2 of instance 1 landed; then a died.
	st.WriteBallot(0, ondisk.Ballot{Version: 1, Index: 0, PoolUUID: testPool, Generation: 1, Lver: 1, Mbal: 1, Bal: 1,
		Value: owner(0, 1)}.Encode())
	b := newHost(t, st, 1, 1, t0)
	b.renew()
	b.view(map[int]liveness.State{0: liveness.Dead, 1: liveness.Live}, nil)
	b.l.TryAcquire(b.now)
	b.run(b.now.Add(time.Second), 30)
	if m, ok := b.l.Master(b.now); !ok || m.Epoch != 2 {
		t.Fatalf("status %+v events %v", b.l.Status(), b.ev)
	}
	var dec []string
	for _, e := range b.events(lease.Decided) {
		dec = append(dec, fmt.Sprintf("%d:%s", e.Epoch, e.Owner.Name))
	}
	if strings.Join(dec, " ") != "1:a-host 2:b-host" {
		t.Errorf("decisions %v", dec)
	}
	// With the owner live instead, TryAcquire learns it and is Busy.
	st2 := lease.NewMemStorage(header(t, 4, p))
	st2.WriteBallot(0, ondisk.Ballot{Version: 1, Index: 0, PoolUUID: testPool, Generation: 1, Lver: 1, Mbal: 1, Bal: 1,
		Value: owner(0, 1)}.Encode())
	c := newHost(t, st2, 1, 1, t0)
	c.renew()
	c.view(allLive(0, 1), nil)
	c.l.TryAcquire(c.now)
	c.run(c.now.Add(time.Second), 30)
	if busy := c.events(lease.Busy); len(busy) != 1 || busy[0].Owner != owner(0, 1) {
		t.Fatalf("events %v", c.ev)
	}
}

// TestJoinLaterInstance: a host eligible for instance 2 (the owner of
// epoch 1 is dead) finds a ballot block of instance 3. It reads the leader
// record again: if that still shows epoch 1, the block's writer learnt
// instance 2 and found its owner gone, and the host joins instance 3. If
// the record now shows epoch 2, held by a live host, the block may be that
// host's hand-over, and the host waits: a block of the instance after the
// current epoch is never trusted.
func TestJoinLaterInstance(t *testing.T) {
	p := profile(t, "default")
	for _, c := range []struct {
		name    string
		advance bool // the leader record moves to epoch 2 meanwhile
	}{{"record still at epoch 1", false}, {"record at epoch 2 meanwhile", true}} {
		t.Run(c.name, func(t *testing.T) {
			st := lease.NewMemStorage(header(t, 4, p))
			st.WriteLeader(ondisk.Leader{Version: 1, PoolUUID: testPool, Epoch: 1, Owner: owner(0, 1)}.Encode())
			b := newHost(t, st, 1, 1, t0)
			b.renew()
			b.view(map[int]liveness.State{0: liveness.Dead, 1: liveness.Live, 2: liveness.Live}, nil)
			b.l.Acquire(b.now)
			b.step(b.now) // the leader read: eligible for instance 2
			if b.l.Next().Kind != lease.ReadBallots {
				t.Fatalf("next %v", b.l.Next())
			}
			st.WriteBallot(2, ondisk.Ballot{Version: 1, Index: 2, PoolUUID: testPool, Generation: 1, Lver: 3, Mbal: 3}.Encode())
			if c.advance {
				st.WriteLeader(ondisk.Leader{Version: 1, PoolUUID: testPool, Epoch: 2, Owner: owner(2, 1)}.Encode())
			}
			b.run(b.now.Add(time.Second), 30)
			m, ok := b.l.Master(b.now)
			if c.advance {
				if ok || !strings.Contains(b.l.Status().Waiting, "epoch 2 is held by c-host") {
					t.Fatalf("master %v epoch %d; status %+v", ok, m.Epoch, b.l.Status())
				}
				return
			}
			if !ok || m.Epoch != 3 {
				t.Fatalf("master %v epoch %d, want epoch 3; status %+v", ok, m.Epoch, b.l.Status())
			}
		})
	}
}

func TestReleaseDuringAcquisition(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	a := newHost(t, st, 0, 1, t0)
	a.renew()
	a.view(allLive(0), nil)
	a.l.Acquire(a.now)
	// Up to and including the phase 2 write: our value may be chosen.
	for a.l.Next().Kind != lease.WriteBallot || a.l.Next().Ballot.Bal == 0 {
		a.step(a.now.Add(time.Hour))
	}
	a.step(a.now)
	a.l.Release(a.now)
	if a.l.Role() != lease.Acquiring {
		t.Fatalf("released mid-ballot with its value written: role %v", a.l.Role())
	}
	a.run(a.now.Add(time.Second), 10)
	if d := leaderOf(t, st); !d.Leader.Released() || d.Leader.Epoch != 1 || d.Leader.Owner != owner(0, 1) {
		t.Fatalf("leader %+v", d.Leader)
	}
	if a.l.Role() != lease.Follower || len(a.events(lease.Acquired)) != 0 || len(a.events(lease.Released)) != 1 {
		t.Fatalf("role %v events %v", a.l.Role(), a.ev)
	}
	// Before phase 2: stops at once.
	b := newHost(t, st, 1, 1, t0)
	b.renew()
	b.view(allLive(1), nil)
	b.l.Acquire(b.now)
	b.step(b.now)
	b.l.Release(b.now)
	if b.l.Role() != lease.Follower {
		t.Fatalf("role %v", b.l.Role())
	}
}

func TestStop(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	a := newHost(t, st, 0, 1, t0)
	a.renew()
	a.view(allLive(0), nil)
	acquireAlone(t, a, st)
	a.l.Stop(a.now)
	if _, ok := a.l.Master(a.now); ok || a.l.Next().Kind != lease.None {
		t.Fatal("stopped lease still master or asking for I/O")
	}
	if err := a.l.Acquire(a.now); !errors.Is(err, lease.ErrStopped) {
		t.Errorf("Acquire after Stop: %v", err)
	}
	// Stop after a write timed out: quiescent only once it can no longer land.
	st = lease.NewMemStorage(header(t, 4, p))
	st.SetFault(func(op lease.MemOp) error {
		if op.Write {
			return area.ErrTimeout
		}
		return nil
	})
	b := newHost(t, st, 1, 1, t0)
	b.renew()
	b.view(allLive(0, 1), nil)
	b.l.Acquire(b.now)
	for b.l.Next().Kind != lease.WriteBallot {
		b.step(b.now.Add(time.Hour))
	}
	issued := b.now
	b.step(b.now)
	b.l.Stop(b.now)
	if q := b.l.QuiescentAt(); !q.Equal(issued.Add(lease.LateWrite(p))) {
		t.Errorf("QuiescentAt %v, want %v", q, issued.Add(lease.LateWrite(p)))
	}
}

func TestConfigErrors(t *testing.T) {
	p := profile(t, "default")
	good := lease.Config{Self: owner(1, 1), Pool: testPool, Slots: 4, Timing: p, FirstRenewalBy: t0}
	if _, err := lease.New(good); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		mod  func(c *lease.Config)
		want string
	}{
		{"slots", func(c *lease.Config) { c.Slots = 1 }, "slot count 1"},
		{"own slot", func(c *lease.Config) { c.Self.Slot = 4 }, "own slot 4"},
		{"generation", func(c *lease.Config) { c.Self.Generation = 0 }, "generation is 0"},
		{"name", func(c *lease.Config) { c.Self.Name = "a b" }, "0x20"},
		{"pool", func(c *lease.Config) { c.Pool = ondisk.UUID{} }, "pool UUID"},
		{"timing", func(c *lease.Config) { c.Timing.HostDead = c.Timing.RenewalFail }, "host_dead"},
		{"first renewal", func(c *lease.Config) { c.FirstRenewalBy = time.Time{} }, "FirstRenewalBy"},
	} {
		cfg := good
		c.mod(&cfg)
		if _, err := lease.New(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
	l, _ := lease.New(good)
	if err := l.ProposeSuccessor(t0, owner(2, 1), t0.Add(time.Second)); !errors.Is(err, lease.ErrNotMaster) {
		t.Errorf("ProposeSuccessor by a follower: %v", err)
	}
}

func TestProposeSuccessorBadTargets(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	a := newHost(t, st, 0, 1, t0)
	a.renew()
	a.view(allLive(0), nil)
	acquireAlone(t, a, st)
	for _, c := range []struct {
		target ondisk.Owner
		want   string
	}{
		{owner(0, 1), "this host"},
		{owner(4, 1), "outside"},
		{ondisk.Owner{Slot: 1, Generation: 0, Name: "x"}, "generation"},
		{ondisk.Owner{Slot: 1, Generation: 1}, "host name"},
	} {
		if err := a.l.ProposeSuccessor(a.now, c.target, a.now.Add(time.Second)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("target %v: %v, want %q", c.target, err, c.want)
		}
	}
	if _, ok := a.l.Master(a.now); !ok {
		t.Error("a refused hand-over stopped the master")
	}
}

func TestValidator(t *testing.T) {
	var v lease.Validator
	if err := v.Check(0, ondisk.Owner{}); err != nil {
		t.Errorf("zero validator, epoch 0: %v", err)
	}
	v.Observe(3, owner(1, 2))
	v.Observe(2, owner(0, 1)) // older: ignored
	for _, c := range []struct {
		epoch uint64
		from  ondisk.Owner
		want  error
	}{
		{3, owner(1, 2), nil},
		{3, ondisk.Owner{Slot: 1, Generation: 2, Name: "renamed"}, nil},
		{2, owner(0, 1), lease.ErrStaleEpoch},
		{3, owner(1, 3), lease.ErrNotOwner},
		{3, owner(0, 2), lease.ErrNotOwner},
		{4, owner(1, 2), lease.ErrAheadEpoch},
	} {
		if err := v.Check(c.epoch, c.from); !errors.Is(err, c.want) {
			t.Errorf("Check(%d, %v) = %v, want %v", c.epoch, c.from, err, c.want)
		}
	}
	if v.Epoch() != 3 {
		t.Errorf("Epoch %d", v.Epoch())
	}
	for _, c := range []struct {
		rec, leader uint64
		want        bool
	}{{1, 1, true}, {2, 1, true}, {0, 1, false}, {4, 5, false}, {0, 0, true}} {
		if got := lease.Fresh(c.rec, c.leader); got != c.want {
			t.Errorf("Fresh(%d, %d) = %v", c.rec, c.leader, got)
		}
	}
}

// TestPhase1KeepsAcceptedValue: phase 1 raises mbal only; a value the slot
// accepted earlier in the same instance (here by a previous incarnation)
// stays in the block, and the ballot adopts it.
func TestPhase1KeepsAcceptedValue(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	prev := ondisk.Ballot{Version: 1, Index: 1, PoolUUID: testPool, Generation: 1, Lver: 1, Mbal: 6, Bal: 6,
		Value: owner(3, 1), ValueFlags: ondisk.ValueHandOver}
	st.WriteBallot(1, prev.Encode())
	b := newHost(t, st, 1, 2, t0) // the next incarnation of slot 1
	b.renew()
	b.view(map[int]liveness.State{1: liveness.Live, 3: liveness.Live}, map[int]uint64{1: 2})
	b.l.TryAcquire(b.now)
	for b.l.Next().Kind != lease.WriteBallot {
		b.step(b.now.Add(time.Hour))
	}
	w := b.l.Next().Ballot
	if w.Lver != 1 || w.Mbal <= 6 || w.Mbal%4 != 2 || w.Bal != 6 || w.Value != owner(3, 1) || w.ValueFlags != ondisk.ValueHandOver || w.Generation != 2 {
		t.Fatalf("phase 1 writes %+v", w)
	}
	b.run(b.now.Add(time.Second), 10)
	if ev := b.events(lease.Decided); len(ev) != 1 || ev[0].Owner != owner(3, 1) {
		t.Fatalf("events %v", b.ev)
	}
	if busy := b.events(lease.Busy); len(busy) != 1 {
		t.Fatalf("events %v", b.ev)
	}
}

// TestAcquireWhileReleasing: Acquire called while the release is being
// written is not forgotten: the host takes the next epoch.
func TestAcquireWhileReleasing(t *testing.T) {
	p := profile(t, "default")
	st := lease.NewMemStorage(header(t, 4, p))
	a := newHost(t, st, 0, 1, t0)
	a.renew()
	a.view(allLive(0), nil)
	acquireAlone(t, a, st)
	a.l.Release(a.now)
	if a.l.Role() != lease.Releasing {
		t.Fatalf("role %v", a.l.Role())
	}
	a.l.Acquire(a.now)
	a.run(a.now.Add(time.Second), 20)
	if m, ok := a.l.Master(a.now); !ok || m.Epoch != 2 {
		t.Fatalf("not master of epoch 2: %+v %v", a.l.Status(), a.ev)
	}
}

// TestReleaseCheckNeverOverwrites: a release write that timed out is
// checked by reading the record back. A torn read may be the next owner
// writing its record over our landed release: the lease reads again and
// never writes over it. A valid older record shows that the release did
// not land: it is written again. Found by the simulation (the record went
// back from epoch 3 to 1).
func TestReleaseCheckNeverOverwrites(t *testing.T) {
	p := profile(t, "default")
	for _, c := range []struct {
		name     string
		seen     func(st *lease.MemStorage)
		rewrites bool
	}{
		{"torn", func(st *lease.MemStorage) { st.WriteLeader([]byte("HBLD torn")) }, false},
		{"next epoch", func(st *lease.MemStorage) {
			st.WriteLeader(ondisk.Leader{Version: 1, PoolUUID: testPool, Epoch: 2, Owner: owner(1, 1)}.Encode())
		}, false},
		{"still held", func(st *lease.MemStorage) {
			st.WriteLeader(ondisk.Leader{Version: 1, PoolUUID: testPool, Epoch: 1, Owner: owner(0, 1)}.Encode())
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := lease.NewMemStorage(header(t, 4, p))
			a := newHost(t, st, 0, 1, t0)
			a.renew()
			a.view(allLive(0), nil)
			acquireAlone(t, a, st)
			st.SetFault(func(op lease.MemOp) error {
				if op.Write && op.Leader {
					return area.ErrTimeout
				}
				return nil
			})
			a.l.Release(a.now)
			a.step(a.now) // the release write times out
			st.SetFault(nil)
			c.seen(st)
			writes := st.Stats().Writes
			for i := 0; i < 3; i++ {
				a.now = a.l.Next().NotBefore
				a.renew()
				a.step(a.now)
			}
			d := leaderOf(t, st)
			rewrote := st.Stats().Writes > writes
			if rewrote != c.rewrites {
				t.Fatalf("rewrote %v, want %v; record now %+v; events %v", rewrote, c.rewrites, d, a.ev)
			}
			if c.rewrites && (!d.Leader.Released() || d.Leader.Epoch != 1) {
				t.Fatalf("record %+v", d.Leader)
			}
			if c.name == "next epoch" && len(a.events(lease.Released)) != 1 {
				t.Fatalf("events %v", a.ev)
			}
		})
	}
}

// Holder.Check: the validator's rules against one leader record, a
// released epoch refused, and nothing accepted before the first read.
func TestHolderCheck(t *testing.T) {
	o := owner(1, 2)
	if err := (lease.Holder{}).Check(1, o); !errors.Is(err, lease.ErrAheadEpoch) {
		t.Errorf("unread holder: %v, want ErrAheadEpoch", err)
	}
	h := lease.Holder{Known: true, Epoch: 3, Owner: o}
	if err := h.Check(3, o); err != nil {
		t.Errorf("the owner's epoch: %v", err)
	}
	if err := h.Check(2, o); !errors.Is(err, lease.ErrStaleEpoch) {
		t.Errorf("an older epoch: %v, want ErrStaleEpoch", err)
	}
	if err := h.Check(3, owner(2, 1)); !errors.Is(err, lease.ErrNotOwner) {
		t.Errorf("another writer: %v, want ErrNotOwner", err)
	}
	h.Released = true
	if err := h.Check(3, o); err == nil {
		t.Error("a released epoch was accepted")
	}
}

// A ballot block that reads corrupt for good (a bad sector) in a slot no
// host ever joined, or of a dead host, no longer stops every acquisition
// (issue 10 item 7): it is counted empty when a recent view shows that
// nobody can be writing it. A corrupt block of a live host, or a view too
// old to say, still aborts.
func TestCorruptBlockOfAGoneHost(t *testing.T) {
	p := profile(t, "default")
	rows := []struct {
		name    string
		scrib   int                            // the slot whose block is scribbled
		view    func(now time.Time) lease.View // b's view
		master  bool
		ignored bool
	}{
		{"slot never joined", 3, func(now time.Time) lease.View { return snapshot(now, now, liveness.Live) }, true, true},
		{"dead host", 2, func(now time.Time) lease.View { return snapshot(now, now, liveness.Dead) }, true, true},
		{"live host", 2, func(now time.Time) lease.View { return snapshot(now, now, liveness.Live) }, false, false},
		{"view too old", 3, func(now time.Time) lease.View {
			return snapshot(now, now.Add(-p.JoinWait()), liveness.Live)
		}, false, false},
		{"view without its read time", 3, func(now time.Time) lease.View {
			return snapshot(now, now, liveness.Live).Peers
		}, false, false},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			st := lease.NewMemStorage(header(t, 4, p))
			a := newHost(t, st, 0, 1, t0)
			a.renew()
			a.view(allLive(0), nil)
			acquireAlone(t, a, st)
			garbage := make([]byte, 512)
			for i := range garbage {
				garbage[i] = 0xab
			}
			if err := st.WriteBallot(r.scrib, garbage); err != nil {
				t.Fatal(err)
			}
			// a-host dies; b-host sees it dead host_dead later.
			now := a.now.Add(p.HostDead + time.Second)
			b := newHost(t, st, 1, 1, now.Add(-p.Interval))
			b.renew()
			b.now = now
			b.renew()
			b.l.SetView(now, r.view(now))
			b.l.Acquire(now)
			b.run(now.Add(p.Interval/2), 40)
			_, master := b.l.Master(b.now)
			if master != r.master {
				t.Fatalf("master = %v, want %v; status %+v", master, r.master, b.l.Status())
			}
			if got := len(b.events(lease.BlockIgnored)) > 0; got != r.ignored {
				t.Errorf("block-ignored event: %v, want %v (events %v)", got, r.ignored, b.ev)
			}
			if !r.master && len(b.events(lease.Unreadable)) == 0 {
				t.Errorf("no unreadable event for the block that stops the acquisition: %v", b.ev)
			}
		})
	}
}

// snapshot is b-host's view at now, read at issued: a-host (slot 0) dead
// for a second, b-host live, slot 2 in state s2, slot 3 never joined.
func snapshot(now, issued time.Time, s2 liveness.State) lease.Snapshot {
	v := lease.Static{
		0: {State: liveness.Dead, Generation: 1, Name: hostName(0), StateSince: now.Add(-time.Second), LastChange: now.Add(-time.Minute)},
		1: {State: liveness.Live, Generation: 1, Name: hostName(1), StateSince: now.Add(-time.Minute), LastChange: now},
		2: {State: s2, Generation: 1, Name: hostName(2), StateSince: now.Add(-time.Second), LastChange: now.Add(-time.Minute)},
	}
	return lease.Snapshot{Peers: v, Issued: issued}
}
