// Package fence decides when a host fences itself: when it feeds its
// watchdog, when it stops, and when it kills its HA guests. It is the
// guarantee that makes every restart elsewhere safe: by the time any other
// host declares this host dead, it has no HA guest running — it killed
// them, or its watchdog reset the machine.
//
// # Protocol
//
// The Fencer is a pure state machine (it does no I/O and reads no clock).
// The daemon reports each successful renewal with Renewed(start), where
// start is when the write was issued, on the safety clock
// (CLOCK_MONOTONIC_RAW, package internal/safeclock); a write
// counts only if it completed within io_timeout. The daemon calls Tick at
// least every FeedPeriod and carries out the actions:
//
//	unarmed   --first renewal-->        healthy   (arm the watchdog, feed)
//	healthy   --now < start+rf-->       healthy   (feed)
//	healthy   --now >= start+rf-->      fencing   (stop feeding, kill HA guests)
//	any       --Order(reason)-->        fencing   (poison pill, slot lost, broken invariant)
//	fencing   --guests confirmed gone-> fenced    (disarm: magic close)
//	fencing   --kill failed or late-->  resetting (the watchdog resets the machine)
//
// where rf is renewal_fail and start the start of the last successful
// renewal. Fencing is latched: a renewal that succeeds after fencing began
// changes nothing; the host must join again as a new incarnation.
//
// # Safety argument
//
// Let t be the start of the host's last successful renewal. The fencer
// feeds only while now < t + renewal_fail, so the last feed is before
// t + renewal_fail and the watchdog, firing watchdog (its effective time)
// after the last feed, resets the machine before t + renewal_fail +
// watchdog — unless the guests were confirmed gone before that, in which
// case the host is fenced without a reset. An observer saw that renewal
// land no earlier than t and declares the host dead no earlier than
// t + host_dead (heartbeat/liveness). The pool's rule host_dead >
// renewal_fail + watchdog + margin, checked by CheckWatchdog with the
// watchdog's effective firing time (not the number written to it: some
// drivers round, Intel's iTCO fires after twice its timeout), leaves at
// least margin between the two.
//
// A restarted daemon must not feed before its first renewal: an earlier
// incarnation's last renewal t is unknown to it, and feeding would push the
// reset past t + renewal_fail + watchdog. It arms (opening a watchdog
// device feeds it) only after its own first successful write.
//
// # Timing assumptions
//
// The watchdog fires no later than its effective firing time after the
// last feed. The host's raw clock and the observers' run at the same rate
// within 1000 ppm, which the margin's rate term absorbs (heartbeat/timing).
// Tick runs at least every FeedPeriod, on a Go ticker that NTP may slew by
// up to 10 %; the deadline is judged on the raw clock at each tick, and the
// watchdog is fed only while it has not passed, so a late tick delays the
// kill of the guests but never the reset: the last feed came before the
// deadline. if the
// daemon stalls (SIGSTOP, a hung runtime) it stops feeding, which is safe:
// the watchdog resets the machine.
//
// # What it does not guarantee
//
// With no watchdog (allow_no_watchdog), a host that stalls with its guests
// running is not reset: the guarantee rests on the daemon killing its
// guests in time, which a stalled daemon cannot do. The host is then
// reported unsafe everywhere. The systemd service watchdog restarts a hung
// daemon but does not reset the machine: it is not a fence.
package fence
