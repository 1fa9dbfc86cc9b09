// Package heartbeat runs one host's heartbeat in a pool: it joins the pool by
// claiming a slot of the shared heartbeat area, renews that slot once per
// interval, reads every slot after each renewal to judge every host's
// liveness, and writes "left" into its slot on a clean stop.
//
// Member is the thin I/O driver around pure pieces in the sub-packages:
//
//   - ondisk: the byte format of the area (header, slot records, message cells);
//   - timing: the pool's five timeouts and the rules they must keep;
//   - directio: O_DIRECT|O_DSYNC I/O, each I/O bounded by io_timeout;
//   - area: an opened, formatted area on a file or device, and Mem, an
//     in-memory area for simulations;
//   - join: the slot-claim protocol, as a state machine;
//   - liveness: the observer's judgement of every slot, as a state machine.
//
// A Member does not judge its own renewals. It reports when the last one
// began (LastRenewal), and the fencer (package fence, driven by the daemon)
// decides from that when to stop feeding the watchdog and kill the host's
// guests, and stops the Member with Abort.
//
// The project's docs/heartbeat.md, docs/liveness.md and docs/timing.md
// describe the protocol for operators; this comment states it for developers.
//
// # Protocol
//
// Member.Join drives a join.Joiner until this host owns a slot (see package
// join). The reads it makes on the way are also fed to the liveness tracker.
// The claim write is issued only if its deadline has not passed, and the
// times the driver reports let the Joiner discard a claim write that took
// longer than io_timeout. If the join is proven after the Joined action's
// deadline (the latest moment for the first renewal), Join returns an error
// instead of joining.
//
// Member.Run then runs a round at once, and the next round interval after
// the start of the previous one (at once, if that round took longer). A
// round is:
//
//  1. Read the whole slot region in one I/O and decode it. Give the decoded
//     slots to the liveness tracker with the read's issue and completion
//     times. If the read failed, re-evaluate liveness at the current time
//     without new data.
//  2. After a successful read, check the own slot against what this host
//     last wrote: a valid record whose host name, generation or join nonce
//     differs means another host (or another incarnation of this one) took
//     the slot; Run returns a *SlotLostError and nothing more is written. A
//     record that does not decode (corrupt, torn, misplaced, zeroed) is no
//     evidence either way: it is logged and this round rewrites it. Reading
//     before writing means a foreign record that landed at any time since
//     the previous write is seen before it is overwritten.
//  3. Bump the sequence of this host's record and write it into its own
//     slot: one sector, one I/O, bounded by io_timeout. If the write
//     succeeded within io_timeout (checked here too) and this round's read
//     succeeded, the instant just before the write was issued becomes the
//     last renewal (LastRenewal); the join's proven claim write is the
//     first. A write after a failed read still goes (other hosts keep
//     seeing this host while it may be fencing) but is no renewal: it was
//     not checked against a foreign claim in the slot, and a host that
//     cannot read sees no peer, message or lease change. A host that can
//     write but not read thus fences after renewal_fail, as one that can
//     do neither (issue 10 item 7); a read that fails for less than that
//     fences nothing.
//
// The first round after Join skips steps 1 and 2: the join's read-back was
// its read, and its write must be issued before the join's deadline.
//
// Between rounds, when the baseline + host_dead of a host that is neither
// dead nor left falls before the next round, Run wakes at that instant and
// reads all slots without writing (Observe), so that a silent host is
// declared dead by a read issued at its deadline rather than up to an
// interval later. A deadline that passed while a round was under way (its
// read was issued before the deadline and cannot decide it: with reads
// that take time and host_dead a whole number of intervals, every time) is
// read at once when the round ends, unless the next round is already due
// (its read decides it, and the renewal does not wait for another read).
// Each deadline gets one such read (liveness.Tracker.NextDeadline skips a
// deadline that a successful read issued at or after it did not decide,
// e.g. a slot read zeroed, and one whose early read failed, which the
// next round reads again, so that it holds back no other host's), and the
// read is issued only once the raw clock has reached the deadline (a
// timer may fire early). So a host that loses power is declared dead
// within host_dead + interval of its last renewal's landing, plus I/O
// latencies (the read that saw the renewal, the rest of a round the
// deadline fell in, the deciding read), provided the reads succeed: a
// failed read adds up to an interval.
//
// Run ends when its context is cancelled: it calls Leave, which writes the
// record once more with state "left" and its message cells cleared, so other
// hosts see a clean stop at once instead of waiting host_dead, and returns
// Leave's error. It ends without writing anything more on a *SlotLostError
// or when Abort is called (the host is fencing).
//
// Status returns this member's view (the body of "hbfence status").
//
// # Safety
//
// One writer per sector: a member writes only the slot it won in the join,
// and only through one directio.Device, which never has two I/Os in flight,
// so the host's writes to its slot are issued in order and never overlap.
// After a lost slot or an Abort it writes nothing more: a fenced incarnation
// must join again as a new one.
//
// The argument that makes an observer's "dead" safe is in docs/timing.md.
// The Member's part in it is LastRenewal: the start, on this host's
// safety clock, of its last renewal that the device returned without
// error within io_timeout. The fencer counts its deadline from there.
//
// Time: every safety instant (the issue and return of each I/O, rounds,
// deadlines, message ages) is read on the member's Clock, CLOCK_MONOTONIC_RAW
// by default (package internal/safeclock: not slewed by NTP), and every wait
// re-reads it, so a Go timer slewed by up to 100 000 ppm never ends a wait
// early. Wall-clock times written into records are for humans only; the
// proof of life for systemd's service watchdog (Activity) is on Go's clock.
//
// # Timing assumptions
//
// The pool's figures come from the area's header and are validated again in
// New. The device fails any I/O that has not returned io_timeout after it
// was handed to the I/O worker (see package directio for the exact edge).
//
// # What it does not guarantee
//
//   - A renewal counts if the device returned it without error. Unlike the
//     Joiner with claims, the member does not compare the renewal's own
//     issue and return times: a pause between taking the start time and
//     handing the write to the device is not seen, and the renewal counts
//     from the earlier start though it may land more than io_timeout later.
//   - LastRenewal is zero until the first renewal after the join succeeds;
//     the join's claim write is not counted.
//   - An own slot that keeps reading back invalid after successful writes
//     (storage returning bad data) is logged on every round but does not
//     stop the member.
//   - A paused process (SIGSTOP, a stalled VM) runs no rounds and no checks;
//     only a watchdog acts on it.
package heartbeat
