// Package timing holds a pool's five timeouts (Params), the named profiles
// ("default", "fast", "slow"), and the rules that make restarts safe. The
// figures are stored in the heartbeat area's header, so every host of a pool
// runs with the same ones; the project's docs/timing.md explains them for
// operators and gives the full safety argument.
//
// # The parameters
//
//   - interval: a host writes its slot and reads all slots once per interval.
//   - io_timeout: one read or write that has not returned by then has failed.
//   - renewal_fail: a host with no successful renewal for this long fences
//     itself.
//   - watchdog: the watchdog resets the host this long after its last feed.
//   - host_dead: an observer declares a host dead when it has seen no change
//     of the host's slot for this long, on its own safety clock
//     (CLOCK_MONOTONIC_RAW, package internal/safeclock).
//
// # The rules
//
// Validate returns the first rule broken, as a *RuleError that names it:
//
//   - every parameter lies between MinDuration (10 ms) and MaxDuration (1 h);
//   - interval < io_timeout;
//   - renewal_fail >= 3 × io_timeout;
//   - host_dead > renewal_fail + watchdog + margin, where Margin is the
//     SUM of host_dead/1000 (clock rates) and max(interval/2, 100 ms)
//     (scheduling delay);
//   - host_dead > renewal_fail + io_timeout;
//   - host_dead > 5 × io_timeout + margin: a join writes its claim (up to
//     io_timeout), waits JoinWait (2 × io_timeout), reads it back (up to
//     io_timeout) and renews (up to io_timeout) before a host of the same
//     name watching the slot may judge the claim dead.
//
// They are checked by "hbfence init" before anything is written, by every
// decode of an area's header (so "hbfence dump" and every daemon start), and
// again when a heartbeat member is built.
//
// # Safety argument, in short
//
// An observer declares a host dead only on a read, issued at least host_dead
// after the observer's baseline for the slot, that shows the slot's record
// valid and unchanged; the baseline is
// never earlier than the start of the host's last write that the read could
// see. Any write the host started more than io_timeout before that read and
// that succeeded would have been seen; so the host went more than
// host_dead − io_timeout > renewal_fail without a successful renewal, had
// fenced at its last renewal + renewal_fail, and had been reset by its
// watchdog before last renewal + renewal_fail + watchdog, which is earlier
// than the read by more than the margin. The margin absorbs, together, the
// difference in rate between two hosts' safety clocks and scheduling delay,
// so it is their sum:
//
//   - every safety instant is read on CLOCK_MONOTONIC_RAW, which NTP does
//     not slew; its rate error is the oscillator's, assumed within
//     ClockPPM (±500 ppm) and checked at run time (safeclock.CheckRate), so
//     two hosts differ by at most 1000 ppm: host_dead/1000 over host_dead;
//   - scheduling delay around the observer's read and between the host's
//     deadline and its fence acting: half an interval, at least
//     MinSchedDelay (100 ms).
//
// CLOCK_MONOTONIC, which Go's time.Now and timers use, may be slewed by NTP
// by up to 100 000 ppm (the kernel's tick limit; chrony's default
// maxslewrate is 83 333 ppm): no margin could absorb that over host_dead
// (2.7 s of 27 s), which is why no safety instant is taken on it and every
// wait re-checks the raw clock. No step uses a wall clock.
//
// JoinWait (2 × io_timeout) is the join protocol's wait between writing a
// claim and reading it back; package join gives its argument.
//
// # What it does not guarantee
//
//   - The rules check the watchdog figure in the header, not the time at
//     which a given watchdog device really fires; the fencing layer must
//     check that figure against the device.
//   - The rules are only as good as the fence: they assume the host stops
//     feeding its watchdog at last renewal + renewal_fail and stays fenced
//     (package fence).
//   - The argument assumes storage that, once a write has completed,
//     returns it (or a later write) to every reader: no stale reads after a
//     completed write, no reordering of one host's writes.
//   - The margin does not cover a raw clock whose rate is more than 500 ppm
//     off (the daemon's rate check says so), a suspended machine (the raw
//     clock stops during suspend), or a scheduling delay longer than the
//     scheduling term.
//   - The last rule, host_dead > renewal_fail + io_timeout, has no margin
//     term. It binds only when watchdog + margin <= io_timeout (no shipped
//     profile), and a pool set exactly at its limit has no room for clock
//     rates or scheduling delay.
package timing
