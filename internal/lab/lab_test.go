package lab_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/lab"
)

// binary is the hbfence binary built once for all tests (with the race
// detector when the tests run with it).
var binary string

func TestMain(m *testing.M) {
	// This test binary is also the guest program of the guest tests.
	if len(os.Args) == 3 && os.Args[1] == "-guest-disk" {
		os.Exit(lab.RunGuestDisk(os.Args[2]))
	}
	dir, err := os.MkdirTemp("", "hbfence-lab-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "hbfence")
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "github.com/hbfence/hbfence/cmd/hbfence", "github.com/hbfence/hbfence/cmd/hbfence-wdsim")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building hbfence: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fast profile figures, as in heartbeat/timing.
const (
	interval = 250 * time.Millisecond
	hostDead = 6 * time.Second
)

func newPool(t *testing.T, o lab.Options) *lab.Pool {
	t.Helper()
	if o.Binary == "" {
		o.Binary = binary
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.InitArgs == nil {
		o.InitArgs = []string{"--profile", "fast", "--slots", "16"}
	}
	p, err := lab.NewPool(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		if t.Failed() {
			for _, h := range p.Hosts() {
				t.Logf("log of %s:\n%s", h.Name, h.Log())
			}
		}
	})
	return p
}

func startHosts(t *testing.T, p *lab.Pool, names ...string) []*lab.Host {
	t.Helper()
	var hosts []*lab.Host
	for _, n := range names {
		h, err := p.AddHost(n, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	if err := p.WaitJoined(context.Background(), 60*time.Second, hosts...); err != nil {
		t.Fatal(err)
	}
	return hosts
}

// waitState waits until observer sees peer in state want, and returns
// when (on this process's clock) the observer entered it.
func waitState(t *testing.T, observer *lab.Host, peer string, want liveness.State, timeout time.Duration) time.Time {
	t.Helper()
	var at time.Time
	err := lab.WaitUntil(context.Background(), timeout, 20*time.Millisecond, fmt.Sprintf("%s sees %s %v", observer.Name, peer, want), func() (bool, error) {
		s, since, _, err := observer.PeerState(context.Background(), peer)
		if err != nil {
			return false, err
		}
		at = since
		return s == want, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func slotsOf(t *testing.T, hosts []*lab.Host) map[int]string {
	t.Helper()
	slots := map[int]string{}
	for _, h := range hosts {
		st, err := h.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := slots[st.Slot]; dup {
			t.Fatalf("%s and %s both hold slot %d", h.Name, other, st.Slot)
		}
		slots[st.Slot] = h.Name
	}
	return slots
}

// exercise runs the heartbeat story on a pool: clean leave, kill -9
// detection, rejoin as a new generation, duplicate-name refusal.
func exercise(t *testing.T, p *lab.Pool, hosts []*lab.Host) {
	ctx := context.Background()
	a, b, c := hosts[0], hosts[1], hosts[2]

	// Clean leave: c writes "left"; a sees it long before host_dead.
	stopped := time.Now()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("%s did not stop cleanly: %v", c.Name, err)
	}
	if left := waitState(t, a, c.Name, liveness.Left, hostDead/2); left.Sub(stopped) > hostDead/2 {
		t.Errorf("left seen %v after SIGTERM", left.Sub(stopped))
	}

	// Power loss: b is killed; a sees it suspect, then dead, and not
	// before host_dead of silence (minus the interval between b's last
	// write and the kill).
	st, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var oldGen uint64
	for _, h := range st.Hosts {
		if h.Name == b.Name {
			oldGen = h.Generation
		}
	}
	killed := time.Now()
	if err := b.Kill(); err != nil {
		t.Fatal(err)
	}
	suspect := waitState(t, a, b.Name, liveness.Suspect, 3*hostDead)
	dead := waitState(t, a, b.Name, liveness.Dead, 3*hostDead)
	if d := dead.Sub(killed); d < hostDead-interval-50*time.Millisecond {
		t.Errorf("%s declared dead %v after the kill, before host_dead %v less one interval", b.Name, d, hostDead)
	}
	if suspect.After(dead) {
		t.Errorf("suspect at %v after dead at %v", suspect, dead)
	}
	t.Logf("kill -9 detected: suspect after %v, dead after %v (host_dead %v)", suspect.Sub(killed), dead.Sub(killed), hostDead)

	// Restart b: same machine id, so a new incarnation of it.
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	err = lab.WaitUntil(ctx, 30*time.Second, 20*time.Millisecond, "b live again in a new generation", func() (bool, error) {
		st, err := a.Status(ctx)
		if err != nil {
			return false, err
		}
		for _, h := range st.Hosts {
			if h.Name == b.Name && h.State == liveness.Live && h.Generation == oldGen+1 {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Duplicate name from another machine: refused, naming a's slot.
	imp, err := p.AddHost(a.Name, "-impostor")
	if err != nil {
		t.Fatal(err)
	}
	if err := imp.Start(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*hostDead)
	defer cancel()
	exitErr, err := imp.Wait(wctx)
	if err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if !errors.As(exitErr, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("impostor exited with %v, want a non-zero status", exitErr)
	}
	ast, err := a.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("in use by a live host: slot %d", ast.Slot)
	if !strings.Contains(imp.Log(), want) {
		t.Errorf("impostor's log does not say %q:\n%s", want, imp.Log())
	}

	// The area read without a daemon agrees.
	out, err := p.Run(ctx, "dump", "--json", "--offset", fmt.Sprint(p.Offset), p.Area)
	if err != nil {
		t.Fatalf("dump: %v\n%s", err, out)
	}
	var dump struct {
		Slots []struct {
			Slot       int    `json:"slot"`
			HostName   string `json:"host_name"`
			State      string `json:"state"`
			Generation uint64 `json:"generation"`
			Checksum   string `json:"checksum"`
		} `json:"slots"`
	}
	if err := json.Unmarshal([]byte(out), &dump); err != nil {
		t.Fatalf("dump --json: %v\n%s", err, out)
	}
	states := map[string]string{}
	for _, s := range dump.Slots {
		if s.Checksum != "ok" {
			t.Errorf("slot %d checksum %s", s.Slot, s.Checksum)
		}
		states[s.HostName] = s.State
	}
	if states[a.Name] != "live" || states[b.Name] != "live" || states[c.Name] != "left" {
		t.Errorf("dump shows states %v, want %s live, %s live, %s left", states, a.Name, b.Name, c.Name)
	}
}

func TestPoolOnFile(t *testing.T) {
	p := newPool(t, lab.Options{})
	hosts := startHosts(t, p, "node1", "node2", "node3")
	if got := slotsOf(t, hosts); len(got) != 3 {
		t.Fatalf("slots %v", got)
	}
	exercise(t, p, hosts)
}

// Six hosts started at the same instant race for the same free slots:
// each ends in a slot of its own.
func TestConcurrentJoinOnFile(t *testing.T) {
	p := newPool(t, lab.Options{})
	names := []string{"h1", "h2", "h3", "h4", "h5", "h6"}
	hosts := startHosts(t, p, names...)
	if got := slotsOf(t, hosts); len(got) != len(names) {
		t.Fatalf("slots %v", got)
	}
}

// The OCFS2 case: the area is a region of a block device with 4096-byte
// logical sectors, at an offset; the bytes around it are untouched.
func TestPoolOnLoopDevice4096(t *testing.T) {
	dev := loopDevice(t, 4096, 64<<20)
	const offset = 1 << 20
	// Mark the bytes just before and after the area.
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	marker := []byte(strings.Repeat("OCFS2-DATA-", 400))[:4096]
	if _, err := f.WriteAt(marker, offset-4096); err != nil {
		t.Fatal(err)
	}
	f.Sync()

	p := newPool(t, lab.Options{Area: dev, Offset: offset})
	out, err := p.Run(context.Background(), "dump", "--json", "--offset", fmt.Sprint(offset), dev)
	if err != nil {
		t.Fatalf("dump: %v\n%s", err, out)
	}
	var dump struct {
		Header struct {
			SectorSize int `json:"sector_size"`
			AreaSize   int `json:"area_size"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(out), &dump); err != nil {
		t.Fatal(err)
	}
	if dump.Header.SectorSize != 4096 {
		t.Fatalf("sector size %d on a 4096-byte-sector device", dump.Header.SectorSize)
	}
	got := make([]byte, 4096)
	if _, err := f.ReadAt(got, offset-4096); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(marker) {
		t.Fatal("the bytes before the area's offset were changed by init")
	}
	f.Close()
	hosts := startHosts(t, p, "ovs1", "ovs2", "ovs3")
	exercise(t, p, hosts)
}

// loopDevice attaches a new sparse backing file of size bytes as a loop
// device with the given logical sector size, and detaches it at cleanup.
func loopDevice(t *testing.T, sector, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: loop devices need root; run the tests as root (CI does)")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("SKIP: losetup is not installed (apt-get install util-linux)")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("SKIP: no /dev/loop-control on this machine")
	}
	backing := filepath.Join(t.TempDir(), "shared-disk.img")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, int64(size)); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--sector-size", fmt.Sprint(sector), "--direct-io=on", "-f", "--show", backing).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// A host whose daemon freezes (SIGSTOP) stops feeding its watchdog; the
// watchdog stand-in resets the machine, and it does so before any other
// host declares it dead, by at least the pool's margin.
func TestWatchdogResetsFrozenHost(t *testing.T) {
	p := newPool(t, lab.Options{Watchdog: true})
	hosts := startHosts(t, p, "w1", "w2", "w3")
	a, b := hosts[0], hosts[1]
	if err := b.WaitArmed(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	if err := b.Freeze(); err != nil {
		t.Fatal(err)
	}
	dead := waitState(t, a, b.Name, liveness.Dead, 3*hostDead)
	wctx, cancel := context.WithTimeout(context.Background(), 3*hostDead)
	defer cancel()
	if exitErr, err := b.Wait(wctx); err != nil {
		wl, _ := os.ReadFile(b.WatchdogLog)
		t.Fatalf("%v; watchdog log:\n%s", err, wl)
	} else if ee, ok := exitErr.(*exec.ExitError); !ok || ee.ExitCode() != 99 {
		t.Fatalf("the watchdog stand-in exited with %v, want 99 (reset)", exitErr)
	}
	resets := b.Resets()
	if len(resets) != 1 {
		t.Fatalf("%d reset records, want 1:\n%s", len(resets), b.Log())
	}
	reset := lab.MonoTime(resets[0].MonoNS)
	margin := dead.Sub(reset)
	t.Logf("frozen → reset %v (watchdog %v), → dead %v; margin %v", reset.Sub(frozen), p.Timing.Watchdog, dead.Sub(frozen), margin)
	if margin <= 0 {
		t.Fatalf("b was declared dead %v before its watchdog reset it", -margin)
	}
	if s, _, _, err := a.PeerState(context.Background(), b.Name); err != nil || s != liveness.Dead {
		t.Fatalf("a sees b %v (%v)", s, err)
	}
}
