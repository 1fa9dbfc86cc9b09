// Package join is the protocol by which a host takes a slot of the heartbeat
// area: a delta lease in the manner of sanlock (write a claim, wait, read it
// back), with checks against a second host of the same name. Joiner is a
// pure state machine: the driver performs the action Next returns and
// reports the result with the times the I/O was issued and returned, on its
// monotonic clock.
//
// # Protocol
//
//  1. Read the whole slot region.
//  2. Choose a slot (below), or wait and read again, or fail.
//  3. Claim: write a record in state "joining", with generation one more than
//     the slot's (1 for an unused slot), sequence 1 and a fresh random join
//     nonce. The driver must issue the write no later than io_timeout after
//     the issue of the read the choice was based on, and reports ErrDeadline
//     instead of writing past that. The Joiner also counts the write as
//     failed if it was issued after that deadline or returned more than
//     io_timeout after its issue, whatever the driver says.
//  4. Read back, with a read issued at least JoinWait (2 × io_timeout) after
//     the claim write returned (at once on the fast path). The claim is
//     proven if the read returns no later than renewBy (below), our slot
//     holds our claim (same host name, generation and join nonce), and the
//     other slots pass the same-name and torn-read checks (below). The
//     Joined action carries renewBy as its Deadline: the member must issue
//     its first renewal by then.
//  5. If the claim write failed or the claim is not proven, start over from
//     step 1 after interval plus a random jitter below 2 × interval; after
//     MaxAttempts claims (default 8) the join fails.
//
// Reads that fail are retried every interval; after renewal_fail of failing
// reads the join fails.
//
// Choosing a slot. Among the valid records that bear this host's name, the
// join distinguishes this machine's (same machine id) not in state "left",
// other machines' not in state "left", and those in state "left". In this
// order:
//
//   - the newest record of this machine may be taken by the fast path
//     (below): it is claimed without JoinWait;
//   - a record of another machine is watched: read every interval and judged
//     by the liveness rules. As soon as it changes (live or suspect) the join
//     fails with a *NameInUseError naming the slot, its generation and
//     machine id; once it is dead or left it is claimed; if it reads invalid
//     for longer than host_dead the join fails; if it comes to hold another
//     name the choice starts over;
//   - if any slot reads corrupt but has not done so at ⌊renewal_fail /
//     interval⌋ + 1 reads in a row, read again after interval: it may be a
//     torn read of a live host of this name;
//   - this machine's newest record, not fast: claimed;
//   - a record of this name in state "left": claimed;
//   - otherwise the first free slot: unused (all zeroes), or holding a valid
//     record in state "left". No other slot is free: a slot that reads
//     corrupt, foreign, misplaced or newer, or that belongs to another host,
//     even a dead one, is never claimed. If there is none, the join fails
//     with a *NoFreeSlotError that counts the unreadable slots.
//
// # Safety
//
// Competing claims on one slot. Take our claim C, proven by a read-back
// issued at least 2 × io_timeout after C's write returned. A competitor whose
// read sampled the slot before C landed issued that read before C's write
// returned, so it issued its claim within io_timeout of that, and a claim
// write that counts (step 3) landed within a further io_timeout: before our
// read-back, which then shows it (or a later record) instead of C. A
// competitor whose read sampled the slot after C landed saw a record in
// state "joining" that is not free, and did not claim it. So a claim is
// proven only if no counted claim landed after it: of several hosts claiming
// one slot, at most one joins, and when every claim write counts, exactly
// one (the last to land).
//
// A claim write that does not count (it timed out, or returned late) may
// still land later, even after another host has joined the slot. Its writer
// has started over and does not rely on it. If it reads the claim back
// later, in state "joining", the fast path does not apply, the slot is
// claimed with JoinWait like any other, and the owner's renewals (every
// interval, less than JoinWait) overwrite it first. The owner's own-slot
// check (package heartbeat) stops the owner if it happens to read the late
// claim between its own write and read.
//
// Two hosts of one name. A host that finds its name in another machine's
// record watches it, and refuses to join as soon as it changes. Two hosts of
// one name that join at the same moment each read the other's claim at
// their read-back, since a claim based on a read that missed ours lands
// before our read-back. At the read-back, a record of our name in another
// slot that is new or changed since the read our claim was based on, and is
// not one of this Joiner's own claims, fails the join with a
// *NameInUseError (Claiming when that record is in state "joining").
// Neither joins. A slot that reads corrupt might hide such a record (a torn
// read), hence the torn-read rule: the choice, and the proof on the normal
// path, wait until each corrupt slot reads valid or has read corrupt for
// longer than renewal_fail, which a live host's slot, rewritten every
// interval, does not.
//
// renewBy is the claim write's issue time + host_dead − io_timeout − margin.
// A host of the same name on another machine that watches our new slot saw
// our claim no earlier than its issue, and cannot judge it dead before a
// read issued host_dead later; a renewal issued by renewBy lands before
// that, so it sees a change and refuses to start instead of taking the slot.
// A read-back that returns after renewBy proves nothing, and the join starts
// over.
//
// Fast path: this machine's record is claimed without JoinWait when it is in
// state "live" or "leaving" and carries this boot's id. It was then written
// by an earlier incarnation of this daemon, in this boot, after that
// incarnation had joined: the daemon holds the host lock (internal/daemon,
// hostlock.go: an abstract unix socket named after the pool UUID, the
// machine id and the host name, whatever the configured paths) for its
// whole life, so that incarnation is dead;
// no host takes a slot that is not free; and a host of this name on another
// machine would have found the name in use while that incarnation renewed.
// A restarted daemon must be back in its slot well before its watchdog
// fires (DESIGN.md, invariant 5), so it cannot afford the wait. A record in
// state "joining" may be an unproven claim that landed late, and a record
// of an earlier boot may already be judged dead by a same-name host; both
// take the normal path.
//
// Every join bumps the slot's generation. Observers see a new generation as
// a new incarnation, which is not proof that the old incarnation's guests
// are gone.
//
// Late writes of the earlier incarnation. The fast path runs at once after a
// crash, while writes of the dead process may still be in flight (on NFS a
// killed process's O_DIRECT requests are retransmitted), and they land
// within LateWrite of their issue (package lease, "Late writes"). A late
// renewal or "left" of generation g landing over the claim or a renewal of g
// + 1 is an older generation over the slot: no reader takes it as current
// (package liveness, "Older generations": a Stale event, the newer record
// kept), the owner's own-slot check renews over it instead of reporting the
// slot lost (package heartbeat), and the next renewal, an interval later,
// replaces it. One that lands over the claim before its read-back makes the
// read-back fail and the join start over: the slot then shows generation g
// of this machine and boot again, and the fast path claims g + 1 anew; each
// retry uses up a late write, and there are few. The lease's own records
// wait for the quarantine (package lease).
//
// # Timing assumptions
//
// A claim write counts only if issued within io_timeout of its read's issue
// and returned within io_timeout of its own issue, both on the joining
// host's monotonic clock; the Joiner checks both from the times the driver
// reports, so a pause of the process anywhere between the deadline check and
// the write's return makes the write not count. Reads are issued no earlier
// than the Joiner asks.
//
// # What it does not guarantee
//
//   - Storage that reorders one host's writes, or returns stale data after a
//     completed write, breaks the argument.
//   - The fast path trusts that nobody judged the earlier incarnation dead.
//     If that incarnation was silent for host_dead before the restart, a
//     host of the same name on another machine may be claiming the slot at
//     the same moment; our renewals normally overwrite its claim before its
//     read-back, but if they fail meanwhile it can join our slot too.
//   - Two machines that share a machine id and a host name (cloned images)
//     are taken for one: the second claims the first's slot.
//   - renewBy is a deadline for the driver; the Joiner cannot enforce it.
//   - A join may lose MaxAttempts races in a row, or wait on a slot that
//     reads corrupt, and then fail; the daemon exits with the reason.
package join
