// Package mount mounts the pool's storage on this host, and unmounts what
// the pool no longer names. Nothing else.
//
// # What goes where
//
// The cluster root (an NFS export server:/export, or an OCFS2 shared
// device) mounts at Base/<root_uuid>, and Link is a symbolic link to that
// mount point; each repository (an NFS export or an OCFS2 device, with its
// UUID) mounts at Base/<sr_uuid>. The defaults are Oracle VM's: Base
// /var/ovs/mount, Link /OVS. The heartbeat file of an NFS pool is then
// /OVS/.server_pool_hb and the guest records are in /OVS/.hbfence/.
// Ext4 and XFS block devices are accepted too, for labs and tests only
// (loop devices standing in for shared ones): they are not cluster file
// systems, and two machines mounting one read-write destroy it.
//
// # Shape
//
// PlanFor is pure: a Spec (the storage) and an Observed (the lines of
// /proc/self/mountinfo, what Link is, which mount points exist, the
// devices' numbers) give a Plan: actions (mkdir, mount with its argv,
// rmdir of an empty directory in Link's place, link, unmount) and the
// state of every point (mounted, missing, refused with the reason, in use).
// Mounter.Ensure observes, plans and carries the plan out through a Runner
// (ExecRunner runs mount(8) and umount(8) with a timeout and the stderr in
// its error; Recorder records the calls and keeps a mount table of its
// own, for tests and for machines without an NFS client or the OCFS2
// module). Ensure is idempotent: run it at every start of the agent and
// whenever the pool's repository list changes (SetRepositories). It never
// looks into a mounted point (a stat on an NFS mount whose server is gone
// hangs): the mount table says what is mounted, and every command is
// bounded by the Runner's timeout.
//
// # Refusals
//
//   - A mount point with something else mounted on it (another export,
//     another device — recognised by its device number, so /dev/mapper/x
//     shown as /dev/dm-3 is the same — or another file system type): the
//     point is refused, nothing is mounted over it, and the message says
//     what is there and to unmount it. A cluster root already mounted by
//     hand with options that do not bound a request's life (below) is
//     refused with nfsbound's reason.
//   - Link as a directory with content (what was written while no cluster
//     root was mounted, or Oracle VM 2's /OVS mount), a link elsewhere,
//     a file, or a mount point: refused, left as it is, with what is there
//     and what to do. An empty directory is removed and replaced.
//   - A repository the spec no longer names is unmounted only when InUse
//     says no guest of this host uses it (nil InUse: never). umount is
//     neither lazy nor forced: a busy file system stays and is shown.
//
// The link is made by a new link beside it renamed over it (rename(2)
// replaces a link or a missing name in one step), only once the cluster
// root is mounted, so /OVS never points at an empty directory.
//
// # NFS options, and why they are safe for the heartbeat
//
// The cluster root: vers=3 (or the spec's), proto=tcp, soft,
// timeo=T,retrans=2 with T from nfsbound.Advice(LateWrite), noac,
// lookupcache=none, retry=0. For the default profile (watchdog 10 s):
// soft,timeo=12,retrans=2.
//
//   - soft, timeo, retrans: the master lease and the join rely on every
//     write landing within LateWrite (the watchdog period) of its issue
//     or never, also a write of a daemon that was killed (heartbeat/lease
//     doc.go). On a hard mount the client retransmits a killed process's
//     O_DIRECT write for ever, and it may land at any later time over a
//     successor's records. A soft mount gives a request up after retrans
//     retransmissions; the options keep that life within three quarters
//     of LateWrite (7.2 s of 10 s), the rest left for the server's
//     queueing. The rule is nfsbound's, not repeated here: the daemon
//     checks the mounted options with nfsbound.CheckPath against the
//     pool's own watchdog once the area is open, and PlanFor refuses a
//     cluster root mounted by hand that fails the same check. The cost of
//     soft: a server stall longer than the request life fails the I/O
//     with EIO. For the heartbeat that is a failed renewal, which the
//     renewal_fail budget absorbs (renewal_fail ≥ 3 × io_timeout); the
//     cluster root holds only the heartbeat and the pool's records, whose
//     writers see the error and write again (restart/store).
//   - proto=tcp: the life nfsbound computes and Advice chooses is TCP's
//     (the wait grows by timeo at each retransmission); over UDP it
//     doubles. TCP is NFS v3's and v4's default, and v4.1's only
//     transport; writing it down keeps a client's default out of the bound.
//   - noac: no attribute cache (acregmin…acdirmax 0) and synchronous
//     writes. The heartbeat's and the records' O_DIRECT I/O passes the
//     page cache anyway (restart/store); noac is for what is judged by
//     stat: the area watch compares the path's device and inode with the
//     open area's (a heartbeat file re-created at the same path), and a
//     record's file appears, or is set aside by pool repair. With the
//     cache those see attributes up to 60 s old; with noac the server's.
//   - lookupcache=none: every lookup of a name goes to the server. A file
//     replaced or created by another host is seen at once (a cached
//     positive lookup keeps resolving the name to the old file until the
//     directory is revalidated; a cached negative one hides a new file,
//     such as a new host's report).
//   - retry=0: mount.nfs tries once; the Mounter retries with its own
//     back-off and logs every try (mount.nfs would retry silently for two
//     minutes).
//
// Repositories: vers, proto=tcp, hard, retry=0. They hold disk images: a
// soft timeout would fail a guest's disk write on a server fail-over (the
// guest sees an I/O error, or a file system corrupted by it), and the
// heartbeat's argument does not need them bounded.
//
// # OCFS2
//
// mount -t ocfs2 -o _netdev[,heartbeat=local|global] DEVICE POINT.
// _netdev marks the mount as needing the network (the o2cb cluster stack
// and, on iSCSI, the device itself); libmount keeps it in
// /run/mount/utab, where systemd reads it and unmounts the file system
// before the network goes at shutdown. heartbeat= is the spec's
// OCFS2Heartbeat: local (o2hb heartbeats on this device) or global (on
// the regions o2cb is configured with); empty leaves it to mount.ocfs2
// and the cluster stack's configuration.
// The package does not start o2cb: with the stack offline the mount fails,
// and the failure (mount.ocfs2's message) is in the status.
//
// # Retries and status
//
// A mount that fails is tried Attempts times (default 4), waiting Backoff
// (2 s) after the first failure, doubled up to MaxBackoff (30 s); every
// try is logged with the argv, the error and the next wait. After the
// last, the point stays in state error with the message until the next
// Ensure. After mount(8) exits 0 the mount table must show the storage at
// its point, or the try has failed. Status gives every point (cluster
// root first, the repositories, the removed ones) as mounted, missing,
// error (with the message and the tries), refused (with the reason),
// in-use (removed, kept for a guest) or unmounted, and the link as linked,
// missing, error or refused; Status.Ready is nil only when the cluster root
// is mounted and linked: a host whose cluster root is not ready does not
// join. Ensure returns that error; a repository's failure is only shown.
//
// # What it does not do
//
//   - It does not check the NFS server (a server that holds requests
//     longer than the slack breaks the bound), nor block devices' bounds
//     (the SCSI timeout, multipath's no_path_retry: docs/timing.md), nor
//     o2cb's own heartbeat and fencing timeouts, which fence on their own.
//   - It does not remount a point whose options changed: a mount that is
//     the right storage with other options is kept (the cluster root's is
//     checked, as above).
//   - A guest killed on a host that lost its NFS repository leaves its
//     writes in that host's client, retransmitted for ever on the hard
//     mount: they may land after the guest started elsewhere unless the
//     host is reset. The daemon's fence takes that into account (a host
//     with an NFS repository mounted is reset, never disarmed:
//     internal/daemon hardRepositoryGuard); this package does not.
//   - It knows nothing of /etc/fstab or systemd's mount units: whatever
//     mounted a point first is judged by the same rules.
package mount
