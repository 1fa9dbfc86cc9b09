package validate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hbfence/hbfence/internal/nfsbound"
	"github.com/hbfence/hbfence/mount"
)

// Host is what this host knows of itself and its pool, for Observe.
type Host struct {
	Name       string
	Generation uint64
	Version    string
	MachineID  string
	// Pool is the pool UUID in the header of the heartbeat area opened;
	// Area names that area.
	Pool, Area string
	// Records is the directory of the pool's records ([guests] root).
	Records string
	// Spec is [storage]'s mount spec; nil when the daemon mounts
	// nothing. Base and Link are then the defaults, or what the
	// configuration says.
	Spec       *mount.Spec
	Base, Link string
	Lab        bool
	// Repositories are the UUIDs of the repositories the pool names;
	// Mounts the Mounter's status (nil when it mounts nothing).
	Repositories []string
	Mounts       *mount.Status
}

// System is where Observe reads the machine: the defaults are the real
// ones (mount.ReadMountinfo, /sys, blkid).
type System struct {
	Mountinfo func() ([]nfsbound.Mount, error)
	Sys       string
	// FSUUID reads a block device's file system UUID.
	FSUUID func(ctx context.Context, device string) (string, error)
	Now    func() time.Time
}

func (s System) withDefaults() System {
	if s.Mountinfo == nil {
		s.Mountinfo = mount.ReadMountinfo
	}
	if s.Sys == "" {
		s.Sys = "/sys"
	}
	if s.FSUUID == nil {
		s.FSUUID = blkidUUID
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	return s
}

// Observe says what this host sees of the pool's storage. It never looks
// into a mounted point (a stat on an NFS mount whose server is gone
// hangs): the mount table, the link's text and sysfs say what is where.
// What it cannot read it lists in Problems.
func Observe(ctx context.Context, h Host, sys System) Seen {
	sys = sys.withDefaults()
	s := Seen{Host: h.Name, Generation: h.Generation, Version: h.Version, MachineID: h.MachineID, At: sys.Now().UTC(),
		Pool: h.Pool, Area: h.Area, Managed: h.Spec != nil, Lab: h.Lab}
	base, link := h.Base, h.Link
	if h.Spec != nil {
		base, link = h.Spec.Base, h.Spec.Link
	}
	if base == "" {
		base = mount.DefaultBase
	}
	if link == "" {
		link = mount.DefaultLink
	}
	r := RootSeen{Base: base, Link: link}
	if h.Spec != nil {
		r.Expected = h.Spec.Point(h.Spec.ClusterRoot.UUID)
	}
	ms, err := sys.Mountinfo()
	if err != nil {
		s.Problems = append(s.Problems, fmt.Sprintf("reading the mount table: %v", err))
	}
	r.Records = resolveLexically(h.Records)
	if m, ok := holding(ms, r.Records); ok {
		r.Point = m.Point
		r.Storage = Identity{FSType: m.FSType, Source: m.Source, Dev: m.Dev}
		if filepath.Dir(m.Point) == base {
			r.UUID = filepath.Base(m.Point)
		}
	} else if err == nil {
		s.Problems = append(s.Problems, fmt.Sprintf("no mount in the mount table holds the records' directory %s", r.Records))
	}
	if t, err := os.Readlink(link); err == nil {
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(link), t)
		}
		r.LinkTarget = filepath.Clean(t)
		r.Linked = r.Point != "" && r.LinkTarget == r.Point
	}
	switch {
	case r.Storage.FSType == "nfs" || r.Storage.FSType == "nfs4":
		r.Transport = "nfs"
	case r.Storage.Dev != "" && !strings.HasPrefix(r.Storage.Dev, "0:"):
		// Major 0 is an anonymous device (FUSE, tmpfs, overlay): no block
		// device in sysfs, its transport unknown (below), which only a
		// lab pool accepts.
		b, err := readBlock(sys.Sys, r.Storage.Dev, 0)
		if err != nil {
			r.Transport = "unknown"
			s.Problems = append(s.Problems, fmt.Sprintf("the cluster root's device %s (%s) in sysfs: %v", r.Storage.Source, r.Storage.Dev, err))
			break
		}
		r.Transport = transportOf(b)
		r.Storage.WWID, r.Storage.Serial, r.Storage.LoopBacking = b.WWID, b.Serial, b.LoopBacking
		if strings.HasPrefix(r.Storage.Source, "/dev/") {
			uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			u, err := sys.FSUUID(uctx, r.Storage.Source)
			cancel()
			if err != nil {
				s.Problems = append(s.Problems, fmt.Sprintf("the file system UUID of %s: %v", r.Storage.Source, err))
			}
			r.Storage.FSUUID = u
		}
	default:
		r.Transport = "unknown"
	}
	s.ClusterRoot = r
	for _, u := range h.Repositories {
		point := filepath.Join(base, strings.ToLower(u))
		rs := RepoSeen{UUID: u, Point: point, State: "missing", Message: "not mounted"}
		if h.Mounts != nil {
			for _, p := range h.Mounts.Points {
				if p.Role == mount.RoleRepository && strings.EqualFold(p.UUID, u) {
					rs.State, rs.Message = string(p.State), p.Message
				}
			}
		} else if _, ok := mountedAt(ms, point); ok {
			rs.State, rs.Message = string(mount.Mounted), ""
		} else {
			rs.Message = "not mounted, and this host's [storage] names no cluster root, so hbfence does not mount the pool's repositories here"
		}
		s.Repositories = append(s.Repositories, rs)
	}
	return s
}

// resolveLexically resolves the links of path's components without
// looking into a mount point's content more than a lookup does.
func resolveLexically(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		return p
	}
	return filepath.Clean(path)
}

// holding is the mount that holds path: the latest mount whose point is
// path or one of its parents, the longest first.
func holding(ms []nfsbound.Mount, path string) (nfsbound.Mount, bool) {
	best, found := nfsbound.Mount{}, false
	for _, m := range ms {
		if m.Point == path || m.Point == "/" || strings.HasPrefix(path, m.Point+"/") {
			if !found || len(m.Point) >= len(best.Point) {
				best, found = m, true
			}
		}
	}
	return best, found
}

func mountedAt(ms []nfsbound.Mount, point string) (nfsbound.Mount, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Point == point {
			return ms[i], true
		}
	}
	return nfsbound.Mount{}, false
}

// blkidUUID reads a device's file system UUID with blkid(8).
func blkidUUID(ctx context.Context, device string) (string, error) {
	out, err := exec.CommandContext(ctx, "blkid", "-p", "-s", "UUID", "-o", "value", device).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 2 {
			return "", nil // no UUID found
		}
		return "", fmt.Errorf("blkid %s: %v", device, err)
	}
	return strings.TrimSpace(string(out)), nil
}
