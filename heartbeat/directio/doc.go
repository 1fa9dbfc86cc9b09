// Package directio does the I/O of a heartbeat area: aligned O_DIRECT reads
// and writes, each bounded by a timeout, so that a hung NFS server or a dead
// path cannot hang the caller's decisions.
//
// # What it does
//
// Open opens a plain file (the NFS case, .server_pool_hb) or a block device
// (anything else, such as a directory, a FIFO or a character device, is
// refused before it is opened) with O_DIRECT|O_CLOEXEC, and for writing also
// O_RDWR|O_DSYNC: a read goes
// to the storage, not to this host's page cache, and a write returns only
// once the storage reports it stable. Open learns the alignment direct I/O
// needs:
//
//   - block device: the logical sector size from ioctl BLKSSZGET (offset,
//     length and buffer alignment) and the size from BLKGETSIZE64;
//   - regular file: statx with STATX_DIOALIGN (dio_offset_align,
//     dio_mem_align). A file system that answers with an offset alignment of
//     0 cannot do direct I/O on the file and Open refuses it; one that does
//     not report STATX_DIOALIGN (many NFS clients) gets 512 assumed, and
//     Geometry.Detected is false.
//
// The area's offset must be a multiple of the alignment. Every ReadAt and
// WriteAt needs an offset and a non-zero length that are multiples of it.
//
// A Device has one worker goroutine and one aligned buffer (address aligned
// to dio_mem_align, at least 512). An I/O copies the caller's data into the
// buffer, hands the request to the worker, which calls pread or pwrite, and
// waits for the result until the timeout. Then:
//
//   - success: a read is copied out to the caller;
//   - an error from the system call, or a short transfer, is returned;
//   - timeout: ErrTimeout is returned at once. The worker stays in the
//     system call and the Device is busy: until the call returns, every I/O
//     fails at once with ErrBusy, naming the pending operation and its age.
//     When the call returns its result is dropped and the Device is free.
//
// # Safety
//
// The buffer belongs to the worker while an I/O is under way, so a read that
// returns after its caller gave up never writes into memory the caller has
// reused, and a write never sends bytes the caller changed afterwards. One
// Device never has two I/Os in flight, so one host's writes reach the
// storage in the order they were issued and never overlap. I/O at a negative
// offset is refused: nothing before the area's start is touched. Close does
// not wait for a stuck I/O; every later I/O fails with ErrClosed, and the
// worker closes the file descriptor itself when the stuck call returns, so
// the kernel cannot hand the number to another file under the call.
//
// # Timing assumptions
//
// The timer starts when the worker takes the request. A result that arrives
// in the same instant as the timer is taken, so an I/O can be reported
// successful a scheduling delay after its timeout. No I/O is retried here.
//
// # What it does not guarantee
//
//   - A system call cannot be cancelled: a write reported as ErrTimeout may
//     still reach the storage at any later time. Protocols above must be
//     safe against a late write (the join protocol and the own-slot check
//     are).
//   - Durability and ordering as seen by other hosts are properties of the
//     storage: O_DSYNC says the storage has the write, and read-after-write
//     between hosts on NFS holds only when the server gives it to O_DIRECT
//     clients.
//   - A stuck system call keeps one OS thread blocked for as long as it
//     lasts; the process cannot release it.
package directio
