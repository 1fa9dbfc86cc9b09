package mount

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/internal/nfsbound"
)

var (
	rootPoint  = "/var/ovs/mount/" + rootUUID
	repoPoint  = "/var/ovs/mount/" + repoUUID
	repo2Point = "/var/ovs/mount/" + repo2
)

func nfsSpec() Spec {
	return Spec{
		ClusterRoot:  Storage{Kind: NFS, Source: "filer:/pool", UUID: rootUUID},
		Repositories: []Storage{{Kind: NFS, Source: "filer:/repo", UUID: repoUUID}},
	}
}

func nfsMount(point, source, opts string) nfsbound.Mount {
	m := nfsbound.Mount{Point: point, FSType: "nfs", Source: source, Options: map[string]string{}}
	for _, o := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(o, "=")
		m.Options[k] = v
	}
	return m
}

// actions writes a plan's actions one a line, for comparison.
func actions(p Plan) string {
	var b strings.Builder
	for _, a := range p.Actions {
		switch a.Kind {
		case ActMount, ActUnmount:
			fmt.Fprintf(&b, "%s %s\n", a.Kind, strings.Join(a.Argv, " "))
		case ActLink:
			fmt.Fprintf(&b, "link %s -> %s\n", a.Path, a.Target)
		default:
			fmt.Fprintf(&b, "%s %s\n", a.Kind, a.Path)
		}
	}
	return b.String()
}

const (
	rootOpts = "vers=3,proto=tcp,soft,timeo=12,retrans=2,noac,lookupcache=none,retry=0"
	repoOpts = "vers=3,proto=tcp,hard,retry=0"
)

func TestPlan(t *testing.T) {
	root := nfsMount(rootPoint, "filer:/pool", "soft,timeo=12,retrans=2,vers=3")
	repo := nfsMount(repoPoint, "filer:/repo/", "hard")
	link := LinkObserved{Kind: LinkSymlink, Target: rootPoint}
	dirs := map[string]bool{rootPoint: true, repoPoint: true}
	never := func(string) bool { return false }
	for _, c := range []struct {
		name    string
		spec    func(Spec) Spec
		obs     Observed
		inUse   func(string) bool
		actions string
		states  string // point states, then the link's
		message string // in a refusal
	}{
		{name: "a fresh host", obs: Observed{},
			actions: "mkdir " + rootPoint + "\nmount mount -t nfs -o " + rootOpts + " filer:/pool " + rootPoint + "\n" +
				"mkdir " + repoPoint + "\nmount mount -t nfs -o " + repoOpts + " filer:/repo " + repoPoint + "\n" +
				"link /OVS -> " + rootPoint + "\n",
			states: "missing missing / missing"},
		{name: "all in place (an export's trailing slash is the same export)", obs: Observed{Mounts: []nfsbound.Mount{root, repo}, Link: link, Dirs: dirs},
			actions: "", states: "mounted mounted / linked"},
		{name: "the points exist, nothing mounted, an empty /OVS directory", obs: Observed{Link: LinkObserved{Kind: LinkDir}, Dirs: dirs},
			actions: "mount mount -t nfs -o " + rootOpts + " filer:/pool " + rootPoint + "\n" +
				"mount mount -t nfs -o " + repoOpts + " filer:/repo " + repoPoint + "\n" +
				"rmdir /OVS\nlink /OVS -> " + rootPoint + "\n",
			states: "missing missing / missing"},
		{name: "a link written with a trailing slash", obs: Observed{Mounts: []nfsbound.Mount{root, repo}, Link: LinkObserved{Kind: LinkSymlink, Target: rootPoint + "/"}, Dirs: dirs},
			actions: "", states: "mounted mounted / linked"},
		{name: "/OVS a directory with content", obs: Observed{Mounts: []nfsbound.Mount{root, repo}, Dirs: dirs,
			Link: LinkObserved{Kind: LinkDir, Count: 7, Entries: []string{".hbfence", ".server_pool_hb", "a", "b", "c"}}},
			actions: "", states: "mounted mounted / refused",
			message: "/OVS is a directory holding 7 entries (.hbfence, .server_pool_hb, a, b, c, and 2 more), not a link to " + rootPoint + ": move what it holds away"},
		{name: "/OVS a link elsewhere", obs: Observed{Mounts: []nfsbound.Mount{root, repo}, Dirs: dirs, Link: LinkObserved{Kind: LinkSymlink, Target: "/var/ovs/mount/0004fb0000050000ffffffffffffffff"}},
			actions: "", states: "mounted mounted / refused",
			message: "/OVS is a link to /var/ovs/mount/0004fb0000050000ffffffffffffffff, not to the cluster root's mount point " + rootPoint + ": if it is left from another pool, remove the link (rm /OVS)"},
		{name: "/OVS a file", obs: Observed{Mounts: []nfsbound.Mount{root, repo}, Dirs: dirs, Link: LinkObserved{Kind: LinkOther, Mode: "file"}},
			actions: "", states: "mounted mounted / refused", message: "/OVS is a file, not a link to"},
		{name: "/OVS itself a mount point (an empty directory, as seen)", obs: Observed{Dirs: dirs, Link: LinkObserved{Kind: LinkDir},
			Mounts: []nfsbound.Mount{nfsMount("/OVS", "filer:/pool", "soft,timeo=12,retrans=2")}},
			actions: "mount mount -t nfs -o " + rootOpts + " filer:/pool " + rootPoint + "\n" +
				"mount mount -t nfs -o " + repoOpts + " filer:/repo " + repoPoint + "\n",
			states: "missing missing / refused", message: "/OVS is itself a mount point (nfs filer:/pool)"},
		{name: "another export on the cluster root's point", obs: Observed{Dirs: dirs, Link: link,
			Mounts: []nfsbound.Mount{nfsMount(rootPoint, "filer:/other", "soft,timeo=12,retrans=2"), repo}},
			actions: "", states: "refused mounted / linked",
			message: rootPoint + " has nfs filer:/other mounted on it, not nfs:filer:/pool: if that is stale, unmount it (umount " + rootPoint + ")"},
		{name: "another file system over the right one (the top counts)", obs: Observed{Dirs: dirs, Link: link,
			Mounts: []nfsbound.Mount{root, repo, {Point: repoPoint, FSType: "tmpfs", Source: "tmpfs"}}},
			actions: "", states: "mounted refused / linked", message: repoPoint + " has tmpfs tmpfs mounted on it, not nfs:filer:/repo"},
		{name: "the cluster root mounted hard by hand", obs: Observed{Dirs: dirs, Link: link,
			Mounts: []nfsbound.Mount{nfsMount(rootPoint, "filer:/pool", "hard,timeo=600"), repo}},
			actions: "", states: "refused mounted / linked", message: "is hard: a write of a killed daemon may land at any later time"},
		{name: "a refused cluster root is not linked", obs: Observed{Dirs: dirs,
			Mounts: []nfsbound.Mount{nfsMount(rootPoint, "filer:/other", "soft,timeo=12,retrans=2")}},
			actions: "mount mount -t nfs -o " + repoOpts + " filer:/repo " + repoPoint + "\n",
			states:  "refused missing / missing", message: "not linked while the cluster root's mount point is refused"},
		{name: "a removed repository no guest uses is unmounted", inUse: never,
			obs:     Observed{Dirs: dirs, Link: link, Mounts: []nfsbound.Mount{root, repo, nfsMount(repo2Point, "filer:/old", "hard")}},
			actions: "unmount umount " + repo2Point + "\n", states: "mounted mounted mounted / linked"},
		{name: "a removed repository a guest uses stays", inUse: func(p string) bool { return p == repo2Point },
			obs:     Observed{Dirs: dirs, Link: link, Mounts: []nfsbound.Mount{root, repo, nfsMount(repo2Point, "filer:/old", "hard")}},
			actions: "", states: "mounted mounted in-use / linked", message: "kept mounted while a guest of this host uses " + repo2Point},
		{name: "without an in-use test nothing is unmounted",
			obs:     Observed{Dirs: dirs, Link: link, Mounts: []nfsbound.Mount{root, repo, nfsMount(repo2Point, "filer:/old", "hard")}},
			actions: "", states: "mounted mounted in-use / linked"},
		{name: "an earlier cluster root the link still points at stays", inUse: never,
			obs: Observed{Dirs: dirs, Link: LinkObserved{Kind: LinkSymlink, Target: repo2Point},
				Mounts: []nfsbound.Mount{root, repo, nfsMount(repo2Point, "filer:/oldpool", "soft,timeo=12,retrans=2")}},
			actions: "", states: "mounted mounted in-use / refused", message: "kept mounted while /OVS links to it"},
		{name: "a removed repository mounted twice is unmounted twice, top first", inUse: never,
			obs:     Observed{Dirs: dirs, Link: link, Mounts: []nfsbound.Mount{root, repo, nfsMount(repo2Point, "filer:/old", "hard"), nfsMount(repo2Point, "filer:/old2", "hard")}},
			actions: "unmount umount " + repo2Point + "\nunmount umount " + repo2Point + "\n", states: "mounted mounted mounted / linked"},
		{name: "mounts elsewhere are not the pool's", inUse: never,
			obs: Observed{Dirs: dirs, Link: link, Mounts: []nfsbound.Mount{{Point: "/", FSType: "ext4", Source: "/dev/sda1"},
				root, repo, nfsMount("/var/ovs/mount/"+repo2+"/sub", "filer:/x", "hard"), nfsMount("/mnt/"+repo2, "filer:/y", "hard")}},
			actions: "", states: "mounted mounted / linked"},
		{name: "OCFS2 known by its device number", spec: func(s Spec) Spec {
			s.ClusterRoot = Storage{Kind: OCFS2, Source: "/dev/mapper/ovspool", UUID: rootUUID}
			s.Repositories = nil
			return s
		}, obs: Observed{Dirs: dirs, Link: link, Devs: map[string]string{"/dev/mapper/ovspool": "253:3"},
			Mounts: []nfsbound.Mount{{Point: rootPoint, FSType: "ocfs2", Source: "/dev/dm-3", Dev: "253:3"}}},
			actions: "", states: "mounted / linked"},
		{name: "OCFS2 of another device", spec: func(s Spec) Spec {
			s.ClusterRoot = Storage{Kind: OCFS2, Source: "/dev/mapper/ovspool", UUID: rootUUID}
			s.Repositories = nil
			return s
		}, obs: Observed{Dirs: dirs, Link: link, Devs: map[string]string{"/dev/mapper/ovspool": "253:3"},
			Mounts: []nfsbound.Mount{{Point: rootPoint, FSType: "ocfs2", Source: "/dev/dm-4", Dev: "253:4"}}},
			actions: "", states: "refused / linked", message: "has ocfs2 /dev/dm-4 mounted on it"},
		{name: "NFS v4 shows as nfs4", spec: func(s Spec) Spec {
			s.Repositories[0].NFSVersion = "4.1"
			return s
		}, obs: Observed{Dirs: dirs, Link: link, Mounts: []nfsbound.Mount{root, {Point: repoPoint, FSType: "nfs4", Source: "filer:/repo"}}},
			actions: "", states: "mounted mounted / linked"},
		{name: "another base and link", spec: func(s Spec) Spec {
			s.Base, s.Link = "/tmp/lab/mount", "/tmp/lab/OVS"
			s.Repositories = nil
			return s
		}, obs: Observed{},
			actions: "mkdir /tmp/lab/mount/" + rootUUID + "\nmount mount -t nfs -o " + rootOpts + " filer:/pool /tmp/lab/mount/" + rootUUID + "\n" +
				"link /tmp/lab/OVS -> /tmp/lab/mount/" + rootUUID + "\n",
			states: "missing / missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := nfsSpec()
			if c.spec != nil {
				spec = c.spec(spec)
			}
			if err := spec.Validate(); err != nil {
				t.Fatal(err)
			}
			p := PlanFor(spec, c.obs, c.inUse)
			if got := actions(p); got != c.actions {
				t.Errorf("actions:\n%s\nwant:\n%s", got, c.actions)
			}
			var states []string
			var msgs []string
			for _, ps := range p.Points {
				states = append(states, string(ps.State))
				msgs = append(msgs, ps.Message)
			}
			states = append(states, "/", string(p.Link.State))
			msgs = append(msgs, p.Link.Message)
			if got := strings.Join(states, " "); got != c.states {
				t.Errorf("states %s, want %s", got, c.states)
			}
			if c.message != "" && !strings.Contains(strings.Join(msgs, "\n"), c.message) {
				t.Errorf("messages:\n%s\nwant one saying %q", strings.Join(msgs, "\n"), c.message)
			}
		})
	}
}
