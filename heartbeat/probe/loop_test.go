package probe_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/probe"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// loopDevice attaches a loop device with 4096-byte logical sectors over
// backing, or skips the test saying what is missing; detached in Cleanup.
func loopDevice(t *testing.T, backing string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("loop devices need root; running as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup (util-linux) is not installed")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skipf("/dev/loop-control is missing (no loop driver): %v", err)
	}
	out, err := exec.Command("losetup", "-f", "--show", "--sector-size", "4096", backing).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup %s: %v: %s", backing, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// A region of a block device: only [offset, offset+size) is written, data
// around it stays, and the region is written back; an area at another
// offset of the same device is probed through an unused slot.
func TestBlockDeviceRegionAndArea(t *testing.T) {
	backing := filepath.Join(t.TempDir(), "disk.img")
	img := make([]byte, 4<<20)
	for i := range img {
		img[i] = byte(i%253) + 1
	}
	const off = 1 << 20
	clear(img[off : off+(256<<10)])
	const areaOff = 2 << 20
	clear(img[areaOff : areaOff+(1<<20)])
	if err := os.WriteFile(backing, img, 0o600); err != nil {
		t.Fatal(err)
	}
	dev := loopDevice(t, backing)

	tg := open(t, dev, off, false)
	if tg.Mode != probe.ModeRegion || tg.Sector != 4096 || tg.ReadLen != probe.RegionSectors*4096 {
		t.Fatalf("target %+v: want a region of %d 4096-byte sectors", tg, probe.RegionSectors)
	}
	res, err := tg.Run(context.Background(), short)
	if err != nil {
		t.Fatal(err)
	}
	structural(t, res)
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(backing); !bytes.Equal(now, img) {
		t.Error("the device is not byte-identical after the probe")
	}
	var inUse *probe.InUseError
	if _, err := probe.Open(dev, off-4096, false); !errors.As(err, &inUse) {
		t.Errorf("region over data: %v, want an *InUseError", err)
	}

	p, _ := timing.Profile("fast")
	h, err := area.Format(dev, areaOff, area.FormatOptions{Build: func(ss int) (ondisk.Header, error) {
		return ondisk.NewHeader(ondisk.NewUUID(), ss, 4, p, "fast", time.Now())
	}})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(backing)
	tg = open(t, dev, areaOff, false)
	if tg.Mode != probe.ModeSlot || tg.Slot != 3 || tg.Pool != h.PoolUUID || tg.Sector != 4096 {
		t.Fatalf("target %+v: want slot 3 of pool %s", tg, h.PoolUUID)
	}
	if res, err = tg.Run(context.Background(), probe.Options{Duration: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	structural(t, res)
	tg.Close()
	if now, _ := os.ReadFile(backing); !bytes.Equal(now, before) {
		t.Error("the device changed while probing an unused slot of its area")
	}
}
