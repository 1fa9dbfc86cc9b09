// Package wdsim is a watchdog stand-in that is a faithful reset for tests
// and the demonstration pool: a supervisor that runs a command as a
// simulated machine and kills that machine when its watchdog stops being
// fed. The binary hbfence-wdsim wraps it.
//
// # The machine and its watchdog
//
// Start creates a FIFO (or reuses one), then starts the command in a new
// process group. That process group is "the machine": the daemon and the
// guests it starts. The daemon uses the FIFO as its watchdog device
// through fence/watchdog's FIFO backend (the same open, write and close as
// for /dev/watchdog, with an explicit configured timeout):
//
//   - Before anything opens the FIFO, the watchdog is not armed, like a
//     real one before /dev/watchdog is opened.
//   - An open arms it, and feeds it (as opening a running device does).
//     Opens and closes are seen through inotify, so an open arms it even
//     before the first byte.
//   - Any byte is a feed.
//   - When the last writer closes and the last byte read was 'V', it is
//     disarmed (the magic close). A close without 'V' — a crash, a kill —
//     leaves it armed and counting.
//   - When it is armed and no feed has come for Timeout, it resets the
//     machine: SIGKILL to the whole process group, and to every live
//     descendant of the command that left the group (setsid). The reset is
//     recorded (Record, event "reset") with the time since the last feed
//     on this process's monotonic clock and CLOCK_MONOTONIC stamps of both,
//     so that the margin to another process's "dead" can be computed.
//   - A daemon restart works: the supervisor holds its read end open for
//     the whole run, so the new incarnation's non-blocking open succeeds,
//     and if it opens again within Timeout of the last feed, nothing is
//     reset.
//
// The supervisor ends when the command has exited and the watchdog is not
// armed (never opened, disarmed, or reset), or no live process is left in
// the group. A command that dies without the magic close while its guests
// run on leaves the machine up and armed: it is reset at the timeout. The
// exit status (Result.Status) is the command's (128 + signal number if a
// signal ended it), or ExitReset (99) after a reset.
//
// # What it does not guarantee
//
//   - It is a stand-in, not a fence of a real machine: it kills processes,
//     it does not reset hardware. Processes outside the group that are not
//     descendants of the command (or that were orphaned after leaving the
//     group: they are reparented away) survive.
//   - Any process that opens the FIFO arms it: inotify does not tell a
//     reader's open from a writer's. Only the daemon should open it. A
//     writer that had the FIFO open before Start is not seen.
//   - Unlike a real device, several writers may hold the FIFO at once;
//     the watchdog is disarmed only when the last of them closes after a
//     'V'.
//   - A 'V' counts only as the last byte before the close (the kernel
//     looks for one anywhere in the last write).
//   - Timing: the reset comes at Timeout after the last feed the
//     supervisor read, plus its own scheduling delay (milliseconds on an
//     idle machine, a few tens under -race). It never comes earlier. A
//     supervisor that is itself stopped resets nothing.
package wdsim
