package directio_test

// Real block devices for the tests: loop devices, and two real ways to
// make an O_DIRECT I/O hang in the kernel until the test lets it go:
// a device-mapper target that is suspended (I/O queues in dm until resume),
// and the block-layer throttle of the blkio/io cgroup controller set to
// one byte per second (the I/O queues in blk-throttle until the limit is
// lifted). Neither is a mock: the system call really blocks.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needLoop skips the test, saying what is missing, when loop devices
// cannot be made here.
func needLoop(t testing.TB) {
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
}

// newLoop attaches a loop device of size bytes with the given logical
// sector size over a new backing file, and detaches it in t.Cleanup. It
// returns the device path and the backing file.
func newLoop(t testing.TB, size int64, sectorSize int) (dev, backing string) {
	t.Helper()
	needLoop(t)
	backing = filepath.Join(t.TempDir(), "backing.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", "--sector-size", strconv.Itoa(sectorSize), backing).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup -f --show --sector-size %d %s: %v: %s", sectorSize, backing, err, out)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		// With the device still open (a worker stuck in a call),
		// losetup -d sets autoclear and the kernel detaches it on the
		// last close.
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev, backing
}

// devNum returns "major:minor" of a block device.
func devNum(t testing.TB, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
}

// openFDs counts this process's descriptors open on path (after symlinks).
func openFDs(t testing.TB, path string) int {
	t.Helper()
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == want {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes. It waits for a
// condition; it does not sleep and hope.
func waitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A hanger makes I/O to a block device hang in the kernel and lets it go.
type hanger interface {
	Path() string // the device to do I/O on
	Hang(t testing.TB)
	Release(t testing.TB)
}

var dmSeq atomic.Int64

// dmLinear is a device-mapper linear target over a loop device; suspend
// with --noflush queues every new I/O until resume.
type dmLinear struct {
	name string
	path string
}

// needDM skips the test, saying why, when device-mapper is not usable.
func needDM(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("device-mapper needs root; running as uid %d", os.Geteuid())
	}
	if _, err := exec.LookPath("dmsetup"); err != nil {
		t.Skip("dmsetup is not installed (Debian package dmsetup)")
	}
	if out, err := exec.Command("dmsetup", "version").CombinedOutput(); err != nil {
		t.Skipf("device-mapper is not usable on this kernel (dmsetup version: %v): %s", err, strings.TrimSpace(string(out)))
	}
}

// newDMLinear makes a dm linear device over the whole of lower, or skips
// the test saying why device-mapper is not usable here.
func newDMLinear(t testing.TB, lower string, size int64) *dmLinear {
	t.Helper()
	needDM(t)
	d := &dmLinear{name: fmt.Sprintf("hbfence-test-%d-%d", os.Getpid(), dmSeq.Add(1))}
	d.path = "/dev/mapper/" + d.name
	table := fmt.Sprintf("0 %d linear %s 0", size/512, lower)
	if out, err := exec.Command("dmsetup", "create", "--noudevsync", d.name, "--table", table).CombinedOutput(); err != nil {
		t.Fatalf("dmsetup create %s --table %q: %v: %s", d.name, table, err, out)
	}
	t.Cleanup(func() {
		// Resume first, so that nothing stays queued; then remove,
		// retrying while a worker that just returned still holds the
		// device open.
		exec.Command("dmsetup", "resume", d.name).Run()
		var out []byte
		var err error
		for i := 0; i < 200; i++ {
			if out, err = exec.Command("dmsetup", "remove", "--noudevsync", d.name).CombinedOutput(); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("dmsetup remove %s: %v: %s", d.name, err, out)
	})
	// udev may not run here: make sure the node exists.
	if _, err := os.Stat(d.path); err != nil {
		if out, err := exec.Command("dmsetup", "mknodes", d.name).CombinedOutput(); err != nil {
			t.Fatalf("dmsetup mknodes %s: %v: %s", d.name, err, out)
		}
	}
	return d
}

func (d *dmLinear) Path() string { return d.path }

func (d *dmLinear) Hang(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("dmsetup", "suspend", "--noflush", "--nolockfs", d.name).CombinedOutput(); err != nil {
		t.Fatalf("dmsetup suspend %s: %v: %s", d.name, err, out)
	}
}

func (d *dmLinear) Release(t testing.TB) {
	t.Helper()
	if out, err := exec.Command("dmsetup", "resume", d.name).CombinedOutput(); err != nil {
		t.Fatalf("dmsetup resume %s: %v: %s", d.name, err, out)
	}
}

// throttle holds this process in a cgroup whose block-layer throttle on
// one device is one byte per second while hung and unlimited otherwise.
type throttle struct {
	dev    string // the device path
	devnum string // major:minor
	v2     bool
	dir    string // the test's cgroup
	home   string // the cgroup the process came from
}

var throttleSeq atomic.Int64

// newThrottle moves the test process into a new cgroup that can throttle
// I/O to dev, and moves it back and removes the cgroup in t.Cleanup. It
// skips the test, saying what is missing, when there is no blk-throttle.
func newThrottle(t testing.TB, dev string) *throttle {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("cgroup I/O throttling needs root; running as uid %d", os.Geteuid())
	}
	th := &throttle{dev: dev, devnum: devNum(t, dev)}
	v1root, v2root := cgroupMounts(t)
	name := fmt.Sprintf("hbfence-test-%d-%d", os.Getpid(), throttleSeq.Add(1))
	switch {
	case v1root != "":
		if _, err := os.Stat(filepath.Join(v1root, "blkio.throttle.write_bps_device")); err != nil {
			t.Skipf("the blkio cgroup controller has no throttle here (kernel without CONFIG_BLK_DEV_THROTTLING): %v", err)
		}
		th.dir = filepath.Join(v1root, name)
		th.home = filepath.Join(v1root, ownCgroup(t, "blkio"))
	case v2root != "":
		ctl, _ := os.ReadFile(filepath.Join(v2root, "cgroup.controllers"))
		if !strings.Contains(" "+string(ctl)+" ", " io ") {
			t.Skipf("the cgroup v2 io controller is not available at %s (controllers: %q), and no cgroup v1 blkio hierarchy is mounted", v2root, strings.TrimSpace(string(ctl)))
		}
		// The root cgroup may both hold processes and delegate io.
		if err := os.WriteFile(filepath.Join(v2root, "cgroup.subtree_control"), []byte("+io"), 0); err != nil {
			t.Skipf("cannot enable the io controller under %s: %v", v2root, err)
		}
		th.v2 = true
		th.dir = filepath.Join(v2root, name)
		th.home = filepath.Join(v2root, ownCgroup(t, ""))
	default:
		t.Skip("no cgroup blkio (v1) or io (v2) controller is mounted")
	}
	if err := os.Mkdir(th.dir, 0o755); err != nil {
		t.Fatalf("making the test cgroup: %v", err)
	}
	if th.v2 {
		if _, err := os.Stat(filepath.Join(th.dir, "io.max")); err != nil {
			os.Remove(th.dir)
			t.Skipf("cgroup v2 has no io.max (kernel without CONFIG_BLK_DEV_THROTTLING): %v", err)
		}
	}
	if err := os.WriteFile(filepath.Join(th.dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		os.Remove(th.dir)
		t.Fatalf("moving the test process into %s: %v", th.dir, err)
	}
	t.Cleanup(func() {
		th.setLimit(t, false)
		if err := os.WriteFile(filepath.Join(th.home, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			t.Errorf("moving the test process back to %s: %v", th.home, err)
		}
		var err error
		for i := 0; i < 200; i++ {
			if err = os.Remove(th.dir); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("removing the test cgroup: %v", err)
	})
	return th
}

// cgroupMounts finds the cgroup v1 blkio hierarchy and the cgroup v2
// hierarchy in /proc/self/mountinfo.
func cgroupMounts(t testing.TB) (v1blkio, v2 string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(fields) || len(fields) < 5 {
			continue
		}
		mnt, fstype, super := fields[4], fields[sep+1], fields[sep+3]
		switch fstype {
		case "cgroup":
			for _, o := range strings.Split(super, ",") {
				if o == "blkio" && v1blkio == "" {
					v1blkio = mnt
				}
			}
		case "cgroup2":
			if v2 == "" {
				v2 = mnt
			}
		}
	}
	return v1blkio, v2
}

// ownCgroup returns this process's cgroup path in the hierarchy of the
// named v1 controller, or in the v2 hierarchy for "".
func ownCgroup(t testing.TB, controller string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if controller == "" && parts[0] == "0" && parts[1] == "" {
			return parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if controller != "" && c == controller {
				return parts[2]
			}
		}
	}
	t.Fatalf("this process is in no %q cgroup: %s", controller, b)
	return ""
}

func (th *throttle) Path() string { return th.dev }

func (th *throttle) setLimit(t testing.TB, hung bool) error {
	t.Helper()
	write := func(file, v string) error {
		err := os.WriteFile(filepath.Join(th.dir, file), []byte(v), 0)
		if err != nil {
			return fmt.Errorf("writing %q to %s: %w", v, file, err)
		}
		return nil
	}
	if th.v2 {
		v := th.devnum + " rbps=max wbps=max"
		if hung {
			v = th.devnum + " rbps=1 wbps=1"
		}
		return write("io.max", v)
	}
	v := th.devnum + " 0" // 0 removes the limit
	if hung {
		v = th.devnum + " 1"
	}
	return errors.Join(write("blkio.throttle.read_bps_device", v), write("blkio.throttle.write_bps_device", v))
}

func (th *throttle) Hang(t testing.TB) {
	t.Helper()
	if err := th.setLimit(t, true); err != nil {
		t.Fatal(err)
	}
}

func (th *throttle) Release(t testing.TB) {
	t.Helper()
	if err := th.setLimit(t, false); err != nil {
		t.Fatal(err)
	}
}

// inSyscall reports whether a thread of this process is blocked in the
// system call numbered nr (from /proc/self/task/*/syscall).
func inSyscall(t testing.TB, nr int) bool {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.Itoa(nr)
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/syscall")
		if err != nil {
			continue // the thread exited
		}
		if f := strings.Fields(string(b)); len(f) > 0 && f[0] == want {
			return true
		}
	}
	return false
}

// mount4k makes an ext4 file system on a loop device with 4096-byte
// logical sectors, mounts it, and returns the mount point; unmounted and
// detached in Cleanup. A file there needs 4096-byte direct I/O.
func mount4k(t testing.TB) string {
	t.Helper()
	needLoop(t)
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 (e2fsprogs) is not installed")
	}
	dev, _ := newLoop(t, 64<<20, 4096)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v: %s", dev, err, out)
	}
	dir := t.TempDir()
	if err := unix.Mount(dev, dir, "ext4", 0, ""); err != nil {
		t.Skipf("cannot mount ext4 from a loop device here: %v", err)
	}
	t.Cleanup(func() {
		var err error
		for i := 0; i < 200; i++ {
			if err = unix.Unmount(dir, 0); err == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("unmount %s: %v", dir, err)
	})
	return dir
}
