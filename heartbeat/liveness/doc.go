// Package liveness judges, for one observer, whether each host of the pool
// is alive, from successive reads of the whole slot region. Tracker is a pure
// state machine: it does no I/O and reads no clock. The caller passes each
// successful read with the times, on the observer's monotonic clock, at which
// the read was issued and at which it returned.
//
// # What is a change
//
// The Tracker keeps, per slot, the last valid record it read (Peer.Record)
// and two instants of the observer's clock:
//
//   - LastChange: the completion time of the read that first showed a
//     record different from the one held (ondisk.Changed: generation,
//     sequence, join nonce, state or host name), or showed a record in a
//     slot that every earlier read had found unused;
//   - FirstSeen: the completion time of the read that first showed the slot
//     in use. A record already present at the observer's very first read,
//     or first read validly after only corrupt reads, is not a change: the
//     observer cannot tell how old it is.
//
// The baseline is LastChange, or FirstSeen while no change has been seen.
// A slot that reads corrupt, torn, foreign, misplaced, of a newer version or
// zeroed is "no change seen": the held record and the baseline stay as they
// were; such a read is not evidence of silence either (rule 3). A Corrupt event reports each new such status, except a zeroed slot,
// which is only recorded in Peer.Status.
//
// # States and rules
//
// Each peer is judged at every read (Observe) and whenever the caller asks
// (Evaluate, which the heartbeat member calls after a failed read). In this
// order:
//
//  1. Dead stays dead while the held record's generation is the one declared
//     dead.
//  2. Left: the held record's state is "left".
//  3. Dead: a read issued at or after baseline + host_dead showed the held
//     record valid and unchanged. Only such a read counts, never the passing
//     of time: while reads fail, or while the slot reads corrupt, torn or
//     zeroed, no host becomes dead (a torn read may have raced a write that
//     was landing, so it proves nothing about the writer's silence).
//  4. Unknown: no change seen yet (and rule 3 does not hold).
//  5. Suspect: now − baseline > renewal_fail.
//  6. Live: otherwise.
//
// So a host the observer has seen change is live, turns suspect after
// renewal_fail of silence, and dead on the first read issued host_dead or
// more after its last change that shows its record unchanged. A host never seen to change stays unknown until host_dead
// after the observer first saw it, then turns dead, unless it changes first.
// A record of a new generation (a new join) in a dead slot is a change, and
// the slot is live again: a NewIncarnation event. A new write of the
// generation declared dead is a Revenant event and the slot stays dead: that
// host stalled for longer than host_dead and must have fenced itself.
//
// Every change of state is one Transition event, with the silence that led
// to it for suspect and dead.
//
// # Older generations
//
// A slot's generation only grows: a claim takes the slot's generation + 1
// (heartbeat/join). So a valid record of an older generation than the one
// held, read over a slot whose last read was valid, is a late write of an
// earlier incarnation (a killed process's O_DIRECT request still in flight
// at the NFS client, landing after its successor joined): a Stale event.
// Its content is never taken — the held record, its generation and state
// (a late "left" in particular) stay — but its appearance is a change for
// the silence rule (baseline = the read that first showed it), since it
// may hide writes of the current generation made before it landed; the
// same stale record read again unchanged is evidence of silence, so a
// successor that died under it is still declared dead host_dead later. A
// new write of the current generation replaces it and it is forgotten. The
// member treats such a record over its own slot the same way (logged, not
// a loss of the slot), and restart.Reconcile never takes a view of an
// older incarnation than a plan's owner as news of that owner. The one
// exception: after a read that showed the slot corrupt, torn or zeroed, a
// lower generation is a claim of a slot that had no valid record
// (generation 1) and is taken as a new incarnation.
//
// # Safety
//
// Dead is the only state later layers act on (restarting guests, taking a
// master lease). In the rule "a read issued at or after baseline + host_dead
// showed the record unchanged", the baseline is no earlier than the start of
// the host's last write that read could see, and every write the host
// completed in time, if started more than io_timeout before the read's issue,
// had landed before it. Given the timing rules,
// the host has then fenced and been reset (docs/timing.md). The rule uses
// only the observer's monotonic clock.
//
// # What it does not guarantee
//
//   - Dead means "has fenced itself, if it follows the protocol and the
//     storage is honest". A host that does not fence (no watchdog, a bug) can
//     still run.
//   - The argument assumes storage that, once a write has completed,
//     returns it (or a later write) to every reader: no stale reads, no
//     reordering of one host's writes. An old, valid record returned again
//     counts as a change, and a host whose slot persistently reads invalid
//     stays unknown, live or suspect for ever, never dead.
//   - A new generation is a new incarnation of the daemon, not proof that
//     the old incarnation's guests are gone.
//   - Suspect is advice for operators and later layers; nothing is safe to do
//     on suspect alone.
package liveness
