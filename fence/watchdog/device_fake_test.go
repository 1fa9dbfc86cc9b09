package watchdog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeDriver behaves like the kernel's watchdog core in front of one
// driver: one opener at a time, open starts the countdown, a write
// containing 'V' followed by close stops it when the driver has the
// magic close, any close stops it when it has not, nothing stops it when
// it is nowayout.
type fakeDriver struct {
	mu sync.Mutex

	options  uint32
	identity string
	timeout  int // seconds, as the driver holds it
	// round maps a requested timeout to what the driver sets.
	round          func(int) int
	setErr         error // WDIOC_SETTIMEOUT fails with this
	getErr         error // WDIOC_GETTIMEOUT fails with this
	keepaliveErr   error
	openErr        error
	supportErr     error
	noway, nwKnown bool

	isOpen       bool
	running      bool
	allowRelease bool
	keepalives   int
	writes       [][]byte
	sets         []int
	closes       int
}

const fakeFD = 42

func newFake(identity string, options uint32, timeout int) *fakeDriver {
	return &fakeDriver{identity: identity, options: options, timeout: timeout}
}

const fullOptions = unix.WDIOF_SETTIMEOUT | unix.WDIOF_MAGICCLOSE | unix.WDIOF_KEEPALIVEPING

func (f *fakeDriver) stat(path string) (unix.Stat_t, error) {
	return unix.Stat_t{Mode: unix.S_IFCHR | 0o600, Rdev: unix.Mkdev(10, 130)}, nil
}

func (f *fakeDriver) open(path string, flags int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr != nil {
		return -1, f.openErr
	}
	if f.isOpen {
		return -1, unix.EBUSY
	}
	f.isOpen, f.running, f.allowRelease = true, true, false
	return fakeFD, nil
}

func (f *fakeDriver) check(fd int) {
	if fd != fakeFD || !f.isOpen {
		panic("fake watchdog used while closed")
	}
}

func (f *fakeDriver) getSupport(fd int) (unix.WatchdogInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.check(fd)
	if f.supportErr != nil {
		return unix.WatchdogInfo{}, f.supportErr
	}
	wi := unix.WatchdogInfo{Options: f.options, Version: 7}
	copy(wi.Identity[:], f.identity)
	return wi, nil
}

func (f *fakeDriver) setTimeout(fd int, secs int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.check(fd)
	f.sets = append(f.sets, secs)
	if f.options&unix.WDIOF_SETTIMEOUT == 0 {
		return 0, unix.EOPNOTSUPP
	}
	if f.setErr != nil {
		return 0, f.setErr
	}
	if f.round != nil {
		secs = f.round(secs)
	}
	f.timeout = secs
	f.keepalives++ // the core pings after a new timeout
	return secs, nil
}

func (f *fakeDriver) getTimeout(fd int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.check(fd)
	if f.getErr != nil {
		return 0, f.getErr
	}
	return f.timeout, nil
}

func (f *fakeDriver) keepalive(fd int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.check(fd)
	if f.options&unix.WDIOF_KEEPALIVEPING == 0 {
		return unix.EOPNOTSUPP
	}
	if f.keepaliveErr != nil {
		return f.keepaliveErr
	}
	f.keepalives++
	return nil
}

func (f *fakeDriver) write(fd int, p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.check(fd)
	f.writes = append(f.writes, append([]byte(nil), p...))
	f.allowRelease = f.options&unix.WDIOF_MAGICCLOSE != 0 && bytes.IndexByte(p, 'V') >= 0
	f.keepalives++
	return len(p), nil
}

func (f *fakeDriver) close(fd int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.check(fd)
	f.isOpen = false
	f.closes++
	if !f.noway && (f.allowRelease || f.options&unix.WDIOF_MAGICCLOSE == 0) {
		f.running = false
	}
	return nil
}

func (f *fakeDriver) nowayout(rdev uint64) (bool, bool) { return f.noway, f.nwKnown }

func (f *fakeDriver) state() (running, open bool, keepalives int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running, f.isOpen, f.keepalives
}

func fakeDevice(t *testing.T, f *fakeDriver, cfg Config) *Device {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = "/dev/watchdog-fake"
	}
	d, err := newDevice(cfg, f)
	if err != nil {
		t.Fatalf("newDevice: %v", err)
	}
	return d
}

func TestDeviceITCOQuirk(t *testing.T) {
	f := newFake("iTCO_wdt", fullOptions, 30)
	d := fakeDevice(t, f, Config{Timeout: 10 * time.Second})
	if got := d.Describe(); got.Backend != BackendDevice || got.Armed {
		t.Fatalf("before Arm: %+v", got)
	}
	eff, err := d.Arm()
	if err != nil {
		t.Fatalf("Arm: %v", err)
	}
	if len(f.sets) != 1 || f.sets[0] != 5 {
		t.Errorf("WDIOC_SETTIMEOUT calls %v, want [5] (10s wanted, iTCO fires after 2×)", f.sets)
	}
	if eff != 10*time.Second {
		t.Errorf("effective %v, want 10s (5 s read back × 2)", eff)
	}
	info := d.Describe()
	if info.Identity != "iTCO_wdt" || info.Quirk != "iTCO_wdt" || info.Reported != 5*time.Second ||
		info.Requested != 5*time.Second || info.Effective != 10*time.Second || !info.Armed || !info.Fence ||
		info.Unsafe || info.StandIn || info.FirmwareVersion != 7 {
		t.Errorf("Describe: %+v", info)
	}
	if !strings.Contains(info.Source, "× 2") {
		t.Errorf("Source %q does not say the quirk was applied", info.Source)
	}
	_, _, k0 := f.state()
	for i := 0; i < 3; i++ {
		if err := d.Feed(); err != nil {
			t.Fatalf("Feed: %v", err)
		}
	}
	if _, _, k := f.state(); k != k0+3 {
		t.Errorf("keepalives %d after 3 feeds, want %d", k, k0+3)
	}
	if len(f.writes) != 0 {
		t.Errorf("feeding a driver with WDIOF_KEEPALIVEPING wrote %q; want ioctls only", f.writes)
	}
	if err := d.Disarm(); err != nil {
		t.Fatalf("Disarm: %v", err)
	}
	if running, open, _ := f.state(); running || open {
		t.Errorf("after Disarm: running %v open %v, want stopped and closed", running, open)
	}
	if n := len(f.writes); n == 0 || string(f.writes[n-1]) != "V" {
		t.Errorf("writes %q: the last must be the magic 'V'", f.writes)
	}
	if d.Describe().Armed {
		t.Error("Describe says armed after Disarm")
	}
}

func TestDeviceCloseLeavesItArmed(t *testing.T) {
	f := newFake("Software Watchdog", fullOptions, 60)
	d := fakeDevice(t, f, Config{Timeout: 10 * time.Second})
	if _, err := d.Arm(); err != nil {
		t.Fatal(err)
	}
	if note := d.Describe().Note; !strings.Contains(note, "kernel") {
		t.Errorf("softdog note %q does not say it needs a working kernel", note)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if running, open, _ := f.state(); !running || open {
		t.Errorf("after Close: running %v open %v, want running and closed (a crash leaves it armed)", running, open)
	}
	for _, w := range f.writes {
		if bytes.IndexByte(w, 'V') >= 0 {
			t.Errorf("Close wrote %q", w)
		}
	}
	// A new incarnation opens it again.
	eff, err := d.Arm()
	if err != nil || eff != 10*time.Second {
		t.Fatalf("Arm after Close: %v, %v", eff, err)
	}
	if _, err := d.Arm(); !errors.Is(err, ErrArmed) {
		t.Errorf("second Arm: %v, want ErrArmed", err)
	}
	if err := d.Disarm(); err != nil {
		t.Fatal(err)
	}
	if err := d.Feed(); !errors.Is(err, ErrNotArmed) {
		t.Errorf("Feed after Disarm: %v, want ErrNotArmed", err)
	}
	if err := d.Disarm(); !errors.Is(err, ErrNotArmed) {
		t.Errorf("Disarm twice: %v, want ErrNotArmed", err)
	}
	if err := d.Close(); !errors.Is(err, ErrNotArmed) {
		t.Errorf("Close after Disarm: %v, want ErrNotArmed", err)
	}
}

func TestDeviceRoundsUp(t *testing.T) {
	f := newFake("some_wdt", fullOptions, 30)
	f.round = func(s int) int { return (s + 3) / 4 * 4 } // multiples of 4 s
	d := fakeDevice(t, f, Config{Timeout: 7 * time.Second})
	eff, err := d.Arm()
	if err != nil {
		t.Fatal(err)
	}
	if eff != 8*time.Second {
		t.Errorf("effective %v, want the 8 s the driver set (asked 7): the caller checks the pool rule", eff)
	}
	if info := d.Describe(); info.Requested != 7*time.Second || info.Reported != 8*time.Second || info.Quirk != "" {
		t.Errorf("Describe: %+v", info)
	}
}

func TestDeviceCannotSetTimeout(t *testing.T) {
	f := newFake("fixed_wdt", unix.WDIOF_MAGICCLOSE|unix.WDIOF_KEEPALIVEPING, 60)
	d := fakeDevice(t, f, Config{Timeout: 10 * time.Second})
	eff, err := d.Arm()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.sets) != 0 {
		t.Errorf("WDIOC_SETTIMEOUT called %v on a driver without WDIOF_SETTIMEOUT", f.sets)
	}
	if eff != 60*time.Second {
		t.Errorf("effective %v, want the 60 s it reports", eff)
	}
	if info := d.Describe(); !strings.Contains(info.SetError, "WDIOF_SETTIMEOUT") || info.Requested != 0 {
		t.Errorf("Describe: %+v", info)
	}
}

func TestDeviceSetRefused(t *testing.T) {
	// iTCO v2 refuses below about 3 s; 2 s wanted → asks 1 s → EINVAL.
	f := newFake("iTCO_wdt", fullOptions, 30)
	f.setErr = unix.EINVAL
	d := fakeDevice(t, f, Config{Timeout: 2 * time.Second})
	eff, err := d.Arm()
	if err != nil {
		t.Fatal(err)
	}
	if eff != 60*time.Second {
		t.Errorf("effective %v, want 60 s (30 s still set, × 2)", eff)
	}
	if info := d.Describe(); !strings.Contains(info.SetError, "WDIOC_SETTIMEOUT 1") {
		t.Errorf("SetError %q", info.SetError)
	}
}

func TestDeviceTimeoutBelowOneSecond(t *testing.T) {
	f := newFake("iTCO_wdt", fullOptions, 30)
	d := fakeDevice(t, f, Config{Timeout: 1500 * time.Millisecond})
	eff, err := d.Arm()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.sets) != 0 {
		t.Errorf("asked the driver for %v; 1.5 s / 2 is below a second", f.sets)
	}
	if eff != 60*time.Second || !strings.Contains(d.Describe().SetError, "whole seconds") {
		t.Errorf("effective %v, info %+v", eff, d.Describe())
	}
}

func TestDeviceNoReadBack(t *testing.T) {
	t.Run("set writes back", func(t *testing.T) {
		f := newFake("old_wdt", fullOptions, 30)
		f.getErr = unix.ENOTTY
		d := fakeDevice(t, f, Config{Timeout: 12 * time.Second})
		eff, err := d.Arm()
		if err != nil || eff != 12*time.Second {
			t.Fatalf("Arm: %v, %v; want 12s from WDIOC_SETTIMEOUT's write-back", eff, err)
		}
		if src := d.Describe().Source; !strings.Contains(src, "SETTIMEOUT") {
			t.Errorf("Source %q", src)
		}
	})
	t.Run("nothing known, refused", func(t *testing.T) {
		f := newFake("old_wdt", unix.WDIOF_MAGICCLOSE, 30)
		f.getErr = unix.ENOTTY
		d := fakeDevice(t, f, Config{Timeout: 12 * time.Second})
		_, err := d.Arm()
		if err == nil || !strings.Contains(err.Error(), "[watchdog] timeout") {
			t.Fatalf("Arm: %v; want a refusal naming [watchdog] timeout", err)
		}
		// A refused Arm never writes the magic close: after a restart
		// the countdown the crashed predecessor left running is what
		// still resets this machine (issue 10 item 3).
		if running, open, _ := f.state(); !running || open {
			t.Errorf("after a refused Arm: running %v open %v; want closed and still counting", running, open)
		}
		for _, w := range f.writes {
			if bytes.IndexByte(w, 'V') >= 0 {
				t.Errorf("a refused Arm wrote %q: the magic close stops a countdown a predecessor left", w)
			}
		}
	})
	t.Run("nothing known, configured", func(t *testing.T) {
		f := newFake("old_wdt", unix.WDIOF_MAGICCLOSE, 30)
		f.getErr = unix.ENOTTY
		d := fakeDevice(t, f, Config{Timeout: 12 * time.Second, TimeoutExplicit: true})
		eff, err := d.Arm()
		if err != nil || eff != 12*time.Second {
			t.Fatalf("Arm: %v, %v; want the configured 12s", eff, err)
		}
		// No WDIOF_KEEPALIVEPING: feeds are writes.
		if err := d.Feed(); err != nil {
			t.Fatal(err)
		}
		if n := len(f.writes); n != 2 || string(f.writes[1]) != "." {
			t.Errorf("writes %q, want two one-byte feeds", f.writes)
		}
	})
}

func TestDeviceWithoutMagicClose(t *testing.T) {
	f := newFake("cheap_wdt", unix.WDIOF_SETTIMEOUT|unix.WDIOF_KEEPALIVEPING, 30)
	d := fakeDevice(t, f, Config{Timeout: 10 * time.Second})
	_, err := d.Arm()
	if err == nil || !strings.Contains(err.Error(), "magic close") {
		t.Fatalf("Arm: %v; want a refusal: a crash would stop this driver", err)
	}
	if running, open, _ := f.state(); running || open {
		t.Errorf("refused device: running %v open %v", running, open)
	}

	// With nowayout the close stops nothing: accepted, but Disarm
	// cannot stop it and says so.
	f = newFake("cheap_wdt", unix.WDIOF_SETTIMEOUT|unix.WDIOF_KEEPALIVEPING, 30)
	f.noway, f.nwKnown = true, true
	d = fakeDevice(t, f, Config{Timeout: 10 * time.Second})
	if _, err := d.Arm(); err != nil {
		t.Fatal(err)
	}
	if info := d.Describe(); !info.Nowayout || !strings.Contains(info.Note, "nowayout") {
		t.Errorf("Describe: %+v", info)
	}
	err = d.Disarm()
	if !errors.Is(err, ErrNowayout) {
		t.Errorf("Disarm: %v, want ErrNowayout", err)
	}
	if running, _, _ := f.state(); !running {
		t.Error("a nowayout fake stopped")
	}
}

func TestDeviceBusyAndNotWatchdog(t *testing.T) {
	f := newFake("iTCO_wdt", fullOptions, 30)
	f.isOpen = true // someone else holds it
	d := fakeDevice(t, f, Config{Timeout: 10 * time.Second})
	_, err := d.Arm()
	if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "open already") {
		t.Errorf("Arm of a busy device: %v", err)
	}

	f = newFake("", 0, 0)
	f.supportErr = unix.ENOTTY
	d = fakeDevice(t, f, Config{Timeout: 10 * time.Second, TimeoutExplicit: true})
	_, err = d.Arm()
	if !errors.Is(err, ErrNotWatchdog) {
		t.Errorf("Arm of a character device without the watchdog ioctls: %v, want ErrNotWatchdog even with an explicit timeout", err)
	}
	if _, open, _ := f.state(); open {
		t.Error("left open after refusal")
	}
	for _, w := range f.writes {
		if bytes.IndexByte(w, 'V') >= 0 {
			t.Errorf("wrote %q to a character device that is not a watchdog", w)
		}
	}
}

func TestDeviceKeepaliveFallsBackToWrite(t *testing.T) {
	f := newFake("odd_wdt", fullOptions, 30)
	f.keepaliveErr = unix.EINVAL
	d := fakeDevice(t, f, Config{Timeout: 10 * time.Second})
	if _, err := d.Arm(); err != nil {
		t.Fatal(err)
	}
	if err := d.Feed(); err != nil {
		t.Fatal(err)
	}
	if len(f.writes) != 2 {
		t.Errorf("writes %q, want the arm feed and one feed as writes", f.writes)
	}
	f.keepaliveErr = unix.EIO
	if err := d.Feed(); !errors.Is(err, unix.EIO) {
		t.Errorf("Feed with a failing driver: %v, want EIO", err)
	}
}

func TestNewValidates(t *testing.T) {
	f := newFake("iTCO_wdt", fullOptions, 30)
	if _, err := newDevice(Config{Path: "/dev/x"}, f); err == nil {
		t.Error("zero timeout accepted")
	}
	if _, err := newDevice(Config{Timeout: time.Second}, f); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := New(Config{Path: "/dev/x", AllowNone: true, Timeout: time.Second}); err == nil {
		t.Error("both a path and AllowNone accepted")
	}
}

func TestNowayoutFromSysfs(t *testing.T) {
	root := t.TempDir()
	write := func(rel, v string) {
		p := root + "/" + rel
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := realSystem{sysfs: root}
	if nw, known := s.nowayout(unix.Mkdev(250, 0)); nw || known {
		t.Errorf("no sysfs entry: %v %v, want unknown", nw, known)
	}
	write("dev/char/250:0/nowayout", "1\n")
	if nw, known := s.nowayout(unix.Mkdev(250, 0)); !nw || !known {
		t.Errorf("watchdog0 nowayout 1: %v %v", nw, known)
	}
	// The legacy /dev/watchdog (10:130) is watchdog0.
	write("class/watchdog/watchdog0/nowayout", "0\n")
	if nw, known := s.nowayout(unix.Mkdev(10, 130)); nw || !known {
		t.Errorf("legacy device, nowayout 0: %v %v", nw, known)
	}
}

// A watchdog handed from one image of the daemon to the next (a re-exec)
// is never closed: Handoff gives up the descriptor without a close, Adopt
// takes it with the settings learnt at Arm and feeds it at once; the
// magic close of the new owner still works.
func TestDeviceHandoffAdopt(t *testing.T) {
	f := newFake("iTCO_wdt", fullOptions, 60)
	old := fakeDevice(t, f, Config{Path: "/dev/watchdog0", Timeout: 10 * time.Second})
	if _, err := old.Arm(); err != nil {
		t.Fatal(err)
	}
	h, err := old.Handoff()
	if err != nil {
		t.Fatal(err)
	}
	if running, open, _ := f.state(); !running || !open || f.closes != 0 {
		t.Fatalf("after Handoff: running %v open %v closes %d, want it open and counting", running, open, f.closes)
	}
	if err := old.Feed(); !errors.Is(err, ErrNotArmed) {
		t.Errorf("Feed after Handoff: %v, want ErrNotArmed", err)
	}
	if err := fakeDevice(t, f, Config{Path: "/dev/watchdog1", Timeout: 10 * time.Second}).Adopt(h); err == nil {
		t.Error("a watchdog of another path adopted")
	}
	kBefore := f.keepalives
	nd := fakeDevice(t, f, Config{Path: "/dev/watchdog0", Timeout: 10 * time.Second})
	if err := nd.Adopt(h); err != nil {
		t.Fatal(err)
	}
	if f.keepalives != kBefore+1 {
		t.Errorf("Adopt fed %d times, want once at once", f.keepalives-kBefore)
	}
	if i := nd.Describe(); !i.Armed || i.Effective != h.Info.Effective || i.Quirk == "" {
		t.Errorf("adopted: %+v; want armed with the effective time and quirk learnt at Arm (%v)", i, h.Info.Effective)
	}
	if err := nd.Disarm(); err != nil {
		t.Fatal(err)
	}
	if running, open, _ := f.state(); running || open {
		t.Errorf("after the new owner's Disarm: running %v open %v", running, open)
	}
}
