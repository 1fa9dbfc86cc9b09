package master

import (
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/rs/zerolog"
)

// logEvent writes one line per lease event. A change of master names both
// epochs and both owners; losing the role is an error, since everything a
// master does stops at once.
func (r *Runner) logEvent(n noted) {
	e := n.Event
	var ev *zerolog.Event
	switch e.Kind {
	case lease.Lost, lease.FencedEvent:
		ev = r.log.Error()
	case lease.HandOverFailed, lease.Unreadable, lease.BlockIgnored:
		ev = r.log.Warn()
	case lease.Decided, lease.Busy:
		ev = r.log.Debug()
	default:
		ev = r.log.Info()
	}
	ev = ev.Str("event", e.Kind.String()).Uint64("epoch", e.Epoch)
	if !e.Owner.IsZero() {
		ev = ev.Str("owner", e.Owner.Name).Uint32("owner_slot", e.Owner.Slot).Uint64("owner_generation", e.Owner.Generation)
	}
	if e.Detail != "" {
		ev = ev.Str("detail", e.Detail)
	}
	switch e.Kind {
	case lease.HolderChanged:
		if !n.news {
			return // our own acquisition, logged as such
		}
		ev = ev.Uint64("prev_epoch", n.prev.Epoch).Str("prev_owner", n.prev.Owner.Name)
		switch {
		case e.Epoch == 0:
			ev.Msg("the master lease was never held")
		case !n.rec.Successor.IsZero():
			ev.Str("successor", n.rec.Successor.Name).Msgf("master %s (epoch %d) handed over to %s", e.Owner.Name, e.Epoch, n.rec.Successor.Name)
		case n.rec.Released:
			ev.Msgf("master %s released epoch %d", e.Owner.Name, e.Epoch)
		case !n.prev.Known:
			ev.Msgf("master is %s, epoch %d", e.Owner.Name, e.Epoch)
		default:
			ev.Msgf("master changed: %s, epoch %d (was %s, epoch %d)", e.Owner.Name, e.Epoch, orNobody(n.prev.Owner.Name), n.prev.Epoch)
		}
	case lease.Acquired:
		ev.Uint64("prev_epoch", e.Prev).Msgf("this host is master, epoch %d (was epoch %d)", e.Epoch, e.Prev)
	case lease.Lost:
		ev.Msgf("this host is no longer master: epoch %d is over", e.Epoch)
	case lease.Stepped:
		ev.Msgf("this host stopped acting as master of epoch %d", e.Epoch)
	case lease.HandedOver:
		ev.Msgf("epoch %d handed over to %s", e.Epoch, e.Owner.Name)
	case lease.HandOverFailed:
		ev.Bool("resumed", e.Resumed).Msg("hand-over failed")
	case lease.FencedEvent:
		ev.Msg("master lease fenced: this incarnation may not be master again")
	default:
		ev.Msg("master lease " + e.Kind.String())
	}
}

func orNobody(s string) string {
	if s == "" {
		return "nobody"
	}
	return s
}
