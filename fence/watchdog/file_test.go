package watchdog_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hbfence/hbfence/fence/watchdog"
)

// fifoReader is the supervisor's end of a FIFO.
type fifoReader struct {
	t  *testing.T
	fd int
}

func newFIFO(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "watchdog")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func openReader(t *testing.T, path string) *fifoReader {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := &fifoReader{t: t, fd: fd}
	t.Cleanup(func() { r.close() })
	return r
}

func (r *fifoReader) close() {
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// read returns what arrives until want bytes were read or, if eof, the
// writer closed; it fails the test at the deadline.
func (r *fifoReader) read(want int, eof bool) string {
	r.t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if !eof && len(got) >= want {
			return string(got)
		}
		left := time.Until(deadline)
		if left <= 0 {
			r.t.Fatalf("read %q by the deadline; wanted %d bytes (eof %v)", got, want, eof)
		}
		fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && err != unix.EINTR {
			r.t.Fatal(err)
		}
		n, err := unix.Read(r.fd, buf)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
		case err != nil:
			r.t.Fatal(err)
		case n == 0:
			if eof {
				return string(got)
			}
			r.t.Fatalf("EOF after %q; wanted %d bytes", got, want)
		default:
			got = append(got, buf[:n]...)
		}
	}
}

func TestFIFOWithReader(t *testing.T) {
	p := newFIFO(t)
	r := openReader(t, p)
	w, err := watchdog.New(watchdog.Config{Path: p, Timeout: 2 * time.Second, TimeoutExplicit: true})
	if err != nil {
		t.Fatal(err)
	}
	if info := w.Describe(); info.Backend != watchdog.BackendFIFO || info.Armed {
		t.Fatalf("before Arm: %+v", info)
	}
	eff, err := w.Arm()
	if err != nil {
		t.Fatal(err)
	}
	if eff != 2*time.Second {
		t.Errorf("effective %v, want the configured 2s", eff)
	}
	info := w.Describe()
	if !info.Armed || !info.Fence || !info.StandIn || info.Unsafe || !strings.Contains(info.Note, "stand-in") ||
		!strings.Contains(info.Source, "configured") {
		t.Errorf("Describe: %+v", info)
	}
	if got := r.read(1, false); got != "." {
		t.Errorf("Arm wrote %q, want one keepalive byte", got)
	}
	for i := 0; i < 3; i++ {
		if err := w.Feed(); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.read(3, false); got != "..." {
		t.Errorf("three feeds wrote %q", got)
	}
	if err := w.Disarm(); err != nil {
		t.Fatal(err)
	}
	if got := r.read(0, true); got != "V" {
		t.Errorf("Disarm wrote %q then closed, want \"V\" then EOF", got)
	}

	// Arm again (a new incarnation), then close as a crash does.
	if _, err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	if err := w.Feed(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := r.read(0, true); got != ".." {
		t.Errorf("after a crash-like Close the reader saw %q then EOF, want \"..\" (no 'V')", got)
	}
}

func TestFIFOWithoutReader(t *testing.T) {
	p := newFIFO(t)
	w, err := watchdog.New(watchdog.Config{Path: p, Timeout: 2 * time.Second, TimeoutExplicit: true})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.Arm()
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Arm blocked on a FIFO with no reader")
	}
	if !errors.Is(err, watchdog.ErrNoSupervisor) || !strings.Contains(err.Error(), "no supervisor is reading "+p) {
		t.Errorf("Arm: %v; want ErrNoSupervisor naming %s", err, p)
	}
	if w.Describe().Armed {
		t.Error("armed after failing")
	}
}

func TestFIFOSupervisorGone(t *testing.T) {
	p := newFIFO(t)
	r := openReader(t, p)
	w, err := watchdog.New(watchdog.Config{Path: p, Timeout: time.Second, TimeoutExplicit: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r.close()
	err = w.Feed()
	if !errors.Is(err, unix.EPIPE) || !strings.Contains(err.Error(), "no supervisor is reading") {
		t.Errorf("Feed with the reader gone: %v, want EPIPE", err)
	}
}

func TestFIFOSupervisorNotReading(t *testing.T) {
	p := newFIFO(t)
	r := openReader(t, p)
	// Shrink the pipe to one page so that it fills quickly.
	if _, err := unix.FcntlInt(uintptr(r.fd), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	w, err := watchdog.New(watchdog.Config{Path: p, Timeout: time.Second, TimeoutExplicit: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var ferr error
	for i := 0; i < 10000 && ferr == nil; i++ {
		ferr = w.Feed()
	}
	if !errors.Is(ferr, unix.EAGAIN) || !strings.Contains(ferr.Error(), "not reading") {
		t.Errorf("feeding a FIFO nobody reads: %v, want EAGAIN (never block)", ferr)
	}
}

func TestFIFORequiresExplicitTimeout(t *testing.T) {
	p := newFIFO(t)
	openReader(t, p)
	w, err := watchdog.New(watchdog.Config{Path: p, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Arm()
	if !errors.Is(err, watchdog.ErrNotWatchdog) || !strings.Contains(err.Error(), "explicit [watchdog] timeout") ||
		!strings.Contains(err.Error(), "inappropriate ioctl") {
		t.Errorf("Arm of a FIFO with the pool's timeout only: %v; want the ENOTTY refusal", err)
	}
}

func TestPlainFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "wd")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A plain file resets nothing: refused outside test mode, even with
	// an explicit timeout (issue 10 item 2)...
	_, err := watchdog.New(watchdog.Config{Path: p, Timeout: 3 * time.Second, TimeoutExplicit: true})
	if !errors.Is(err, watchdog.ErrNotWatchdog) || !strings.Contains(err.Error(), "test_mode") || !strings.Contains(err.Error(), p) {
		t.Fatalf("a plain file outside test mode: %v; want a refusal naming the file and test_mode", err)
	}
	// The real ioctl on a regular file fails with ENOTTY: refused with
	// the pool's figure only...
	w, err := watchdog.New(watchdog.Config{Path: p, Timeout: 3 * time.Second, TestMode: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Arm(); !errors.Is(err, watchdog.ErrNotWatchdog) {
		t.Fatalf("Arm: %v, want ErrNotWatchdog", err)
	}
	// ...and the refusal wrote no 'V': a magic close on a failed Arm
	// would stop a countdown a crashed predecessor left running.
	if b, _ := os.ReadFile(p); len(b) != 0 {
		t.Errorf("file holds %q after a refused Arm, want nothing", b)
	}
	os.WriteFile(p, nil, 0o600)

	// ...accepted with an explicit timeout.
	w, err = watchdog.New(watchdog.Config{Path: p, Timeout: 3 * time.Second, TimeoutExplicit: true, TestMode: true})
	if err != nil {
		t.Fatal(err)
	}
	// It cannot reset the machine: unsafe before it is armed (the slot's
	// flag is chosen then) and after.
	if info := w.Describe(); !info.Unsafe {
		t.Errorf("a plain file, before Arm: %+v; want Unsafe", info)
	}
	eff, err := w.Arm()
	if err != nil || eff != 3*time.Second {
		t.Fatalf("Arm: %v, %v", eff, err)
	}
	info := w.Describe()
	if info.Backend != watchdog.BackendFile || info.Fence || !info.Unsafe || !info.StandIn || !strings.Contains(info.Note, "UNSAFE") {
		t.Errorf("Describe: %+v", info)
	}
	w.Feed()
	w.Feed()
	if err := w.Disarm(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "...V" {
		t.Errorf("file holds %q, want \"...V\" (arm, two feeds, magic close)", b)
	}
	if _, err := w.Arm(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "...V." {
		t.Errorf("file holds %q after Arm and Close, want \"...V.\"", b)
	}
}

func TestCharDeviceThatIsNotAWatchdog(t *testing.T) {
	// /dev/null: a real character device whose ioctls fail with ENOTTY.
	// Never a stand-in, even with an explicit timeout.
	w, err := watchdog.New(watchdog.Config{Path: "/dev/null", Timeout: 3 * time.Second, TimeoutExplicit: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Arm()
	if !errors.Is(err, watchdog.ErrNotWatchdog) || !strings.Contains(err.Error(), "WDIOC_GETSUPPORT") {
		t.Errorf("Arm /dev/null: %v", err)
	}
}

func TestNotAFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := watchdog.New(watchdog.Config{Path: dir, Timeout: time.Second}); !errors.Is(err, watchdog.ErrNotWatchdog) {
		t.Errorf("a directory: %v", err)
	}
	if _, err := watchdog.New(watchdog.Config{Path: filepath.Join(dir, "missing"), Timeout: time.Second}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing path: %v", err)
	}
}

func TestDefaultPathsAndNone(t *testing.T) {
	saved := watchdog.DefaultPaths
	t.Cleanup(func() { watchdog.DefaultPaths = saved })
	dir := t.TempDir()
	watchdog.DefaultPaths = []string{filepath.Join(dir, "watchdog0"), filepath.Join(dir, "watchdog")}

	_, err := watchdog.New(watchdog.Config{Timeout: 10 * time.Second})
	if !errors.Is(err, watchdog.ErrNoDevice) || !strings.Contains(err.Error(), "allow_no_watchdog") {
		t.Errorf("no device, not allowed: %v", err)
	}
	w, err := watchdog.New(watchdog.Config{Timeout: 10 * time.Second, AllowNone: true})
	if err != nil {
		t.Fatal(err)
	}
	eff, err := w.Arm()
	if err != nil || eff != 0 {
		t.Errorf("None.Arm: %v, %v; want 0 (never fires)", eff, err)
	}
	if err := w.Feed(); err != nil {
		t.Error(err)
	}
	info := w.Describe()
	if info.Backend != watchdog.BackendNone || !info.Unsafe || info.Fence || !strings.Contains(info.Note, "UNSAFE") {
		t.Errorf("None: %+v", info)
	}
	if err := w.Disarm(); err != nil {
		t.Error(err)
	}

	// The second default path exists: it is chosen, even when no
	// watchdog is allowed.
	if err := unix.Mkfifo(watchdog.DefaultPaths[1], 0o600); err != nil {
		t.Fatal(err)
	}
	w, err = watchdog.New(watchdog.Config{Timeout: 10 * time.Second, AllowNone: true})
	if err != nil {
		t.Fatal(err)
	}
	if info := w.Describe(); info.Backend != watchdog.BackendFIFO || info.Path != watchdog.DefaultPaths[1] {
		t.Errorf("chose %+v, want the FIFO at %s", info, watchdog.DefaultPaths[1])
	}
}
