package liveness

import (
	"fmt"
	"github.com/hbfence/hbfence/internal/textenum"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// State is what an observer believes about a host.
type State int

const (
	// Unknown: the slot has not changed since this observer started
	// watching it, and host_dead has not yet passed.
	Unknown State = iota
	// Live: the slot changed within renewal_fail.
	Live
	// Suspect: no change for longer than renewal_fail; the host may be
	// fencing itself.
	Suspect
	// Dead: a read issued host_dead or more after the last change showed
	// the slot's record valid and unchanged. The host has fenced itself
	// by now (see doc.go).
	// Dead is final for the generation: only a new incarnation (a new
	// generation) is live again.
	Dead
	// Left: the host wrote "left" on a clean stop.
	Left
)

var stateNames = []string{"unknown", "live", "suspect", "dead", "left"}

func (s State) String() string { return textenum.Name(stateNames, int(s), "state") }

// MarshalText renders the state for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state rendered by MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	i, err := textenum.Parse(stateNames, b, "liveness state")
	if err != nil {
		return err
	}
	*s = State(i)
	return nil
}

// Peer is what the observer knows of one slot.
type Peer struct {
	Slot int
	// Record is the last valid record seen; HaveRecord is false while the
	// slot has only ever read corrupt.
	Record     ondisk.Slot
	HaveRecord bool
	// Status is how the slot decoded at the last successful read, and
	// Reason why, when it was not ok.
	Status ondisk.SlotStatus
	Reason string
	State  State
	// StateSince is when State was entered, on the observer's clock.
	StateSince time.Time
	// FirstSeen is the completion of the read that first showed the
	// current record; LastChange is the completion of the read that first
	// showed a change, zero while none has been seen.
	FirstSeen  time.Time
	LastChange time.Time
	// GenerationSince is the completion of the read that first showed
	// the current record's generation. A later generation proves that the
	// earlier incarnation's process is gone, but its writes may land
	// until LateWrite after their issue: the lease takes it as gone only a
	// quarantine after this (lease's doc.go, "Late writes").
	GenerationSince time.Time
	// quiet is the issue time of the last read that showed the current
	// record valid and unchanged; zero if none has since the record
	// first showed. Only such a read can decide that the host is dead:
	// a corrupt (torn) or zeroed read may have raced a write that was
	// landing, so it proves nothing about the writer's silence.
	quiet time.Time
	// deadGeneration is the generation declared dead (valid when State
	// is Dead).
	deadGeneration uint64
	// Stale is the last record of an older generation than Record seen in
	// the slot (a late write of an earlier incarnation, landed over the
	// current one's), while no newer write of the current generation has
	// replaced it; HaveStale says there is one. It is never taken as the
	// slot's record (doc.go, "Older generations").
	Stale     ondisk.Slot
	HaveStale bool
}

// Name is the host name of the slot's last valid record.
func (p Peer) Name() string { return p.Record.HostName }

// Baseline is the time from which silence is measured: the last change,
// or the first sight if no change has been seen.
func (p Peer) Baseline() time.Time {
	if p.LastChange.IsZero() {
		return p.FirstSeen
	}
	return p.LastChange
}

// Age is how long the slot has been silent at now.
func (p Peer) Age(now time.Time) time.Duration { return now.Sub(p.Baseline()) }

// EventKind says what an Event reports.
type EventKind int

const (
	// Transition: the peer's State changed.
	Transition EventKind = iota
	// NewIncarnation: the slot's generation changed: the host joined
	// again. It is not proof that the old incarnation's guests are gone.
	NewIncarnation
	// Revenant: a generation already declared dead wrote again. Its host
	// stalled for longer than host_dead and must fence itself; it stays
	// dead here.
	Revenant
	// Corrupt: a slot read corrupt after having been valid (or first
	// appeared corrupt).
	Corrupt
	// Stale: a record of an older generation than the one held appeared
	// in the slot: a late write of an earlier incarnation. It is ignored
	// (the held record, its state and generation stay), but it counts as
	// a change for the silence rule: it may hide writes of the current
	// generation made before it landed.
	Stale
)

func (k EventKind) String() string {
	switch k {
	case Transition:
		return "transition"
	case NewIncarnation:
		return "new-incarnation"
	case Revenant:
		return "revenant"
	case Corrupt:
		return "corrupt"
	case Stale:
		return "stale"
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// Event is one thing the observer learnt. Every Transition is one log
// line in the daemon.
type Event struct {
	Kind       EventKind
	Slot       int
	Name       string
	Generation uint64
	From, To   State
	At         time.Time
	// Silence is how long the slot had been silent when the event was
	// decided (for Transition to Suspect or Dead).
	Silence time.Duration
	Detail  string
}

// Tracker judges the liveness of every slot from successive reads of the
// whole slot region. It is a pure state machine: it does no I/O and reads
// no clock; the caller passes the times at which each read was issued and
// completed, on its monotonic clock.
type Tracker struct {
	params timing.Params
	peers  []*Peer // by slot index; nil for a slot never seen in use
	reads  int
	// lastIssued is the issue time of the latest successful read.
	lastIssued time.Time
}

// New returns a tracker for a pool with the given timing.
func New(p timing.Params) *Tracker {
	return &Tracker{params: p}
}

// Observe takes one successful read of the slot region: issued and done
// are the times the read was issued and returned. It returns what changed.
func (t *Tracker) Observe(issued, done time.Time, slots []ondisk.Decoded) []Event {
	var events []Event
	first := t.reads == 0
	t.reads++
	if issued.After(t.lastIssued) {
		t.lastIssued = issued
	}
	for _, d := range slots {
		if d.Index >= len(t.peers) {
			t.peers = append(t.peers, make([]*Peer, d.Index+1-len(t.peers))...)
		}
		p := t.peers[d.Index]
		switch {
		case d.Status == ondisk.SlotUnused:
			if p != nil {
				// A record was zeroed under us: no write of its
				// owner can do that. No change is seen.
				p.Status, p.Reason = d.Status, "slot was zeroed"
			}
		case d.Status != ondisk.SlotOK:
			if p == nil {
				p = &Peer{Slot: d.Index, FirstSeen: done, StateSince: done}
				t.peers[d.Index] = p
			}
			if p.Status != d.Status {
				events = append(events, Event{Kind: Corrupt, Slot: d.Index, Name: p.Name(),
					Generation: p.Record.Generation, At: done, Detail: d.Status.String() + ": " + d.Reason})
			}
			p.Status, p.Reason = d.Status, d.Reason
		default:
			s := d.Slot
			switch {
			case p == nil:
				// Unused at every earlier read: a record appearing
				// is a write we saw happen. At the first read we
				// cannot tell how old the record is.
				p = &Peer{Slot: d.Index, Record: s, HaveRecord: true, FirstSeen: done, StateSince: done, GenerationSince: done}
				if !first {
					p.LastChange = done
				}
				t.peers[d.Index] = p
			case !p.HaveRecord:
				// Only corrupt reads before: the record may be as
				// old as them, so this is a first sight.
				p.Record, p.HaveRecord = s, true
				p.FirstSeen, p.GenerationSince = done, done
			case p.HaveStale && !ondisk.Changed(p.Stale, s):
				// The same older record still over the slot: the
				// current generation wrote nothing since it landed
				// (a write of it would have replaced it).
				p.quiet = issued
			case s.Generation < p.Record.Generation && p.Status == ondisk.SlotOK:
				// An older generation than the one held, read over a
				// slot that last read valid: a late write of an earlier
				// incarnation (a killed process's request landing), never
				// a new claim (a claim takes the slot's generation + 1).
				// Its content is not taken; its appearance is a change:
				// the current generation may have written until then.
				p.Stale, p.HaveStale = s, true
				p.LastChange = done
				p.quiet = time.Time{}
				events = append(events, Event{Kind: Stale, Slot: d.Index, Name: s.HostName,
					Generation: s.Generation, At: done,
					Detail: fmt.Sprintf("%s generation %d (sequence %d, state %s) over %s generation %d: a late write of an earlier incarnation, ignored",
						s.HostName, s.Generation, s.Sequence, s.State, p.Record.HostName, p.Record.Generation)})
			case !p.HaveStale && !ondisk.Changed(p.Record, s):
				// Unchanged, shown valid: evidence of silence.
				p.quiet = issued
			default:
				if p.State == Dead && s.Generation == p.deadGeneration {
					events = append(events, Event{Kind: Revenant, Slot: d.Index, Name: s.HostName,
						Generation: s.Generation, At: done,
						Detail: fmt.Sprintf("generation %d wrote again (sequence %d) after being declared dead", s.Generation, s.Sequence)})
				} else if s.Generation != p.Record.Generation || s.HostName != p.Record.HostName {
					events = append(events, Event{Kind: NewIncarnation, Slot: d.Index, Name: s.HostName,
						Generation: s.Generation, At: done,
						Detail: fmt.Sprintf("%s generation %d -> %s generation %d", p.Record.HostName, p.Record.Generation, s.HostName, s.Generation)})
				}
				if s.Generation != p.Record.Generation {
					p.GenerationSince = done
				}
				p.Record = s
				p.Stale, p.HaveStale = ondisk.Slot{}, false
				p.LastChange = done
				p.quiet = time.Time{}
			}
			p.Status, p.Reason = ondisk.SlotOK, ""
		}
	}
	return append(events, t.Evaluate(done)...)
}

// Evaluate re-judges every peer at now, with no new read, and returns the
// transitions. Call it between reads so that a silent host turns suspect
// on time even while reads fail.
func (t *Tracker) Evaluate(now time.Time) []Event {
	var events []Event
	for _, p := range t.peers {
		if p == nil {
			continue
		}
		to, silence := t.judge(p, now)
		if to == p.State {
			continue
		}
		events = append(events, Event{Kind: Transition, Slot: p.Slot, Name: p.Name(),
			Generation: p.Record.Generation, From: p.State, To: to, At: now, Silence: silence})
		p.State, p.StateSince = to, now
		if to == Dead {
			p.deadGeneration = p.Record.Generation
		}
	}
	return events
}

func (t *Tracker) judge(p *Peer, now time.Time) (State, time.Duration) {
	if p.State == Dead && p.HaveRecord && p.Record.Generation == p.deadGeneration {
		return Dead, 0
	}
	if p.HaveRecord && p.Record.State == ondisk.StateLeft {
		return Left, 0
	}
	base := p.Baseline()
	if p.HaveRecord && !p.quiet.IsZero() && p.quiet.Sub(base) >= t.params.HostDead {
		return Dead, p.quiet.Sub(base)
	}
	if p.LastChange.IsZero() {
		return Unknown, 0
	}
	if age := now.Sub(base); age > t.params.RenewalFail {
		return Suspect, age
	}
	return Live, 0
}

// NextDeadline is the least baseline + host_dead, over the hosts neither
// dead nor left, that is later than both the issue of the latest
// successful read and after: the earliest moment at which a read issued
// then could declare a host dead and none issued since has. after is the
// issue of the driver's latest read at a deadline, successful or not
// (zero for none), so that a deadline whose read failed waits for the
// next round instead of being returned again. A driver that issues a read
// at that moment, rather than at its next interval, declares a dead host
// up to one interval sooner.
//
// The deadline may already be past: it fell while a read issued before
// it was under way (a round that began just before it), and a read issued
// at once decides it. A deadline at or before the latest read's issue is
// not returned: that read could decide it and did not (the slot read
// zeroed or corrupt, which proves nothing, or the host wrote since); only
// a later read can, and such a host must not hold back the deadlines of
// the others. ok is false when there is no such deadline.
func (t *Tracker) NextDeadline(after time.Time) (deadline time.Time, ok bool) {
	if t.lastIssued.After(after) {
		after = t.lastIssued
	}
	for _, p := range t.peers {
		if p == nil || !p.HaveRecord || p.State == Dead || p.Record.State == ondisk.StateLeft {
			continue
		}
		d := p.Baseline().Add(t.params.HostDead)
		if !d.After(after) {
			continue
		}
		if !ok || d.Before(deadline) {
			deadline, ok = d, true
		}
	}
	return deadline, ok
}

// Peers returns a copy of every tracked slot, by slot index.
func (t *Tracker) Peers() []Peer {
	var out []Peer
	for _, p := range t.peers {
		if p != nil {
			out = append(out, *p)
		}
	}
	return out
}

// Peer returns one slot.
func (t *Tracker) Peer(slot int) (Peer, bool) {
	if slot < 0 || slot >= len(t.peers) || t.peers[slot] == nil {
		return Peer{}, false
	}
	return *t.peers[slot], true
}

// Reads is the number of successful reads observed.
func (t *Tracker) Reads() int { return t.reads }
