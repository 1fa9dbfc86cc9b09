package config

import (
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/mount"
)

const hb = "[heartbeat]\npath = \"/OVS/.server_pool_hb\"\n"

func TestStorage(t *testing.T) {
	c, err := Parse("/etc/hbfence/hbfence.toml", []byte(hb))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.MountSpec(); ok {
		t.Errorf("no [storage] cluster_root: a mount spec")
	}
	if s := c.Storage; s.MountBase != "/var/ovs/mount" || s.OVSLink != "/OVS" || s.MountAttempts != 4 || s.MountBackoff.Duration != 2*time.Second {
		t.Errorf("defaults %+v", s)
	}
	c, err = Parse("/etc/hbfence/hbfence.toml", []byte(hb+`[watchdog]
timeout = "20s"
[storage]
cluster_root = "nfs:filer.example.com:/export/pool"
cluster_root_uuid = "0004fb0000050000a1b2c3d4e5f60718"
nfs_version = "4.1"
mount_attempts = 6
mount_backoff = "5s"
`))
	if err != nil {
		t.Fatal(err)
	}
	spec, ok := c.MountSpec()
	want := mount.Spec{ClusterRoot: mount.Storage{Kind: mount.NFS, Source: "filer.example.com:/export/pool", UUID: "0004fb0000050000a1b2c3d4e5f60718", NFSVersion: "4.1"},
		Base: "/var/ovs/mount", Link: "/OVS", LateWrite: 20 * time.Second}
	if !ok || spec.ClusterRoot != want.ClusterRoot || spec.Base != want.Base || spec.Link != want.Link || spec.LateWrite != want.LateWrite {
		t.Errorf("spec %+v, want %+v", spec, want)
	}
	if a, b := c.MountRetries(); a != 6 || b != 5*time.Second {
		t.Errorf("retries %d %v", a, b)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings %q", c.Warnings)
	}
	c, err = Parse("/etc/hbfence/hbfence.toml", []byte(hb+`[storage]
cluster_root = "ocfs2:/dev/mapper/ovspool"
cluster_root_uuid = "0004fb00-0005-0000-a1b2-c3d4e5f60718"
ocfs2_heartbeat = "global"
mount_base = "/srv/ovs/mount"
ovs_link = "/srv/OVS"
`))
	if err != nil {
		t.Fatal(err)
	}
	if spec, _ := c.MountSpec(); spec.ClusterRoot.OCFS2Heartbeat != "global" || spec.LateWrite != mount.DefaultLateWrite || spec.Point(spec.ClusterRoot.UUID) != "/srv/ovs/mount/0004fb00-0005-0000-a1b2-c3d4e5f60718" {
		t.Errorf("OCFS2 spec %+v", spec)
	}
	// A lab's ext4, and a heartbeat off the cluster root: warnings.
	c, err = Parse("/etc/hbfence/hbfence.toml", []byte("[heartbeat]\npath = \"/srv/hb\"\n[storage]\ncluster_root = \"ext4:/dev/loop0\"\ncluster_root_uuid = \"0004fb0000050000a1b2c3d4e5f60718\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "local file system, for labs and tests only") {
		t.Errorf("warnings %q", c.Warnings)
	}
	c, err = Parse("/etc/hbfence/hbfence.toml", []byte("[heartbeat]\npath = \"/srv/hb\"\n[storage]\ncluster_root = \"nfs:f:/p\"\ncluster_root_uuid = \"0004fb0000050000a1b2c3d4e5f60718\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "[heartbeat] path /srv/hb is not on the cluster root") {
		t.Errorf("warnings %q", c.Warnings)
	}
}

func TestStorageErrors(t *testing.T) {
	const u = "cluster_root_uuid = \"0004fb0000050000a1b2c3d4e5f60718\"\n"
	for _, c := range []struct{ name, storage, want string }{
		{"no kind", "cluster_root = \"filer:/export\"\n" + u, `[storage] cluster_root: unknown storage kind "filer"`},
		{"not an export", "cluster_root = \"nfs:filer\"\n" + u, "[storage] cluster_root: NFS source \"filer\" is not server:/export"},
		{"no UUID", "cluster_root = \"nfs:filer:/x\"\n", "[storage] cluster_root is set and cluster_root_uuid is not"},
		{"bad UUID", "cluster_root = \"nfs:filer:/x\"\ncluster_root_uuid = \"pool1\"\n", "[storage] cluster_root_uuid: UUID \"pool1\""},
		{"UUID alone", u, "[storage] cluster_root_uuid is set and cluster_root is not"},
		{"version on OCFS2", "cluster_root = \"ocfs2:/dev/sdd\"\nnfs_version = \"3\"\n" + u, "[storage] nfs_version is set and cluster_root ocfs2:/dev/sdd is not NFS"},
		{"bad version", "cluster_root = \"nfs:f:/x\"\nnfs_version = \"2\"\n" + u, `NFS version "2"`},
		{"heartbeat on NFS", "cluster_root = \"nfs:f:/x\"\nocfs2_heartbeat = \"local\"\n" + u, "[storage] ocfs2_heartbeat is set and cluster_root nfs:f:/x is not OCFS2"},
		{"bad heartbeat", "cluster_root = \"ocfs2:/dev/sdd\"\nocfs2_heartbeat = \"disk\"\n" + u, `OCFS2 heartbeat "disk"`},
		{"relative base", "mount_base = \"var/ovs/mount\"\n", `[storage] mount_base "var/ovs/mount" is not a clean absolute path`},
		{"link in base", "mount_base = \"/srv/m\"\novs_link = \"/srv/m/OVS\"\n", "[storage] ovs_link /srv/m/OVS is inside mount_base /srv/m"},
		{"zero attempts", "mount_attempts = 0\n", "[storage] mount_attempts is 0"},
		{"negative attempts", "mount_attempts = -1\n", "[storage] mount_attempts is -1"},
		{"zero backoff", "mount_backoff = \"0s\"\n", "[storage] mount_backoff is 0"},
		{"unknown key", "cluster_root_id = \"x\"\n", "unknown key storage.cluster_root_id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("/etc/hbfence/hbfence.toml", []byte(hb+"[storage]\n"+c.storage))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v, want an error saying %q", err, c.want)
			}
		})
	}
}
