package validate

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestTransportOf(t *testing.T) {
	for _, c := range []struct {
		b    blockFacts
		want string
	}{
		{blockFacts{Path: "/sys/devices/virtual/block/loop3"}, "loop"},
		{blockFacts{Path: "/sys/devices/platform/host3/session1/target3:0:0/3:0:0:1/block/sdb"}, "iscsi"},
		{blockFacts{Path: "/sys/devices/platform/host3/session1/target3:0:0/3:0:0:1/block/sdb/sdb1"}, "iscsi"},
		{blockFacts{Path: "/sys/devices/pci0000:00/0000:00:03.0/0000:07:00.0/host5/rport-5:0-2/target5:0:1/5:0:1:0/block/sdd"}, "fc"},
		{blockFacts{Path: "/sys/devices/virtual/block/dm-2", DMUUID: "mpath-3600a098038303053453f463045614b61"}, "multipath"},
		{blockFacts{Path: "/sys/devices/virtual/block/dm-4", DMUUID: "LVM-abc", Slaves: []blockFacts{{Path: "/sys/devices/platform/host3/session1/target3:0:0/3:0:0:1/block/sdb"}}}, "iscsi"},
		{blockFacts{Path: "/sys/devices/virtual/block/dm-4", DMUUID: "LVM-abc", Slaves: []blockFacts{{Path: "/sys/devices/virtual/block/dm-2", DMUUID: "mpath-x"}, {Path: "/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda"}}}, "local"},
		{blockFacts{Path: "/sys/devices/virtual/block/dm-5", DMUUID: "CRYPT-x"}, "local"},
		{blockFacts{Path: "/sys/devices/virtual/nvme-fabrics/ctl/nvme1/nvme1n1", NVMeTransport: "tcp"}, "nvme-of"},
		{blockFacts{Path: "/sys/devices/virtual/nvme-subsystem/nvme-subsys1/nvme1n1", NVMeTransport: "rdma"}, "nvme-of"},
		{blockFacts{Path: "/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1", NVMeTransport: "pcie"}, "local"},
		{blockFacts{Path: "/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda"}, "local"},
		{blockFacts{Path: "/sys/devices/pci0000:00/0000:00:04.0/virtio1/block/vda"}, "local"},
	} {
		if got := transportOf(c.b); got != c.want {
			t.Errorf("%s (dm %q): %s, want %s", c.b.Path, c.b.DMUUID, got, c.want)
		}
	}
}

// TestReadBlockOfALoopDevice reads the real sysfs of a real loop device:
// transport loop, the backing file named.
func TestReadBlockOfALoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for losetup (skipped: not root)")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("needs losetup (skipped: util-linux not installed)")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Skipf("no loop device (skipped: losetup: %v)", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	num, err := os.ReadFile(filepath.Join("/sys/class/block", filepath.Base(dev), "dev"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := readBlock("/sys", strings.TrimSpace(string(num)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := transportOf(b); got != "loop" {
		t.Errorf("transport of %s (%s): %s", dev, b.Path, got)
	}
	if b.LoopBacking != img {
		t.Errorf("backing file %q, want %q", b.LoopBacking, img)
	}
}
