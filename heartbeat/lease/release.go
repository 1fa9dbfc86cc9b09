package lease

// Release and stop.

import (
	"fmt"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Release gives the lease up. A master stops acting at once and writes
// its leader record again, released. An acquisition under way stops, unless
// its own value may already have been chosen in the instance it runs: it
// then finishes the instance, and if it won, writes the record released.
func (l *Lease) Release(now time.Time) error {
	l.clock(now)
	switch l.role {
	case Fenced:
		return fmt.Errorf("%w (%s)", ErrFenced, l.fencedWhy)
	case Stopped:
		return ErrStopped
	case HandingOver:
		return ErrHandOver
	}
	l.want = wantNone
	switch l.role {
	case Master:
		l.emit(Event{Kind: Stepped, At: now, Epoch: l.epoch, Owner: l.cfg.Self, Detail: "releasing"})
		l.role = Releasing
		l.writeLeader(ondisk.Leader{Epoch: l.epoch, Owner: l.cfg.Self, Flags: ondisk.LeaderReleased}, now)
	case Acquiring:
		switch l.step {
		case stepLeaderWrite, stepLeaderCheck:
			// The instance is won; the record is written released
			// once the held one is on storage.
		case stepLeader:
			l.toFollower(now)
		default:
			if !l.ownValueMayBeChosen() {
				l.toFollower(now)
			}
		}
	}
	return nil
}

// Stop ends the lease: a master stops acting, and no further I/O is asked
// for. Before the caller writes "left" into its slot, the I/O under way
// must have returned and QuiescentAt must have passed.
func (l *Lease) Stop(now time.Time) {
	l.clock(now)
	if l.dead() {
		return
	}
	if l.role == Master || l.role == HandingOver || l.role == Releasing {
		l.emit(Event{Kind: Stepped, At: now, Epoch: l.epoch, Owner: l.cfg.Self, Detail: "stopped"})
	}
	l.role = Stopped
	l.stoppedWhy = "stopped"
	l.next = Action{Kind: None}
}

// QuiescentAt is the moment after which no write this lease asked for can
// still land, once the I/O under way (if any) has returned.
func (l *Lease) QuiescentAt() time.Time { return l.lateUntil }
