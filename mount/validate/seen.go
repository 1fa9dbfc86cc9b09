package validate

import "time"

// Seen is what one host sees of the pool's storage. Each host writes its
// own (the record sees/HOST on the cluster root, restart/store); the master
// judges them all (Judge). Fields may be added, never renamed.
type Seen struct {
	Host       string    `json:"host"`
	Generation uint64    `json:"generation"`
	Version    string    `json:"version"`
	MachineID  string    `json:"machine_id,omitempty"`
	At         time.Time `json:"at"`
	// Pool is the pool UUID in the header of the heartbeat area this
	// host opened, and Area that area (path and offset).
	Pool string `json:"pool"`
	Area string `json:"area"`
	// Managed: this host's [storage] names the cluster root, which the
	// daemon mounts (package mount).
	Managed bool `json:"managed"`
	// Lab: [storage] lab_pool is set: local devices and a cluster root
	// that is not at mount_base/UUID are accepted (labs and tests only).
	Lab          bool       `json:"lab,omitempty"`
	ClusterRoot  RootSeen   `json:"cluster_root"`
	Repositories []RepoSeen `json:"repositories,omitempty"`
	// Problems are what could not be observed, each naming what.
	Problems []string `json:"problems,omitempty"`
}

// RootSeen is the cluster root as one host sees it.
type RootSeen struct {
	// Records is the directory holding the pool's records ([guests]
	// root), with every link resolved.
	Records string `json:"records"`
	// Point is the mount point that holds Records; UUID the mount
	// point's name when it is Base/UUID; Expected the point this host's
	// [storage] names (empty when unmanaged).
	Point    string `json:"point"`
	UUID     string `json:"uuid,omitempty"`
	Expected string `json:"expected,omitempty"`
	Base     string `json:"base"`
	// Link is the link to the cluster root (/OVS) and what it resolves
	// to; Linked when that is Point.
	Link       string   `json:"link"`
	LinkTarget string   `json:"link_target,omitempty"`
	Linked     bool     `json:"linked"`
	Storage    Identity `json:"storage"`
	// Transport is how the storage reaches this host: nfs, iscsi, fc,
	// multipath, nvme-of (shared), or loop, local (not shared), or
	// unknown.
	Transport string `json:"transport"`
}

// Identity says which storage a mount is, as far as this host can tell.
type Identity struct {
	FSType string `json:"fstype"`
	// Source is server:/export (NFS) or the device as mounted.
	Source string `json:"source"`
	// Dev is the file system's device number, major:minor.
	Dev string `json:"dev,omitempty"`
	// FSUUID is the file system's UUID (blkid), WWID the device's
	// world-wide name (sysfs: SCSI wwid, NVMe wwid, device-mapper
	// multipath uuid), Serial its serial number, LoopBacking a loop
	// device's backing file.
	FSUUID      string `json:"fs_uuid,omitempty"`
	WWID        string `json:"wwid,omitempty"`
	Serial      string `json:"serial,omitempty"`
	LoopBacking string `json:"loop_backing,omitempty"`
}

// RepoSeen is one of the pool's repositories on one host: mounted at
// Base/UUID, or not (State and Message say why).
type RepoSeen struct {
	UUID    string `json:"uuid"`
	Point   string `json:"point"`
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
}

// Shared reports whether a transport reaches storage that other machines
// can see.
func Shared(transport string) bool {
	switch transport {
	case "nfs", "iscsi", "fc", "multipath", "nvme-of":
		return true
	}
	return false
}
