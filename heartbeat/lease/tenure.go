package lease

// Tenure: the clock and freshness of this incarnation, its view, and the
// leader record it writes and checks while it is master (doc.go, "Being
// master").

import (
	"fmt"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

func (l *Lease) clock(t time.Time) {
	if t.After(l.now) {
		l.now = t
	}
	switch {
	case !l.renewed.IsZero() && l.now.Sub(l.renewed) >= l.cfg.Timing.RenewalFail:
		l.fence(l.now, fmt.Sprintf("no successful renewal for %v (renewal_fail %v)",
			l.now.Sub(l.renewed).Round(time.Millisecond), l.cfg.Timing.RenewalFail))
	case l.renewed.IsZero() && l.now.After(l.cfg.FirstRenewalBy.Add(l.cfg.Timing.IOTimeout)):
		l.fence(l.now, fmt.Sprintf("no successful renewal since joining, %v past the first renewal's deadline",
			l.now.Sub(l.cfg.FirstRenewalBy).Round(time.Millisecond)))
	}
}

func (l *Lease) fresh(t time.Time) bool {
	return !l.renewed.IsZero() && t.Sub(l.renewed) < l.cfg.Timing.RenewalFail
}

// until is when acting as master must end unless a renewal succeeds.
func (l *Lease) until() time.Time { return l.renewed.Add(l.cfg.Timing.RenewalFail) }

func (l *Lease) fence(at time.Time, why string) {
	if l.dead() {
		return
	}
	if l.role == Master || l.role == HandingOver || l.role == Releasing {
		l.emit(Event{Kind: Lost, At: at, Epoch: l.epoch, Owner: l.cfg.Self, Detail: "fenced: " + why})
	}
	l.role = Fenced
	l.fencedWhy = why
	l.next = Action{Kind: None}
	l.emit(Event{Kind: FencedEvent, At: at, Detail: why})
}

func (l *Lease) dead() bool { return l.role == Fenced || l.role == Stopped }

// Renewed reports a successful renewal of this host's slot: the write was
// issued at issued and returned at done. The lease acts as master only
// while the last renewal was issued less than renewal_fail ago, and latches
// (Fenced) as soon as renewals lapse, even if a later one succeeds: a host
// whose renewals lapsed has fenced itself and may already be judged dead.
func (l *Lease) Renewed(issued, done time.Time) {
	if l.dead() {
		return
	}
	if !l.renewed.IsZero() && done.Sub(l.renewed) >= l.cfg.Timing.RenewalFail {
		l.clock(done)
		l.fence(done, fmt.Sprintf("renewal gap of %v: the renewal issued after the last one returned only %v after it (renewal_fail %v)",
			issued.Sub(l.renewed).Round(time.Millisecond), done.Sub(l.renewed).Round(time.Millisecond), l.cfg.Timing.RenewalFail))
		return
	}
	first := l.renewed.IsZero()
	if first && (issued.After(l.cfg.FirstRenewalBy) || done.Sub(issued) > l.cfg.Timing.IOTimeout) {
		l.clock(done)
		l.fence(done, fmt.Sprintf("first renewal since joining issued %v after its deadline, returned after %v",
			issued.Sub(l.cfg.FirstRenewalBy).Round(time.Millisecond), done.Sub(issued).Round(time.Millisecond)))
		return
	}
	if issued.After(l.renewed) {
		l.renewed = issued
	}
	l.clock(done)
	if first && !l.dead() && l.role == Acquiring && l.step == stepLeader {
		// An acquisition waited for the first renewal.
		l.read(ReadLeader, stepLeader, done)
	}
}

// SetView gives the lease the caller's current liveness view. An
// acquisition waiting for the owner to die re-reads the leader record at
// once when the view says it may now be taken.
func (l *Lease) SetView(now time.Time, v View) {
	l.view = v
	l.clock(now)
	if l.dead() || l.role != Acquiring || !l.betweenReads() || !l.haveLeader || !l.next.NotBefore.After(now) {
		return
	}
	if l.eligibleNow() {
		l.read(ReadLeader, stepLeader, now)
	}
}

// betweenReads: the acquisition waits between two reads of the leader record,
// or of its own ballot block (every ownCheckEvery-th wait read): either
// may give way to a leader read sooner. An own check so skipped comes at a
// later wait (seed 95174: a takeover waited an interval for the own check
// after the holder was judged dead).
func (l *Lease) betweenReads() bool {
	return l.step == stepLeader && l.next.Kind == ReadLeader || l.step == stepOwnCheck && l.next.Kind == ReadBallots
}

// ReadSoon makes an acquisition that waits for the leader record to
// change read it again no later than at: a host that acknowledged a
// hand-over request expects the master's released record within an
// interval and need not wait a whole interval more to see it. Reads are
// always safe; this changes nothing but when the next one is issued.
func (l *Lease) ReadSoon(now, at time.Time) {
	l.clock(now)
	if l.dead() || l.role != Acquiring || !l.betweenReads() || !l.next.NotBefore.After(at) {
		return
	}
	l.read(ReadLeader, stepLeader, at)
}

// Master reports whether this host may act as master at now, and until
// when at the latest without asking again: while it holds an epoch and its
// last renewal was issued less than renewal_fail ago.
func (l *Lease) Master(now time.Time) (Mastership, bool) {
	l.clock(now)
	if l.role != Master || !l.fresh(now) {
		return Mastership{}, false
	}
	return Mastership{Epoch: l.epoch, Since: l.masterSince, Until: l.until()}, true
}

// Mastership is this host's tenure as master.
type Mastership struct {
	Epoch uint64    // the fencing token: stamp every record the master writes with it
	Since time.Time // when it began to act, on this host's clock
	Until time.Time // act no later than this without asking Master again
}

func (l *Lease) writeLeader(r ondisk.Leader, now time.Time) {
	r.Version = ondisk.LeaseVersion
	r.PoolUUID = l.cfg.Pool
	l.writing = r
	nb := now
	if l.lateUntil.After(nb) {
		nb = l.lateUntil
	}
	nb = l.afterQuiet(nb)
	l.step = stepLeaderWrite
	l.next = Action{Kind: WriteLeader, NotBefore: nb, Deadline: l.until(), Leader: r}
}

// written0: the leader record l.writing is on storage.
func (l *Lease) written0(now time.Time) {
	r := l.writing
	switch {
	case l.role == Master:
		// A repair of our own record.
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
	case l.role == Releasing || (l.role == Acquiring && r.Released()):
		l.emit(Event{Kind: Released, At: now, Epoch: r.Epoch, Owner: l.cfg.Self})
		if l.want != wantNone {
			// Acquire was called while the release was written.
			l.role = Acquiring
			l.mayBeChosen = false
			l.read(ReadLeader, stepLeader, now)
			return
		}
		l.toFollower(now)
	case l.role == HandingOver && r.HasSuccessor():
		l.emit(Event{Kind: HandedOver, At: now, Epoch: r.Epoch, Owner: r.Successor,
			Detail: handOverDetail(l.hoTarget, r.Successor)})
		l.afterTenure(now)
	default:
		// Acquired (HandingOver: our hand-over ballot chose us).
		prev := l.holder.Epoch
		l.role = Master
		l.epoch = r.Epoch
		l.masterSince = now
		l.emit(Event{Kind: Acquired, At: now, Epoch: r.Epoch, Prev: prev, Owner: l.cfg.Self, Detail: l.lastAbortDetail()})
		if l.want == wantNone {
			l.Release(now)
			return
		}
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
	}
}

// afterTenure: our epoch is over (handed over, or lost).
func (l *Lease) afterTenure(now time.Time) {
	l.mayBeChosen = false
	if l.want == wantNone {
		l.toFollower(now)
		return
	}
	l.role = Acquiring
	l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
}

// checkWritten: a leader write failed; the read shows whether it landed.
//
// A record of ours that is held (acquired, or repaired) may be written
// again whenever the read does not show it: while we hold the epoch nobody
// else writes the record. A released record may not: once it is on
// storage, the next owner may be writing its own, and a torn read of that
// write must not be answered by writing ours over it. A released record is
// written again only when a valid read shows that it did not land (and,
// LateWrite having passed, never will): our record still held, or an
// older epoch (records never go back, so ours is not there).
func (l *Lease) checkWritten(now time.Time, d ondisk.LeaderDecoded) {
	r := l.writing
	ok := d.Status == ondisk.RecordOK
	switch {
	case ok && d.Leader.Epoch == r.Epoch && d.Leader.Owner == r.Owner &&
		d.Leader.Flags == r.Flags && d.Leader.Successor == r.Successor:
		l.written0(now)
	case ok && d.Leader.Epoch > r.Epoch && r.Released():
		// Our release landed, and another host took the next epoch.
		l.written0(now)
	case ok && (d.Leader.Epoch > r.Epoch || d.Leader.Epoch == r.Epoch && !d.Leader.Owner.Same(l.cfg.Self)):
		// Someone else holds a later epoch: ours is over.
		l.lostRecord(now, fmt.Sprintf("the leader record shows epoch %d of %v", d.Leader.Epoch, d.Leader.Owner))
	case d.Status == ondisk.RecordNewer:
		l.lostRecord(now, "the leader record was written by a newer hbfence")
	case !r.Released():
		// Our held record did not land (an older record, a torn or
		// scribbled sector): write it again.
		l.writeLeader(r, now)
	case ok && d.Leader.Epoch == r.Epoch && d.Leader.Owner == r.Owner && !d.Leader.Released(),
		d.Usable() && d.Epoch() < r.Epoch:
		// The release did not land.
		l.writeLeader(r, now)
	default:
		// Torn, scribbled, zeroed, or not our record: read again.
		l.read(ReadLeader, stepLeaderCheck, now.Add(l.backoffOr(l.cfg.Timing.Interval)))
	}
}

// masterCheck: the periodic read of a master.
func (l *Lease) masterCheck(now time.Time, d ondisk.LeaderDecoded) {
	switch {
	case d.Status == ondisk.RecordOK && d.Leader.Epoch == l.epoch && d.Leader.Owner == l.cfg.Self && !d.Leader.Released():
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
	case d.Status == ondisk.RecordOK && (d.Leader.Epoch > l.epoch || d.Leader.Epoch == l.epoch):
		l.lostRecord(now, fmt.Sprintf("the leader record shows epoch %d of %v%s", d.Leader.Epoch, d.Leader.Owner, releasedNote(d.Leader)))
	case d.Status == ondisk.RecordNewer:
		l.lostRecord(now, "the leader record was written by a newer hbfence")
	default:
		// Torn, scribbled, zeroed, or an older epoch: only we may
		// write the record while we hold the epoch. Repair it.
		l.emit(Event{Kind: Unreadable, At: now, Epoch: l.epoch, Detail: "leader record " + describeDecoded(d) + "; rewriting ours"})
		l.writeLeader(ondisk.Leader{Epoch: l.epoch, Owner: l.cfg.Self}, now)
	}
}

func releasedNote(r ondisk.Leader) string {
	if r.Released() {
		return ", released"
	}
	return ""
}

func describeDecoded(d ondisk.LeaderDecoded) string {
	switch d.Status {
	case ondisk.RecordOK:
		return fmt.Sprintf("shows epoch %d of %v", d.Leader.Epoch, d.Leader.Owner)
	case ondisk.RecordUnused:
		return "is zeroed"
	}
	return d.Status.String() + " (" + d.Reason + ")"
}

// lostRecord: the leader record shows that our epoch is over.
func (l *Lease) lostRecord(now time.Time, why string) {
	switch l.role {
	case Master, Releasing, HandingOver:
		l.emit(Event{Kind: Lost, At: now, Epoch: l.epoch, Owner: l.cfg.Self, Detail: why})
	case Acquiring:
		l.emit(Event{Kind: Lost, At: now, Epoch: l.writing.Epoch, Owner: l.cfg.Self, Detail: why})
	}
	if l.role == Releasing {
		l.toFollower(now)
		return
	}
	l.afterTenure(now)
	if l.role == Acquiring {
		l.decide(now)
	}
}
