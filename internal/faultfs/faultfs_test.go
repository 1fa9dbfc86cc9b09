package faultfs_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/internal/faultfs"
)

// ioTimeout bounds I/O expected to succeed.
const ioTimeout = 30 * time.Second

func needFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("faultfs tests need root: faultfs mounts with mount(2) itself (DirectMount)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("faultfs tests need /dev/fuse: %v", err)
	}
}

type pool struct {
	t       *testing.T
	backing string
	dir     string
}

// newPool makes a backing directory holding a 64 KiB heartbeat file.
func newPool(t *testing.T) *pool {
	needFUSE(t)
	dir := t.TempDir()
	p := &pool{t: t, dir: dir, backing: filepath.Join(dir, "storage")}
	if err := os.Mkdir(p.backing, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.backing, ".server_pool_hb"), make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mount mounts a view for one host.
func (p *pool) mount(host string) *faultfs.FS {
	p.t.Helper()
	mnt := filepath.Join(p.dir, host)
	if err := os.Mkdir(mnt, 0o755); err != nil {
		p.t.Fatal(err)
	}
	f, err := faultfs.Mount(faultfs.Options{Backing: p.backing, Mountpoint: mnt, Name: host,
		Control: filepath.Join(p.dir, host+".ctl")})
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			p.t.Errorf("Unmount %s: %v", mnt, err)
		}
	})
	return f
}

func hb(f *faultfs.FS) string { return filepath.Join(f.Mountpoint(), ".server_pool_hb") }

func openDirect(t *testing.T, path string, mode directio.Mode) *directio.Device {
	t.Helper()
	d, err := directio.Open(path, 0, mode)
	if err != nil {
		t.Fatalf("directio.Open(%s): %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func mounted(path string) bool {
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == path {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within 10s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestODirectThroughTwoMounts(t *testing.T) {
	p := newPool(t)
	a, b := p.mount("hostA"), p.mount("hostB")
	if !mounted(a.Mountpoint()) || !mounted(b.Mountpoint()) {
		t.Fatal("not in /proc/self/mounts")
	}
	da := openDirect(t, hb(a), directio.ReadWrite)
	db := openDirect(t, hb(b), directio.ReadOnly)
	g := da.Geometry()
	t.Logf("geometry through FUSE: %+v", g)
	if g.Alignment != 512 || g.Size != 64<<10 {
		t.Errorf("geometry %+v: want 512-byte alignment (FUSE reports no STATX_DIOALIGN) and the backing size", g)
	}
	// Host A writes a 512-byte sector at a 512-aligned offset; host B
	// reads it at once through its own mount: no cache in between.
	want := pattern(512, 3)
	if err := da.WriteAt(want, 512*5, ioTimeout); err != nil {
		t.Fatalf("O_DIRECT write through faultfs: %v", err)
	}
	got := make([]byte, 512)
	if err := db.ReadAt(got, 512*5, ioTimeout); err != nil {
		t.Fatalf("O_DIRECT read through faultfs: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Error("host B did not read what host A wrote")
	}
	raw, _ := os.ReadFile(filepath.Join(p.backing, ".server_pool_hb"))
	if !bytes.Equal(raw[512*5:512*6], want) {
		t.Error("the backing file does not hold the write")
	}
	// And the other way: a write to the backing file is seen at once
	// through a mount, by an O_DIRECT read and by a buffered one.
	want2 := pattern(1024, 9)
	fd, err := os.OpenFile(filepath.Join(p.backing, ".server_pool_hb"), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fd.WriteAt(want2, 8192)
	fd.Close()
	got2 := make([]byte, 1024)
	if err := da.ReadAt(got2, 8192, ioTimeout); err != nil || !bytes.Equal(got2, want2) {
		t.Errorf("O_DIRECT read after a backing write: %v, equal %v", err, bytes.Equal(got2, want2))
	}
	buffered, _ := os.ReadFile(hb(b))
	if !bytes.Equal(buffered[8192:9216], want2) {
		t.Error("a buffered read through the mount returned stale data")
	}
	// A whole-area read of many sectors in one I/O (the heartbeat reads
	// all slots each round).
	all := make([]byte, 64<<10)
	if err := db.ReadAt(all, 0, ioTimeout); err != nil || !bytes.Equal(all[512*5:512*6], want) {
		t.Errorf("64 KiB O_DIRECT read: %v", err)
	}
}

// TestAlignmentNotEnforced records a caveat: FUSE with FOPEN_DIRECT_IO
// accepts O_DIRECT I/O that a disk or NFS would refuse as misaligned, so
// alignment bugs are not caught through faultfs.
func TestAlignmentNotEnforced(t *testing.T) {
	p := newPool(t)
	a := p.mount("hostA")
	fd, err := unix.Open(hb(a), unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1024)
	odd := buf[1:101]
	if uintptr(unsafe.Pointer(&odd[0]))%512 == 0 {
		odd = buf[2:102]
	}
	if n, err := unix.Pread(fd, odd, 3); err != nil || n != 100 {
		t.Errorf("misaligned O_DIRECT pread through faultfs: %d, %v; the doc says FUSE accepts it", n, err)
	}
}

func TestLatency(t *testing.T) {
	p := newPool(t)
	a := p.mount("hostA")
	d := openDirect(t, hb(a), directio.ReadWrite)
	buf := make([]byte, 512)
	const delay = 150 * time.Millisecond
	const slack = 250 * time.Millisecond
	if err := a.Set(faultfs.OpRead, faultfs.Fault{Delay: delay}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := d.ReadAt(buf, 0, ioTimeout); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < delay || took > delay+slack {
		t.Errorf("read with %v latency took %v", delay, took)
	}
	start = time.Now()
	if err := d.WriteAt(buf, 0, ioTimeout); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took >= delay {
		t.Errorf("a write took %v with only reads delayed", took)
	}
	a.Set(faultfs.OpWrite, faultfs.Fault{Delay: delay})
	a.Set(faultfs.OpRead, faultfs.Pass)
	start = time.Now()
	if err := d.WriteAt(buf, 0, ioTimeout); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < delay || took > delay+slack {
		t.Errorf("write with %v latency took %v", delay, took)
	}
	// The latency counts against the caller's I/O timeout as slow
	// storage would.
	a.Set(faultfs.OpRead, faultfs.Fault{Delay: 400 * time.Millisecond})
	if err := d.ReadAt(buf, 0, 100*time.Millisecond); !errors.Is(err, directio.ErrTimeout) {
		t.Errorf("read slower than its timeout: %v, want ErrTimeout", err)
	}
}

func TestEIO(t *testing.T) {
	p := newPool(t)
	a := p.mount("hostA")
	d := openDirect(t, hb(a), directio.ReadWrite)
	buf := make([]byte, 512)
	a.Set(faultfs.OpRead, faultfs.Fault{Errno: syscall.EIO})
	if err := d.ReadAt(buf, 0, ioTimeout); !errors.Is(err, syscall.EIO) {
		t.Errorf("read: %v, want EIO", err)
	}
	if err := d.WriteAt(buf, 0, ioTimeout); err != nil {
		t.Errorf("write with only reads failing: %v", err)
	}
	a.Set(faultfs.OpWrite, faultfs.Fault{Errno: syscall.ENOSPC})
	if err := d.WriteAt(buf, 0, ioTimeout); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write: %v, want ENOSPC", err)
	}
	a.Set(faultfs.OpOpen, faultfs.Fault{Errno: syscall.EIO})
	if _, err := os.Open(hb(a)); !errors.Is(err, syscall.EIO) {
		t.Errorf("open: %v, want EIO", err)
	}
	if st := a.Stats(); st.Failed < 3 {
		t.Errorf("stats %+v: want at least 3 failed", st)
	}
	a.Clear()
	if err := d.ReadAt(buf, 0, ioTimeout); err != nil {
		t.Errorf("read after Clear: %v", err)
	}
}

// hungPread starts an O_DIRECT pread on the mount and returns its result
// channel once the read is hung in faultfs.
func hungPread(t *testing.T, f *faultfs.FS) (fd int, result chan error) {
	t.Helper()
	fd, err := unix.Open(hb(f), unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	hung0 := f.Stats().Hung
	result = make(chan error, 1)
	go func() {
		buf := make([]byte, 1024)
		b := buf[512-uintptr(unsafe.Pointer(&buf[0]))%512:][:512]
		_, err := unix.Pread(fd, b, 0)
		result <- err
	}()
	waitFor(t, "hung", func() bool { return f.Stats().Hung > hung0 })
	select {
	case err := <-result:
		t.Fatalf("the hung read returned: %v", err)
	default:
	}
	return fd, result
}

func waitResult(t *testing.T, result chan error) error {
	t.Helper()
	select {
	case err := <-result:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the read is still hung")
	}
	return nil
}

func TestHangReleased(t *testing.T) {
	p := newPool(t)
	a, b := p.mount("hostA"), p.mount("hostB")
	a.Set(faultfs.OpRead, faultfs.Fault{Hang: true})
	fd, result := hungPread(t, a)
	defer unix.Close(fd)
	// Host B is not affected by host A's fault.
	db := openDirect(t, hb(b), directio.ReadOnly)
	if err := db.ReadAt(make([]byte, 512), 0, 5*time.Second); err != nil {
		t.Errorf("host B's read while host A hangs: %v", err)
	}
	// Still hung: changing another operation's fault does not release it.
	a.Set(faultfs.OpWrite, faultfs.Fault{Delay: time.Millisecond})
	select {
	case err := <-result:
		t.Fatalf("released by a change of the write fault: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	a.Set(faultfs.OpRead, faultfs.Pass)
	if err := waitResult(t, result); err != nil {
		t.Errorf("released read: %v, want success", err)
	}
	// Released into a failure.
	a.Set(faultfs.OpRead, faultfs.Fault{Hang: true})
	fd2, result2 := hungPread(t, a)
	defer unix.Close(fd2)
	a.Set(faultfs.OpRead, faultfs.Fault{Errno: syscall.EIO})
	if err := waitResult(t, result2); !errors.Is(err, syscall.EIO) {
		t.Errorf("read released into EIO: %v", err)
	}
	if st := a.Stats(); st.Hung != 0 {
		t.Errorf("stats %+v after release", st)
	}
}

func TestUnmountWithHungIO(t *testing.T) {
	p := newPool(t)
	mnt := filepath.Join(p.dir, "hostA")
	os.Mkdir(mnt, 0o755)
	a, err := faultfs.Mount(faultfs.Options{Backing: p.backing, Mountpoint: mnt})
	if err != nil {
		t.Fatal(err)
	}
	a.Set(faultfs.OpRead, faultfs.Fault{Hang: true})
	fd, result := hungPread(t, a)
	done := make(chan error, 1)
	go func() { done <- a.Unmount() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Unmount: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Unmount hung")
	}
	if err := waitResult(t, result); err == nil {
		t.Error("the hung read succeeded after the unmount; want an error")
	} else {
		t.Logf("hung read ended with: %v", err)
	}
	if mounted(mnt) {
		t.Error("still mounted")
	}
	// The descriptor still open on the detached mount fails, it does not hang.
	buf := make([]byte, 1024)
	b := buf[512-uintptr(unsafe.Pointer(&buf[0]))%512:][:512]
	if _, err := unix.Pread(fd, b, 0); err == nil {
		t.Error("read on the aborted mount succeeded")
	}
	unix.Close(fd)
	if err := a.Unmount(); err != nil {
		t.Errorf("second Unmount: %v", err)
	}
	// The mount point is an ordinary empty directory again.
	if ents, err := os.ReadDir(mnt); err != nil || len(ents) != 0 {
		t.Errorf("mount point after unmount: %v, %v", ents, err)
	}
}

func TestUnmountIdle(t *testing.T) {
	p := newPool(t)
	mnt := filepath.Join(p.dir, "hostA")
	os.Mkdir(mnt, 0o755)
	ctl := filepath.Join(p.dir, "hostA.ctl")
	a, err := faultfs.Mount(faultfs.Options{Backing: p.backing, Mountpoint: mnt, Control: ctl})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Unmount(); err != nil {
		t.Fatal(err)
	}
	if mounted(mnt) {
		t.Error("still mounted")
	}
	if _, err := os.Stat(ctl); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
}

func TestControlSocket(t *testing.T) {
	p := newPool(t)
	a := p.mount("hostA")
	ctl := filepath.Join(p.dir, "hostA.ctl")
	for _, c := range []struct{ cmd, want string }{
		{"set read delay 50ms", "ok"},
		{"set write eio", "ok"},
		{"set open errno ENOENT", "ok"},
	} {
		got, err := faultfs.Control(ctl, c.cmd)
		if err != nil || got != c.want {
			t.Errorf("%q: %q, %v", c.cmd, got, err)
		}
	}
	f := a.Faults()
	if f[faultfs.OpRead] != (faultfs.Fault{Delay: 50 * time.Millisecond}) || f[faultfs.OpWrite].Errno != syscall.EIO ||
		f[faultfs.OpOpen].Errno != syscall.ENOENT {
		t.Errorf("faults after the control commands: %v", f)
	}
	out, err := faultfs.Control(ctl, "status")
	if err != nil {
		t.Fatal(err)
	}
	var st faultfs.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status %q: %v", out, err)
	}
	if st.Faults["read"] != "delay 50ms" || st.Faults["write"] != "eio" || st.Faults["open"] != "errno ENOENT" ||
		st.Mountpoint != a.Mountpoint() {
		t.Errorf("status %+v", st)
	}
	for _, bad := range []string{"set read", "set disk eio", "set read delay", "set read delay soon", "frobnicate", "set read errno EWHAT"} {
		if _, err := faultfs.Control(ctl, bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := faultfs.Control(ctl, "set all delay 1ms"); err != nil {
		t.Fatal(err)
	}
	for op, f := range a.Faults() {
		if f != (faultfs.Fault{Delay: time.Millisecond}) {
			t.Errorf("after set all: %s is %v", op, f)
		}
	}
	// A hang set and released from another "process" (the socket).
	if _, err := faultfs.Control(ctl, "set read hang"); err != nil {
		t.Fatal(err)
	}
	fd, result := hungPread(t, a)
	defer unix.Close(fd)
	if _, err := faultfs.Control(ctl, "clear"); err != nil {
		t.Fatal(err)
	}
	if err := waitResult(t, result); err != nil {
		t.Errorf("read released by clear over the socket: %v", err)
	}
}

func TestParseFault(t *testing.T) {
	for in, want := range map[string]faultfs.Fault{
		"pass":             {},
		"hang":             {Hang: true},
		"eio":              {Errno: syscall.EIO},
		"errno ENOSPC":     {Errno: syscall.ENOSPC},
		"errno 5":          {Errno: syscall.EIO},
		"delay 2s":         {Delay: 2 * time.Second},
		"delay 200ms eio":  {Delay: 200 * time.Millisecond, Errno: syscall.EIO},
		"latency 1ms hang": {Delay: time.Millisecond, Hang: true},
	} {
		got, err := faultfs.ParseFault(strings.Fields(in))
		if err != nil || got != want {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if again, err := faultfs.ParseFault(strings.Fields(got.String())); err != nil || again != got {
			t.Errorf("%q: String %q does not parse back: %+v, %v", in, got.String(), again, err)
		}
	}
	for _, in := range []string{"", "delay", "delay -1s", "errno", "errno NOPE", "boom"} {
		if _, err := faultfs.ParseFault(strings.Fields(in)); err == nil {
			t.Errorf("ParseFault(%q) accepted", in)
		}
	}
}

// TestKillWhileHung: a process whose I/O is hung in faultfs dies of
// SIGKILL — what hbfence-wdsim's reset does to a daemon cut off from its
// storage — and the hung request is given up.
func TestKillWhileHung(t *testing.T) {
	p := newPool(t)
	a := p.mount("hostA")
	a.Set(faultfs.OpRead, faultfs.Fault{Hang: true})
	cmd := exec.Command("dd", "if="+hb(a), "of=/dev/null", "bs=512", "count=1", "iflag=direct")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	waitFor(t, "hung", func() bool { return a.Stats().Hung == 1 })
	cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a process hung in faultfs survived SIGKILL")
	}
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("dd ended with %v, want killed", cmd.ProcessState)
	}
	waitFor(t, "the interrupted request given up", func() bool { return a.Stats().Hung == 0 })
}
