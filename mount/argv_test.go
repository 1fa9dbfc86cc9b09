package mount

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/nfsbound"
)

const (
	rootUUID = "0004fb0000050000a1b2c3d4e5f60718"
	repoUUID = "0004fb0000030000aaaabbbbccccdddd"
	repo2    = "0004fb0000030000eeeeffff00001111"
)

func TestMountArgv(t *testing.T) {
	for _, c := range []struct {
		name  string
		st    Storage
		role  Role
		lw    time.Duration
		point string
		want  string
	}{
		{"NFS v3 cluster root, default profile", Storage{Kind: NFS, Source: "filer:/export/pool"}, RoleClusterRoot, 10 * time.Second, "/var/ovs/mount/" + rootUUID,
			"mount|-t|nfs|-o|vers=3,proto=tcp,soft,timeo=12,retrans=2,noac,lookupcache=none,retry=0|filer:/export/pool|/var/ovs/mount/" + rootUUID},
		{"NFS v4.1 cluster root, a 30 s watchdog", Storage{Kind: NFS, Source: "10.0.0.5:/ovs", NFSVersion: "4.1"}, RoleClusterRoot, 30 * time.Second, "/m/r",
			"mount|-t|nfs|-o|vers=4.1,proto=tcp,soft,timeo=37,retrans=2,noac,lookupcache=none,retry=0|10.0.0.5:/ovs|/m/r"},
		{"NFS repository stays hard", Storage{Kind: NFS, Source: "filer:/repo", NFSVersion: "4"}, RoleRepository, 10 * time.Second, "/m/x",
			"mount|-t|nfs|-o|vers=4,proto=tcp,hard,retry=0|filer:/repo|/m/x"},
		{"OCFS2, heartbeat left to o2cb", Storage{Kind: OCFS2, Source: "/dev/mapper/ovspool"}, RoleClusterRoot, 10 * time.Second, "/m/r",
			"mount|-t|ocfs2|-o|_netdev|/dev/mapper/ovspool|/m/r"},
		{"OCFS2, global heartbeat", Storage{Kind: OCFS2, Source: "/dev/sdd", OCFS2Heartbeat: "global"}, RoleRepository, 10 * time.Second, "/m/x",
			"mount|-t|ocfs2|-o|_netdev,heartbeat=global|/dev/sdd|/m/x"},
		{"ext4 for labs", Storage{Kind: Ext4, Source: "/dev/loop3"}, RoleClusterRoot, 10 * time.Second, "/m/r", "mount|-t|ext4|/dev/loop3|/m/r"},
		{"xfs for labs", Storage{Kind: XFS, Source: "/dev/loop4"}, RoleRepository, 10 * time.Second, "/m/x", "mount|-t|xfs|/dev/loop4|/m/x"},
	} {
		got := strings.Join(MountArgv(c.st, c.role, c.point, c.lw), "|")
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
	if got := UmountArgv("/m/x"); !slices.Equal(got, []string{"umount", "/m/x"}) {
		t.Errorf("umount argv %q", got)
	}
}

// The cluster root's NFS options pass nfsbound's check for the late-write
// bound they were chosen for (mounted as the kernel shows them), and a
// repository's hard mount would not: it must never hold the heartbeat.
func TestClusterRootOptionsPassTheBound(t *testing.T) {
	for _, lw := range []time.Duration{2 * time.Second, 10 * time.Second, 60 * time.Second} {
		root := Storage{Kind: NFS, Source: "filer:/pool"}
		r := NewRecorder()
		if err := r.Run(t.Context(), MountArgv(root, RoleClusterRoot, "/m/r", lw)); err != nil {
			t.Fatal(err)
		}
		if err := r.Run(t.Context(), MountArgv(root, RoleRepository, "/m/x", lw)); err != nil {
			t.Fatal(err)
		}
		ms, _ := r.Mountinfo()
		if err := nfsbound.Check(ms[0], lw); err != nil {
			t.Errorf("watchdog %v: the cluster root's options are refused: %v", lw, err)
		}
		if err := nfsbound.Check(ms[1], lw); err == nil {
			t.Errorf("watchdog %v: a repository's hard mount passes the heartbeat's check", lw)
		}
	}
}

func TestParseSource(t *testing.T) {
	for in, want := range map[string]Storage{
		"nfs:filer:/export":          {Kind: NFS, Source: "filer:/export"},
		"nfs:[fe80::1]:/export":      {Kind: NFS, Source: "[fe80::1]:/export"},
		"ocfs2:/dev/mapper/ovspool":  {Kind: OCFS2, Source: "/dev/mapper/ovspool"},
		"ext4:/dev/loop0":            {Kind: Ext4, Source: "/dev/loop0"},
		"xfs:/dev/disk/by-id/lab-x1": {Kind: XFS, Source: "/dev/disk/by-id/lab-x1"},
	} {
		got, err := ParseSource(in)
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("%s: String() = %s", in, got)
		}
	}
	for in, want := range map[string]string{
		"filer:/export":        "unknown storage kind",
		"nfs:":                 "not KIND:SOURCE",
		"nfs:filer":            "not server:/export",
		"nfs:filer:export":     "not server:/export",
		"nfs:-o:/x":            "not server:/export",
		"nfs:filer:/a,b":       "comma",
		"ocfs2:dev/sdd":        "clean absolute device path",
		"ocfs2:/dev/../dev/sd": "clean absolute device path",
		"btrfs:/dev/sdb":       `unknown storage kind "btrfs"`,
	} {
		if _, err := ParseSource(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", in, err, want)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	ok := Spec{ClusterRoot: Storage{Kind: NFS, Source: "filer:/pool", UUID: rootUUID},
		Repositories: []Storage{{Kind: NFS, Source: "filer:/repo", UUID: repoUUID, NFSVersion: "4.2"}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("a good spec: %v", err)
	}
	for name, c := range map[string]struct {
		mod  func(*Spec)
		want string
	}{
		"bad UUID":        {func(s *Spec) { s.ClusterRoot.UUID = "xyz" }, "the cluster root (nfs:filer:/pool): UUID"},
		"same UUID":       {func(s *Spec) { s.Repositories[0].UUID = rootUUID }, "is also the cluster root's"},
		"same source":     {func(s *Spec) { s.Repositories[0].Source = "filer:/pool" }, "source filer:/pool is also the cluster root's"},
		"bad NFS version": {func(s *Spec) { s.Repositories[0].NFSVersion = "2" }, `repository 1 (nfs:filer:/repo): NFS version "2"`},
		"version on OCFS2": {func(s *Spec) {
			s.ClusterRoot = Storage{Kind: OCFS2, Source: "/dev/sdd", UUID: rootUUID, NFSVersion: "3"}
		}, "NFS version is set on ocfs2"},
		"heartbeat on NFS": {func(s *Spec) { s.ClusterRoot.OCFS2Heartbeat = "global" }, "OCFS2 heartbeat mode is set on nfs"},
		"bad heartbeat": {func(s *Spec) {
			s.ClusterRoot = Storage{Kind: OCFS2, Source: "/dev/sdd", UUID: rootUUID, OCFS2Heartbeat: "disk"}
		}, `OCFS2 heartbeat "disk"`},
		"relative base":      {func(s *Spec) { s.Base = "var/ovs" }, `mount base "var/ovs"`},
		"link inside base":   {func(s *Spec) { s.Base, s.Link = "/srv/m", "/srv/m/OVS" }, "inside the mount base"},
		"unclean link":       {func(s *Spec) { s.Link = "/OVS/" }, `mount link "/OVS/"`},
		"negative lateWrite": {func(s *Spec) { s.LateWrite = -time.Second }, "negative"},
	} {
		s := ok
		s.Repositories = slices.Clone(ok.Repositories)
		c.mod(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, c.want)
		}
	}
}
