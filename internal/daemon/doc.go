// Package daemon is one host's hbfence daemon: it wires the heartbeat
// member, the fencer, the master lease and the guest agent to their edges
// (the configuration, the heartbeat area, the instance lock, the watchdog,
// the control socket, signals and logs), and runs the lifecycle of the
// host's daemon: which incarnation runs, and how one ends.
//
// # The shape
//
// A Daemon (daemon.go) is what lives as long as the process: the instance
// lock, the area's two opens (the heartbeat's and the lease's), the
// watchdog, the guest records, the control socket. An incarnation
// (lifecycle.go) lives from a join to a leave or a fence: its member under
// its fencer (fencing.go), its part in the master role (master.go), its
// guest agent (guests.go). When an incarnation ends, the pure function
// next decides, from how it ended (an ending), what the daemon does: exit,
// join again after a pause, wait for the watchdog, re-execute itself, or
// resume the slot in this image. Every bound the lifecycle waits by is
// named in durations.go. Signals are decided in signals.go, the upgrade in
// upgrade.go, the clock readings that cross an exec in clock.go.
//
// # The transitions and what each guarantees
//
// start → join. Before joining, the pool's rules are checked with the
// watchdog's estimated firing time (fence.CheckWatchdog): host_dead >
// renewal_fail + watchdog + margin. The host lock proves that no other
// daemon of this machine serves this host of this pool (so the join's
// same-machine fast path may take over a slot of this host's name; see
// "One daemon per host" below), and the instance lock that no other
// daemon uses this control socket. The watchdog is armed only after
// the first renewal (the fencer's Arm), never before: opening it counts as
// a feed.
//
// run. The fencer feeds the watchdog only while the last successful
// renewal began less than renewal_fail ago; a host whose renewals lapse
// kills its HA guests and stops feeding, so it is reset no later than its
// last renewal + renewal_fail + watchdog, before any observer's host_dead.
//
// leave (SIGTERM, SIGINT). The guest agent stops every guest of the pool
// here and reports them stopped, within leaveStop; the master role is
// released and the lease made quiescent (releaseWithin, then the lease's
// Stop waits until no lease write of this incarnation can land); then the
// member writes "left" and the watchdog is disarmed. "left" promises that
// no guest of the pool runs here: if the guests cannot all be stopped, the
// host fences instead of writing it.
//
// fence. The member stops (it writes nothing more), the master role stops
// at once (Halt), the guest agent halts before the kill so that no start
// brings a guest back, the guests are killed. Confirmed gone: the watchdog
// is disarmed and the daemon joins again as a new incarnation (a new
// generation) after rejoinAfter. Not confirmed: it waits for the watchdog.
//
// rejoin. A new incarnation begins only once the previous one's member has
// stopped and its lease is quiescent (end): no write of an older
// incarnation of this process lands after the next one joined. (Writes of
// a crashed process are the lease's and the join's subject, not this
// package's.)
//
// crash and restart (SIGKILL, a panic). The watchdog device is closed
// without the magic close and counts on; the guests run on. systemd starts
// the daemon again: it joins as a new generation (the instance lock is
// free, so the fast path applies), arms the watchdog after its first
// renewal (in time if the restart took less than the watchdog's period
// after the last feed; otherwise the machine is reset, which is safe), and
// its guest agent adopts the running guests from the hypervisor.
//
// re-exec (SIGUSR1, an upgrade). The daemon keeps its process, its slot and
// its generation, and touches no guest:
//
//  1. The installed binary is checked (the path resolved at start:
//     after a package upgrade /proc/self/exe names the old, deleted
//     inode, the path the new file). A host that is not healthy does not
//     try.
//  2. The guest agent halts between two rounds (no guest is started,
//     stopped or killed: they run on). The master's duties stop, the
//     master role is released (the next master, possibly the new image,
//     takes it; carrying an epoch across an exec would need the lease's
//     tenure to survive a process boundary, releasing costs one ballot)
//     and the lease stops and becomes quiescent: no lease write of the
//     old image lands after the new image writes.
//  3. The member stops between two rounds (Abort, then Suspend): its last
//     write has returned, none follows. Its slot record, generation, join
//     nonce, sequence and the last renewal's issue time are handed over;
//     the issue time as an absolute reading of the safety clock (Go's
//     monotonic reading is relative to the process).
//  4. Only if the last renewal is younger than renewal_fail − reexecBudget,
//     the watchdog is fed one last time and its descriptor, never closed,
//     is handed over with the two locks, both area opens and the control
//     socket (close-on-exec cleared on these alone). The old image then
//     execs the installed binary with the hand-over in HBFENCE_UPGRADE.
//  5. The new image takes the descriptors (close-on-exec set again, so that
//     no guest or hook inherits them), feeds the watchdog at once, reads
//     the header again from the handed-over open, and checks the pool's
//     rules again: the same pool, a valid timing, the watchdog's firing
//     time against host_dead > renewal_fail + watchdog + margin. If they
//     no longer hold it fences (refuse): the guests are killed, the
//     watchdog disarmed only if they are confirmed gone, else left unfed
//     to reset the machine; if this image never took the watchdog over
//     (its adoption failed, or it stopped before it), nothing says the
//     machine is reset, so the handed-over slot is marked unsafe (the
//     no-watchdog flag) and its death never reads as a fence. Otherwise its member resumes the slot
//     (heartbeat.Member.Resume): its first round reads every slot and
//     checks that the slot still holds its record, as every round does.
//     The fencer's and the lease's deadlines count from the old image's
//     last renewal, so a re-exec that took longer than renewal_fail
//     fences as a stalled renewal would. Liveness views start fresh: a
//     peer's death is only judged later (host_dead from the first read),
//     never earlier. The guest agent starts and adopts its guests from the
//     hypervisor as a restarted daemon does.
//  6. If the exec fails, the old image takes the descriptors back and
//     resumes its slot the same way, in process, and logs why.
//
// Between the feed before the exec and the new image's first feed the
// watchdog counts from that feed: the machine is reset at the latest at
// feed + watchdog ≤ last renewal + renewal_fail + watchdog, within the
// pool's rule, whatever happens to the exec.
//
// reload (SIGHUP). Only [log] changes at run time (level, format, target:
// logs.go swaps the writer); every other changed key is logged as needing
// a restart. Nothing of the guests, the slot, the watchdog or the master
// role is touched.
//
// # The service and the journal (service.go, lastfence.go, logs.go)
//
// As a systemd service (Type=notify) the daemon sends READY=1 once the
// three hold: the member has joined, the fencer is healthy and the
// watchdog armed (or there is none), and the guest agent's first round is
// over (its guests adopted); again after a reload and after a re-exec
// (the new image, with MAINPID=). STATUS= is one line from the same view,
// sent when it changes; STOPPING=1 and EXTEND_TIMEOUT_USEC= when a stop
// begins. None of it decides anything: a notification that fails is
// logged and the daemon goes on. When a fence begins, the reason is
// written and synced to [daemon] state_dir/last-fence while the guests
// are killed (waited for at most lastFenceWithin), and every fence and
// loss of safety is logged at crit with its MESSAGE_ID
// (internal/journal), which journald syncs at once.
//
// # One daemon per host (hostlock.go)
//
// The join's fast path (heartbeat/join, doc.go) takes this machine's slot
// without the join wait when it bears this host's name, machine id and boot
// id: it trusts that the incarnation that wrote it is dead. That holds only
// if no other daemon of this machine serves the same host of the same pool.
// A lock file named after a configured path (the control socket's
// "<socket>.lock") proves nothing: a second configuration with another
// socket took the slot by the fast path, and the two fenced each other in a
// loop.
//
// The host lock is a Linux abstract unix socket named
// "hbfence/<pool uuid>/<hash of machine id and host name>", bound and
// listening from before the join until the process ends. Its name depends
// only on what the fast path compares (the pool in the area's header, the
// machine id, the host name), never on a path, so every daemon of this
// machine for that host and pool finds it. The kernel releases it when the
// last descriptor of the socket closes, however the process dies (SIGKILL
// included), so a crashed daemon never blocks its successor, and no stale
// file is left to remove. A second daemon's bind fails with EADDRINUSE at
// once; it connects to the socket (a non-blocking connect, which never
// waits) and names the holder's pid from SO_PEERCRED. The descriptor can be
// handed to a re-executed image (HostLock.File, HostLockFromFile), which
// keeps the lock held across the exec with no gap.
//
// Limits. Abstract unix socket names are scoped to a network namespace: two
// daemons of one machine in different network namespaces (containers with
// their own network, `ip netns exec`, systemd PrivateNetwork=) do not see
// each other's lock. hbfence must run in the host's network namespace (the
// packaged unit does; do not set PrivateNetwork=), and at most one container
// or namespace of a machine may run a daemon for a given pool. A configured
// [host] machine_id that differs between two daemons of one machine makes
// them two machines to the lock, as it does to the join (which then takes
// the normal path and refuses the name in use). Any local process of the
// same namespace can bind the name first and keep the daemon from starting
// (a denial of service, never a safety loss); the refusal names its pid.
//
// # The area replaced under the daemon (areawatch.go)
//
// The daemon opens the heartbeat area once. Delete .server_pool_hb and
// format a new one at the same path, and the open names the deleted inode:
// the daemon heartbeats where nobody reads, and a daemon started on the new
// file becomes a second master of epoch 1 on the same guest records. Every
// interval the daemon checks that the path still names the device and
// inode it opened and that the header, read again with O_DIRECT, is the
// one it joined (area.Verify), through a duplicate of the heartbeat's
// descriptor with a direct-I/O worker of its own (area.Watcher): a device
// runs one I/O at a time, and the check must never make a renewal fail as
// busy. Once either changed, the alarm
// area-replaced is raised (log and status), the master role is given up
// at once without a write, the daemon never joins that area again and
// refuses an upgrade (the new image would resume on it), and:
//
//   - another file at the path (the old one deleted or moved): the member
//     goes on renewing the old inode. Nobody of the new area reads it, so
//     it harms nobody, and the watchdog stays fed: the guests run on,
//     untouched. No master can restart them. The old pool's other daemons
//     check the same path and give their role up the same way, within one
//     interval of one another, long before host_dead could make any of them
//     judge this host dead; and the new area's master refuses the old
//     pool's records, since every record names its pool
//     (restart/store: ErrOtherPool), so it neither places the old pool's
//     guests nor writes its plan over theirs.
//   - the same file re-formatted in place: this host's writes would land in
//     another pool's area, over a slot that a host of that pool may have
//     taken. The incarnation fences (the HA guests killed, the watchdog
//     disarmed once they are confirmed gone, or left unfed to reset the
//     machine), then the daemon exits so that its restart opens the new
//     area; `hbfence init` refuses an area whose slots change, even with
//     --force, so this takes a tool that bypasses it.
//
// A check that cannot tell (the header read failed) changes nothing: the
// renewals' own rules judge the storage. On NFS a file deleted by another
// client is gone on the server: the old open's I/O then fails (ESTALE) and
// the renewals fail as for a lost storage, which fences; the check is for
// the storages where the old inode lives on (local files, OCFS2, a client
// that deleted the file itself).
//
// # Timing assumptions
//
// Those of the pool (heartbeat/timing): an I/O is bounded by io_timeout,
// the watchdog fires its effective time after the last feed, the safety
// clock's rate is bounded. The re-exec adds one: that exec and the new
// image's start up to its first feed take less than the watchdog's firing
// time (measured in the lab: about 20 ms); if not, the machine is reset,
// which is safe but an outage.
//
// # What it does not guarantee
//
// A SIGSTOP longer than the watchdog's period resets the machine. An
// upgrade releases the master role, so the pool has no master for a
// moment (one lease acquisition). Messages in flight (a hand-over request
// being answered) are judged again by the new image.
package daemon
