// Package master runs the pool master lease (package lease) of one
// incarnation beside its heartbeat, and moves the role between hosts.
//
// # What it does
//
// A Runner owns one lease.Lease on a goroutine of its own. It performs the
// lease's I/O on a lease.Storage of its own (in the daemon, a second open of
// the heartbeat area: the heartbeat's rounds never wait behind a ballot, and
// a stuck lease I/O blocks only the lease), sleeping until each action's
// NotBefore. The heartbeat member feeds it every successful renewal
// (Renewed, from heartbeat.Config.OnRenewal) and its liveness view after
// every read (Observed, from heartbeat.Config.OnRead). The runner calls
// Acquire at once and never stops acquiring: the first host to see the
// master gone (dead, left, restarted as a new generation) or the lease
// released runs a ballot, and the winner acts as master. A host that lost
// the role or handed it over acquires again.
//
// The daemon asks Master(now) right before each duty of the master and
// stamps what it writes with the returned epoch. Status reports the role as
// this host sees it; every change of master is logged with both epochs.
//
// # Moving the master (hand-over)
//
// The daemon of the current master sends a KindHandOver message to the
// target through its own slot (package heartbeat: one writer per sector),
// carrying its epoch. The target accepts only if it can take the lease (its
// runner is acquiring: not fenced, stopping, or master) and its own last
// read of the leader record shows the sender as the owner of that epoch
// (lease.Validator: the epoch is the fencing token; a request from a master
// that has been replaced is refused once the target has read the newer
// record). It then asks its lease to read the leader record every quarter
// interval for a while (ReadOften; it takes effect while the lease waits
// to read the record, and otherwise at the lease's next read). A request of an epoch newer
// than the target has read is neither accepted nor refused: it is
// delivered again at the target's next rounds, once it has read the record. Once the acknowledgement
// arrives, the master calls HandOver: the lease stops acting, runs a ballot
// of the next instance proposing the target, and writes its record released
// for the target. The target's next read sees the record and takes the next
// epoch with a ballot of its own, which must choose it (package lease). If
// the hand-over ballot does not complete by its deadline, the old master
// resumes only if its record still shows its epoch, held; no host acts as
// master in between.
//
// # Why it is safe
//
// Everything that matters is the lease's argument (its doc.go): one owner
// per epoch, the leader record never goes back, never two masters at once.
// The runner keeps the lease's assumptions true at the edge:
//
//   - The lease is used by one goroutine at a time (a mutex). Inputs that
//     cannot change the kind of the I/O under way — Renewed, Observed,
//     Master — are applied at once: Renewed and Master only refresh the
//     acting window or latch the fence (a fenced lease ignores the result
//     of the I/O under way; the first renewal also sets the time of the
//     first leader read), and Observed only moves the time of a leader
//     read of the waiting step (when the read is already under way, the
//     action keeps its kind and step, and its result answers it).
//     HandOver and Release are applied between two I/Os, so a result is
//     always reported to the action it answers. Halt and Stop stop the
//     lease at once; the result of the I/O under way is then ignored
//     (and a write under way counts as landing late, see below). Before
//     an I/O the runner checks that the lease still asks for it; a Halt
//     that comes between that check and the I/O lets the I/O go out,
//     which the next point covers (Perform still checks the leader-write
//     deadline, and Stop waits for the loop and QuiescentAt).
//   - Every successful renewal is reported with the times the member
//     measured, the first one included: the runner is started before the
//     member's first round. A renewal that is never reported only makes
//     the lease latch earlier (safe).
//   - The lease's writes are issued one at a time, in order, from one
//     device. A write that timed out may land up to LateWrite after its
//     issue; Stop returns only after the I/O under way returned and
//     QuiescentAt passed, even when the lease had fenced or stopped while
//     the write was under way. The daemon calls Release and Stop from
//     its own goroutine, while the member still renews, before it stops
//     the member that writes "left", and before a new incarnation joins, so a host's lease writes land before the pool may treat the
//     incarnation as gone.
//   - A hand-over request proves nothing by itself: the lease acts only on
//     the leader record and its own ballots. Acknowledging a request that
//     is stale costs at most a refused or failed move.
//
// # Timing
//
// A planned move takes: the message's way to the target and its
// acknowledgement's way back (at most two intervals, one round of each
// host), a ballot (a few I/Os), and the target's next leader read (a
// quarter interval while it expects the hand-over): about one to two
// intervals. A takeover after a master's death happens at the first read
// of the leader record after the host's liveness view turns the master
// dead, which the member reports after every read: host_dead after the
// master's last renewal was seen, plus a ballot.
//
// # What it does not do
//
//   - It does not decide when a host should be master beyond "first to
//     acquire": there are no priorities, no preferred master.
//   - The master's duties (guest placement, restarts) are the daemon's;
//     this package only says when they may run and with which epoch.
package master
