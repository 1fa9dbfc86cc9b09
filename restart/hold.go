package restart

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hbfence/hbfence/heartbeat/liveness"
)

// The first step of Reconcile: for each guest, who may still hold it
// (M1–M3). A guest some host may still run, start or stop is kept where it
// is; one that is under an evacuation's migration is handed to the
// placement of migrations; every other guest is free, with the reason why,
// for the placement policy (M5, plan.go) to decide. Generations are
// compared in one place, Host.olderThan.

// world is what Reconcile knows of the hosts, computed once per plan.
type world struct {
	epoch uint64
	hosts map[string]Host // by name: the master's view of each host
	// behind are the hosts, not gone, that have not reported on epoch
	// (M4): nothing is placed while there is one.
	behind []string
	// reportedBy is who reports each guest running (hosts not gone, by
	// their current incarnation's report), in host order.
	reportedBy map[string][]Host
	// unsettledOn is which hosts (not gone, by their current
	// incarnation's report) hold each guest unsettled: an order of an
	// earlier incarnation (a start, a stop, a migration) may still be
	// carried out there (M3).
	unsettledOn map[string][]string
	evac        map[HostID]Evacuation
	// maint are the hosts in maintenance, by name: each current
	// incarnation is also in evac, as an evacuation of every guest.
	maint map[string]bool
	// load counts, per host name, the guests the plan keeps there.
	load map[string]int
}

func newWorld(in Input) *world {
	w := &world{epoch: in.Epoch, hosts: make(map[string]Host, len(in.Hosts)), reportedBy: map[string][]Host{},
		unsettledOn: map[string][]string{}, evac: map[HostID]Evacuation{}, maint: map[string]bool{}, load: map[string]int{}}
	for _, h := range in.Hosts {
		w.hosts[h.ID.Name] = h
		if !h.gone() && !h.caughtUp(in.Epoch) {
			w.behind = append(w.behind, h.ID.Name)
		}
		r := h.report()
		if h.gone() || r == nil {
			continue
		}
		for _, u := range r.Running {
			if hs := w.reportedBy[u]; len(hs) == 0 || hs[len(hs)-1].ID != h.ID {
				w.reportedBy[u] = append(hs, h)
			}
		}
		for _, u := range r.Unsettled {
			w.unsettledOn[u] = appendOnce(w.unsettledOn[u], h.ID.Name)
		}
	}
	sort.Strings(w.behind)
	for _, e := range in.Evacuations {
		w.evac[e.Host] = e
	}
	// A host in maintenance is emptied as by an evacuation of its
	// current incarnation that migrates every guest (a driver that
	// cannot migrate fails the migration, and the guest is stopped and
	// restarted elsewhere), whatever its generation.
	for _, name := range in.Maintenance {
		w.maint[name] = true
		if h, ok := w.hosts[name]; ok {
			e := w.evac[h.ID]
			e.Host, e.All = h.ID, true
			w.evac[h.ID] = e
		}
	}
	return w
}

// verdictKind is what the first step decided for a guest.
type verdictKind int

const (
	kept      verdictKind = iota // the entry stays as given: a host may hold the guest
	toMigrate                    // an evacuation migrates it: placeMigrations chooses the target
	released                     // free: the placement policy decides (placeFree)
)

// verdict is the first step's answer for one guest.
type verdict struct {
	kind verdictKind
	// a is the entry: kept as is, to migrate, or (released) the previous
	// entry with its host cleared and its message saying why.
	a Assignment
	// load are the hosts whose load a kept entry adds to.
	load   []string
	reason freeReason // released
	notes  []Note
	// manual: a migration the operator asked for (hbfence guest
	// migrate), to a.Target only; fresh: a new request, to order.
	manual, fresh bool
}

func keep(a Assignment, load ...string) verdict { return verdict{kind: kept, a: a, load: load} }

func release(a Assignment, reason freeReason, notes ...Note) verdict {
	return verdict{kind: released, a: a, reason: reason, notes: notes}
}

func (v verdict) with(n Note) verdict { v.notes = append(v.notes, n); return v }

// hold decides who may still hold guest g, whose previous entry is prev.
func (w *world) hold(g Guest, prev Assignment) verdict {
	if owners := w.reportedBy[g.UUID]; len(owners) > 0 {
		return w.reported(g, prev, owners)
	}
	// Reported nowhere, and unsettled on a host: a daemon that crashed
	// there left an order in flight (its child xl or virsh may still
	// create the domain). Neither free nor place the guest until that
	// host's daemon sees the order settled.
	if on := w.unsettledOn[g.UUID]; len(on) > 0 {
		held := prev
		if held.State == "" {
			held.State = Stopped
		}
		held.Message = fmt.Sprintf("held: an order that an earlier incarnation of %s issued may still be carried out there; waiting until its daemon sees it settled", strings.Join(on, ", "))
		if held.Host.IsZero() {
			return keep(held)
		}
		return keep(held, held.Host.Name)
	}
	if prev.State == Migrating {
		if v, decided := w.migrating(g, prev); decided {
			return v
		}
		prev.State = Running // neither side has it: as if its host had failed
	}
	return w.assigned(g, prev)
}

// reported: M1, the guest belongs to the host that reports it running.
func (w *world) reported(g Guest, prev Assignment, owners []Host) verdict {
	// (By name: a side's daemon may have restarted since, and its new
	// incarnation adopted the copy.)
	if len(owners) == 2 && prev.State == Migrating && (owners[0].ID.Name == prev.Host.Name && owners[1].ID.Name == prev.Target.Name ||
		owners[1].ID.Name == prev.Host.Name && owners[0].ID.Name == prev.Target.Name) {
		// Under way: the hypervisors hold one copy on each side, of
		// which one runs.
		return keep(prev, prev.Host.Name, prev.Target.Name)
	}
	if len(owners) > 1 {
		names := make([]string, len(owners))
		for i, o := range owners {
			names[i] = o.ID.Name
		}
		msg := fmt.Sprintf("reported running on %d hosts at once: %v", len(owners), names)
		// The attempt number is kept: IDs never go back (H2).
		return keep(Assignment{State: Error, Message: msg, Attempt: prev.Attempt, StartSeq: prev.StartSeq, MoveSeq: prev.MoveSeq}).
			with(Note{Guest: g.UUID, Text: msg, Alarm: true})
	}
	o := owners[0]
	a := Assignment{Host: o.ID, State: Running, Attempt: prev.Attempt, Tries: prev.Tries, Tried: prev.Tried,
		StartSeq: max(prev.StartSeq, g.StartSeq), ReportSeq: o.report().Seq, MoveSeq: prev.MoveSeq}
	if prev.State == Running && prev.Host == o.ID && o.report().Seq > prev.ReportSeq {
		// Seen running in two reports: the placement succeeded; a later
		// crash starts a fresh count of tries.
		a.Tries, a.Tried = 0, nil
	}
	if g.Stopped {
		a.State = Stopping
	}
	if e, ok := w.evac[o.ID]; ok && !g.Stopped && a.State == Running {
		// The evacuation overrides a move the operator asked for.
		a.MoveSeq = max(a.MoveSeq, g.MoveSeq)
		f, failed := o.report().Failed[g.UUID]
		failed = failed && prev.State == Migrating && !f.Attempt.Before(prev.Attempt)
		switch {
		case prev.State == Stopping && prev.Restart && prev.Host == o.ID:
			a = prev // stopping for the evacuation: not migrated after all
		case e.migrates(g.UUID) && !failed:
			if prev.State == Migrating && prev.Host == o.ID {
				a.Target = prev.Target
			}
			return verdict{kind: toMigrate, a: a}
		default:
			a.State, a.Restart = Stopping, true
			a.Message = fmt.Sprintf("evacuating %s: stopped there, restarted on another host", o.ID.Name)
			if failed {
				// The migration may have gone on after its client gave
				// up: the target is asked before the guest is started
				// anywhere else.
				a.Target, a.Attempt = prev.Target, prev.Attempt
				a.Message = fmt.Sprintf("evacuating %s: migration failed (%s); stopped there, restarted on another host", o.ID.Name, f.Message)
			}
		}
	} else if !g.Stopped {
		if v, decided := w.move(g, prev, o, a); decided {
			return v
		}
	}
	v := keep(a, o.ID.Name)
	if prev.Host != o.ID || prev.State != a.State {
		v = v.with(Note{Guest: g.UUID, Text: fmt.Sprintf("%s on %s", a.State, o.ID)})
	}
	return v
}

// migrating: a migration reported by neither side. While a side may still
// hold the guest it is kept; decided is false when neither does, and the
// guest is then treated as if its host had failed.
func (w *world) migrating(g Guest, prev Assignment) (v verdict, decided bool) {
	// A side may hold it while its incarnation is not gone, or a later
	// incarnation (a restarted daemon, which adopts what runs) has not
	// reported yet.
	mayHold := func(id HostID) bool {
		h, ok := w.hosts[id.Name]
		return ok && (h.olderThan(id) || !h.gone() && (h.ID == id || !h.caughtUp(w.epoch)))
	}
	// The source no longer holds it once a report it wrote after the
	// migration began does not list it (or it is gone).
	srcDone := !mayHold(prev.Host)
	if h, ok := w.hosts[prev.Host.Name]; ok && h.ID == prev.Host && h.caughtUp(w.epoch) && h.report().Seq > prev.ReportSeq {
		srcDone = true
	}
	// The target may have it: a report older than the migration's end
	// does not tell. Ask it (SourceDone), and free the guest only on its
	// answer, given after it read the question, hence after the
	// migration's end. The target is asked by name: whichever
	// incarnation runs there now answers (a restarted daemon adopts what
	// its hypervisor runs).
	answered := targetAnswered(w.hosts, prev, g.UUID)
	dstHere := !targetGone(w.hosts, prev)
	switch {
	case !srcDone:
		return keep(prev), true
	case dstHere && !prev.SourceDone:
		prev.SourceDone = true
		prev.Message = fmt.Sprintf("no longer on %s; asking %s whether the migration reached it", prev.Host.Name, prev.Target.Name)
		return keep(prev), true
	case dstHere && !answered:
		return keep(prev), true
	case !dstHere:
		// The target failed (or left) during the migration: the
		// source's migration may still land the guest there, on a host
		// the pool no longer watches. Neither restart it nor forget it:
		// the operator checks both hosts.
		msg := fmt.Sprintf("its migration from %s to %s did not finish and %s is gone: check that it runs on neither, then hbfence guest start %s", prev.Host.Name, prev.Target.Name, prev.Target.Name, g.Name)
		return keep(Assignment{State: Error, Message: msg, Attempt: prev.Attempt, StartSeq: prev.StartSeq}).
			with(Note{Guest: g.UUID, Text: msg, Alarm: true}), true
	}
	return verdict{}, false
}

// assigned: M3, a guest reported nowhere that the plan still assigns to a
// host that may start, run or stop it is kept there; it is freed only when
// that host reported the order failed, carried it out and does not run
// the guest, no longer lists it in two of its reports in a row, or is
// gone.
func (w *world) assigned(g Guest, prev Assignment) verdict {
	if prev.Host.IsZero() || (prev.State != Starting && prev.State != Running && prev.State != Stopping) {
		return release(prev, notAssigned)
	}
	h, known := w.hosts[prev.Host.Name]
	if known && h.olderThan(prev.Host) {
		// The view is of an older incarnation than the owner: the owner
		// may run it; keep it there.
		return keep(prev, prev.Host.Name)
	}
	var f Failure
	failed := false
	if r := h.report(); known && r != nil && h.ID == prev.Host {
		// Only a failed start order frees the guest at once (M3): a
		// failure of the same attempt kept in the reports after a failed
		// migration, or before an adoption, proves nothing about the
		// guest now.
		f, failed = r.Failed[g.UUID]
		failed = failed && prev.State == Starting && !f.Attempt.Before(prev.Attempt)
	}
	// Carried out (this order, or a later one: a new master may go by an
	// older plan) and not running.
	done, wasDone := AttemptID{}, false
	if known && h.ID == prev.Host && h.report() != nil {
		done, wasDone = h.report().Done[g.UUID]
	}
	doneNotRunning := prev.State == Starting && wasDone && !done.Before(prev.Attempt)
	// A guest that its host (the current incarnation, caught up) no
	// longer lists is freed only after a second, later report of that
	// incarnation still does not list it: one listing may catch a guest
	// in a reboot, or a domain a restarted daemon's hypervisor is still
	// bringing up.
	var cur *Report
	if known && h.State == liveness.Live && !h.GuestsUnknown && h.caughtUp(w.epoch) {
		cur = h.report() // a host that cannot list its guests proves none absent
	}
	needConfirm := cur != nil && (prev.State == Stopping ||
		prev.State == Running && (h.ID != prev.Host || cur.Seq > prev.ReportSeq) ||
		prev.State == Starting && (doneNotRunning || h.ID != prev.Host))
	confirmed := needConfirm && prev.AbsentGen == h.ID.Generation && prev.AbsentSeq != 0 && cur.Seq > prev.AbsentSeq
	var reason freeReason
	var notes []Note
	switch {
	case failed:
		// Reported failed: the host confirmed it gone.
		reason = attemptFailed
		prev.Tried = appendOnce(prev.Tried, prev.Host.Name)
		prev.Message = fmt.Sprintf("start on %s failed (try %d): %s", prev.Host.Name, prev.Tries, f.Message)
		notes = append(notes, Note{Guest: g.UUID, Text: prev.Message})
	case needConfirm && !confirmed:
		if prev.AbsentGen != h.ID.Generation || prev.AbsentSeq == 0 {
			prev.AbsentGen, prev.AbsentSeq = h.ID.Generation, cur.Seq
		}
		return keep(prev, prev.Host.Name)
	case confirmed && prev.State == Stopping && prev.Restart && !prev.Target.IsZero() && targetGone(w.hosts, prev):
		msg := fmt.Sprintf("its failed migration from %s to %s may have gone on, and %s is gone: check that it runs on neither, then hbfence guest start %s", prev.Host.Name, prev.Target.Name, prev.Target.Name, g.Name)
		return keep(Assignment{State: Error, Message: msg, Attempt: prev.Attempt, StartSeq: prev.StartSeq}).
			with(Note{Guest: g.UUID, Text: msg, Alarm: true})
	case confirmed && prev.State == Stopping && prev.Restart && !prev.Target.IsZero() && !targetAnswered(w.hosts, prev, g.UUID):
		// After a failed migration: ask the target too.
		if !prev.SourceDone {
			prev.SourceDone = true
			prev.Message = fmt.Sprintf("stopped on %s; asking %s whether the failed migration reached it", prev.Host.Name, prev.Target.Name)
		}
		return keep(prev, prev.Host.Name)
	case confirmed && prev.State == Stopping && prev.Restart:
		reason = evacuated
		prev.Message = fmt.Sprintf("stopped on %s for its evacuation", prev.Host.Name)
		if prev.On != "" {
			prev.Message = fmt.Sprintf("stopped on %s, to be started on %s", prev.Host.Name, prev.On)
		}
	case confirmed && prev.State == Stopping:
		reason = stoppedByOperator
		prev.Message = "stopped by the operator"
	case confirmed && h.ID != prev.Host:
		reason = ownerGone
		prev.Message = fmt.Sprintf("its host %s restarted as generation %d, which does not run it", prev.Host.Name, h.ID.Generation)
		notes = append(notes, Note{Guest: g.UUID, Text: prev.Message})
	case confirmed && prev.State == Starting:
		reason = attemptFailed
		prev.Tried = appendOnce(prev.Tried, prev.Host.Name)
		prev.Message = fmt.Sprintf("started on %s, then stopped at once (try %d)", prev.Host.Name, prev.Tries)
		notes = append(notes, Note{Guest: g.UUID, Text: prev.Message})
	case confirmed:
		// Counted as a failed attempt on that host: a guest that keeps
		// dying does not go round the pool for ever.
		reason = stoppedOnHost
		prev.Tried = appendOnce(prev.Tried, prev.Host.Name)
		prev.Message = fmt.Sprintf("stopped on %s without hbfence (it crashed, or was stopped by hand)", prev.Host.Name)
		notes = append(notes, Note{Guest: g.UUID, Text: prev.Message})
	case known && !h.gone():
		// Its host may still start it, stop it, or (a later incarnation
		// that has not reported yet) adopt it.
		switch {
		case h.State == liveness.Dead && h.Unsafe:
			prev.Message = fmt.Sprintf("its host %s is dead but runs with no watchdog: not known fenced, so not restarted elsewhere (stop it there by hand, then hbfence guest start)", h.ID.Name)
		case h.State == liveness.Left && h.GuestsUnknown:
			prev.Message = fmt.Sprintf("its host %s left, but it cannot list its guests (no driver, no kill hook): not known stopped, so not restarted elsewhere (stop it there by hand, then hbfence guest start)", h.ID.Name)
		}
		return keep(prev, prev.Host.Name)
	case prev.State == Stopping && prev.Restart:
		reason = evacuated
		prev.Message = fmt.Sprintf("its host %s is gone during its evacuation", prev.Host.Name)
	case prev.State == Stopping:
		reason = stoppedByOperator
		prev.Message = "stopped by the operator; its host is gone"
	default:
		reason = ownerGone
		why := "gone from the pool"
		switch {
		case known && h.State == liveness.Dead:
			why = "dead, hence fenced"
		case known && h.State == liveness.Left:
			why = "left the pool"
		}
		prev.Message = fmt.Sprintf("its host %s is %s", prev.Host.Name, why)
		notes = append(notes, Note{Guest: g.UUID, Text: prev.Message})
	}
	prev.Host = HostID{}
	return release(prev, reason, notes...)
}
