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

type viewEntry struct {
	p  Peer
	ok bool
}

type peersView []viewEntry

func (v peersView) Peer(slot int) (Peer, bool) {
	if slot < 0 || slot >= len(v) || !v[slot].ok {
		return Peer{}, false
	}
	return v[slot].p, true
}

// ViewOf makes a View from a liveness tracker's Peers: a snapshot, safe to
// keep while the tracker goes on.
func ViewOf(peers []liveness.Peer) View {
	n := 0
	for _, p := range peers {
		n = max(n, p.Slot+1)
	}
	v := make(peersView, n)
	for _, p := range peers {
		if p.Slot < 0 || !p.HaveRecord {
			continue
		}
		v[p.Slot] = viewEntry{peerOf(p), true}
	}
	return v
}

func peerOf(p liveness.Peer) Peer {
	return Peer{State: p.State, Generation: p.Record.Generation, Name: p.Record.HostName,
		GenerationSince: p.GenerationSince}
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
	if !ok {
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
