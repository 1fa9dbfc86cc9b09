package validate

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The checks, as Error.Check names them. Stable: scripts read them.
const (
	CheckNotLive      = "not-live"         // in the heartbeat area, not live
	CheckNotInPool    = "not-in-pool"      // says what it sees, not in the heartbeat area
	CheckNoReport     = "no-report"        // live, and has not said what it sees
	CheckStaleReport  = "stale-report"     // said it too long ago, or for an older incarnation
	CheckOtherPool    = "other-pool"       // its heartbeat area's header names another pool
	CheckOtherStorage = "other-storage"    // another NFS export or another device
	CheckVersion      = "version"          // older than the pool's minimum
	CheckMount        = "cluster-root"     // not mounted at mount_base/UUID
	CheckLink         = "ovs-link"         // /OVS does not link to it
	CheckLocalDevice  = "local-device"     // the cluster root is on a device no other machine sees
	CheckRepository   = "repository"       // a repository not mounted
	CheckObserve      = "cannot-observe"   // what the host could not read
	CheckLabPool      = "lab-pool"         // a warning: the lab override is on
	CheckUnknownStore = "storage-identity" // a warning: no identity to compare
)

// MinVersion is the oldest hbfence a pool accepts: the first that says
// what it sees (older hosts show as no-report anyway).
const MinVersion = "0.1.0"

// HostInArea is one host of the heartbeat area as the master sees it.
type HostInArea struct {
	Name       string
	Slot       int
	Generation uint64
	// Live: joined and renewing (liveness live); State the liveness
	// state's name, for the message.
	Live  bool
	State string
	// Left: stopped cleanly (a host shut down for a while): a warning,
	// not an error, since it holds no guest and joins again validated.
	Left bool
}

// Input is what the master judges.
type Input struct {
	// Pool is the pool's UUID (the master's heartbeat header); Master
	// the master's host name: its Seen is the reference for the same
	// storage.
	Pool, Master string
	// MinVersion is the pool's minimum (default MinVersion).
	MinVersion string
	Hosts      []HostInArea
	// Repositories are the UUIDs the pool record names.
	Repositories []string
	Seen         map[string]Seen
	// Now and MaxAge: a Seen older than MaxAge (by its host's wall
	// clock) is stale.
	Now    time.Time
	MaxAge time.Duration
}

// Error is one failed check on one host.
type Error struct {
	Host    string `json:"host"`
	Check   string `json:"check"`
	Message string `json:"message"`
}

// Result is the verdict: OK only when there is no error. Fields may be
// added, never renamed.
type Result struct {
	OK       bool    `json:"ok"`
	Errors   []Error `json:"errors"`
	Warnings []Error `json:"warnings,omitempty"`
	// Hosts are the hosts judged.
	Hosts []string `json:"hosts"`
}

// Judge checks every host of the pool against the master's view and
// returns every error found, per host, in host order. It is pure.
func Judge(in Input) Result {
	if in.MinVersion == "" {
		in.MinVersion = MinVersion
	}
	j := judge{in: in}
	inArea := map[string]bool{}
	for _, h := range in.Hosts {
		inArea[h.Name] = true
	}
	ref, hasRef := in.Seen[in.Master]
	hosts := append([]HostInArea(nil), in.Hosts...)
	sort.Slice(hosts, func(a, b int) bool { return hosts[a].Name < hosts[b].Name })
	for _, h := range hosts {
		j.res.Hosts = append(j.res.Hosts, h.Name)
		if h.Left {
			j.warn(h.Name, CheckNotLive, "has left the pool (its daemon stopped cleanly): not validated; validate again once it runs")
			continue
		}
		if !h.Live {
			j.fail(h.Name, CheckNotLive, "is %s in the heartbeat area (slot %d): every host of the pool must be live; start its daemon, or remove it from the pool", h.State, h.Slot)
			continue
		}
		s, ok := in.Seen[h.Name]
		switch {
		case !ok:
			j.fail(h.Name, CheckNoReport, "has not said what it sees of the pool's storage (its hbfence is older than %s, or its guest side is off: [guests] root)", in.MinVersion)
			continue
		case s.Generation != h.Generation:
			j.fail(h.Name, CheckStaleReport, "said what it sees as generation %d, and runs as generation %d: wait a few seconds and validate again", s.Generation, h.Generation)
			continue
		case in.MaxAge > 0 && in.Now.Sub(s.At) > in.MaxAge:
			j.fail(h.Name, CheckStaleReport, "said what it sees at %s, %s ago (more than %s): its storage may hang; check the host", s.At.Format(time.RFC3339), in.Now.Sub(s.At).Round(time.Second), in.MaxAge)
			continue
		}
		j.host(s, ref, hasRef && h.Name != in.Master)
	}
	var extra []string
	for name := range in.Seen {
		if !inArea[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		s := in.Seen[name]
		if s.Pool != "" && !strings.EqualFold(s.Pool, in.Pool) {
			continue // another pool's host, its record on this cluster root by mistake: other-pool below is the master's
		}
		if in.MaxAge > 0 && in.Now.Sub(s.At) > in.MaxAge {
			continue // a host that left the pool long ago
		}
		j.fail(name, CheckNotInPool, "says what it sees of this pool's storage but has no slot in the heartbeat area: start its daemon on this pool's area, or stop it")
	}
	j.res.OK = len(j.res.Errors) == 0
	if j.res.Errors == nil {
		j.res.Errors = []Error{}
	}
	return j.res
}

type judge struct {
	in  Input
	res Result
}

func (j *judge) fail(host, check, format string, args ...any) {
	j.res.Errors = append(j.res.Errors, Error{Host: host, Check: check, Message: fmt.Sprintf(format, args...)})
}

func (j *judge) warn(host, check, format string, args ...any) {
	j.res.Warnings = append(j.res.Warnings, Error{Host: host, Check: check, Message: fmt.Sprintf(format, args...)})
}

// host checks one live host's Seen; compare: against the master's.
func (j *judge) host(s, ref Seen, compare bool) {
	in, r := j.in, s.ClusterRoot
	for _, p := range s.Problems {
		j.fail(s.Host, CheckObserve, "%s", p)
	}
	if !strings.EqualFold(s.Pool, in.Pool) {
		j.fail(s.Host, CheckOtherPool, "its heartbeat area %s is of pool %s, not %s: it does not see this pool's cluster root", s.Area, s.Pool, in.Pool)
	}
	if olderVersion(s.Version, in.MinVersion) {
		j.fail(s.Host, CheckVersion, "runs hbfence %s, older than the pool's minimum %s: upgrade it", s.Version, in.MinVersion)
	}
	if compare {
		if why := differ(ref.ClusterRoot.Storage, r.Storage, ref.MachineID == s.MachineID); why != "" {
			j.fail(s.Host, CheckOtherStorage, "sees another cluster root than the master %s: %s", ref.Host, why)
		} else if !identified(r.Storage) {
			j.warn(s.Host, CheckUnknownStore, "its cluster root %s has no file system UUID, WWID or NFS export to compare with the master's; only the heartbeat area's pool UUID says it is the same", r.Storage.Source)
		}
	}
	if s.Lab {
		j.warn(s.Host, CheckLabPool, "[storage] lab_pool is set: the cluster root's mount point, its link and its device's transport are not checked; never on a production pool")
	} else {
		j.mounts(s)
	}
	for _, want := range in.Repositories {
		var got *RepoSeen
		for i := range s.Repositories {
			if strings.EqualFold(s.Repositories[i].UUID, want) {
				got = &s.Repositories[i]
			}
		}
		switch {
		case got == nil:
			j.fail(s.Host, CheckRepository, "repository %s: not yet seen by this host (it reads the pool's list within a few seconds; validate again)", want)
		case got.State != "mounted":
			j.fail(s.Host, CheckRepository, "repository %s is %s at %s: %s", want, got.State, got.Point, got.Message)
		}
	}
}

func (j *judge) mounts(s Seen) {
	r := s.ClusterRoot
	fix := "set [storage] cluster_root and cluster_root_uuid so that hbfence mounts it there, or mount it there by hand"
	switch {
	case r.Point == "":
		j.fail(s.Host, CheckMount, "the records' directory %s is on no mount this host can name", r.Records)
	case r.Expected != "" && r.Point != r.Expected:
		j.fail(s.Host, CheckMount, "the cluster root (the records' directory %s) is on %s, not at %s where [storage] mounts it", r.Records, r.Point, r.Expected)
	case r.UUID == "":
		j.fail(s.Host, CheckMount, "the cluster root (the records' directory %s) is mounted at %s, not at %s/<uuid>: %s", r.Records, r.Point, r.Base, fix)
	}
	if r.Point != "" && !r.Linked {
		target := r.LinkTarget
		if target == "" {
			target = "nothing (missing or not a link)"
		}
		j.fail(s.Host, CheckLink, "%s links to %s, not to the cluster root %s", r.Link, target, r.Point)
	}
	if !Shared(r.Transport) {
		j.fail(s.Host, CheckLocalDevice, "the cluster root %s is on a %s device, which no other host can see: an HA pool's cluster root is NFS or a shared device (iSCSI, FC, multipath, NVMe-oF); a lab pool may set [storage] lab_pool = true", r.Storage.Source, r.Transport)
	}
}

// differ says why two hosts' cluster roots are not the same storage, or
// "" when nothing tells them apart.
func differ(a, b Identity, sameMachine bool) string {
	if nfs(a.FSType) != nfs(b.FSType) {
		return fmt.Sprintf("the master's is %s %s, this host's %s %s", a.FSType, a.Source, b.FSType, b.Source)
	}
	if nfs(a.FSType) {
		if strings.TrimSuffix(a.Source, "/") != strings.TrimSuffix(b.Source, "/") {
			return fmt.Sprintf("the master mounts the NFS export %s, this host %s", a.Source, b.Source)
		}
		return ""
	}
	switch {
	case a.FSUUID != "" && b.FSUUID != "":
		if a.FSUUID != b.FSUUID {
			return fmt.Sprintf("the master's file system has UUID %s, this host's (%s) %s", a.FSUUID, b.Source, b.FSUUID)
		}
	case a.WWID != "" && b.WWID != "":
		if a.WWID != b.WWID {
			return fmt.Sprintf("the master's device has WWID %s, this host's (%s) %s", a.WWID, b.Source, b.WWID)
		}
	case a.LoopBacking != "" && b.LoopBacking != "" && sameMachine:
		if a.LoopBacking != b.LoopBacking {
			return fmt.Sprintf("the master's loop device is backed by %s, this host's by %s", a.LoopBacking, b.LoopBacking)
		}
	}
	return ""
}

func identified(id Identity) bool {
	return nfs(id.FSType) || id.FSUUID != "" || id.WWID != "" || id.LoopBacking != ""
}

func nfs(fstype string) bool { return fstype == "nfs" || fstype == "nfs4" }

// olderVersion reports whether version v is older than min, comparing
// the leading dotted numbers (0.1.0-dev counts as 0.1.0).
func olderVersion(v, min string) bool {
	a, b := numbers(v), numbers(min)
	for i := 0; i < max(len(a), len(b)); i++ {
		x, y := at(a, i), at(b, i)
		if x != y {
			return x < y
		}
	}
	return false
}

func numbers(v string) []int {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+ "); i >= 0 {
		v = v[:i]
	}
	var out []int
	for _, p := range strings.Split(v, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			break
		}
		out = append(out, n)
	}
	return out
}

func at(xs []int, i int) int {
	if i < len(xs) {
		return xs[i]
	}
	return 0
}
