package lease

import (
	"errors"
	"fmt"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// Acquired: this host became master of Epoch (Prev: the epoch the
	// leader record showed before). It may act from At on, while Master
	// says so.
	Acquired EventKind = iota
	// Stepped: this host stopped acting as master of Epoch on its own
	// accord (release, hand-over, stop); Detail says which.
	Stepped
	// Lost: this host stopped being master of Epoch because its epoch is
	// over (the leader record shows a later epoch, or another owner) or
	// because it fenced. The driver stops everything a master does, at
	// once.
	Lost
	// Released: the released record of Epoch is on storage.
	Released
	// HandedOver: the record of Epoch is on storage released for Owner,
	// which the ballot of the next epoch chose.
	HandedOver
	// HandOverFailed: the hand-over ballot did not complete in time.
	// Resumed says whether this host is master of Epoch again.
	HandOverFailed
	// Decided: a ballot of this host completed: instance Epoch chose
	// Owner.
	Decided
	// Busy: TryAcquire ended without the lease: it is held by Owner in
	// Epoch, or instance Epoch chose Owner.
	Busy
	// HolderChanged: the leader record shows a new epoch, owner or
	// release.
	HolderChanged
	// FencedEvent: renewals lapsed; this incarnation may never be master
	// again.
	FencedEvent
	// Unreadable: a leader record or ballot block could not be read as a
	// valid record of this pool; Detail says what was found.
	Unreadable
	// BlockIgnored: a ballot block that reads corrupt was counted empty,
	// since nobody can be writing it (its host dead, left or never
	// joined; doc.go, "A corrupt block of a host that is gone").
	BlockIgnored
)

var eventNames = [...]string{"acquired", "stepped-down", "lost", "released", "handed-over", "hand-over-failed",
	"decided", "busy", "holder-changed", "fenced", "unreadable", "block-ignored"}

func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return fmt.Sprintf("event(%d)", int(k))
}

// MarshalText renders the kind for JSON.
func (k EventKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Event is one thing the lease did or learnt: one log line in the daemon.
type Event struct {
	Kind    EventKind
	At      time.Time
	Epoch   uint64
	Prev    uint64
	Owner   ondisk.Owner
	Resumed bool
	Detail  string
}

func (e Event) String() string {
	s := fmt.Sprintf("%s epoch %d", e.Kind, e.Epoch)
	if !e.Owner.IsZero() {
		s += " " + e.Owner.String()
	}
	if e.Kind == HandOverFailed {
		s += fmt.Sprintf(" resumed=%v", e.Resumed)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Holder is who holds the lease, as the last readable leader record showed
// it on this host.
type Holder struct {
	Known     bool // false until a leader record was read
	Epoch     uint64
	Owner     ondisk.Owner // zero for epoch 0 (never held)
	Released  bool
	Successor ondisk.Owner // a hand-over's successor, with Released
	// Since is when this host first read this record (its clock).
	Since time.Time
	// Wall is the writer's wall clock, for humans.
	Wall time.Time
}

// Check judges a record that a master wrote for others to obey (a plan,
// an order), stamped with epoch by writer, against this leader record:
// as Validator.Check, and a released epoch is refused too (its master has
// stopped acting). Before the first read it answers ErrAheadEpoch.
func (h Holder) Check(epoch uint64, writer ondisk.Owner) error {
	if !h.Known {
		return fmt.Errorf("%w: this host has not read the leader record yet", ErrAheadEpoch)
	}
	var v Validator
	v.Observe(h.Epoch, h.Owner)
	if err := v.Check(epoch, writer); err != nil {
		return err
	}
	if h.Released {
		return fmt.Errorf("epoch %d is released", epoch)
	}
	return nil
}

// Free reports whether the record says nobody holds the lease.
func (h Holder) Free() bool { return h.Known && (h.Epoch == 0 || h.Released) }

func (h Holder) describe() string {
	switch {
	case !h.Known:
		return "unknown"
	case h.Epoch == 0:
		return "never held"
	case !h.Successor.IsZero():
		return fmt.Sprintf("epoch %d of %v, released for %v", h.Epoch, h.Owner, h.Successor)
	case h.Released:
		return fmt.Sprintf("epoch %d of %v, released", h.Epoch, h.Owner)
	}
	return fmt.Sprintf("epoch %d held by %v", h.Epoch, h.Owner)
}

func (h Holder) String() string { return h.describe() }

// Holder is who holds the lease, as far as this host knows.
func (l *Lease) Holder() Holder { return l.holder }

// Status is what `hbfence master` and `hbfence status` show of the lease.
type Status struct {
	Role      Role
	Epoch     uint64    // our epoch while master, releasing or handing over
	Since     time.Time // master since (this host's clock)
	Instance  uint64    // the instance of the last ballot
	Attempts  int       // ballots started in it
	Waiting   string    // why an acquisition waits
	LastAbort string
	LastError string
	Fenced    string
	Holder    Holder
	// QuietUntil is the end of a new incarnation's quarantine
	// (Config.QuietUntil): no ballot before it.
	QuietUntil time.Time
}

// Status reports the lease's state.
func (l *Lease) Status() Status {
	s := Status{Role: l.role, Instance: l.inst, Attempts: l.attempts, Waiting: l.waiting,
		LastAbort: l.lastAbort, LastError: l.lastErr, Fenced: l.fencedWhy, Holder: l.holder,
		QuietUntil: l.quietUntil}
	switch l.role {
	case Master, HandingOver, Releasing:
		s.Epoch, s.Since = l.epoch, l.masterSince
	}
	if l.role != Acquiring {
		s.Waiting = ""
	}
	return s
}

// Fresh reports whether a record stamped with recordEpoch may be obeyed by
// a reader whose latest leader record shows leaderEpoch: records of an
// older epoch come from a master that has been replaced.
func Fresh(recordEpoch, leaderEpoch uint64) bool { return recordEpoch >= leaderEpoch }

// Errors of a Validator.
var (
	// ErrStaleEpoch: the record's epoch is older than the leader record
	// the reader has seen: its writer is no longer master.
	ErrStaleEpoch = errors.New("record of an epoch that is over")
	// ErrNotOwner: the record claims the current epoch but was written by
	// a host other than that epoch's owner.
	ErrNotOwner = errors.New("record claims an epoch its writer does not own")
	// ErrAheadEpoch: the record's epoch is newer than any leader record
	// the reader has seen. A master writes its leader record before it
	// acts, so reading the leader record again shows that epoch or a
	// later one; until then the record cannot be checked.
	ErrAheadEpoch = errors.New("record of an epoch newer than the leader record seen")
)

// Validator is a reader's fencing check: it remembers the latest leader
// record seen (epochs never go back) and judges the records masters wrote
// for others to obey. The zero Validator has seen epoch 0.
type Validator struct {
	epoch uint64
	owner ondisk.Owner
}

// Observe takes a leader record read by this host (Holder, or a decoded
// record). An older epoch than one already seen is ignored.
func (v *Validator) Observe(epoch uint64, owner ondisk.Owner) {
	if epoch > v.epoch || (epoch == v.epoch && v.owner.IsZero()) {
		v.epoch, v.owner = epoch, owner
	}
}

// Epoch is the latest epoch observed.
func (v *Validator) Epoch() uint64 { return v.epoch }

// Check judges a record stamped with epoch by writer.
func (v *Validator) Check(epoch uint64, writer ondisk.Owner) error {
	switch {
	case epoch < v.epoch:
		return fmt.Errorf("%w: epoch %d from %v, the leader record shows epoch %d", ErrStaleEpoch, epoch, writer, v.epoch)
	case epoch > v.epoch:
		return fmt.Errorf("%w: epoch %d from %v, the leader record seen shows epoch %d", ErrAheadEpoch, epoch, writer, v.epoch)
	case !writer.Same(v.owner):
		return fmt.Errorf("%w: epoch %d from %v, owned by %v", ErrNotOwner, epoch, writer, v.owner)
	}
	return nil
}
