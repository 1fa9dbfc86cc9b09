package lab_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	fencer "github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/lab"
)

// Storage faults through hbfence-faultfs, one mount per host, with every
// host under the watchdog stand-in. Fast profile: interval 250ms,
// io_timeout 1s, renewal_fail 3s, watchdog 2s, host_dead 6s.

var (
	faultfsOnce sync.Once
	faultfsErr  error
)

// faultPool returns a pool of hosts under hbfence-wdsim, each on its own
// faultfs mount, or skips the test if this machine cannot mount FUSE.
func faultPool(t *testing.T, names ...string) (*lab.Pool, []*lab.Host) {
	t.Helper()
	return faultPoolWith(t, lab.Options{}, names...)
}

// faultPoolWith is faultPool with options o (its Dir, InitArgs); it sets
// Watchdog and FaultFS.
func faultPoolWith(t *testing.T, o lab.Options, names ...string) (*lab.Pool, []*lab.Host) {
	t.Helper()
	if err := lab.FaultFSAvailable(); err != nil {
		t.Skip("SKIP: " + err.Error())
	}
	faultfsOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", lab.FaultFSBinary(binary), "github.com/hbfence/hbfence/cmd/hbfence-faultfs").CombinedOutput()
		if err != nil {
			faultfsErr = fmt.Errorf("building hbfence-faultfs: %v\n%s", err, out)
		}
	})
	if faultfsErr != nil {
		t.Fatal(faultfsErr)
	}
	var p *lab.Pool
	// Runs after the pool's own cleanup (cleanups run last first): no
	// mount and no process may be left behind.
	t.Cleanup(func() {
		if p == nil {
			return
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, h := range p.Hosts() {
			if m := h.Mountpoint(); m != "" && strings.Contains(string(mi), " "+m+" ") {
				t.Errorf("%s's faultfs mount %s is still mounted after Close", h.Name, m)
			}
			if pid := h.PID(); pid != 0 && !h.Exited() {
				t.Errorf("%s (pid %d) still runs after Close", h.Name, pid)
			}
		}
	})
	o.Watchdog, o.FaultFS = true, true
	p = newPool(t, o)
	hosts := startHosts(t, p, names...)
	for _, h := range hosts {
		if !strings.HasPrefix(h.Mountpoint(), filepath.Dir(h.Config)) {
			t.Fatalf("%s has no faultfs mount of its own: %q", h.Name, h.Mountpoint())
		}
	}
	return p, hosts
}

func waitArmed(t *testing.T, h *lab.Host) {
	t.Helper()
	err := lab.WaitUntil(context.Background(), 10*time.Second, 20*time.Millisecond, h.Name+"'s watchdog armed", func() (bool, error) {
		st, err := h.Status(context.Background())
		if err != nil {
			return false, err
		}
		if st.Watchdog.Backend != "fifo" || st.Watchdog.Unsafe {
			return false, fmt.Errorf("%s's watchdog is %+v, want the FIFO stand-in", h.Name, st.Watchdog)
		}
		return st.Watchdog.Armed && st.Fence != nil && st.Fence.State == fencer.Healthy, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func generationSeen(t *testing.T, observer *lab.Host, peer string) uint64 {
	t.Helper()
	st, err := observer.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.Hosts {
		if h.Name == peer {
			return h.Generation
		}
	}
	t.Fatalf("%s does not see %s", observer.Name, peer)
	return 0
}

// storageFault runs one storage failure of victim: the fault is set, the
// victim must run its kill_guests hook about renewal_fail after its last
// renewal and before any observer declares it dead; then, if the hook
// confirms, its watchdog is disarmed, nothing is reset and, the storage
// restored right after, it rejoins as a new generation without ever being
// seen dead; if the hook fails, the
// watchdog stand-in resets it before any observer declares it dead.
func storageFault(t *testing.T, p *lab.Pool, victim *lab.Host, observers []*lab.Host, kind string, set func() error, hookFails bool) {
	ctx := context.Background()
	tm := p.Timing
	if err := victim.SetHookFails(hookFails); err != nil {
		t.Fatal(err)
	}
	waitArmed(t, victim)
	oldGen := generationSeen(t, observers[0], victim.Name)
	runsBefore := len(victim.HookRuns())
	disarmsBefore := len(victim.WatchdogEvents("disarmed"))
	lastRenewal, err := victim.LastRenewal(ctx)
	if err != nil || lastRenewal.IsZero() {
		t.Fatalf("%s's last renewal: %v %v", victim.Name, lastRenewal, err)
	}
	cut := time.Now()
	if err := set(); err != nil {
		t.Fatal(err)
	}
	// Until the hook runs: follow the victim's last renewal (a renewal
	// in flight when the fault was set may still have succeeded), and
	// no observer may see it dead.
	err = waitStrict(ctx, tm.RenewalFail+3*time.Second, 10*time.Millisecond, victim.Name+" runs its kill_guests hook", func() (bool, error) {
		if len(victim.HookRuns()) > runsBefore {
			return true, nil
		}
		if lr, err := victim.LastRenewal(ctx); err == nil && lr.After(lastRenewal.Add(time.Millisecond)) {
			lastRenewal = lr
		}
		for _, o := range observers {
			if s, _, _, err := o.PeerState(ctx, victim.Name); err == nil && s == liveness.Dead {
				return false, fmt.Errorf("%s declared %s dead before its hook ran", o.Name, victim.Name)
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("%s: %v\nlog:\n%s", kind, err, lastLog(victim, 10))
	}
	run := victim.HookRuns()[runsBefore]
	if run.Confirmed == hookFails {
		t.Fatalf("hook run %+v, want confirmed=%v", run, !hookFails)
	}
	sinceRenewal := run.At.Sub(lastRenewal)
	// The fencer fences at the first tick at or after last renewal +
	// renewal_fail; ticks come every feed period (≤ interval). The hook
	// needs a fork and exec on top. lastRenewal is estimated no later
	// than the truth (the status call's latency makes it earlier), so the
	// lower bound is strict.
	if sinceRenewal < tm.RenewalFail-5*time.Millisecond || sinceRenewal > tm.RenewalFail+tm.Interval+time.Second {
		t.Errorf("%s: hook ran %v after the last renewal, want renewal_fail %v (+ up to a feed period and the hook's start)", kind, sinceRenewal, tm.RenewalFail)
	}
	if !strings.Contains(run.Reason, "renew") {
		t.Errorf("%s: hook's HBFENCE_REASON %q does not say renewals failed", kind, run.Reason)
	}

	if !hookFails {
		// The storage comes back soon after the fence (within
		// renewal_fail: a fenced daemon whose storage stays unreadable
		// longer gives up joining and exits).
		err := lab.WaitUntil(ctx, 5*time.Second, 20*time.Millisecond, victim.Name+"'s watchdog disarmed", func() (bool, error) {
			return len(victim.WatchdogEvents("disarmed")) > disarmsBefore, nil
		})
		if err != nil {
			t.Fatalf("%s: %v\nwatchdog log:\n%s", kind, err, readFile(victim.WatchdogLog))
		}
		if r := victim.Resets(); len(r) != 0 || victim.Exited() {
			t.Fatalf("%s: %s was reset (%d records) or exited (%v) although its hook confirmed", kind, victim.Name, len(r), victim.Exited())
		}
		restored := time.Now()
		if err := victim.RestoreStorage(); err != nil {
			t.Fatal(err)
		}
		err = waitStrict(ctx, 30*time.Second, 20*time.Millisecond, victim.Name+" live again in a new generation", func() (bool, error) {
			if victim.Exited() {
				return false, errors.New(victim.Name + " exited")
			}
			for _, o := range observers {
				s, _, st, err := o.PeerState(ctx, victim.Name)
				if err == nil && s == liveness.Dead {
					return false, fmt.Errorf("%s declared %s dead", o.Name, victim.Name)
				}
				if err != nil || s != liveness.Live {
					return false, nil
				}
				for _, h := range st.Hosts {
					if h.Name == victim.Name && h.Generation <= oldGen {
						return false, nil
					}
				}
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("%s: %v\nlog:\n%s", kind, err, lastLog(victim, 10))
		}
		if r := victim.Resets(); len(r) != 0 {
			t.Fatalf("%s: %s was reset after rejoining", kind, victim.Name)
		}
		t.Logf("%s, hook confirms: cut → hook %v (last renewal → hook %v, renewal_fail %v); restored %v after the hook → live again (generation %d → %d, never seen dead) %v later",
			kind, run.At.Sub(cut).Round(time.Millisecond), sinceRenewal.Round(time.Millisecond), tm.RenewalFail, restored.Sub(run.At).Round(time.Millisecond),
			oldGen, generationSeen(t, observers[0], victim.Name), time.Since(restored).Round(time.Millisecond))
		return
	}

	firstDead := time.Time{}
	for _, o := range observers {
		d := waitState(t, o, victim.Name, liveness.Dead, 3*hostDead)
		if firstDead.IsZero() || d.Before(firstDead) {
			firstDead = d
		}
	}
	hookMargin := firstDead.Sub(run.At)
	if hookMargin <= 0 {
		t.Errorf("%s: the first observer declared %s dead %v before its hook ran", kind, victim.Name, -hookMargin)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*hostDead)
	defer cancel()
	exitErr, err := victim.Wait(wctx)
	if err != nil {
		t.Fatalf("%s: %v\nwatchdog log:\n%s", kind, err, readFile(victim.WatchdogLog))
	}
	if ee, ok := exitErr.(*exec.ExitError); !ok || ee.ExitCode() != 99 {
		t.Fatalf("%s: the watchdog stand-in exited with %v, want 99 (reset)\nlog:\n%s", kind, exitErr, lastLog(victim, 10))
	}
	resets := victim.Resets()
	if len(resets) != 1 {
		t.Fatalf("%s: %d reset records, want 1", kind, len(resets))
	}
	reset := lab.MonoTime(resets[0].MonoNS)
	margin := firstDead.Sub(reset)
	if margin <= 0 {
		t.Errorf("%s: %s was declared dead %v before its watchdog reset it", kind, victim.Name, -margin)
	}
	if reset.Before(run.At) {
		t.Errorf("%s: reset %v before the hook ran", kind, run.At.Sub(reset))
	}
	t.Logf("%s, hook fails: cut → hook %v (last renewal → hook %v, renewal_fail %v); last renewal → reset %v (renewal_fail + watchdog %v); reset → first dead %v (host_dead %v); hook → first dead %v",
		kind, run.At.Sub(cut).Round(time.Millisecond), sinceRenewal.Round(time.Millisecond), tm.RenewalFail,
		reset.Sub(lastRenewal).Round(time.Millisecond), tm.RenewalFail+tm.Watchdog, margin.Round(time.Millisecond), tm.HostDead, hookMargin.Round(time.Millisecond))
	if err := victim.RestoreStorage(); err != nil {
		t.Fatal(err)
	}
}

// A host whose storage fails with EIO kills its guests in time; with the
// guests confirmed gone it lives on and rejoins when the storage returns,
// without them its watchdog resets it; both before anyone declares it
// dead.
func TestStorageEIOFencesHost(t *testing.T) {
	t.Parallel()
	p, hosts := faultPool(t, "e1", "e2", "e3")
	a, b, c := hosts[0], hosts[1], hosts[2]
	storageFault(t, p, b, []*lab.Host{a, c}, "EIO", b.CutStorage, false)
	storageFault(t, p, c, []*lab.Host{a, b}, "EIO", c.CutStorage, true)
}

// The same with storage that hangs: I/O blocks and never returns; the
// io_timeout bound makes the renewals fail.
func TestStorageHangFencesHost(t *testing.T) {
	t.Parallel()
	p, hosts := faultPool(t, "g1", "g2", "g3")
	a, b, c := hosts[0], hosts[1], hosts[2]
	storageFault(t, p, b, []*lab.Host{a, c}, "hang", b.HangStorage, false)
	storageFault(t, p, c, []*lab.Host{a, b}, "hang", c.HangStorage, true)
}

// Stalls shorter than renewal_fail — all I/O hung, or one operation slowed,
// for 0.8 × renewal_fail, several times — never fence the host: its hook
// never runs, it is not reset, it stays in the same generation, and no
// observer sees it dead.
func TestShortStallsNeverFence(t *testing.T) {
	t.Parallel()
	p, hosts := faultPool(t, "s1", "s2", "s3")
	a, b, c := hosts[0], hosts[1], hosts[2]
	ctx := context.Background()
	waitArmed(t, b)
	gen := generationSeen(t, a, b.Name)
	stall := p.Timing.RenewalFail * 8 / 10
	for i := 0; i < 3; i++ {
		for _, kind := range []string{"hang", "latency"} {
			// Start each stall from a fresh renewal, not one already
			// stalled: wait until b renews again.
			if err := lab.WaitUntil(ctx, 5*time.Second, 10*time.Millisecond, b.Name+" renews again", func() (bool, error) {
				lr, err := b.LastRenewal(ctx)
				return err == nil && time.Since(lr) < p.Timing.Interval, err
			}); err != nil {
				t.Fatal(err)
			}
			worst, err := stallOnce(ctx, b, []*lab.Host{a, c}, kind, stall)
			if err != nil {
				t.Fatalf("stall %d (%s): %v\nlog:\n%s", i+1, kind, err, lastLog(b, 10))
			}
			t.Logf("stall %d: %s for %v (0.8 × renewal_fail): worst renewal gap %v", i+1, kind, stall, worst.Round(time.Millisecond))
		}
	}
	if runs := b.HookRuns(); len(runs) != 0 {
		t.Fatalf("%s's kill_guests hook ran: %+v", b.Name, runs)
	}
	if r := b.Resets(); len(r) != 0 || b.Exited() {
		t.Fatalf("%s was reset (%d records) or exited (%v)", b.Name, len(r), b.Exited())
	}
	if g := generationSeen(t, a, b.Name); g != gen {
		t.Fatalf("%s's generation went from %d to %d: it fenced and rejoined", b.Name, gen, g)
	}
	st, err := b.Status(ctx)
	if err != nil || st.Fence == nil || st.Fence.State != fencer.Healthy || !st.Watchdog.Armed {
		t.Fatalf("%s's fence state after the stalls: %+v (%v)", b.Name, st.Fence, err)
	}
}

// stallOnce stalls h's storage for d — "hang": every operation blocks
// for d; "latency": the next operation takes d — then restores it and
// waits until h renews. It fails if h fences or an observer sees it dead,
// and returns the largest gap between renewals it saw.
func stallOnce(ctx context.Context, h *lab.Host, observers []*lab.Host, kind string, d time.Duration) (time.Duration, error) {
	runs := len(h.HookRuns())
	before, err := h.StorageStatus()
	if err != nil {
		return 0, err
	}
	last, err := h.LastRenewal(ctx)
	if err != nil {
		return 0, err
	}
	var worst time.Duration
	check := func() error {
		if len(h.HookRuns()) > runs {
			return fmt.Errorf("%s ran its kill_guests hook", h.Name)
		}
		if h.Exited() {
			return fmt.Errorf("%s exited", h.Name)
		}
		if lr, err := h.LastRenewal(ctx); err == nil && lr.After(last.Add(time.Millisecond)) {
			worst = max(worst, lr.Sub(last))
			last = lr
		}
		for _, o := range observers {
			if s, _, _, err := o.PeerState(ctx, h.Name); err == nil && s == liveness.Dead {
				return fmt.Errorf("%s declared %s dead", o.Name, h.Name)
			}
		}
		return nil
	}
	start := time.Now()
	switch kind {
	case "hang":
		err = h.HangStorage()
	case "latency":
		err = h.SlowStorage(d)
	}
	if err != nil {
		return 0, err
	}
	if kind == "latency" {
		// Slow the next operation only: restore as soon as one has
		// entered the file system (it keeps its delay).
		err = lab.WaitUntil(ctx, 2*time.Second, time.Millisecond, "an operation delayed", func() (bool, error) {
			st, err := h.StorageStatus()
			return err == nil && st.Stats.Reads+st.Stats.Writes > before.Stats.Reads+before.Stats.Writes, err
		})
		if rerr := h.RestoreStorage(); err == nil {
			err = rerr
		}
		if err != nil {
			return 0, err
		}
	}
	// The stall itself: d of blocked I/O, watched throughout.
	err = waitStrict(ctx, d+time.Second, 10*time.Millisecond, "stall", func() (bool, error) {
		if err := check(); err != nil {
			return false, err
		}
		return time.Since(start) >= d, nil
	})
	if err != nil {
		return 0, err
	}
	if err := h.RestoreStorage(); err != nil {
		return 0, err
	}
	// After it: h renews again, and stays unfenced past the deadline the
	// stall would have broken.
	err = waitStrict(ctx, 5*time.Second, 10*time.Millisecond, h.Name+" renewed after the stall", func() (bool, error) {
		if err := check(); err != nil {
			return false, err
		}
		return last.After(start) && time.Since(start) > d+time.Second, nil
	})
	return worst, err
}

// waitStrict is lab.WaitUntil that stops at the first error cond
// returns (WaitUntil retries through errors).
func waitStrict(ctx context.Context, timeout, poll time.Duration, what string, cond func() (bool, error)) error {
	var bad error
	err := lab.WaitUntil(ctx, timeout, poll, what, func() (bool, error) {
		ok, err := cond()
		if err != nil {
			bad = err
			return true, nil
		}
		return ok, nil
	})
	if bad != nil {
		return bad
	}
	return err
}

func lastLog(h *lab.Host, n int) string {
	lines := strings.Split(strings.TrimRight(h.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
