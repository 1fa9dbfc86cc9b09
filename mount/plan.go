package mount

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hbfence/hbfence/internal/nfsbound"
)

// Observed is what this host's mount table and file system show, as much
// as planning needs (Observe reads it).
type Observed struct {
	// Mounts are the lines of /proc/self/mountinfo, in its order (a later
	// line on the same point is mounted over an earlier one).
	Mounts []nfsbound.Mount
	// Link is what the link's path holds.
	Link LinkObserved
	// Dirs holds the mount points that exist as directories.
	Dirs map[string]bool
	// Devs maps a block device source to its device number
	// ("major:minor"), to recognise it in mountinfo under another name
	// (/dev/mapper/x is /dev/dm-3 there).
	Devs map[string]string
}

// LinkKind is what the link's path is.
type LinkKind int

// What the link's path may be.
const (
	LinkMissing LinkKind = iota
	LinkSymlink
	LinkDir
	LinkOther
)

// LinkObserved is what the link's path holds.
type LinkObserved struct {
	Kind LinkKind
	// Target is a symbolic link's target, as written.
	Target string
	// Entries are a directory's first few names (sorted), Count all of
	// them.
	Entries []string
	Count   int
	// Mode is a LinkOther's file type, for messages.
	Mode string
}

// ActionKind is what an action does.
type ActionKind string

// The actions.
const (
	ActMkdir   ActionKind = "mkdir"   // create the directory Path (and its parents)
	ActMount   ActionKind = "mount"   // run Argv; then Path must be mounted
	ActRmdir   ActionKind = "rmdir"   // remove the empty directory Path
	ActLink    ActionKind = "link"    // make Path a symbolic link to Target, atomically
	ActUnmount ActionKind = "unmount" // run Argv (umount Path)
)

// Action is one step of a plan. A failed step skips the later steps of
// the same UUID (the link carries the cluster root's).
type Action struct {
	Kind   ActionKind
	Path   string
	Argv   []string
	Target string
	UUID   string
	Role   Role
	// Storage is the storage (KIND:SOURCE) being mounted or, for an
	// unmount, what mountinfo shows there.
	Storage string
}

// State is the state of one mount point or of the link.
type State string

// The states.
const (
	Mounted   State = "mounted"   // the storage is mounted at its point
	Linked    State = "linked"    // the link points at the cluster root
	Missing   State = "missing"   // not mounted (or linked) yet
	Error     State = "error"     // the last try failed: Message says how
	Refused   State = "refused"   // something else is there: Message says what, and what to do
	InUse     State = "in-use"    // removed from the pool, kept mounted: a guest of this host uses it
	Unmounted State = "unmounted" // removed from the pool and unmounted
)

// PointStatus is the state of one mount point.
type PointStatus struct {
	Role    Role   `json:"role"`
	UUID    string `json:"uuid"`
	Storage string `json:"storage"` // KIND:SOURCE
	Point   string `json:"point"`
	State   State  `json:"state"`
	Message string `json:"message,omitempty"`
	// Attempts is how many times the last mount was tried.
	Attempts int `json:"attempts,omitempty"`
	// Changed is when the state last changed (wall clock, for people).
	Changed time.Time `json:"changed,omitzero"`
}

// LinkStatus is the state of the link.
type LinkStatus struct {
	Path    string    `json:"path"`
	Target  string    `json:"target"`
	State   State     `json:"state"`
	Message string    `json:"message,omitempty"`
	Changed time.Time `json:"changed,omitzero"`
}

// Plan is what Ensure does, and the state each point is in before it.
type Plan struct {
	Actions []Action
	Points  []PointStatus
	Link    LinkStatus
}

// PlanFor decides what brings the host's mounts to spec, from what is
// observed. inUse says whether a guest of this host uses a path (a
// removed repository's mount point); nil counts every path as in use, so
// that nothing is unmounted. It does no I/O. spec must be valid.
func PlanFor(spec Spec, obs Observed, inUse func(point string) bool) Plan {
	spec = spec.withDefaults()
	var p Plan
	wanted := map[string]bool{}
	storages := append([]Storage{spec.ClusterRoot}, spec.Repositories...)
	for i, st := range storages {
		role := RoleRepository
		if i == 0 {
			role = RoleClusterRoot
		}
		point := spec.Point(st.UUID)
		wanted[point] = true
		ps := PointStatus{Role: role, UUID: st.UUID, Storage: st.String(), Point: point, State: Missing}
		if top, ok := topMount(obs.Mounts, point); ok {
			switch {
			case !sameStorage(st, top, obs.Devs):
				ps.State = Refused
				ps.Message = fmt.Sprintf("%s has %s %s mounted on it, not %s: if that is stale, unmount it (umount %s) and hbfence mounts the pool's; if the pool's record is wrong, correct it",
					point, top.FSType, top.Source, st, point)
			case role == RoleClusterRoot:
				if err := nfsbound.Check(top, spec.LateWrite); err != nil {
					ps.State = Refused
					ps.Message = fmt.Sprintf("%v; or unmount it (umount %s) and hbfence mounts it with the options it needs", err, point)
				} else {
					ps.State = Mounted
				}
			default:
				ps.State = Mounted
			}
		} else {
			if !obs.Dirs[point] {
				p.Actions = append(p.Actions, Action{Kind: ActMkdir, Path: point, UUID: st.UUID, Role: role, Storage: st.String()})
			}
			p.Actions = append(p.Actions, Action{Kind: ActMount, Path: point, UUID: st.UUID, Role: role, Storage: st.String(),
				Argv: MountArgv(st, role, point, spec.LateWrite)})
		}
		p.Points = append(p.Points, ps)
	}
	p.Link = planLink(spec, obs, p.Points[0], &p.Actions)

	// Mounts under the base that the spec no longer names: removed
	// repositories (or an earlier cluster root).
	seen := map[string]bool{}
	for i := len(obs.Mounts) - 1; i >= 0; i-- {
		m := obs.Mounts[i]
		if filepath.Dir(m.Point) != spec.Base || wanted[m.Point] {
			continue
		}
		src := string(kindOf(m)) + ":" + m.Source
		ps := PointStatus{Role: RoleRepository, UUID: filepath.Base(m.Point), Storage: src, Point: m.Point}
		linked := obs.Link.Kind == LinkSymlink && filepath.Clean(obs.Link.Target) == m.Point
		switch {
		case seen[m.Point] && !p.unmounts(m.Point):
			continue
		case linked:
			// An earlier cluster root: the link (refused) still points
			// at it, and a daemon may have its heartbeat there.
			ps.State = InUse
			ps.Message = fmt.Sprintf("not the pool's cluster root nor one of its repositories; kept mounted while %s links to it", spec.Link)
		case inUse == nil || inUse(m.Point):
			ps.State = InUse
			ps.Message = fmt.Sprintf("no longer one of the pool's repositories; kept mounted while a guest of this host uses %s", m.Point)
		default:
			ps.State = Mounted
			ps.Message = "no longer one of the pool's repositories: to be unmounted"
			p.Actions = append(p.Actions, Action{Kind: ActUnmount, Path: m.Point, UUID: ps.UUID, Role: RoleRepository,
				Storage: src, Argv: UmountArgv(m.Point)})
		}
		if !seen[m.Point] {
			p.Points = append(p.Points, ps)
		}
		seen[m.Point] = true
	}
	return p
}

// unmounts reports whether the plan unmounts point.
func (p *Plan) unmounts(point string) bool {
	for _, a := range p.Actions {
		if a.Kind == ActUnmount && a.Path == point {
			return true
		}
	}
	return false
}

func planLink(spec Spec, obs Observed, root PointStatus, actions *[]Action) LinkStatus {
	ls := LinkStatus{Path: spec.Link, Target: root.Point, State: Missing}
	l := obs.Link
	if _, isMount := topMount(obs.Mounts, spec.Link); isMount {
		m, _ := topMount(obs.Mounts, spec.Link)
		ls.State = Refused
		ls.Message = fmt.Sprintf("%s is itself a mount point (%s %s), not a link to %s: unmount it (umount %s), remove the directory, and hbfence links it",
			spec.Link, m.FSType, m.Source, root.Point, spec.Link)
		return ls
	}
	switch l.Kind {
	case LinkSymlink:
		if filepath.Clean(l.Target) == root.Point {
			ls.State = Linked
			return ls
		}
		ls.State = Refused
		ls.Message = fmt.Sprintf("%s is a link to %s, not to the cluster root's mount point %s: if it is left from another pool, remove the link (rm %s) and hbfence links it again",
			spec.Link, l.Target, root.Point, spec.Link)
		return ls
	case LinkDir:
		if l.Count > 0 {
			more := ""
			if l.Count > len(l.Entries) {
				more = fmt.Sprintf(", and %d more", l.Count-len(l.Entries))
			}
			ls.State = Refused
			ls.Message = fmt.Sprintf("%s is a directory holding %d entries (%s%s), not a link to %s: move what it holds away (it may be what was written while no cluster root was mounted), remove the directory, and hbfence links it",
				spec.Link, l.Count, strings.Join(l.Entries, ", "), more, root.Point)
			return ls
		}
	case LinkOther:
		ls.State = Refused
		ls.Message = fmt.Sprintf("%s is a %s, not a link to %s: move it away and hbfence links it", spec.Link, l.Mode, root.Point)
		return ls
	}
	if root.State == Refused {
		ls.Message = "not linked while the cluster root's mount point is refused"
		return ls
	}
	if l.Kind == LinkDir {
		*actions = append(*actions, Action{Kind: ActRmdir, Path: spec.Link, UUID: root.UUID, Role: RoleClusterRoot})
	}
	*actions = append(*actions, Action{Kind: ActLink, Path: spec.Link, Target: root.Point, UUID: root.UUID, Role: RoleClusterRoot})
	return ls
}

// topMount is the mount on top at point: the last line naming it.
func topMount(ms []nfsbound.Mount, point string) (nfsbound.Mount, bool) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Point == point {
			return ms[i], true
		}
	}
	return nfsbound.Mount{}, false
}

// sameStorage reports whether mount m is storage st: the file system type
// of its kind, and its source (an NFS export with or without a trailing
// slash; a device by its name or its device number).
func sameStorage(st Storage, m nfsbound.Mount, devs map[string]string) bool {
	if !contains(fsTypes(st.Kind), m.FSType) {
		return false
	}
	if st.Kind == NFS {
		return trimSlash(m.Source) == trimSlash(st.Source)
	}
	if m.Source == st.Source {
		return true
	}
	d := devs[st.Source]
	return d != "" && d == m.Dev
}

func trimSlash(s string) string {
	host, export, _ := splitNFS(s)
	if export != "/" {
		export = strings.TrimRight(export, "/")
	}
	return host + ":" + export
}

// kindOf is the kind a mount's file system type stands for.
func kindOf(m nfsbound.Mount) Kind {
	if m.IsNFS() {
		return NFS
	}
	return Kind(m.FSType)
}
