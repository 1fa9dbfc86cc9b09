// Package lease is the pool's master lease: a lock on the shared storage,
// acquired with Disk Paxos (Gafni and Lamport) over one ballot block per slot,
// with a leader record naming the owner of each epoch. The epoch grows by one
// (or more) on every change of owner and is the fencing token of everything
// the master writes.
//
// Lease is a pure state machine in the manner of package join: the driver asks
// Next for an I/O (read the leader sector, read the ballot region, write this
// host's ballot block, write the leader sector), performs it no earlier than
// its NotBefore, and reports the result with the times, on its monotonic
// clock, at which the I/O was issued and returned. The driver also reports
// every successful renewal of its slot (Renewed) and its liveness view
// (SetView). Commands: Acquire (keep trying), TryAcquire, Release,
// ProposeSuccessor (hand-over), Stop. Queries: Master (may this host act as
// master now, and until when), Holder (who holds it, in which epoch), Status,
// Events. Driver performs the I/O on a Storage (AreaStorage on a real area,
// MemStorage in memory) for a driver that does not need its own.
//
// # Records
//
// The byte tables are in heartbeat/ondisk (lease.go) and docs/master.md.
//
//   - Ballot block of slot s, at BallotOffset + s × sector: written only by
//     the host holding slot s. (lver, mbal, bal, value): lver is the Paxos
//     instance, that is the epoch being decided; mbal the highest ballot the
//     slot started in it; bal the ballot in which it accepted value; value
//     (the "inp") is an owner: slot, generation, host name, flags. Ballot
//     numbers are round × slot_count + slot + 1: unique per slot.
//   - Leader record, at LeaderOffset: epoch, owner (slot, generation, name),
//     flags (released; released for a named successor), successor. Written
//     only by the owner of its epoch (below). All zeroes: epoch 0, never held.
//
// # Acquisition
//
//  1. Read the leader record. Choose the instance (below) or wait. Acquire
//     waits and reads again every interval, and at once when SetView makes
//     the lease takeable; TryAcquire reports Busy instead.
//  2. If this incarnation does not know its own ballot block (a new
//     incarnation, or after a write of it failed), read the ballot region.
//  3. Phase 1: write (lver, mbal) into the own block, keeping the bal and
//     value it holds for this instance (phase 1 raises mbal only), with mbal
//     the smallest own ballot number above every mbal seen in this instance.
//     Read all blocks. Abort if any block is of a later instance, if any
//     other block of this instance has a higher mbal, or if any block reads
//     corrupt, foreign, misplaced or newer (it may hide a higher ballot: a
//     torn read of a write under way). Blocks of an earlier instance are
//     empty for this one. Adopt the value accepted with the highest bal in
//     this instance; if none, propose this incarnation (or, in a hand-over,
//     the successor).
//  4. Phase 2: write (lver, mbal, bal = mbal, value); read all blocks; abort
//     as in phase 1. Otherwise the value is chosen: the Decided event.
//  5. If the value is this incarnation: write the leader record (epoch =
//     lver, owner = this incarnation), issued while renewals are fresh
//     (Action.Deadline). When the write returns, Acquired: act as master.
//     If the value is another host that is live here, wait for its record
//     (Acquire) or report Busy (TryAcquire); if it is gone (below), go on to
//     instance lver + 1 at once: its owner will never write the record.
//
// After an abort, a host backs off for a random time (growing with the
// aborts, up to an interval) and reads the leader record first: if the
// winner has written it, the outcome is known without another ballot.
// TryAcquire never gives up between phase 2 and the outcome: its own value
// may have been chosen, and then only it can write the record.
//
// Which instance (choose). With the leader record showing epoch e (or a
// later epoch e this host learnt by its own ballot, with no record yet):
//
//   - instance e + 1 if e is 0, the record is this incarnation's own, it is
//     released (and its successor, if any, is this host or gone), or its
//     owner is gone: its slot holds a later generation, or the owner is dead
//     or left in the caller's view. Never while the owner is live, suspect
//     or unknown.
//   - instance h if a ballot read showed a block of instance h ≥ e + 2, and
//     this leader read was issued after that ballot read returned (Trusted:
//     see the safety argument).
//
// # Being master
//
// A master acts only while Master says so: it holds an epoch, and its last
// successful renewal was issued less than renewal_fail ago. Master returns
// Until, the latest moment to act without asking again. The lease latches
// (Fenced, for good) as soon as renewals lapse: Master is asked after
// renewal_fail without a renewal, a renewal returns renewal_fail or more
// after the previous one was issued, or the first renewal after joining was
// issued after the join's deadline (Config.FirstRenewalBy) or did not
// return by it + io_timeout. A fenced incarnation may never be master again;
// the daemon restarts as a new generation.
//
// A master reads the leader record every interval. A later epoch, or its
// own epoch with another owner or released, or a record of a newer version:
// Lost, at once. A torn, scribbled, zeroed or older record: it writes its own
// again (only it may write the record while it holds the epoch) and goes on.
//
// A leader write that fails is checked by reading the record back (after
// LateWrite if it timed out). A held record of ours is written again
// whenever the read does not show it. A released one (a release, a hand-over,
// or an instance finished after Release) is written again only when a valid
// read shows that it did not land: our record still held, or an older epoch.
// A torn read may be the next owner writing its record over our landed
// release, and writing ours over it would send the record back (the
// simulation found this); the lease reads again instead.
//
// Release: the master stops acting, then writes its record again, released.
// Stop: no more I/O; before the daemon writes "left" into its slot, the I/O
// under way must have returned and QuiescentAt passed.
//
// Hand-over (ProposeSuccessor, after the target acknowledged a request): the
// master of epoch e stops acting before its first write and runs a ballot in
// instance e + 1 proposing the target (ValueHandOver). If the ballot
// completes with value v, it writes its own record released for v
// (HandedOver); v takes epoch e + 1 at its next read with a ballot of its
// own, which must choose v, and writes the record of e + 1. Others do not
// take a record released for a successor that is live. If no ballot of the
// hand-over completes by its deadline, the master reads the leader record
// and resumes acting (HandOverFailed, Resumed) if it still shows epoch e,
// held by this incarnation, no block of an instance beyond e + 1 was seen,
// and its renewals are fresh; otherwise Lost. A value it proposed may
// already be chosen in instance e + 1: it stands, and the next epoch goes
// to that target when this master releases or dies (an earlier proposal
// also wins over a later ProposeSuccessor, which then hands over to it).
//
// # Safety
//
// Assumptions: the storage model of docs/timing.md (a write that returned is
// seen by every later read; a torn sector reads corrupt); a host's own writes
// land in issue order, and every write lands within LateWrite (the watchdog
// period) of its issue or never, also when the process that issued it was
// killed (the lease issues no I/O for that long after one of its writes timed
// out; AreaStorage's device also refuses any I/O while one is stuck; the
// storage bound is below, under "Late writes"); a host's writes land before
// it is reset and before it writes "left"; a later incarnation of a slot
// starts only after the earlier one's process ended (the host lock, package
// join) but possibly before its writes landed; the liveness rules and timing
// rules of package liveness and docs/timing.md.
//
// One value per epoch. Disk Paxos on one disk: a slot's block is written only
// by the slot's holder, in order; a read of a block returns the last write or
// one under way, never a mix (torn reads abort). Two ballots b < b' of one
// instance that both reach phase 2: the later one's phase 1 write and read
// race the earlier one's phase 2 write and read; whichever writes first is
// seen by the other's read, so either b aborts (it sees mbal b') or b' adopts
// b's value. By induction every completed ballot of an instance chooses the
// same value. Three things keep the induction true here:
//
//   - an accepted value is never dropped from a block: phase 1 keeps bal and
//     value; a new incarnation of a slot reads its block before writing it
//     and carries them on (the block belongs to the slot, not to the
//     incarnation); a write that failed makes the block unknown until read
//     again, after LateWrite if it timed out. The brief's rule "a block of an
//     older generation of that slot counts as empty" is unsafe: a value
//     chosen by a ballot of the old generation would be forgotten, and the
//     simulation finds two decisions for one epoch within fifty schedules;
//   - blocks of a later instance abort: once any block is in instance
//     n + 1, no ballot of instance n completes any more (lvers of a block
//     only grow), so moving on freezes instance n;
//   - an unreadable block aborts: it may be a torn read of a higher ballot,
//     except the block of a host that is gone (below).
//
// A corrupt block of a host that is gone. A block that reads corrupt for
// good (a bad sector, a torn write of a host that lost power) would stop
// every acquisition. It is counted empty (BlockIgnored, logged) when
// nobody can be writing it and the value it held can no longer be acted
// on: its slot never held a valid record, or its host is dead or left with
// nothing changed in the slot since and the leader read of this ballot was
// issued after that judgment; and the liveness view was read no more than
// JoinWait − margin before the ballot read returned. Nobody writes: a dead
// host was reset (its writes landed), a departed one was quiescent before
// "left", and a new holder of the slot claims it first, after the view's
// read (else the view would show it), and writes no ballot before its join
// is proven JoinWait after the claim, so not during this ballot read. The
// value: an owner acts only after its own ballot chose it and its record
// landed; if that owner is the gone host, it acts no more, and its record
// (if written) is on storage before the judgment, so this ballot's leader
// read shows it and this ballot runs a later instance; if the owner is
// another host X whose ballot completed, X's own block still holds X with
// a ballot at least as high as any that chose another value, so the
// highest remaining accepted value is X; if X never completed its own
// ballot, X never acted.
//
// A corrupt block of a live host. The others cannot count it empty (its
// host may be writing it), so the host itself repairs it. When its own
// block reads corrupt, foreign or misplaced at a read that learns it, and
// no write of this incarnation can still land (LateWrite after the last
// one; the lease issues one I/O at a time):
//
//   - if this incarnation wrote the block before, it is counted as the
//     last ballot this incarnation set out to write (ownRestorable), and
//     the next write of the block puts those bytes back. The block holds
//     either that write or an earlier one of ours; counting the last as
//     landed is the case every ballot already allows for (a write that
//     timed out may have landed), and each of our writes only raises mbal
//     or bal over the one before, so no value another host may have seen
//     accepted there is taken back;
//   - if this incarnation never wrote it (a fresh incarnation whose
//     quarantine has passed: its predecessor is gone and its writes have
//     landed, "Late writes" below), it is counted empty (ownDroppable), as
//     for a host that is gone.
//
// A host that waits for another's record runs no ballot of its own, yet
// the others' ballots abort on its corrupt block, and the host they wait
// for may never finish. So every fourth read of a waiting acquisition is
// a ballot read (waitRead): a corrupt own block is written back at once,
// the same bytes (restored) or an empty block of the current epoch
// (dropped, which every later instance reads as empty), and the wait goes
// on. The simulation scribbles over a live host's block in one schedule of
// five and needs this rule to finish them. The own check never delays a
// takeover: when the view turns the owner dead (SetView) or a hand-over's
// record is expected (ReadSoon), a pending own check gives way to a
// leader read at once, and comes at a later wait.
//
// The simulation's oracle checks that every learner of an epoch learns
// one value. A decision none of whose learners is still running (each
// crashed or restarted, or stalled for longer than renewal_fail past its
// last renewal: judged dead by then, its own block possibly corrupt, and
// fenced by its own lease when it resumes, before it can act), whose
// owner's leader record never landed and in which nobody acted, is
// superseded: a later instance may choose again, since no host can act on
// it (acting needs the record written by a running owner). The oracle
// counts these (the "superseded" figure) and still fails on two values
// learnt by live incarnations, or on any action in an epoch whose value it
// does not name.
//
// The leader record never goes back. Only the owner of epoch e writes the
// record of epoch e: when it acquires, when it releases (possibly for a
// successor), and to repair it while it holds e. A record of an epoch after e
// is written only after instance e + 1 started, which needs e released (by
// the owner, after its earlier writes landed: its writes land in order), or
// the owner gone (dead: reset, its writes landed before; left: written after
// its lease writes; later generation seen for a Quarantine: its process is
// gone and its writes have landed, "Late writes" below), or a hand-over by
// the owner itself (which writes nothing of e after its released record).
// A failed write is repeated only as described under "Being master": a held
// record when nobody else may write, a released one only after a valid read
// shows it absent. So every write of record e lands before any record of a
// later epoch. The
// brief's alternative, any host that learnt a decision writing the same
// bytes, is not safe: a slow learner's write of epoch e lands after the
// owner released e (or another host wrote e + 1), and the record goes back;
// with that rule the simulation finds a released record turned held again
// within thirty schedules.
//
// Trusting a later instance. A block of instance h is first written by a host
// that read record h − 1 as takeable, or learnt instance h − 1 by a ballot and
// found its owner gone, or by the owner of h − 1 handing over. In the first
// and last cases record h − 1 was on storage before the block, so a leader
// read issued after seeing the block shows epoch h − 1 or later (records never
// go back). Only the learnt case leaves the record at h − 2 or below: then the
// writer judged every owner before h gone, which is what joining h needs. A
// block of instance e + 1 alone proves nothing: it may be the hand-over of
// the live owner of e (the simulation finds two masters at once when it is
// trusted).
//
// Never two masters at once. A master of epoch e acts only after its record
// of e returned, and only while its renewals are fresh, latched. Epoch e ends
// for good, and the next owner starts only after that:
//
//   - owner dead in the acquirer's view: the read that judged it dead was
//     issued at a ≥ baseline + host_dead, baseline ≥ t*, the issue of the
//     owner's last write seen. No write of the owner issued in (t*, a −
//     io_timeout) landed, so its last successful renewal before a −
//     io_timeout was issued at or before t*, and a later one comes at least
//     host_dead − io_timeout > renewal_fail after it and latches the lease.
//     Its acting ended by t* + renewal_fail < a − margin, before the ballot
//     that decides the next epoch begins. Its first renewal after joining is
//     covered by FirstRenewalBy: a write of the incarnation that failed but
//     landed (the join claim, or a first renewal) may start an observer's
//     count with no successful renewal to measure a gap from; the first
//     renewal counts only if issued by the claim's issue + host_dead −
//     io_timeout − margin, when no observer can yet have judged it dead. (The
//     simulation found this: a host whose first renewal failed, stalled,
//     was judged dead, resumed, and acquired while others took its epoch.)
//   - left: the owner stopped acting before it wrote "left".
//   - later generation of its slot, seen for a Quarantine: the old
//     incarnation's process is gone and its writes have landed (above).
//   - released, or handed over: the owner stopped acting before it wrote the
//     record (and before its hand-over's first write).
//   - hand-over that failed and resumed: nobody can complete instance e + 1
//     while the master is fresh and its record is held: not by reading the
//     record (owner live, not released), not by trusting a block of e + 1
//     (never trusted), not the target (it needs the released record). A
//     judgment "dead" of the master implies its renewals lapsed, and then it
//     does not resume. The resume's record and later-instance checks are
//     defence in depth.
//
// Late writes of an earlier incarnation. A daemon killed with a write under
// way (kill -9, a crash, systemd's Restart=) leaves the request in flight:
// on NFS the client keeps retransmitting a killed process's O_DIRECT write
// and the server orders nothing between outstanding requests. Its successor
// may start at once (it must, to be back before the watchdog fires), so a
// ballot block or leader record of generation g may land after generation
// g + 1 of the same slot started: over the successor's ballot block (its
// accepted value erased: the simulation finds two masters of one epoch) or
// over a later leader record written by another host (the record goes
// back). Two rules close this, both from the bound that every write lands
// within LateWrite of its issue or never, and the fact that every write of
// g was issued before g's process ended, hence before g + 1 started:
//
//   - Quarantine of the new incarnation (Config.QuietUntil: its start, after
//     it holds the host lock, plus Quarantine = LateWrite + margin on its
//     safety clock): no ballot write, no leader write and no read of the
//     ballot region before it. After it, every write of g has landed or never
//     will, so the block reads as g's last landed write and the successor
//     carries its accepted value on ("an accepted value is never dropped"),
//     as if one incarnation had written both. The ballot read is held too: a
//     read before g's last phase 2 write landed would make the successor
//     carry on the older value and erase the landed one with its phase 1.
//     Leader reads go on (status, and the Validator of restart orders).
//   - A later generation proves its predecessor gone only a Quarantine after
//     the observer first saw it (Peer.GenerationSince, on its own safety
//     clock). That generation's claim was issued after g's process ended, so
//     the observer's first sight of it is after every write of g was issued,
//     and a Quarantine later each has landed or never will. Until then the
//     owner of epoch e counts as not gone, no host runs instance e + 1 on
//     its account, and no write of g can land after a record of a later
//     epoch: the record never goes back. The slot's own records are ordered
//     by generation instead (package liveness, "Older generations"; package
//     join).
//
// What that costs: after a master's daemon crashes and restarts at once,
// the role is vacant for about a Quarantine (11 s with the default profile)
// plus a ballot; the guests do not notice, since the new incarnation adopts
// them. A master whose daemon does not come back is replaced after host_dead,
// as before (its host is reset; dead needs no wait). A re-execution in place
// (an upgrade) keeps its incarnation and has no quarantine: the old image
// stopped the lease and waited for QuiescentAt before it executed the new one.
//
// The bound itself. LateWrite is a property of the storage path, and the
// pool's configuration must make it true. On NFS the cluster root is mounted
// soft (a request that is not answered fails with EIO after its
// retransmissions, instead of being retried for ever as on a hard mount)
// with timeo and retrans whose request life, timeo × (1 + 2 + … + (retrans +
// 1)) over TCP (the wait grows by timeo at each retransmission), plus the
// server's own queueing, stays below LateWrite; package nfsbound computes it
// and the daemon refuses to start on a mount that does not bound it
// (docs/timing.md, "The late-write bound"). On a block device (an OCFS2
// region on iSCSI, FC or multipath), the SCSI command timeout and its
// retries must be bounded the same way, and multipath must fail I/O rather
// than queue it without limit (no_path_retry a number, not "queue").
//
// A new owner acts after its ballot and record write, which follow the
// judgment. The margin of the timing rules covers clock-rate differences
// between the hosts (docs/timing.md).
//
// What the epoch fences. A master stamps every record it writes for others to
// obey (guest placement, fence requests, restart orders) with its epoch. A
// reader keeps the latest leader record it has read in a Validator and
// refuses a record of an older epoch (ErrStaleEpoch), of its current epoch
// but from another incarnation (ErrNotOwner), and defers one of a newer epoch
// until it has read the leader record again (ErrAheadEpoch): a master's
// record is on storage before it acts, so a new read shows its epoch. Once a
// reader has seen epoch e + 1, nothing the master of e wrote before it
// stopped is obeyed, even if read later. Fresh is the bare comparison.
//
// # Timing
//
// Freshness uses renewal_fail; eligibility uses the liveness view
// (host_dead). LateWrite is the watchdog period. A master that is killed is
// replaced about host_dead after its last renewal was seen: each host runs
// its ballot at once when its own view turns the owner dead. When an aborted
// hand-over left the target's value chosen, the target's own judgment
// decides, up to an interval later. The simulation (hosts' safety clocks
// at independent origins and rates within ±500 ppm; in two schedules of
// three, timers on a clock slewed up to 100 000 ppm either way, as NTP may
// slew CLOCK_MONOTONIC: an early timer waits again on the raw clock, a late
// one delays): takeover after a kill at
// most 1.23 × host_dead (a survivor that had just restarted, watching the
// dead master for host_dead from its first sight), at most about three
// intervals after the first host judged the master dead (median 0.01
// interval), under host_dead + 2 × interval + 1 s in every one of 100 000
// schedules.
//
// # What it does not guarantee
//
//   - A pause of the process between the driver's deadline check and the
//     write system call is not seen: a leader write issued after the owner
//     was judged dead can land after a later record (the record goes back)
//     and a paused master can act past Until. The watchdog covers this once
//     fencing exists (a paused daemon stops feeding it); without one, a
//     SIGSTOPped master discovers its loss only when it runs again, and then
//     at once (the latch, and the leader read).
//   - A leader record that reads corrupt for good blocks every acquisition
//     until its owner writes it again. A ballot block that does, of a host
//     that is live (or suspect, or unknown), blocks the others until that
//     host writes it back (above: at its next ballot, or within four
//     intervals while it waits); a live host that runs no acquisition at
//     all never does. Blocks of hosts that are dead, left or never joined
//     are counted empty (above).
//   - A live host named by a chosen value must run Acquire (or TryAcquire)
//     to learn it and write its record: a member that never does blocks the
//     lease until it leaves or dies. Every member keeps Acquire running.
//   - Progress under contention is probabilistic (randomized backoff; no
//     consensus protocol guarantees it).
//   - Storage that returns stale data after a write returned, or lets a
//     write land more than LateWrite after its issue (an NFS hard mount, a
//     multipath device that queues without limit, a server that holds
//     requests longer than the mount's retransmissions), breaks the
//     argument; the daemon checks the NFS mount options, not the server.
//   - Wall-clock times in records are for humans; nothing uses them.
//   - The epoch fences only readers that check it.
package lease
