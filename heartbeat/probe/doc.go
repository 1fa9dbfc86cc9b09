// Package probe measures the latency of the storage a heartbeat area lives
// on, with the heartbeat's own kind of I/O, and advises the fastest pool
// timing (heartbeat/timing.Params) that the observed storage can afford.
// It is the engine of "hbfence probe".
//
// # The method
//
// Every Period (100 ms by default, faster than any profile's interval, so
// that a minute gives hundreds of samples of the distribution) the probe
// runs one cycle: a one-sector write, as a renewal, and a read of several
// sectors, as a heartbeat round, both O_DIRECT|O_DSYNC through
// heartbeat/directio, the path the daemon uses, each bounded by a timeout.
// Each I/O's latency is taken on CLOCK_MONOTONIC_RAW (internal/safeclock)
// from just before its hand-off to the I/O worker to its return. An I/O
// that times out counts at the timeout, a lower bound; while it stays
// under way the device takes no other I/O (directio's ErrBusy) and the
// cycles issue nothing, so the stall shows as a span without a completed
// write. Outside an area, writes carry a sequence number and every read
// checks that it shows the last completed write (or a later one): a stale
// read counts as an error.
//
// The target never touches a pool's live data:
//
//   - a directory: a scratch file .hbfence-probe-<pid> of RegionSectors
//     sectors is created there and removed at the end (also when the run
//     is interrupted; the command stops on SIGINT and SIGTERM);
//   - a file or block device region at an offset with no hbfence header:
//     the probe writes only inside [offset, offset + RegionSectors
//     sectors), refuses a region that is not zeroes (or holds a broken
//     hbfence header) unless forced, and writes back what the region held
//     at the end;
//   - a formatted area (a valid header at the offset): the probe uses the
//     highest-numbered unused slot (whole sector zeroes, ondisk.SlotUnused)
//     and refuses if there is none. Each cycle reads the whole slot region,
//     as a heartbeat round does, and writes zeroes into that slot's sector
//     only if this read shows it still unused; otherwise it stops at once
//     with a *SlotTakenError. The slot's bytes never change.
//
// The statistics (Summarize, pure) are nearest-rank percentiles p50, p99,
// p99.9 and the maximum, of all I/Os, of writes, of reads and of a cycle's
// write+read; a log-spaced histogram (1-2-5 steps); counts of samples,
// errors and timeouts; and the longest stall: the longest span without a
// completed write, which includes the probe's own period.
//
// # The advice
//
// Advise (pure) takes the worst write+read, its 99.9th percentile and the
// longest stall, multiplies each by a safety factor (3 by default), and
// searches a grid of intervals and io_timeouts for the Params with the
// smallest host_dead that timing.Params.Validate accepts with:
//
//   - io_timeout >= factor × the worst write+read whose two I/Os returned
//     in time (at least MinIOTimeout): a renewal as slow as the worst
//     seen, three times over, still counts. An I/O that timed out is not
//     a latency here but part of a stall, which renewal_fail covers;
//   - interval >= factor × the 99.9th percentile write+read (at least
//     MinInterval) and below io_timeout;
//   - renewal_fail >= factor × the longest stall + 2 × interval (the last
//     renewal before a stall may be an interval old, the first after it an
//     interval late), and >= 3 × io_timeout;
//   - watchdog = the watchdog's effective firing time on this host, as the
//     caller states it (the default profile's 10 s unless told);
//   - host_dead = the least value on a 100 ms step that keeps every rule
//     (host_dead > renewal_fail + watchdog + margin, > renewal_fail +
//     io_timeout, > 5 × io_timeout + margin).
//
// The grid has 100 ms steps from 200 ms to 2 s and readable steps above.
// Of equal host_dead the advice takes the smaller interval, then the
// larger io_timeout. A larger interval never lowers host_dead (it raises
// renewal_fail's stall allowance, the margin and the least io_timeout
// above it), so the advised interval is the least grid step covering its
// need, and the advice also has the least Advice.DeadWithin (host_dead +
// interval): a master counts a host's silence from the completion of its
// first read showing the host's last renewal, which its next round issues
// at most an interval after that renewal landed, so a power loss is
// declared within host_dead + interval (plus the I/O's latencies).
//
// Each figure comes with the observation it covers and the factor used
// (Advice.Why), and the advice is printed as the "hbfence init" flags that
// format a pool with it.
//
// # Why the advice is safe
//
// Safety — no observer declares a host dead before its watchdog has reset
// it — rests on the rules of package timing, not on the storage being
// fast: the argument (docs/timing.md) holds for any Params that Validate
// accepts, whatever the latencies, because a slow or failed I/O only makes
// a host fence itself sooner. The advice is built by calling Validate, so it
// can never be a timing the rules refuse. What the observations decide is
// availability: with figures below what the storage needs, healthy hosts
// would fence themselves on an ordinary slow I/O or stall. The factor is
// headroom for the latencies a short probe did not see.
//
// Two inputs are trusted, not measured: the watchdog figure (a watchdog
// that fires later than stated breaks host_dead > renewal_fail + watchdog
// + margin; the daemon's fencer checks the pool against the device's
// effective firing time, package fence), and the probe run being
// representative (run it at a busy hour and through the storage's own
// fail-overs; a stall the probe never saw is not covered). The late-write
// bound of docs/timing.md (NFS request life within three quarters of the
// watchdog) also depends on the watchdog figure chosen.
//
// # Probing a live area
//
// Zeroes written over zeroes change no byte of the area, so other hosts
// cannot tell. The one race is a host claiming the same slot between the
// probe's check and its write (a join takes the lowest free slot, the
// probe the highest), or a probe write that timed out landing late: the
// zero write may then erase a claim. The join protocol already handles
// that (package join): the claim's read-back after JoinWait does not show
// it, and the join starts over, when the probe's next check sees the new
// claim and stops. A renewal erased the same way is read back as unused,
// which the owner logs and renews over, and which no observer takes as a
// change or as death (package liveness: a zeroed record decides nothing).
//
// # What it does not guarantee
//
//   - The probe measures one host's path to the storage, for the length of
//     the run; other hosts, other hours and the storage's fail-overs may
//     be slower.
//   - Direct I/O through some file systems (FUSE, some NFS servers) may
//     still be cached or reordered below the client; the stale-read check
//     catches only what this host can see.
//   - A region forced over data is written back at the end; a probe killed
//     with SIGKILL, or a machine that crashes, leaves the pattern there
//     (and a scratch file behind).
package probe
