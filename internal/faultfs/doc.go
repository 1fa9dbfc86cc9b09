// Package faultfs is a fault-injecting passthrough file system for the
// fencing tests: a FUSE view (github.com/hanwen/go-fuse/v2) of a backing
// directory, mounted at a mount point, whose reads, writes and opens can be
// delayed, failed or hung at run time. One mount per simulated host over
// the same backing directory gives per-host storage faults: host A's
// storage hangs while host B's works.
//
// # Use
//
//	f, err := faultfs.Mount(faultfs.Options{Backing: dir, Mountpoint: mntA, Control: sockA})
//	f.Set(faultfs.OpRead, faultfs.Fault{Delay: 200 * time.Millisecond})
//	f.Set(faultfs.OpAll, faultfs.Fault{Hang: true}) // until changed
//	f.Set(faultfs.OpWrite, faultfs.Fault{Errno: syscall.EIO})
//	f.Clear()                                       // everything passes
//	f.Unmount()
//
// Another process (a test harness, the demo) drives a mount through its
// control socket, with Control(socket, "set read hang") or the
// hbfence-faultfs binary, which can also serve a mount in a process of
// its own. The protocol is one line per command: "set OP FAULT", "clear",
// "status" (see Exec).
//
// # Faults
//
// A Fault applies to one class of operations (Op): read (read, pread,
// O_DIRECT or not), write (write, pwrite, fsync, fdatasync) or open (open,
// creat). An operation first waits while the fault says Hang, then waits
// Delay, then fails with Errno or is carried out. A hung operation looks
// again at its class's fault whenever any fault changes: Pass releases it,
// an errno fails it. Latency is added per FUSE request: the kernel splits
// large I/O into requests of up to 1 MiB (MaxWrite), each delayed.
// Faults never apply to lookups, getattr, flush or close: a hung storage
// still lets a process stat and close the file. A process whose I/O is
// hung in faultfs dies of SIGKILL (the kernel waits killably; the server
// sees the interrupt and gives the request up), so hbfence-wdsim's reset
// works on a host cut off from its storage.
//
// # O_DIRECT through FUSE
//
// Every open returns FOPEN_DIRECT_IO: the mount has no page cache, every
// read and write reaches the server, and, through the server, the one
// backing file all mounts share. So two mounts see each other's writes at
// once, as hosts on shared storage do, and attribute and entry caching are
// off for the same reason. The backing file is opened without O_DIRECT
// (go-fuse's buffers are not aligned for it); it is a file on this
// machine, coherent through the page cache for all mounts. Kernel
// passthrough (FUSE_PASSTHROUGH) is not used: it would bypass the faults.
// Checked with real 512-byte O_DIRECT preads and pwrites through
// heartbeat/directio. Caveats:
//
//   - statx reports no STATX_DIOALIGN through FUSE: directio assumes 512
//     bytes (Geometry.Detected false).
//   - FUSE does not enforce direct I/O alignment: a misaligned O_DIRECT
//     read succeeds through faultfs where a disk or NFS would fail with
//     EINVAL. Alignment bugs are not caught here.
//   - O_DSYNC is passed to the backing file; there is no disk cache to
//     flush beyond the backing file system's.
//
// # Unmount
//
// Unmount fails every hung or delayed operation with EIO, closes the
// control socket and unmounts. If files are still open in the mount (a
// daemon holding the heartbeat area), it detaches the mount (MNT_DETACH)
// and aborts the FUSE connection through fusectl (mounted in a temporary
// directory if it is not mounted), so the server stops and processes still
// holding files get ENOTCONN or ECONNABORTED instead of hanging. A process
// serving a mount that is killed leaves the mount behind, failing with
// ENOTCONN until someone runs umount -l on it.
//
// # What it does not guarantee
//
//   - It is a test tool: root only (it calls mount(2) itself), no
//     security beyond the socket's 0600 mode.
//   - It simulates the host's view of storage, not the storage: writes
//     that succeed land in the backing file at once, and a fault never
//     tears a write (a write either fails before it is made or is made
//     whole). An operation interrupted by a signal (the caller killed)
//     returns EINTR.
//   - Timing: a Delay is at least the figure asked, plus scheduling and
//     FUSE round trip (well under a millisecond on an idle machine).
package faultfs
