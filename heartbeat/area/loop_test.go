package area_test

// Loop devices for the tests (as in package directio's tests; test code
// cannot be shared between the two packages without exporting it).

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needLoop skips the test, saying what is missing, when loop devices
// cannot be made here.
func needLoop(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skipf("loop devices need root; running as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		tb.Skip("losetup (util-linux) is not installed")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		tb.Skipf("/dev/loop-control is missing (no loop driver): %v", err)
	}
}

// newLoop attaches a loop device with the given logical sector size over a
// new backing file of size bytes, each byte fill, and detaches it in
// Cleanup. It returns the device path and the backing file.
func newLoop(tb testing.TB, size int64, sectorSize int, fill byte) (dev, backing string) {
	tb.Helper()
	needLoop(tb)
	backing = filepath.Join(tb.TempDir(), "backing.img")
	writeFilled(tb, backing, int(size), fill)
	return attach(tb, backing, sectorSize), backing
}

// attach attaches a loop device over an existing file, with extra
// losetup flags.
func attach(tb testing.TB, backing string, sectorSize int, extra ...string) string {
	tb.Helper()
	needLoop(tb)
	args := append([]string{"-f", "--show", "--sector-size", strconv.Itoa(sectorSize)}, extra...)
	args = append(args, backing)
	out, err := exec.Command("losetup", args...).CombinedOutput()
	if err != nil {
		tb.Fatalf("losetup %s: %v: %s", strings.Join(args, " "), err, out)
	}
	dev := strings.TrimSpace(string(out))
	tb.Cleanup(func() { detach(tb, dev) })
	return dev
}

func detach(tb testing.TB, dev string) {
	if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
		// Already detached by the test is fine.
		if !strings.Contains(string(out), "No such device") {
			tb.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	}
}

func writeFilled(tb testing.TB, path string, size int, fill byte) {
	tb.Helper()
	b := make([]byte, size)
	if fill != 0 {
		for i := range b {
			b[i] = fill
		}
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// readAll reads a file or device through the page cache. For a loop
// device, read the backing file instead: the device's own page cache is
// not kept coherent with the O_DIRECT writes of the code under test.
func readAll(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// mount4k makes an ext4 file system on a loop device with 4096-byte
// logical sectors, mounts it, and returns the mount point; unmounted and
// detached in Cleanup. A file there needs 4096-byte direct I/O.
func mount4k(tb testing.TB) string {
	tb.Helper()
	needLoop(tb)
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		tb.Skip("mkfs.ext4 (e2fsprogs) is not installed")
	}
	dev, _ := newLoop(tb, 64<<20, 4096, 0)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", dev).CombinedOutput(); err != nil {
		tb.Fatalf("mkfs.ext4 %s: %v: %s", dev, err, out)
	}
	dir := tb.TempDir()
	if err := unix.Mount(dev, dir, "ext4", 0, ""); err != nil {
		tb.Skipf("cannot mount ext4 from a loop device here: %v", err)
	}
	tb.Cleanup(func() {
		var err error
		for i := 0; i < 200; i++ {
			if err = unix.Unmount(dir, 0); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		tb.Errorf("unmount %s: %v", dir, err)
	})
	return dir
}
