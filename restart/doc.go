// Package restart decides where the pool's guests run: the master's plan
// (Reconcile) and each host's part in it (Decide). Both are pure: they take
// what the storage and the hypervisor said and return what to write and do.
// The drivers that read and write the records, and the hypervisor drivers,
// are at the edges (not in this package).
//
// # Records
//
//   - A host report, written only by one incarnation of one host (a record
//     file of its own on the cluster root, written in place with O_DIRECT
//     and checksummed: package store): its name and
//     generation, the latest master epoch it has read (Report.Epoch), the
//     guests its hypervisor runs, the start orders it carried out and those
//     that failed, and its answers about migrations to it (Absent). A host
//     reports what its hypervisor says: a restarted daemon adopts the
//     guests that run (DESIGN invariant 5).
//   - The plan, written only by the master of its epoch (same kind of
//     record): per guest, its owner (host and generation), the start order
//     (AttemptID: epoch and number), the tries, the hosts tried, the state
//     and a message. Every plan carries the master's epoch (the fencing
//     token), its writer and a sequence.
//
// # The rules
//
// A host incarnation H (Decide):
//
//	H1. It obeys only a plan whose epoch is the latest leader epoch it has
//	    read (lease.Validator); an older plan is over, a newer one waits
//	    until H has read the leader record again.
//	H2. It starts guest G only on a Starting assignment of G to its own
//	    name and generation in such a plan, once per start order, only if
//	    G does not already run there, and only while its own renewals are
//	    fresh. A Running guest that vanished is never restarted by its
//	    host: the master places it again, with a new order.
//	H3. A failed start is cleaned up (force-destroy) and confirmed absent
//	    before the failure is reported; a failed attempt is never tried
//	    again.
//	H4. Each round is: read the leader epoch; read the plan; act; list the
//	    hypervisor's guests; write the report with the epoch read at the
//	    start of the round. So a report shows every start the host made
//	    under any older plan, and after a report with epoch e the host
//	    obeys no plan older than e.
//
// The master of epoch e (Reconcile):
//
//	M1. A guest that a host not gone reports running belongs to that
//	    host: the plan follows the hypervisors (adoption). Two such
//	    hosts: the guest is in error and is placed nowhere (the invariant
//	    broke; the operator is told).
//	M2. Gone means fenced: dead in the master's view with a watchdog (the
//	    timing rule: a dead host has killed its guests or been reset), or
//	    left (a clean stop stops its guests first). A dead host with no
//	    watchdog is not gone: its guests are never restarted elsewhere.
//	    A later generation of a host is not gone either: a restarted daemon
//	    keeps its guests and reports them. A host that cannot list its
//	    guests (no driver: Host.GuestsUnknown) is gone only when dead with
//	    a watchdog: its "left" proves nothing, its reports prove no guest
//	    absent (M3), and it is never available (M5).
//	M3. A guest is free when no host that is not gone reports it, and the
//	    plan does not assign it to a host that is not gone (unless that
//	    host reported the order failed, or carried it out and does not run
//	    the guest, or two of its reports in a row no longer show a guest
//	    that ran there). A host the master cannot name (an unreadable slot)
//	    or that has a report but no slot in its view is not gone. A guest
//	    that a host not gone lists unsettled (Report.Unsettled: an order an
//	    earlier incarnation of that host issued and the current one has not
//	    seen settled) is not free either, whatever the plan says: it is
//	    held where it is, neither freed nor placed, until that host's report
//	    no longer lists it.
//	M4. The master assigns nothing until every host that is not gone has
//	    written a report with epoch e or later (is caught up): until then a
//	    host might still act on a plan of an older epoch, which a master of
//	    e cannot see whole. The one exception is the target of a live
//	    migration of a running guest: a migration makes no second copy
//	    (the source keeps the guest until the hypervisor hands it over),
//	    and a failed one is settled by asking both sides.
//	M5. A free guest with HA on (pool and guest, and neither the
//	    management instance of this pool nor the guest the pool record
//	    names as its manager, Pool.ManagedBy) is assigned to one available host: live,
//	    caught up, with the vm role, not leaving, with a watchdog, not
//	    evacuated and not in maintenance; auto
//	    placement takes the least loaded, manual only a preferred host. No
//	    such host: pending. At most MaxAttempts attempts, each on a host
//	    not yet tried while one is available (then on the tried ones
//	    again); then error. A free guest without HA whose host
//	    failed is stopped, and started again only by the operator. A
//	    pending guest, or one whose start failed, is placed again only
//	    while HA is on or the placement is the operator's (a start, an
//	    evacuation: Assignment.ByOperator); else it is stopped.
//
// A guest its host (the current incarnation, live and caught up) no
// longer lists is freed only after a second, later report of that
// incarnation still does not list it: a running guest that vanished, a
// start carried out whose guest does not run, a guest being stopped, and
// a restarted daemon's first report all wait for it. One listing may catch
// a guest in a reboot.
//
// Evacuation (hbfence host evacuate): a guest to migrate is Migrating from
// its host to a target; while either side may hold it, it is placed
// nowhere else. Two reports of it, one from each side, are the migration
// under way, not an alarm. Once the source no longer has it, the master
// asks the target (SourceDone), by name, so that whichever incarnation
// runs there answers; only that answer, given after it read the question,
// hence after the migration's end, frees the guest. A failed migration
// (which may have gone on after its client gave up) is stopped on the
// source and the target is asked the same way before the guest is started
// elsewhere. A target that is gone before it answered leaves the guest in
// error, with an alarm: the migration may still land it there, on a host
// the pool no longer watches. Every guest not to migrate is stopped on
// the host and restarted elsewhere.
//
// Maintenance (hbfence host maintenance, Input.Maintenance): by host name,
// whatever the incarnation. The host's current incarnation is emptied as
// by an evacuation that migrates every guest (a driver that cannot
// migrate fails, and the guest is stopped and restarted elsewhere), and the
// host is never available (M5) until the operator ends it. Nothing else
// changes: the rules above hold for its guests as for any.
//
// Moving a guest by hand (hbfence guest migrate, guest start --on: move.go)
// is a one-shot request in the guest's definition (MoveSeq, StartOn with
// StartSeq) that the plan acts on once. A live move is an evacuation's
// migration to the one host asked for; a move by restart, or after a failed
// live migration, is an evacuation's stop, after which the free guest is
// placed on the host asked for (Assignment.On) if it is available. Only
// the target differs from an evacuation: the never-twice argument below
// is unchanged.
//
// A host stopped cleanly writes "left" only after a listing shows none of
// the pool's guests; otherwise it fences.
//
// # Why a guest never runs twice
//
// A guest runs on a host only because that host started it (H2), under an
// assignment of the current epoch to that incarnation. Suppose G runs on
// host A and the master assigns G to host B ≠ A. At the plan's read of the
// reports (M4: all caught up), A was either gone — fenced: G is not running
// on A, and A starts nothing again (a dead incarnation never writes again;
// a host that left stopped) — or not gone and its report did not show G
// (M3). A not-gone, caught-up A whose report does not show G started G
// neither before that report (H4: it would show) nor after it: only on an
// assignment of G to A in a plan of epoch e or later (H1), and the master
// of e made none (M3: G is not assigned to a not-gone host), nor will a
// later master before it sees A's report (M4, M1). A daemon restart of A
// gives a new generation that reports what runs (adoption) before the
// master can consider A caught up. What the crashed incarnation of A had
// ordered and not seen carried out (a start whose xl create outlives the
// daemon that ran it) is not in the new incarnation's listing yet, but it
// is in its Unsettled list, read from the run-state file where the crashed
// one recorded each order before it issued it (package agent, O1–O3); M3 holds the guest until the
// order is seen settled, so the two-reports rule that frees a guest its
// host no longer lists never runs on an order still in flight. Two plans never assign one guest to two
// hosts at once, because each plan is a function from guests to owners and
// only the current master writes one (the lease). So at any time each
// guest has at most one host that may start it, and a host that may still
// run it keeps it assigned (M1).
//
// Timing assumptions: none beyond the lease's and the liveness rules'
// (package liveness: dead means fenced under the timing rule). Reports and
// plans are checksummed records: a reader sees a whole old or a whole new
// record, never a mix. A plan that lands late (a write of a master that
// has since been replaced) carries its older epoch and is refused (H1). A
// plan whose write failed counts as written: the next one continues its
// sequence and its start orders.
//
// # What it does not guarantee
//
//   - Progress while a host is suspect right after a master change (M4):
//     placement waits until the host reports or is declared dead, at most
//     host_dead.
//   - A guest started by hand outside hbfence on a second host is reported
//     by both (M1: error), not prevented.
//   - A host that never acts on its assignment (a hung agent with a live
//     heartbeat) holds its guests: there is no start timeout yet.
//   - A dead host without a watchdog is not gone, and holds every
//     placement back after a master change (M4) until it reports again.
//   - "Confirmed absent" is two listings a settle time apart (package
//     driver); a hypervisor that finishes a create later than that after
//     its client was killed defeats it.
//   - Tries are counted per placement and reset once the guest has been
//     seen running in two reports: a guest that runs for a round or two
//     between crashes is restarted for ever (never faster than a round).
package restart
