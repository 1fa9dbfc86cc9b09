package validate

import (
	"context"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/internal/nfsbound"
)

// A cluster root on an anonymous device (major 0: FUSE, as the demo's
// fault-injecting mounts, tmpfs, overlay) has no block device in sysfs:
// its transport is unknown, which is not a failure to observe (make demo
// as root failed pool ha enable with "cannot-observe ... lstat
// /sys/dev/block/0:40"); the judge then refuses it as not shared, except
// in a lab pool.
func TestAnonymousDeviceIsUnknownTransportNotAProblem(t *testing.T) {
	sys := System{Sys: t.TempDir(), Mountinfo: func() ([]nfsbound.Mount, error) {
		return []nfsbound.Mount{{Point: "/", FSType: "ext4", Source: "/dev/sda1", Dev: "8:1"},
			{Point: "/tmp/lab/node1/storage", FSType: "fuse.hbfence-faultfs", Source: "faultfs:/tmp/lab", Dev: "0:40"}}, nil
	}}
	s := Observe(context.Background(), Host{Name: "node1", Records: "/tmp/lab/node1/storage/.hbfence"}, sys)
	for _, p := range s.Problems {
		if strings.Contains(p, "sysfs") {
			t.Errorf("an anonymous device read as a problem: %s", p)
		}
	}
	if s.ClusterRoot.Transport != "unknown" || s.ClusterRoot.Storage.Dev != "0:40" {
		t.Errorf("cluster root %+v; want device 0:40, transport unknown", s.ClusterRoot)
	}
	if Shared(s.ClusterRoot.Transport) {
		t.Error("an unknown transport counts as shared")
	}
}
