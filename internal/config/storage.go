package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/mount"
)

// Storage is [storage]: the cluster root this host mounts (package
// mount). Empty cluster_root: the daemon mounts nothing, and the cluster
// root must be mounted by other means.
type Storage struct {
	// ClusterRoot is KIND:SOURCE: nfs:server:/export,
	// ocfs2:/dev/mapper/ovspool, or, for labs and tests only,
	// ext4:/dev/DEVICE or xfs:/dev/DEVICE.
	ClusterRoot string `toml:"cluster_root"`
	// ClusterRootUUID is the cluster root's UUID: it mounts at
	// mount_base/UUID.
	ClusterRootUUID string `toml:"cluster_root_uuid"`
	// NFSVersion is the cluster root's NFS version: 3 (the default), 4,
	// 4.0, 4.1 or 4.2.
	NFSVersion string `toml:"nfs_version"`
	// OCFS2Heartbeat is local or global; empty: as the o2cb cluster
	// stack is configured.
	OCFS2Heartbeat string `toml:"ocfs2_heartbeat"`
	// MountBase holds the mount points; default /var/ovs/mount.
	MountBase string `toml:"mount_base"`
	// OVSLink is the link to the cluster root's mount point; default
	// /OVS.
	OVSLink string `toml:"ovs_link"`
	// MountAttempts is how many times one pass tries a mount (default
	// 4); MountBackoff the first wait between tries (default 2s, doubled
	// up to 30s).
	MountAttempts int      `toml:"mount_attempts"`
	MountBackoff  Duration `toml:"mount_backoff"`
	// LabPool says this is a lab pool (loop devices, files in a
	// temporary directory): hbfence pool validate does not check the
	// cluster root's mount point, its link or its device's transport,
	// and says so in a warning. Never on a production pool.
	LabPool bool `toml:"lab_pool"`
}

// defaults fills [storage]'s defaults in.
func (s *Storage) defaults() {
	if s.MountBase == "" {
		s.MountBase = mount.DefaultBase
	}
	if s.OVSLink == "" {
		s.OVSLink = mount.DefaultLink
	}
	if s.MountAttempts == 0 {
		s.MountAttempts = mount.DefaultAttempts
	}
	if s.MountBackoff.Duration == 0 {
		s.MountBackoff.Duration = mount.DefaultBackoff
	}
}

// validateStorage checks [storage], and appends its warnings.
func (c *Config) validateStorage() error {
	s := c.Storage
	for _, p := range []struct{ key, path string }{{"mount_base", s.MountBase}, {"ovs_link", s.OVSLink}} {
		if !filepath.IsAbs(p.path) || filepath.Clean(p.path) != p.path {
			return fmt.Errorf("[storage] %s %q is not a clean absolute path; name it like %s", p.key, p.path, map[string]string{"mount_base": mount.DefaultBase, "ovs_link": mount.DefaultLink}[p.key])
		}
	}
	if s.OVSLink == s.MountBase || strings.HasPrefix(s.OVSLink, s.MountBase+"/") {
		return fmt.Errorf("[storage] ovs_link %s is inside mount_base %s; put the link outside it", s.OVSLink, s.MountBase)
	}
	if s.MountAttempts < 0 {
		return fmt.Errorf("[storage] mount_attempts is %d; it must be 1 or more", s.MountAttempts)
	}
	if s.MountBackoff.Duration < 0 {
		return fmt.Errorf("[storage] mount_backoff is %v; it must be positive", s.MountBackoff.Duration)
	}
	if s.ClusterRoot == "" {
		for _, k := range []struct{ key, v string }{{"cluster_root_uuid", s.ClusterRootUUID}, {"nfs_version", s.NFSVersion}, {"ocfs2_heartbeat", s.OCFS2Heartbeat}} {
			if k.v != "" {
				return fmt.Errorf("[storage] %s is set and cluster_root is not: set cluster_root (such as \"nfs:filer:/export/pool\"), or remove %s", k.key, k.key)
			}
		}
		return nil
	}
	st, err := mount.ParseSource(s.ClusterRoot)
	if err != nil {
		return fmt.Errorf("[storage] cluster_root: %w", err)
	}
	if s.ClusterRootUUID == "" {
		return errors.New("[storage] cluster_root is set and cluster_root_uuid is not: give the cluster root's UUID (it mounts at mount_base/UUID; Oracle VM shows it as the repository's or file system's ID)")
	}
	if _, err := ondisk.ParseUUID(s.ClusterRootUUID); err != nil {
		return fmt.Errorf("[storage] cluster_root_uuid: %v", err)
	}
	if s.NFSVersion != "" && st.Kind != mount.NFS {
		return fmt.Errorf("[storage] nfs_version is set and cluster_root %s is not NFS; remove nfs_version", s.ClusterRoot)
	}
	if s.OCFS2Heartbeat != "" && st.Kind != mount.OCFS2 {
		return fmt.Errorf("[storage] ocfs2_heartbeat is set and cluster_root %s is not OCFS2; remove ocfs2_heartbeat", s.ClusterRoot)
	}
	spec, _ := c.MountSpec()
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("[storage]: %w (keys cluster_root, cluster_root_uuid, nfs_version, ocfs2_heartbeat)", err)
	}
	if st.Kind.Lab() {
		c.Warnings = append(c.Warnings, fmt.Sprintf("[storage] cluster_root %s is a local file system, for labs and tests only: it is not shared, and two hosts mounting it read-write destroy it", s.ClusterRoot))
	}
	point := spec.Point(s.ClusterRootUUID)
	if st.Kind == mount.NFS && !under(c.Heartbeat.Path, s.OVSLink) && !under(c.Heartbeat.Path, point) {
		c.Warnings = append(c.Warnings, fmt.Sprintf("[heartbeat] path %s is not on the cluster root that [storage] mounts (%s, linked at %s): on an NFS pool it is %s/.server_pool_hb", c.Heartbeat.Path, point, s.OVSLink, s.OVSLink))
	}
	return nil
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// MountSpec is the mount.Spec of [storage], without repositories (the
// pool's record on the cluster root names them) and with the late-write
// bound of [watchdog] timeout, else the default profile's; ok is false
// when [storage] cluster_root is not set. The daemon checks the mount
// against the pool's own watchdog once the area is open (nfsbound).
func (c *Config) MountSpec() (spec mount.Spec, ok bool) {
	s := c.Storage
	if s.ClusterRoot == "" {
		return mount.Spec{}, false
	}
	st, _ := mount.ParseSource(s.ClusterRoot)
	st.UUID, st.NFSVersion, st.OCFS2Heartbeat = s.ClusterRootUUID, s.NFSVersion, s.OCFS2Heartbeat
	lw := mount.DefaultLateWrite
	if c.Watchdog.Timeout.Duration > 0 {
		lw = c.Watchdog.Timeout.Duration
	}
	return mount.Spec{ClusterRoot: st, Base: s.MountBase, Link: s.OVSLink, LateWrite: lw}, true
}

// MountRetries are [storage]'s mount_attempts and mount_backoff, for
// mount.Options Attempts and Backoff.
func (c *Config) MountRetries() (attempts int, backoff time.Duration) {
	return c.Storage.MountAttempts, c.Storage.MountBackoff.Duration
}
