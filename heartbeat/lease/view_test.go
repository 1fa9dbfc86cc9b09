package lease_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// ViewOf and TrackerView give the same answers from a real tracker: the
// state and generation of every slot with a valid record, NoRecord for a
// slot only ever read corrupt, nothing for a slot never read but unused.
func TestViews(t *testing.T) {
	p := profile(t, "fast")
	tr := liveness.New(p)
	rec := func(slot int, gen, seq uint64) ondisk.Decoded {
		return ondisk.Decoded{Index: slot, Status: ondisk.SlotOK, Slot: ondisk.Slot{Version: 1, State: ondisk.StateLive,
			Index: uint32(slot), PoolUUID: testPool, Generation: gen, Sequence: seq, HostName: hostName(slot)}}
	}
	at := t0
	read := func(slots ...ondisk.Decoded) {
		tr.Observe(at, at.Add(time.Millisecond), slots)
		at = at.Add(p.Interval)
	}
	corrupt := ondisk.Decoded{Index: 2, Status: ondisk.SlotCorrupt, Reason: "torn"}
	unused := ondisk.Decoded{Index: 3, Status: ondisk.SlotUnused}
	read(rec(0, 1, 1), rec(1, 4, 1), corrupt, unused)
	read(rec(0, 1, 2), rec(1, 4, 1), corrupt, unused) // slot 0 changes: live
	for _, v := range []lease.View{lease.ViewOf(tr.Peers()), lease.TrackerView(tr)} {
		if p, ok := v.Peer(0); !ok || p.State != liveness.Live || p.Generation != 1 || p.Name != "a-host" {
			t.Errorf("%T slot 0: %+v %v", v, p, ok)
		}
		if p, ok := v.Peer(1); !ok || p.State != liveness.Unknown || p.Generation != 4 {
			t.Errorf("%T slot 1: %+v %v", v, p, ok)
		}
		if p, ok := v.Peer(2); !ok || !p.NoRecord {
			t.Errorf("%T slot 2 (only read corrupt): %+v %v, want NoRecord", v, p, ok)
		}
		for _, s := range []int{3, 9, -1} {
			if p, ok := v.Peer(s); ok {
				t.Errorf("%T slot %d: %+v, want nothing", v, s, p)
			}
		}
	}
	// The tracker view follows the tracker; the snapshot does not.
	snap := lease.ViewOf(tr.Peers())
	live := lease.TrackerView(tr)
	for i := 0; i < 40; i++ {
		read(rec(0, 1, 2), rec(1, 4, 1), corrupt, unused)
	}
	if p, _ := live.Peer(0); p.State != liveness.Dead {
		t.Errorf("tracker view: slot 0 is %v after silence, want dead", p.State)
	}
	if p, _ := snap.Peer(0); p.State != liveness.Live {
		t.Errorf("snapshot changed: %v", p.State)
	}
}

func TestHolderAndEventStrings(t *testing.T) {
	h := lease.Holder{Known: true, Epoch: 4, Owner: owner(1, 2)}
	if h.String() != "epoch 4 held by b-host (slot 1, generation 2)" || h.Free() {
		t.Errorf("%v free=%v", h, h.Free())
	}
	h.Released, h.Successor = true, owner(2, 1)
	if h.String() != "epoch 4 of b-host (slot 1, generation 2), released for c-host (slot 2, generation 1)" || !h.Free() {
		t.Errorf("%v", h)
	}
	if (lease.Holder{}).String() != "unknown" || (lease.Holder{Known: true}).String() != "never held" || !(lease.Holder{Known: true}).Free() {
		t.Error("unknown / never held")
	}
	e := lease.Event{Kind: lease.HandOverFailed, Epoch: 3, Owner: owner(1, 1), Resumed: true, Detail: "why"}
	if got := e.String(); got != "hand-over-failed epoch 3 b-host (slot 1, generation 1) resumed=true: why" {
		t.Errorf("%q", got)
	}
	for k := lease.Acquired; k <= lease.BlockIgnored; k++ {
		if b, _ := k.MarshalText(); len(b) == 0 || strings.HasPrefix(string(b), "event(") {
			t.Errorf("kind %d has no name", k)
		}
	}
	for r := lease.Follower; r <= lease.Fenced; r++ {
		if b, _ := r.MarshalText(); strings.HasPrefix(string(b), "role(") {
			t.Errorf("role %d has no name", r)
		}
	}
}
