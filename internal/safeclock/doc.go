// Package safeclock is the clock of every safety deadline: when a host's
// last renewal began, when it must fence itself, when an observer may
// declare another host dead, when a join may read its claim back, when a
// lease may be taken. It reads CLOCK_MONOTONIC_RAW.
//
// # Why CLOCK_MONOTONIC_RAW
//
// Go's time.Now monotonic reading, and every Go timer, run on
// CLOCK_MONOTONIC, which NTP steers. Its rate may be changed by the
// frequency correction (adjtimex ADJ_FREQUENCY, at most ±500 ppm: MAXFREQ in
// include/linux/timex.h) and by the tick length (ADJ_TICK, accepted by
// kernel/time/timekeeping.c between 900 000/USER_HZ and 1 100 000/USER_HZ
// µs, that is ±10 % = ±100 000 ppm). chrony uses the tick to slew: its
// maxslewrate defaults to 83 333.333 ppm (chrony.conf(5)). The timing rules
// of heartbeat/timing allowed 500 ppm per host: a slewed CLOCK_MONOTONIC
// could make a host's host_dead of 27 s last 24.5 s, and a self-fence come
// late, both by more than the margin.
//
// CLOCK_MONOTONIC_RAW is the same hardware counter without NTP's
// corrections. Its rate error is the oscillator's. We assume it is within
// AssumedPPM (±500 ppm) of true time — the most NTP's frequency correction
// could ever compensate, so a clock outside it cannot be kept in sync at all
// and any host with working NTP is inside it. Two hosts' raw clocks then
// differ in rate by at most 1000 ppm, which heartbeat/timing's margin
// absorbs (2 × 500 ppm × host_dead). Beyond the bound the margin is too
// small, in proportion: the rule's slack shrinks by (ppm − 500) × host_dead.
// The bound is checked, not only assumed: TakeSample and RateBetween measure
// the raw clock against CLOCK_MONOTONIC and CLOCK_REALTIME over a long
// window (NTP has steered those to true time, so over hours their
// difference is the oscillator's error), CheckRate turns a rate beyond the
// bound into an error for the daemon's alarm, and KernelPPM reads the
// kernel's current correction (adjtimex, read only).
//
// The raw clock is system-wide: every process on the boot reads the same
// counter, so it survives an exec of the daemon. Safety instants are
// serialised as absolute raw nanoseconds (Nanos, FromNanos) and mean the
// same to the next image. It does not survive a reboot (a boot id tells
// them apart), and like CLOCK_MONOTONIC it stops while the machine is
// suspended: observers keep counting and may declare a suspended host dead,
// while the host, on resume, has not counted the time and may run its guests
// on. Suspending a pool member is not supported (it was not with
// CLOCK_MONOTONIC either; CLOCK_BOOTTIME would count it but is slewed).
//
// # Raw instants are time.Time values, kept apart from time.Now
//
// The pure state machines take time.Time. Now returns time.Unix(0, raw ns):
// no Go monotonic reading, compared by value, in 1970 plus the uptime. Two
// raw instants compare and subtract exactly. A raw instant and a time.Now
// instant would be compared on their wall readings — uptime against the
// calendar, 56 years apart — so a mix is never subtly wrong, it is wildly
// wrong; Check catches it (a monotonic reading, or a date after 2000 means
// time.Now), and Since, Until and Nanos panic on it. Status and log
// timestamps meant for people stay on time.Now; they never meet a safety
// instant.
//
// # Waiting
//
// A Go timer can fire early on the raw clock (CLOCK_MONOTONIC slewed fast by
// up to 10 %) or late (slewed slow). Two kinds of wait follow:
//
//   - "Not before t" (a join's read-back, host_dead, a lease's wait):
//     SleepUntil, or a select loop armed with TimerFor that re-reads the
//     raw clock when it wakes. It never ends before t on the raw clock, and
//     ends late by at most the scheduler's delay plus about a millisecond,
//     because each timer is armed for nine tenths of what is left.
//   - "No later than t" (the self-fence at last renewal + renewal_fail): a
//     periodic tick well inside the budget whose decision is taken on the
//     raw clock, so a slowed Go timer delays the decision by at most one
//     tick period × 1.1.
//
// Tests inject a Clock: Fake (set by hand) or Slewed (derived from Go's
// clock inside a testing/synctest bubble, which then plays a slewed
// CLOCK_MONOTONIC).
package safeclock
