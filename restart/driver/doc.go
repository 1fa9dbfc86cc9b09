// Package driver starts, stops and lists guests on the local hypervisor.
// One small interface, Driver, and its implementations:
//
//   - xl: Xen's toolstack, as on Oracle VM Server (xl create, shutdown,
//     destroy, list -l checked against list -v, migrate);
//   - virsh: libvirt (virsh create, shutdown, destroy, list, migrate
//     --live), with the domain XML on the shared storage;
//   - exec: the operator's own scripts, with a documented contract;
//   - process: a guest is a local process. For the demonstration pool and
//     the tests only; its migration is stop-then-start.
//
// # The contract every driver keeps
//
//   - Start returns nil only when the hypervisor accepted the guest; on an
//     error the guest may be half-started, and the caller force-destroys
//     it and checks Running before it reports the attempt failed.
//   - Destroy is idempotent: destroying a guest that does not run is not an
//     error. Stop is graceful and bounded by the context; the caller
//     destroys when it times out.
//   - Running lists the UUIDs of the guests that run now, whoever started
//     them: a restarted daemon adopts them (DESIGN invariant 5). An error
//     means "unknown", never "none".
//   - No driver builds a shell command line from guest names: every
//     command is an argv.
//
// # Confirmed gone, and why it can be believed
//
// A guest is confirmed gone (ConfirmGone) when a listing does not show it
// and, for a driver that settles (Settler: xl, virsh and exec, 2 s), a
// second listing the settle time later does not either. The settle time
// is the assumption that a command whose client was killed or timed out
// (xl create, virsh create, a migration the client gave up on) is carried
// out by the hypervisor within that time or never. What can make it
// untrue: a hypervisor stalled longer than that (a libvirtd or xenstored
// blocked on storage), or an exec script whose work goes on in a child it
// left behind. The process driver has no settle time: its Start returns
// only after the guest's pid file is written, and a process it started is
// listed from then on; a daemon killed between the exec and the pid file
// leaves a process no listing shows (not guaranteed).
//
// A listing is only as complete as the tool behind it, and each driver
// says what it sees:
//
//   - xl: xl list -l prints only the domains whose stored JSON
//     configuration libxl can read, and skips the others without an error
//     (a domain created by another toolstack or an older Xen, a lost
//     /var/lib/xen file). Every listing is therefore checked against xl
//     list -v, which reads ids and UUIDs from the hypervisor itself: a
//     domain it shows and the detailed listing leaves out (or gives
//     another UUID) makes the listing an error, "unknown", never "gone".
//     What is left: a domain created after xl list -v ran (the settle
//     time's second listing sees it).
//   - virsh: virsh list --uuid lists the domains libvirtd knows. A qemu
//     started outside libvirt, under another URI (qemu:///session, another
//     hypervisor driver), or whose status file under /run/libvirt libvirtd
//     lost or could not reconnect to after a restart, runs on unlisted,
//     and no second listing from below libvirt exists for this driver to
//     check against: such a guest can be confirmed gone while it runs.
//     Guests of the pool must be started through the same URI, by this
//     daemon only.
//   - exec: the script's list is the whole truth the daemon gets. The
//     script must list every guest of the pool the host runs, from the
//     hypervisor itself, and fail (exit non-zero) when it cannot tell;
//     a list that skips what it cannot read breaks "confirmed gone".
//   - process: the live pid files in the state directory; a process whose
//     pid file was removed by hand is not seen.
//
// The agent uses ConfirmGone after a failed start, the fence path after
// its kills, and a daemon's successor to settle the orders an earlier
// incarnation left in the run-state file (restart/agent doc.go): each
// depends on the settle time in the same way.
package driver
