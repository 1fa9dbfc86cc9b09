package restart

import (
	"fmt"
	"slices"

	"github.com/hbfence/hbfence/heartbeat/liveness"
)

// Moving a guest by hand (hbfence guest migrate GUEST HOST, and hbfence
// guest start GUEST --on HOST). A request is a sequence number in the
// guest's definition (Guest.MoveSeq, as StartSeq for a start) that the
// plan acts on once (Assignment.MoveSeq), for a guest that one host, not
// evacuated, reports running:
//
//   - live: the guest is Migrating from its host to the one asked for,
//     exactly as an evacuation's migration (hold.go: both sides hold it
//     until the target answers), but never to another target;
//   - by restart (MoveRestart, or after the live migration failed): it is
//     Stopping with Restart, as an evacuation without migration, and once
//     confirmed stopped (and, after a failed migration, the target asked)
//     it is free and placed on Assignment.On while that host is available,
//     else where M5 puts it.
//
// A host that is not available (M5: not live, behind, evacuated, in
// maintenance, without the vm role) or that the guest's placement does
// not allow (a manual guest's host outside its preferred list) is refused:
// the guest stays where it runs, and the entry says why. The daemon
// refuses such a request before it writes it; the plan checks again, at
// the time it acts.

// allowedOn: the guest's placement allows host name.
func allowedOn(g Guest, name string) bool {
	return g.Placement != Manual || slices.Contains(g.Preferred, name)
}

// move: the operator's move of a guest that runs on o alone, o not
// evacuated. a is the entry M1 gives it (Running on o). decided is false
// when no move is under way or asked for.
func (w *world) move(g Guest, prev Assignment, o Host, a Assignment) (v verdict, decided bool) {
	f, failed := o.report().Failed[g.UUID]
	failed = failed && prev.State == Migrating && !f.Attempt.Before(prev.Attempt)
	switch {
	case prev.State == Stopping && prev.Restart && prev.Host == o.ID:
		// Being stopped to be started on prev.On.
		return keep(prev, o.ID.Name), true
	case prev.State == Migrating && prev.Host == o.ID && failed:
		// The migration may have gone on after its client gave up: the
		// guest is stopped here and the target asked (hold.go,
		// assigned) before it is started, on the host asked for.
		a.State, a.Restart, a.Target, a.Attempt, a.On = Stopping, true, prev.Target, prev.Attempt, prev.Target.Name
		a.Message = fmt.Sprintf("moving to %s: live migration failed (%s); stopped on %s, then started on %s", prev.Target.Name, f.Message, o.ID.Name, prev.Target.Name)
		return keep(a, o.ID.Name).with(Note{Guest: g.UUID, Text: a.Message}), true
	case prev.State == Migrating && prev.Host == o.ID:
		// Under way (or not yet carried out): to the same target, with
		// the same order, whatever that target's state now. A target
		// that failed makes the migration fail, and the guest is stopped
		// as above; one that lands it is then the guest's host.
		a.Target = prev.Target
		return verdict{kind: toMigrate, a: a, manual: true}, true
	case g.MoveSeq <= prev.MoveSeq:
		return verdict{}, false
	}
	// A new request.
	a.MoveSeq = g.MoveSeq
	h, known := w.hosts[g.MoveTo]
	var why string
	switch {
	case g.MoveTo == o.ID.Name:
		a.Message = fmt.Sprintf("already on %s: not moved", o.ID.Name)
		return keep(a, o.ID.Name), true
	case !known:
		why = "it is not in the pool"
	case !allowedOn(g, g.MoveTo):
		why = fmt.Sprintf("its placement is manual and %s is not among its preferred hosts %v", g.MoveTo, g.Preferred)
	case !h.available(w.epoch, w.evac, w.maint):
		why = w.unavailable(h)
	}
	if why != "" {
		a.Message = fmt.Sprintf("not moved to %s: %s", g.MoveTo, why)
		return keep(a, o.ID.Name).with(Note{Guest: g.UUID, Text: a.Message}), true
	}
	if g.MoveRestart {
		a.State, a.Restart, a.On = Stopping, true, g.MoveTo
		a.Message = fmt.Sprintf("moving to %s: stopped on %s, then started on %s", g.MoveTo, o.ID.Name, g.MoveTo)
		return keep(a, o.ID.Name).with(Note{Guest: g.UUID, Text: a.Message}), true
	}
	a.Target = h.ID
	return verdict{kind: toMigrate, a: a, manual: true, fresh: true}, true
}

// unavailable says why host h is not available (M5).
func (w *world) unavailable(h Host) string {
	_, evacuated := w.evac[h.ID]
	switch {
	case w.maint[h.ID.Name]:
		return "it is in maintenance"
	case evacuated:
		return "it is being evacuated"
	case h.State != liveness.Live:
		return fmt.Sprintf("it is %s", h.State)
	case h.Unsafe:
		return "it runs with no watchdog"
	case h.GuestsUnknown:
		return "it cannot list its guests (no driver)"
	case !slices.Contains(h.Roles, RoleVM):
		return "it lacks the vm role"
	case !h.caughtUp(w.epoch):
		return fmt.Sprintf("it has not reported on epoch %d yet", w.epoch)
	case h.Report.Leaving:
		return "it is leaving the pool"
	}
	return "it is not available"
}
