package lease

// Acquisition: which instance to run, and the two phases of Disk Paxos
// (doc.go, "Acquisition").

import (
	"fmt"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Acquire asks for the lease and keeps trying until this host holds it:
// whenever the lease may be taken (free, released, or its owner gone), it
// runs a ballot; when it loses, it waits for the next chance.
func (l *Lease) Acquire(now time.Time) error { return l.ask(now, wantKeep) }

// TryAcquire asks for the lease once: if it may not be taken now (its
// owner is live, suspect or unknown here) the lease reports Busy at once;
// otherwise it runs ballots until the outcome of the instance is known
// (Acquired, or Busy naming the winner). It does not give up in between:
// its own value may have been chosen.
func (l *Lease) TryAcquire(now time.Time) error { return l.ask(now, wantTry) }

func (l *Lease) ask(now time.Time, w want) error {
	l.clock(now)
	switch l.role {
	case Fenced:
		return fmt.Errorf("%w (%s)", ErrFenced, l.fencedWhy)
	case Stopped:
		return ErrStopped
	}
	if w > l.want {
		l.want = w
	}
	if l.role == Follower {
		l.role = Acquiring
		l.waiting = ""
		l.read(ReadLeader, stepLeader, now)
	}
	return nil
}

// current is what is known of the latest decided epoch: the leader record,
// or a later decision learnt by our own ballot.
type current struct {
	epoch     uint64
	owner     ondisk.Owner
	released  bool
	successor ondisk.Owner
	learnt    bool
}

func (l *Lease) current() current {
	c := current{}
	if l.haveLeader && l.leader.Status == ondisk.RecordOK {
		r := l.leader.Leader
		c = current{epoch: r.Epoch, owner: r.Owner, released: r.Released()}
		if r.HasSuccessor() {
			c.successor = r.Successor
		}
	}
	if l.learned.lver > c.epoch {
		c = current{epoch: l.learned.lver, owner: l.learned.value, learnt: true}
	}
	return c
}

// choose says which instance this host may run, if any. It is the safety
// core of acquisition: see doc.go, "Which instance".
func (l *Lease) choose(c current) (uint64, bool, string) {
	if l.hint >= c.epoch+2 && !l.leaderIssued.Before(l.hintDone) {
		// A ballot block of a later instance, seen before the leader
		// read that shows c: its writer learnt every epoch before it
		// and found its owner gone.
		return l.hint, true, fmt.Sprintf("instance %d is under way", l.hint)
	}
	n := c.epoch + 1
	switch {
	case c.epoch == 0:
		return n, true, "the lease was never held"
	case c.owner.Same(l.cfg.Self):
		return n, true, "the record is this incarnation's own"
	case c.released && !c.successor.IsZero() && !c.successor.Same(l.cfg.Self):
		if g, why := l.gone(c.successor); !g {
			return n, false, fmt.Sprintf("epoch %d was handed over to %v and %s", c.epoch, c.successor, why)
		}
		return n, true, fmt.Sprintf("epoch %d was handed over to %v, which is gone", c.epoch, c.successor)
	case c.released:
		return n, true, fmt.Sprintf("epoch %d was released", c.epoch)
	}
	if g, why := l.gone(c.owner); !g {
		src := "held"
		if c.learnt {
			src = "decided (no leader record yet)"
		}
		return n, false, fmt.Sprintf("epoch %d is %s by %v and %s", c.epoch, src, c.owner, why)
	} else {
		return n, true, fmt.Sprintf("the owner of epoch %d, %v: %s", c.epoch, c.owner, why)
	}
}

// eligibleNow is choose without the reasons (SetView calls it at every
// read of a waiting host).
func (l *Lease) eligibleNow() bool {
	c := l.current()
	if l.hint >= c.epoch+2 || c.epoch == 0 || c.owner.Same(l.cfg.Self) {
		return true
	}
	if c.released {
		if c.successor.IsZero() || c.successor.Same(l.cfg.Self) {
			return true
		}
		g, _ := l.gone(c.successor)
		return g
	}
	g, _ := l.gone(c.owner)
	return g
}

// decide runs after a leader read in an acquisition: wait, give up, or
// start a ballot.
func (l *Lease) decide(now time.Time) {
	if !l.haveLeader {
		l.waiting = "the leader record is unreadable"
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
		return
	}
	c := l.current()
	inst, ok, why := l.choose(c)
	if !ok {
		if l.want == wantTry {
			l.emit(Event{Kind: Busy, At: now, Epoch: c.epoch, Owner: c.owner, Detail: why})
			l.toFollower(now)
			return
		}
		if l.want == wantNone {
			l.toFollower(now)
			return
		}
		l.waiting = why
		l.waitRead(now)
		return
	}
	if !l.fresh(now) {
		l.waiting = "no renewal of this host's slot yet"
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
		return
	}
	l.waiting = ""
	l.begin(inst, l.cfg.Self, 0)
	l.startBallot(now, now)
}

// begin sets up instance inst with a proposal (kept if already running it).
func (l *Lease) begin(inst uint64, proposal ondisk.Owner, flags uint16) {
	if l.ownKnown && l.own.Lver > inst {
		// Our own block is already in a later instance, which we
		// had reason to run then.
		inst = l.own.Lver
	}
	if inst != l.inst {
		l.inst, l.attempts, l.mayBeChosen = inst, 0, false
	}
	l.proposal, l.proposalFlags = proposal, flags
}

func (l *Lease) startBallot(now, notBefore time.Time) {
	if !l.ownKnown {
		l.read(ReadBallots, stepBlocks, notBefore)
		return
	}
	l.phase1(notBefore)
}

// ballotNumber is the smallest ballot of ours above floor.
func (l *Lease) ballotNumber(floor uint64) uint64 {
	n := uint64(l.cfg.Slots)
	r := floor / n
	for {
		if m := r*n + uint64(l.cfg.Self.Slot) + 1; m > floor {
			return m
		}
		r++
	}
}

func (l *Lease) phase1(notBefore time.Time) {
	floor := uint64(0)
	if l.seenInst == l.inst {
		floor = l.seenMbal
	}
	b := ondisk.Ballot{Lver: l.inst}
	if l.own.Lver == l.inst {
		// Keep what we accepted in this instance: phase 1 raises
		// mbal only.
		floor = max(floor, l.own.Mbal)
		b.Bal, b.Value, b.ValueFlags = l.own.Bal, l.own.Value, l.own.ValueFlags
	}
	l.mbal = l.ballotNumber(floor)
	b.Mbal = l.mbal
	l.attempts++
	l.writeBallot(b, stepP1Write, notBefore)
}

func (l *Lease) phase2(now time.Time) {
	b := ondisk.Ballot{Lver: l.inst, Mbal: l.mbal, Bal: l.mbal, Value: l.value, ValueFlags: l.valueFlags}
	l.writeBallot(b, stepP2Write, now)
}

func (l *Lease) writeBallot(b ondisk.Ballot, s step, notBefore time.Time) {
	b.Version = ondisk.LeaseVersion
	b.Index = l.cfg.Self.Slot
	b.PoolUUID = l.cfg.Pool
	b.Generation = l.cfg.Self.Generation
	if l.lateUntil.After(notBefore) {
		notBefore = l.lateUntil
	}
	notBefore = l.afterQuiet(notBefore)
	l.step = s
	l.next = Action{Kind: WriteBallot, NotBefore: notBefore, Ballot: b}
	l.intended, l.intendedAny = b, true
}

type scanned struct {
	maxLver    uint64
	higherMbal uint64 // a block of another slot in our instance with mbal above ours
	higherSlot int
	best       ondisk.Ballot // highest bal in our instance
	bad        string
	// dropped: the first block that read corrupt, foreign or misplaced
	// and was counted empty, since nobody can be writing it (droppable).
	dropped string
	// ownRestored: this host's own block read corrupt and was counted as
	// the last ballot this incarnation set out to write (ownRestorable).
	ownRestored bool
	// ownDropped: it read corrupt and was counted empty (ownDroppable).
	ownDropped bool
}

// scan reads a ballot region: our own block, the highest lver, and, for
// our instance, the highest mbal of the others and the value accepted in
// the highest ballot. Blocks of an earlier instance are empty for ours.
func (l *Lease) scan(blocks []ondisk.BallotDecoded) scanned {
	var s scanned
	self := int(l.cfg.Self.Slot)
	l.seenInst, l.seenMbal = l.inst, 0
	for i := range blocks {
		d := &blocks[i]
		if d.Index == self {
			switch d.Status {
			case ondisk.RecordOK:
				l.own, l.ownKnown = d.Ballot, true
			case ondisk.RecordUnused:
				l.own, l.ownKnown = ondisk.Ballot{}, true
			default:
				l.ownKnown = false
				if (l.step == stepBlocks || l.step == stepOwnCheck) && l.ownRestorable(d.Status) {
					// Torn by this incarnation's own write cut off,
					// or a bad sector: counted as the last ballot we
					// set out to write, which the next write puts
					// back (ownRestorable).
					l.own, l.ownKnown, s.ownRestored = l.intended, true, true
					l.emit(Event{Kind: BlockIgnored, At: l.now, Detail: fmt.Sprintf("this host's own ballot block (slot %d) is %v: %s; counted as the last ballot this incarnation wrote (epoch %d, ballot %d), which its next write puts back", self, d.Status, d.Reason, l.intended.Lver, l.intended.Mbal)})
					continue
				}
				if (l.step == stepBlocks || l.step == stepOwnCheck) && l.ownDroppable(d.Status) {
					// An earlier incarnation's block, torn by a
					// power loss or a bad sector: ours to
					// rewrite (ownDroppable).
					l.own, l.ownKnown, s.ownDropped = ondisk.Ballot{}, true, true
					l.emit(Event{Kind: BlockIgnored, At: l.now, Detail: fmt.Sprintf("this host's own ballot block (slot %d) is %v: %s; counted empty, since no write of an earlier incarnation can still land", self, d.Status, d.Reason)})
					continue
				}
			}
		}
		switch d.Status {
		case ondisk.RecordUnused:
			continue
		case ondisk.RecordOK:
		default:
			// A torn read of a block being written, or a block we
			// cannot interpret: it may hide a higher ballot, unless
			// nobody can be writing it (droppable).
			why := fmt.Sprintf("ballot block of slot %d is %v: %s", d.Index, d.Status, d.Reason)
			if ok, _ := l.droppable(d.Index, d.Status); ok {
				if s.dropped == "" {
					s.dropped = why
				}
			} else if s.bad == "" {
				s.bad = why
			}
			continue
		}
		b := d.Ballot
		s.maxLver = max(s.maxLver, b.Lver)
		if b.Lver != l.inst {
			continue
		}
		if b.Bal > s.best.Bal {
			s.best = b
		}
		if d.Index != self {
			l.seenMbal = max(l.seenMbal, b.Mbal)
			if b.Mbal > l.mbal && b.Mbal > s.higherMbal {
				s.higherMbal, s.higherSlot = b.Mbal, d.Index
			}
		}
	}
	l.hint = s.maxLver
	return s
}

// higher: a ballot block is in an instance beyond ours.
func (l *Lease) higher(now time.Time, lver uint64) {
	l.lastAbort = fmt.Sprintf("a ballot block is in instance %d, beyond ours (%d)", lver, l.inst)
	if l.role == HandingOver {
		// Our instance is epoch + 1: a block beyond it means that
		// someone learnt epoch + 1 and went on, so epoch is over.
		l.handOverLost(now, fmt.Sprintf("instance %d is under way: epoch %d is over", lver, l.epoch))
		return
	}
	l.mayBeChosen = false
	l.read(ReadLeader, stepLeader, now)
}

func (l *Lease) abort(now time.Time, why string) {
	l.aborts++
	l.lastAbort = why
	nb := now.Add(l.backoff())
	if l.role == HandingOver && !nb.Before(l.hoDeadline) {
		l.read(ReadLeader, stepResume, l.hoDeadline)
		return
	}
	if l.role == Acquiring && l.want == wantNone && !l.ownValueMayBeChosen() {
		l.toFollower(now)
		return
	}
	if l.role == Acquiring {
		// Someone else is running a ballot: read the leader record
		// first; if the other has won and written it, the outcome is
		// known without another ballot.
		l.read(ReadLeader, stepLeader, nb)
		return
	}
	if l.ownKnown && l.seenInst == l.inst {
		l.phase1(nb)
		return
	}
	l.read(ReadBallots, stepBlocks, nb)
}

// decided: our ballot completed; the instance's value is d.value.
func (l *Lease) decided(now time.Time, d decision) {
	l.aborts = 0
	if d.lver > l.learned.lver {
		l.learned = d
	}
	l.emit(Event{Kind: Decided, At: now, Epoch: d.lver, Owner: d.value})
	if l.role == HandingOver {
		if d.value.Same(l.cfg.Self) {
			l.writeLeader(ondisk.Leader{Epoch: d.lver, Owner: l.cfg.Self}, now)
			return
		}
		l.writeLeader(ondisk.Leader{Epoch: l.epoch, Owner: l.cfg.Self,
			Flags: ondisk.LeaderReleased | ondisk.LeaderSuccessor, Successor: d.value}, now)
		return
	}
	if d.value.Same(l.cfg.Self) {
		r := ondisk.Leader{Epoch: d.lver, Owner: l.cfg.Self}
		if l.want == wantNone {
			r.Flags = ondisk.LeaderReleased
		}
		l.writeLeader(r, now)
		return
	}
	l.mayBeChosen = false
	if l.want == wantNone {
		l.toFollower(now)
		return
	}
	if g, why := l.gone(d.value); g {
		// Its owner will never write the record: go on to the next
		// instance without it.
		l.lastAbort = fmt.Sprintf("instance %d was decided for %v, but %s", d.lver, d.value, why)
		l.begin(d.lver+1, l.cfg.Self, 0)
		l.startBallot(now, now)
		return
	}
	if l.want == wantTry {
		l.emit(Event{Kind: Busy, At: now, Epoch: d.lver, Owner: d.value, Detail: fmt.Sprintf("instance %d was decided for %v", d.lver, d.value)})
		l.toFollower(now)
		return
	}
	l.waiting = fmt.Sprintf("instance %d was decided for %v; waiting for its leader record", d.lver, d.value)
	l.waitRead(now)
}

// ownCheckEvery: a waiting acquisition checks its own ballot block at
// every ownCheckEvery-th read.
const ownCheckEvery = 4

// waitRead is the next read of an acquisition that waits for another
// host: the leader record an interval later, and now and then the ballot
// region instead, so that this host finds its own block corrupt (a bad
// sector) and writes it back even while it runs no ballot of its own —
// the others' ballots abort on it while this host is live, and the one
// they may wait for could never finish.
func (l *Lease) waitRead(now time.Time) {
	l.waits++
	if l.waits%ownCheckEvery == 0 && (l.intendedAny || !l.quietUntil.IsZero()) {
		l.read(ReadBallots, stepOwnCheck, now.Add(l.cfg.Timing.Interval))
		return
	}
	l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
}

func (l *Lease) lastAbortDetail() string {
	if l.attempts <= 1 {
		return ""
	}
	return fmt.Sprintf("%d ballots", l.attempts)
}

// A ballot block that reads corrupt aborts a ballot, since it may be a torn
// read of a write under way that hides a higher ballot. A block that stays
// corrupt (a bad sector, a torn write of a host that lost power) would then
// block every acquisition for good. It is counted empty when nobody can be
// writing it and the value it may have held can no longer be acted on
// (doc.go, "A corrupt block of a host that is gone"):
//
//   - its slot has never held a valid record (unused at every read of the
//     view), or its host is dead or has left, nothing has changed in its
//     slot since (no new claim, no revenant write), and the leader read
//     this ballot rests on was issued after that judgment; and
//   - the view is recent: the read it reflects was issued no more than
//     JoinWait − margin before this ballot read returned. A holder of the
//     slot that the view does not show claimed it after that read, and
//     writes no ballot before its join is proven, JoinWait after its claim.
//
// Corrupt, foreign and misplaced blocks qualify; a block of a newer
// version does not (a newer daemon may be writing it).
func (l *Lease) droppable(slot int, st ondisk.RecordStatus) (bool, string) {
	if slot == int(l.cfg.Self.Slot) || l.view == nil {
		return false, "no view"
	}
	switch st {
	case ondisk.RecordCorrupt, ondisk.RecordForeign, ondisk.RecordMisplaced:
	default:
		return false, "status " + st.String()
	}
	rv, ok := l.view.(ReadView)
	if !ok || rv.ReadIssued().IsZero() {
		return false, "the view does not say when it was read"
	}
	if age := l.now.Sub(rv.ReadIssued()); age > l.cfg.Timing.JoinWait()-l.cfg.Timing.Margin() {
		return false, fmt.Sprintf("the view was read %v before", age.Round(time.Millisecond))
	}
	p, ok := l.view.Peer(slot)
	switch {
	case !ok:
		return true, "its slot has never held a record"
	case p.NoRecord:
		return false, "its slot reads corrupt"
	case p.State != liveness.Dead && p.State != liveness.Left:
		return false, "its host is " + p.State.String()
	case p.StateSince.IsZero() || p.LastChange.After(p.StateSince):
		return false, "its slot changed since its host was judged " + p.State.String()
	case l.leaderIssued.Before(p.StateSince):
		return false, "the leader record was read before its host was judged " + p.State.String()
	}
	return true, "its host is " + p.State.String()
}

// ownDroppable: this host's own block reads corrupt at the read that learns
// it, in an incarnation started afresh (Config.QuietUntil set, so a new
// generation of the slot, whose quarantine has passed: every ballot read
// waits for it). Nobody else writes the block and no write of an earlier
// incarnation can still land, so what it shows will not change until we
// write it; the value it may have held is one of an incarnation that is
// gone (doc.go, "A corrupt block of a host that is gone").
func (l *Lease) ownDroppable(st ondisk.RecordStatus) bool {
	switch st {
	case ondisk.RecordCorrupt, ondisk.RecordForeign, ondisk.RecordMisplaced:
	default:
		return false
	}
	return !l.intendedAny && !l.quietUntil.IsZero() && !l.now.Before(l.quietUntil) && !l.now.Before(l.lateUntil)
}

// ownRestorable: this host's own block reads corrupt at the read that
// learns it, after this incarnation set out to write it, and no write of
// ours can still land (lateUntil passed; the lease has one I/O at a time,
// so none is under way). The block then holds what our last landed write
// wrote, or nothing readable: counting it as the last ballot we set out
// to write is counting that write as landed, which it may have — the case
// every ballot already allows for (doc.go, "A corrupt block of a live
// host").
func (l *Lease) ownRestorable(st ondisk.RecordStatus) bool {
	switch st {
	case ondisk.RecordCorrupt, ondisk.RecordForeign, ondisk.RecordMisplaced:
	default:
		return false
	}
	return l.intendedAny && !l.now.Before(l.lateUntil)
}
