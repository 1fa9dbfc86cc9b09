package lease

// Hand-over to a named successor (doc.go, "Hand-over").

import (
	"fmt"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// ProposeSuccessor hands the lease over to target, another live host that
// has acknowledged a hand-over request (the message is the driver's). The
// master stops acting at once, before its first write, and proposes target
// as the owner of the next epoch in a ballot of its own. If the ballot
// completes, it writes its leader record released for the successor
// (HandedOver), and target takes the next epoch with a ballot of its own,
// which must choose it. If the ballot has not completed by deadline, the
// lease reads the leader record and resumes acting as master only if that
// still shows this host's epoch, held (HandOverFailed with Resumed).
func (l *Lease) ProposeSuccessor(now time.Time, target ondisk.Owner, deadline time.Time) error {
	l.clock(now)
	switch {
	case l.role == HandingOver:
		return ErrHandOver
	case l.role != Master || !l.fresh(now):
		return ErrNotMaster
	case target.Slot == l.cfg.Self.Slot:
		return fmt.Errorf("hand-over to slot %d: that is this host", target.Slot)
	case int64(target.Slot) >= int64(l.cfg.Slots):
		return fmt.Errorf("hand-over to slot %d: outside the area's %d slots", target.Slot, l.cfg.Slots)
	case target.Generation == 0 || ondisk.ValidHostName(target.Name) != nil:
		return fmt.Errorf("hand-over target %v: needs a generation and a valid host name", target)
	}
	l.emit(Event{Kind: Stepped, At: now, Epoch: l.epoch, Owner: l.cfg.Self, Detail: "handing over to " + target.String()})
	l.role = HandingOver
	l.hoTarget, l.hoDeadline = target, deadline
	l.begin(l.epoch+1, target, ondisk.ValueHandOver)
	l.startBallot(now, now)
	return nil
}

func handOverDetail(target, got ondisk.Owner) string {
	if target.Same(got) {
		return ""
	}
	return fmt.Sprintf("requested %v, but an earlier proposal for %v had been accepted and must stand", target, got)
}

func (l *Lease) hoOverdue(now time.Time) bool {
	if l.role != HandingOver || l.step == stepLeaderWrite || l.step == stepLeaderCheck || l.step == stepResume {
		return false
	}
	if now.Before(l.hoDeadline) {
		return false
	}
	l.read(ReadLeader, stepResume, now)
	return true
}

// resume: the hand-over ballot did not complete in time.
func (l *Lease) resume(now time.Time, d ondisk.LeaderDecoded) {
	ours := d.Status == ondisk.RecordOK && d.Leader.Epoch == l.epoch && d.Leader.Owner == l.cfg.Self && !d.Leader.Released()
	switch {
	case ours && l.hint < l.epoch+2 && l.fresh(now):
		l.role = Master
		l.masterSince = now
		l.emit(Event{Kind: HandOverFailed, At: now, Epoch: l.epoch, Owner: l.hoTarget, Resumed: true,
			Detail: fmt.Sprintf("no ballot of instance %d completed by the deadline (%d started; last abort: %s)", l.inst, l.attempts, l.lastAbort)})
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
	case !d.Usable() && d.Status != ondisk.RecordNewer:
		// Cannot tell: try again; not acting meanwhile.
		l.read(ReadLeader, stepResume, now.Add(l.backoff()))
	default:
		l.handOverLost(now, "the leader record "+describeDecoded(d))
	}
}

func (l *Lease) handOverLost(now time.Time, why string) {
	l.emit(Event{Kind: HandOverFailed, At: now, Epoch: l.epoch, Owner: l.hoTarget, Detail: why})
	l.emit(Event{Kind: Lost, At: now, Epoch: l.epoch, Owner: l.cfg.Self, Detail: why})
	l.afterTenure(now)
}
