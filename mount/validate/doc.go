// Package validate says whether a pool is fit for HA: every host sees the
// same shared storage, is live in the pool, runs a version the pool
// accepts, has the cluster root mounted at mount_base/UUID and linked from
// /OVS, on storage other machines can reach, and has every repository of
// the pool mounted. It is what hbfence pool validate prints and what
// hbfence pool ha enable runs before it switches HA on.
//
// # Who says what
//
// Each host observes its own side (Observe: the mount table, the text of
// the /OVS link, sysfs for the device's transport and identity, blkid for
// the file system's UUID) and writes it as its record sees/HOST on the
// cluster root (restart/store), at start and every so often. The master
// judges them all against its own (Judge, pure): the heartbeat's view
// says which hosts are in the pool and live; a Seen of another
// incarnation or too old is stale, never taken as current.
//
// # The same storage
//
// NFS: the same server:/export, as mounted (a server known by two names
// is two storages here: name it the same on every host). A block device:
// the same file system UUID, else the same WWID (SCSI, NVMe, a multipath
// map's), else, for loop devices of one machine (labs), the same backing
// file. When nothing tells them apart the host is not refused, a warning
// says so, and the heartbeat header's pool UUID, which every host reads
// from the area it opened, is the only proof. The header check catches the
// commonest mistake anyway: a host that opened another area.
//
// # Shared or local
//
// From sysfs: iSCSI (a session in the device's path), FC (an rport), a
// multipath map (dm uuid mpath-), NVMe over fabrics (tcp, rdma, fc), and a
// device-mapper device built only on such devices are shared; a loop
// device, SATA, SAS without a fabric, virtio and PCIe NVMe are local. A
// lab pool (loop devices, files in a temporary directory) sets
// [storage] lab_pool = true on every host: the mount, link and transport
// checks become one warning. Never on a production pool.
//
// # What it does not guarantee
//
// Validation is advice for the operator at the moment it runs, not a
// safety mechanism: the heartbeat, the lease and fencing never depend on
// it. A Seen's age is judged on the writer's wall clock against the
// master's (MaxAge is generous for that reason). It does not check that
// an NFS server is reachable from every host by the same route, nor the
// o2cb cluster configuration of an OCFS2 pool.
package validate
