// Package area opens and formats heartbeat areas on a file or block device,
// and provides Mem, an in-memory area shared by the hosts of a simulation.
//
// # Open
//
// Open opens the path at an offset through package directio and reads the
// header: one record, rounded up to the direct I/O alignment, with a
// 60-second timeout (io_timeout is itself in the header). The header must
// decode (package ondisk checks its magic, checksum, version, layout and
// timing rules), its sector size must be a multiple of the direct I/O
// alignment this host needs, and the file or device must hold the whole area.
// Every error names the path and offset and says what was found.
//
// Once open, the area has two operations, both bounded by the pool's
// io_timeout:
//
//   - ReadSlots: the whole slot region (slot count × sector size bytes) in
//     one read;
//   - WriteSlot: one slot's sector, the record followed by zeroes.
//
// The header is read once, at Open. A daemon does not notice if the area is
// formatted again under it.
//
// # Format
//
// Format lays down a new area:
//
//  1. With Create (which "hbfence init" sets for offset 0), a missing file is
//     created with mode 0600, and removed again if the format fails.
//  2. The sector size is the one asked for, or the direct I/O alignment but
//     at least 512. It must be a multiple of the alignment, and
//     ondisk.NewHeader accepts only 512 and 4096.
//  3. A block device must already hold the whole area after the offset.
//  4. The part of the area that exists is read. A decodable hbfence header,
//     or one with the hbfence magic that does not decode, is reported as an
//     hbfence area (with its pool, format version, slots and creation time);
//     any other non-zero byte is reported as data, with its offset. A file
//     that ends in a partial block, which direct I/O cannot read, has that
//     tail read through the page cache. Anything but zeroes is refused with
//     an *InUseError unless Force is set.
//  5. A short file is extended; then the whole area is zeroed, header sector
//     first, in writes of up to 1 MiB; then the header is written, last; then
//     it is read back through the same path Open uses.
//
// Every I/O of a format has the 60-second timeout.
//
// # Safety
//
// An interrupted format never leaves a valid header in front of old slots:
// the old header is zeroed first and the new one is written last. Nothing
// that is not zeroes is overwritten without Force. Format itself does not
// know whether daemons are using the area: "hbfence init --force" first
// reads the slots twice, host_dead apart, and refuses if any changed; a
// running daemon checks that its path still names the area it opened
// (package daemon).
//
// # Mem
//
// Mem holds a whole area in memory. Each host gets a MemHandle, which
// implements what heartbeat.Member needs, and labels its I/O with the host's
// name for a fault hook. The hook may delay an I/O or fail it. A delay longer
// than io_timeout makes the I/O return ErrTimeout after io_timeout; a write
// so delayed (and not failed) still lands when its delay is over, as a write
// stuck in an NFS client can. Under testing/synctest all of this runs on the
// fake clock.
//
// Mem is looser than a real Device in two ways, which only widens what tests
// explore: it has no ErrBusy (a host's next I/O proceeds while its earlier
// write is still pending, so one host's writes can land out of order), and
// an I/O delayed by exactly io_timeout succeeds.
package area
