package mount

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Kind is what a storage is.
type Kind string

// The kinds of storage. Ext4 and XFS are local file systems, for labs and
// tests only (a loop device standing in for a shared device): they are not
// cluster file systems, and two hosts mounting one read-write destroy it.
const (
	NFS   Kind = "nfs"
	OCFS2 Kind = "ocfs2"
	Ext4  Kind = "ext4"
	XFS   Kind = "xfs"
)

// Kinds are the kinds a source may name.
var Kinds = []Kind{NFS, OCFS2, Ext4, XFS}

// Lab reports whether the kind is a local file system (labs and tests).
func (k Kind) Lab() bool { return k == Ext4 || k == XFS }

// Role is what a mount is to the pool.
type Role string

// The roles.
const (
	RoleClusterRoot Role = "cluster-root"
	RoleRepository  Role = "repository"
)

// Storage is one of the pool's shared storages: the cluster root or a
// repository.
type Storage struct {
	Kind Kind
	// Source is server:/export (NFS) or the block device (OCFS2, ext4,
	// XFS), an absolute path such as /dev/mapper/ovspool.
	Source string
	// UUID names the mount point, Base/UUID.
	UUID string
	// NFSVersion is 3 (the default), 4, 4.0, 4.1 or 4.2 (NFS only).
	NFSVersion string
	// OCFS2Heartbeat is local, global or empty (OCFS2 only): empty
	// leaves the choice to the o2cb cluster stack's configuration.
	OCFS2Heartbeat string
}

// ParseSource reads a source written as KIND:SOURCE, the form of the
// configuration's [storage] cluster_root: "nfs:server:/export",
// "ocfs2:/dev/mapper/ovspool", "ext4:/dev/loop0".
func ParseSource(s string) (Storage, error) {
	kind, src, ok := strings.Cut(s, ":")
	if !ok || src == "" {
		return Storage{}, fmt.Errorf("%q is not KIND:SOURCE; write nfs:server:/export, ocfs2:/dev/DEVICE, or (labs only) ext4:/dev/DEVICE or xfs:/dev/DEVICE", s)
	}
	st := Storage{Kind: Kind(kind), Source: src}
	if err := st.validSource(); err != nil {
		return Storage{}, err
	}
	return st, nil
}

// String is the KIND:SOURCE form ParseSource reads.
func (s Storage) String() string { return string(s.Kind) + ":" + s.Source }

func (s Storage) validSource() error {
	switch s.Kind {
	case NFS:
		host, _, ok := splitNFS(s.Source)
		if !ok || host == "" || strings.HasPrefix(host, "-") {
			return fmt.Errorf("NFS source %q is not server:/export (the server's name or address, a colon, the export's absolute path)", s.Source)
		}
		if strings.ContainsAny(s.Source, " \t\n,") {
			return fmt.Errorf("NFS source %q holds a space or a comma; name the export without them", s.Source)
		}
	case OCFS2, Ext4, XFS:
		if !filepath.IsAbs(s.Source) || filepath.Clean(s.Source) != s.Source {
			return fmt.Errorf("%s source %q is not a clean absolute device path (such as /dev/mapper/ovspool)", s.Kind, s.Source)
		}
	default:
		return fmt.Errorf("unknown storage kind %q; use nfs, ocfs2, or (labs only) ext4 or xfs", s.Kind)
	}
	return nil
}

// splitNFS splits server:/export at the first ":/" (an IPv6 server is
// written in brackets, [fe80::1]:/export).
func splitNFS(s string) (host, export string, ok bool) {
	i := strings.Index(s, ":/")
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// NFSVersions are the values Storage.NFSVersion may take.
var NFSVersions = []string{"3", "4", "4.0", "4.1", "4.2"}

// Validate checks one storage; what names it in messages (the cluster
// root, repository 2).
func (s Storage) Validate(what string) error {
	if err := s.validSource(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := ondisk.ParseUUID(s.UUID); err != nil {
		return fmt.Errorf("%s (%s): %v (the mount point is named by it)", what, s, err)
	}
	if s.NFSVersion != "" && (s.Kind != NFS || !contains(NFSVersions, s.NFSVersion)) {
		if s.Kind != NFS {
			return fmt.Errorf("%s (%s): an NFS version is set on %s storage; remove it", what, s, s.Kind)
		}
		return fmt.Errorf("%s (%s): NFS version %q; use one of %s", what, s, s.NFSVersion, strings.Join(NFSVersions, ", "))
	}
	switch s.OCFS2Heartbeat {
	case "":
	case "local", "global":
		if s.Kind != OCFS2 {
			return fmt.Errorf("%s (%s): an OCFS2 heartbeat mode is set on %s storage; remove it", what, s, s.Kind)
		}
	default:
		return fmt.Errorf("%s (%s): OCFS2 heartbeat %q; use local or global, or leave it to the o2cb configuration", what, s, s.OCFS2Heartbeat)
	}
	return nil
}

// The real paths.
const (
	DefaultBase = "/var/ovs/mount"
	DefaultLink = "/OVS"
)

// Spec is the pool's storage as this host must see it.
type Spec struct {
	ClusterRoot  Storage
	Repositories []Storage
	// Base holds the mount points, Base/UUID; default /var/ovs/mount.
	Base string
	// Link is the symbolic link to the cluster root's mount point;
	// default /OVS.
	Link string
	// LateWrite is the bound the heartbeat needs on a write's life
	// (lease.LateWrite: the pool's watchdog period); the cluster root's
	// NFS options are chosen for it (nfsbound.Advice). Default 10s, the
	// default profile's.
	LateWrite time.Duration
}

// DefaultLateWrite is the default profile's watchdog period.
const DefaultLateWrite = 10 * time.Second

// withDefaults fills the defaults in.
func (s Spec) withDefaults() Spec {
	if s.Base == "" {
		s.Base = DefaultBase
	}
	if s.Link == "" {
		s.Link = DefaultLink
	}
	if s.LateWrite == 0 {
		s.LateWrite = DefaultLateWrite
	}
	return s
}

// Validate checks the spec: every storage, distinct UUIDs, clean
// absolute base and link, the link outside the base.
func (s Spec) Validate() error {
	s = s.withDefaults()
	var errs []error
	if err := s.ClusterRoot.Validate("the cluster root"); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]string{strings.ToLower(s.ClusterRoot.UUID): "the cluster root"}
	sources := map[string]string{s.ClusterRoot.Source: "the cluster root"}
	for i, r := range s.Repositories {
		what := fmt.Sprintf("repository %d", i+1)
		if err := r.Validate(what); err != nil {
			errs = append(errs, err)
			continue
		}
		if other, dup := seen[strings.ToLower(r.UUID)]; dup {
			errs = append(errs, fmt.Errorf("%s (%s): UUID %s is also %s's; each storage has its own mount point", what, r, r.UUID, other))
		}
		if other, dup := sources[r.Source]; dup {
			errs = append(errs, fmt.Errorf("%s: source %s is also %s's; mount each storage once", what, r.Source, other))
		}
		seen[strings.ToLower(r.UUID)], sources[r.Source] = what, what
	}
	for _, p := range []struct{ key, path string }{{"base", s.Base}, {"link", s.Link}} {
		if !filepath.IsAbs(p.path) || filepath.Clean(p.path) != p.path {
			errs = append(errs, fmt.Errorf("mount %s %q is not a clean absolute path", p.key, p.path))
		}
	}
	if s.Link == s.Base || strings.HasPrefix(s.Link, s.Base+"/") {
		errs = append(errs, fmt.Errorf("the link %s is inside the mount base %s; put it outside (the defaults are /OVS and /var/ovs/mount)", s.Link, s.Base))
	}
	if s.LateWrite < 0 {
		errs = append(errs, fmt.Errorf("late-write bound %v is negative", s.LateWrite))
	}
	return errors.Join(errs...)
}

// Point is where the storage with this UUID mounts.
func (s Spec) Point(uuid string) string {
	return filepath.Join(s.withDefaults().Base, strings.ToLower(uuid))
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
