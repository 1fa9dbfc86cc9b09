package lease

// The results of the driver's I/O.

import (
	"errors"
	"fmt"
	"time"

	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// ReadLeaderDone reports the read of the leader sector that Next asked
// for: issued and done are the times the read was issued and returned; d
// is the decoded sector.
func (l *Lease) ReadLeaderDone(issued, done time.Time, d ondisk.LeaderDecoded, err error) {
	if l.next.Kind != ReadLeader || l.dead() {
		return
	}
	l.clock(done)
	if l.dead() {
		return
	}
	if err != nil {
		l.lastErr = err.Error()
		l.readFailed(done)
		return
	}
	l.sample(issued, done)
	if d.Usable() {
		l.setLeader(issued, done, d)
	} else if l.lastErr != d.Status.String()+": "+d.Reason {
		l.lastErr = d.Status.String() + ": " + d.Reason
		l.emit(Event{Kind: Unreadable, At: done, Detail: "leader record " + l.lastErr})
	}
	switch l.role {
	case Follower:
		l.follow(done)
	case Acquiring:
		switch l.step {
		case stepLeader:
			if !d.Usable() {
				l.waiting = "the leader record is unreadable: " + describeDecoded(d)
				l.read(ReadLeader, stepLeader, done.Add(l.backoffOr(l.cfg.Timing.Interval)))
				return
			}
			l.decide(done)
		case stepLeaderCheck:
			l.checkWritten(done, d)
		}
	case Master:
		l.masterCheck(done, d)
	case HandingOver:
		switch l.step {
		case stepResume:
			l.resume(done, d)
		case stepLeaderCheck:
			l.checkWritten(done, d)
		}
	case Releasing:
		l.checkWritten(done, d)
	}
}

// ReadBallotsDone reports the read of the ballot region: blocks are the
// decoded blocks, by slot (the lease copies what it keeps).
func (l *Lease) ReadBallotsDone(issued, done time.Time, blocks []ondisk.BallotDecoded, err error) {
	if l.next.Kind != ReadBallots || l.dead() {
		return
	}
	l.clock(done)
	if l.dead() {
		return
	}
	if err != nil {
		l.lastErr = err.Error()
		l.readFailed(done)
		return
	}
	l.sample(issued, done)
	s := l.scan(blocks)
	l.hintDone = done
	if l.step == stepOwnCheck {
		// A waiting host's check of its own block (waitRead).
		switch {
		case s.ownRestored:
			// Put back what the block held: the same ballot, so no
			// ballot of another host is disturbed.
			l.writeBallot(l.intended, stepOwnRepair, done)
			return
		case s.ownDropped:
			// Counted empty: write an empty block of the decided
			// epoch, which every ballot of a later instance reads as
			// empty (its lver is below theirs).
			l.writeBallot(ondisk.Ballot{Lver: max(l.current().epoch, 1), Mbal: l.ballotNumber(0)}, stepOwnRepair, done)
			return
		}
	}
	if l.hoOverdue(done) {
		return
	}
	if s.maxLver > l.inst {
		l.higher(done, s.maxLver)
		return
	}
	if why := s.bad + "|" + s.dropped; why != l.lastBadBlock {
		// Said once per change: the log shows why acquisitions abort,
		// and which blocks are counted empty.
		l.lastBadBlock = why
		if s.bad != "" {
			l.emit(Event{Kind: Unreadable, At: done, Detail: s.bad})
		}
		if s.dropped != "" {
			l.emit(Event{Kind: BlockIgnored, At: done, Detail: s.dropped + ": counted empty, since nobody can be writing it"})
		}
	}
	l.ballotsRead(done, s)
}

// ballotsRead goes on with a ballot read whose blocks scan summed up.
func (l *Lease) ballotsRead(done time.Time, s scanned) {
	switch l.step {
	case stepOwnCheck:
		l.read(ReadLeader, stepLeader, done)
	case stepBlocks:
		switch {
		case s.bad != "":
			l.abort(done, s.bad)
		case !l.ownKnown:
			l.abort(done, "own ballot block unreadable")
		default:
			l.phase1(done)
		}
	case stepP1Read, stepP2Read:
		w := l.written
		switch {
		case s.bad != "":
			l.abort(done, s.bad)
		case !l.ownKnown || l.own.Lver != w.Lver || l.own.Mbal != w.Mbal || l.own.Bal != w.Bal || l.own.Value != w.Value:
			l.abort(done, fmt.Sprintf("own ballot block reads back lver %d mbal %d, wrote lver %d mbal %d", l.own.Lver, l.own.Mbal, w.Lver, w.Mbal))
		case s.higherMbal != 0:
			l.abort(done, fmt.Sprintf("slot %d started ballot %d in instance %d, above ours (%d)", s.higherSlot, s.higherMbal, l.inst, l.mbal))
		case l.step == stepP1Read:
			l.value, l.valueFlags = l.proposal, l.proposalFlags
			if s.best.Bal > 0 {
				l.value, l.valueFlags = s.best.Value, s.best.ValueFlags
			}
			l.phase2(done)
		default:
			l.decided(done, decision{lver: l.inst, value: l.value, flags: l.valueFlags})
		}
	}
}

// WriteDone reports the write that Next asked for. A write that failed
// may or may not have landed; one that timed out may still land later.
func (l *Lease) WriteDone(issued, done time.Time, err error) {
	// A write that timed out may land up to LateWrite after its issue,
	// even when the lease stopped or fenced while it was under way:
	// QuiescentAt must cover it.
	if errors.Is(err, directio.ErrTimeout) {
		if t := issued.Add(l.lateWrite); t.After(l.lateUntil) {
			l.lateUntil = t
		}
	}
	if (l.next.Kind != WriteBallot && l.next.Kind != WriteLeader) || l.dead() {
		return
	}
	wrote := l.next
	if err != nil && !errors.Is(err, ErrDeadline) {
		l.ownKnownAfterFailure(wrote)
	}
	l.clock(done)
	if l.dead() {
		return
	}
	if err != nil {
		l.lastErr = err.Error()
	} else {
		l.sample(issued, done)
	}
	if wrote.Kind == WriteBallot {
		if l.step == stepP2Write && wrote.Ballot.Value.Same(l.cfg.Self) {
			l.mayBeChosen = true
		}
		if err != nil {
			l.abort(done, "ballot write failed: "+err.Error())
			return
		}
		l.own, l.ownKnown, l.written = wrote.Ballot, true, wrote.Ballot
		if l.step == stepOwnRepair {
			l.read(ReadLeader, stepLeader, done) // back to waiting
			return
		}
		if l.hoOverdue(done) {
			return
		}
		if l.step == stepP1Write {
			l.read(ReadBallots, stepP1Read, done)
		} else {
			l.read(ReadBallots, stepP2Read, done)
		}
		return
	}
	if err != nil {
		if issued.After(wrote.Deadline) && !errors.Is(err, ErrDeadline) {
			l.lastErr = fmt.Sprintf("leader write issued %v after its deadline", issued.Sub(wrote.Deadline))
		}
		l.read(ReadLeader, stepLeaderCheck, done)
		return
	}
	if issued.After(wrote.Deadline) {
		// The driver wrote past the deadline: the renewals had lapsed
		// and the clock call above has fenced us already.
		l.fence(done, "leader record written after its deadline")
		return
	}
	l.written0(done)
}

// ownValueMayBeChosen reports whether a value naming this incarnation may
// have been chosen in an instance not yet known to be decided: then the
// instance must be finished, or the lease would wait for us for ever.
func (l *Lease) ownValueMayBeChosen() bool {
	if l.mayBeChosen {
		return true
	}
	return l.ownKnown && l.own.Bal > 0 && l.own.Value.Same(l.cfg.Self) && l.own.Lver > l.current().epoch
}

func (l *Lease) ownKnownAfterFailure(a Action) {
	if a.Kind == WriteBallot {
		l.ownKnown = false
	}
}
