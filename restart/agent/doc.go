// Package agent runs the guest side of one daemon incarnation: every
// interval it reads the master's plan and does this host's part of it
// (restart.Decide: start, stop, migrate), lists what its hypervisors run
// and writes its report; while the host is master it also reads every
// report and writes the plan of its epoch (restart.Reconcile). It is the
// I/O edge around the pure decisions of package restart; the rules and the
// argument for "never twice" are in restart's doc.go. This file gives the
// part that crosses incarnations of the daemon: the hypervisor orders.
//
// # Orders outlive the process
//
// A hypervisor order (virsh create, xl create, a shutdown, a destroy, a
// migration) may be carried out after the daemon that issued it died: the
// hypervisor, not the client, does the work. A successor that listed the
// guest as absent at once would let the master place it elsewhere while
// the first create finishes: a double run. So:
//
//	O1. Write-ahead. Before the agent issues a start, stop, kill or
//	    migrate to a driver, it records the order (guest, driver, op,
//	    attempt, generation, pid) in the run-state file (package
//	    internal/runstate: [daemon] run_dir, one file per pool and host,
//	    written atomically and fsynced). If the record cannot be written
//	    the order is not issued, and the failure is logged (the plan's
//	    order stays for a later round). The fence path's kills are
//	    recorded the same way (RecordKills), but a kill is made even when
//	    its record fails: a kill can only take a guest away.
//	O2. Removal only once settled. An order is removed when its outcome
//	    is confirmed: a start whose guest a listing shows; a failed start
//	    destroyed and confirmed gone (driver.ConfirmGone); a fence's kills
//	    once a listing a settle time later shows none. A stop or a
//	    migration, and a start that returned but whose guest is not
//	    listed, are not confirmed by their return: the guest is held as
//	    unsettled (O3) and settled by listings.
//	O3. A new incarnation reads, at its first round, the orders earlier
//	    incarnations left. Each such guest is unsettled: it is listed in
//	    Report.Unsettled, and the agent issues no start or migration for
//	    it. Every round, one listing settles it: running here, it is
//	    adopted (reported running, as any guest that runs) and its orders
//	    removed; absent from this listing and from a first one at least the
//	    driver's settle time earlier (driver.Settler; none for the process
//	    driver, whose start returns only once its pid file is written),
//	    it is confirmed gone and its orders are removed. Only then may a
//	    report of this host omit it without listing it unsettled.
//	O4. A run-state file that cannot be read (runstate.ErrBadFile, or an
//	    I/O error) is never taken as empty: until it reads again (the
//	    operator checks the host's guests and removes it), every guest of
//	    the pool that a driver of this host could run and that does not
//	    run here is reported unsettled, and no order is issued (O1 cannot
//	    write its record). The log says why, once.
//
// # Concurrent starts
//
// A round's starts run at once, up to Config.MaxConcurrentStarts ([guests]
// max_concurrent_starts, default 8), so that a hypervisor is not asked to
// boot a failed host's hundred domains at the same moment; stops and
// migrations run in the round's order beside them. A start beyond the bound
// waits for one under way to return. Until its turn it is neither recorded
// (O1) nor issued: nothing of it can land, and its guest stays held by the
// plan, which assigns it here, Starting, until this host reports the
// start done or failed (restart doc.go, M3). Each start, once its turn
// comes, is the same start as ever: recorded first, confirmed by a
// listing or held unsettled (O2), its failure cleaned up and confirmed
// gone. The bound changes when a start begins, never what counts as
// started or as gone. The round waits for every start it issued before
// its listing and its report (restart doc.go, H4), and a halt (Halt, the
// fence path; the agent's context ending) issues none of the starts still
// waiting: Halt forbids them from its call on and returns once the starts
// under way have returned.
//
// # Why a successor's reports are then safe
//
// The master frees a guest only from reports that do not list it as
// running or unsettled (restart doc.go, M3, and Report.Unsettled, which
// Reconcile holds). Suppose incarnation a/5 issued an order for G and
// died. By O1 the order is on file before the hypervisor saw it, and the
// file outlives the process (not the boot: /run is emptied at boot, and a
// machine's reset stopped every guest anyway). By O3 a/6 lists G as
// unsettled from its first report until either a listing shows G (then G
// runs here and is reported running: adoption, no second copy elsewhere)
// or two listings a settle time apart, both after a/5 died, show no G.
// The second case is "confirmed gone" in the drivers' sense: a create
// cut off from its client lands within the settle time or never. So no
// report of a/6 frees G while a/5's order can still make G run here.
//
// # Timing assumptions
//
// The settle time of each driver (2 s for xl, virsh and exec) bounds how
// long after its client died a hypervisor can still make a guest appear
// (a create under way) or disappear. Both listings of O3 are made after the
// predecessor died (a successor starts after it), so their gap measured
// from the death is at least the settle time. The agent's clock for it is
// Config.Now (time.Now: monotonic).
//
// # What it does not guarantee
//
//   - A hypervisor that finishes a create later than the settle time after
//     its client was killed defeats "confirmed gone" (as for a failed start
//     or a fence).
//   - An order issued by something other than this daemon (an operator's
//     own virsh create) is not on file.
//   - The process driver writes its pid file right after the exec: a
//     daemon killed between the two leaves a guest no listing shows.
//   - While the run-state file cannot be read, this host starts nothing
//     and holds every guest it could run: the pool's progress waits for
//     the operator.
package agent
