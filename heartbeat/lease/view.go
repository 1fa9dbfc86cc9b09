package lease

import (
	"fmt"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Peer is what the caller's liveness view says about one slot.
type Peer struct {
	// State is the liveness state of the slot's current generation.
	State liveness.State
	// Generation is the generation of the slot's last valid record.
	Generation uint64
	Name       string
	// GenerationSince is when the caller first saw Generation in the
	// slot (the return of that read, on its safety clock): a later
	// generation proves the earlier incarnation gone only a Quarantine
	// after it (gone). Zero: not known, and a later generation is not
	// taken as proof.
	GenerationSince time.Time
	// StateSince is when State was entered, and LastChange the return of
	// the read that last showed the slot change (zero: none seen), both on
	// the caller's safety clock: a ballot block of a dead or departed
	// host that reads corrupt may be counted empty only while nothing
	// has changed in its slot since (droppable).
	StateSince, LastChange time.Time
	// NoRecord: the slot has only ever read corrupt; nothing is known
	// of it.
	NoRecord bool
}

// View is the caller's liveness view, consulted whenever the lease decides
// whether the owner of an epoch may be replaced. The lease calls it only
// from its own methods, so a View that reads the caller's data must not be
// changed concurrently with them.
type View interface {
	// Peer reports what is known of slot; ok is false for a slot never
	// seen with a valid record.
	Peer(slot int) (p Peer, ok bool)
}

// ReadView is a View that also says when the read it reflects was issued,
// on the caller's safety clock. Only such a view can confirm that nobody
// is writing a ballot block that read corrupt (droppable): a slot's
// claim lands before any ballot write of its holder, so a read issued
// after the ballot read returned shows it.
type ReadView interface {
	View
	// ReadIssued is the issue time of the successful read of every slot
	// (a failed read is none: it gives no view) that the
	// view reflects; a slot the view does not report read unused at it
	// and at every read before.
	ReadIssued() time.Time
}

type viewEntry struct {
	p  Peer
	ok bool
}

type peersView struct {
	entries []viewEntry
	issued  time.Time
}

func (v peersView) Peer(slot int) (Peer, bool) {
	if slot < 0 || slot >= len(v.entries) || !v.entries[slot].ok {
		return Peer{}, false
	}
	return v.entries[slot].p, true
}

func (v peersView) ReadIssued() time.Time { return v.issued }

// ViewOf makes a View from a liveness tracker's Peers: a snapshot, safe to
// keep while the tracker goes on.
func ViewOf(peers []liveness.Peer) View { return ViewRead(time.Time{}, peers) }

// ViewRead is ViewOf for the Peers after the read issued at issued: a
// ReadView (a zero issued confirms nothing).
func ViewRead(issued time.Time, peers []liveness.Peer) View {
	n := 0
	for _, p := range peers {
		n = max(n, p.Slot+1)
	}
	v := peersView{entries: make([]viewEntry, n), issued: issued}
	for _, p := range peers {
		if p.Slot < 0 {
			continue
		}
		if !p.HaveRecord {
			v.entries[p.Slot] = viewEntry{Peer{NoRecord: true}, true}
			continue
		}
		v.entries[p.Slot] = viewEntry{peerOf(p), true}
	}
	return v
}

// Snapshot is a Static view with the issue time of the read it reflects
// (a ReadView).
type Snapshot struct {
	Peers  Static
	Issued time.Time
}

// Peer implements View.
func (s Snapshot) Peer(slot int) (Peer, bool) { return s.Peers.Peer(slot) }

// ReadIssued implements ReadView.
func (s Snapshot) ReadIssued() time.Time { return s.Issued }

func peerOf(p liveness.Peer) Peer {
	return Peer{State: p.State, Generation: p.Record.Generation, Name: p.Record.HostName,
		GenerationSince: p.GenerationSince, StateSince: p.StateSince, LastChange: p.LastChange}
}

// gone reports whether incarnation o can no longer act, nor any write of it
// land, at now: its slot has held a later generation for a quarantine, or o
// is dead or left in the view. Dead implies that o fenced itself (package
// liveness), left that it stopped cleanly after its writes landed, and a
// later generation that o's process is gone (package join: the host lock)
// and, a quarantine after the caller first saw it, that every write o issued
// has landed or never will (doc.go, "Late writes of an earlier
// incarnation"). Anything else — live, suspect, unknown, never seen, a
// later generation seen too recently — is not gone.
func gone(v View, self ondisk.Owner, slots int, o ondisk.Owner, now time.Time, quarantine time.Duration) (bool, string) {
	if int64(o.Slot) >= int64(slots) {
		return true, "its slot is outside the area"
	}
	if o.Slot == self.Slot {
		if o.Generation < self.Generation {
			return true, "this host's slot now holds a later generation"
		}
		return false, "it is this incarnation"
	}
	if v == nil {
		return false, "no liveness view yet"
	}
	p, ok := v.Peer(int(o.Slot))
	if !ok || p.NoRecord {
		return false, "its slot has not been read yet"
	}
	switch {
	case p.Generation > o.Generation && p.GenerationSince.IsZero():
		return false, fmt.Sprintf("its slot holds generation %d, since a moment not known", p.Generation)
	case p.Generation > o.Generation && now.Before(p.GenerationSince.Add(quarantine)):
		return false, fmt.Sprintf("its slot has held generation %d for only %v, and writes of generation %d may land until %v after that",
			p.Generation, now.Sub(p.GenerationSince).Round(time.Millisecond), o.Generation, quarantine)
	case p.Generation > o.Generation:
		return true, "its slot now holds a later generation"
	case p.Generation < o.Generation:
		return false, "its slot shows an older generation"
	case p.State == liveness.Dead:
		return true, "it is dead"
	case p.State == liveness.Left:
		return true, "it has left"
	}
	return false, "it is " + p.State.String()
}

// TrackerView is a View that reads a liveness tracker when the lease asks
// (rarely: when it decides whether an owner is gone), instead of a snapshot
// per read. The tracker must not be used concurrently with the lease's
// methods.
func TrackerView(t *liveness.Tracker) View { return trackerView{t} }

type trackerView struct{ t *liveness.Tracker }

func (v trackerView) Peer(slot int) (Peer, bool) {
	for _, p := range v.t.Peers() {
		if p.Slot == slot && p.HaveRecord {
			return peerOf(p), true
		}
		if p.Slot == slot {
			return Peer{NoRecord: true}, true
		}
	}
	return Peer{}, false
}

// Static is a View given as a map from slot to Peer (tests, tools).
type Static map[int]Peer

// Peer implements View.
func (s Static) Peer(slot int) (Peer, bool) {
	p, ok := s[slot]
	return p, ok
}
