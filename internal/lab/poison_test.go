package lab_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/internal/lab"
)

func poison(t *testing.T, p *lab.Pool, from *lab.Host, target, action string) (daemon.FenceResult, error) {
	t.Helper()
	out, err := p.Run(context.Background(), "fence", "--json", "--config", from.Config, "--action", action, target)
	var res daemon.FenceResult
	// The JSON result, then (on failure) the error line on stderr.
	if jerr := json.NewDecoder(strings.NewReader(out)).Decode(&res); jerr != nil {
		return res, errors.New(strings.TrimSpace(out))
	}
	return res, err
}

// masterFirst waits until one of hosts acts as master and returns it
// first, then the others: only the master orders fences.
func masterFirst(t *testing.T, hosts []*lab.Host) []*lab.Host {
	t.Helper()
	m, _ := waitActing(t, hosts, 0, 2*hostDead)
	return append([]*lab.Host{m}, others(hosts, m)...)
}

func waitExit(t *testing.T, h *lab.Host, within time.Duration) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	exitErr, err := h.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return exitErr
}

func waitAllArmed(t *testing.T, hosts ...*lab.Host) {
	t.Helper()
	for _, h := range hosts {
		if err := h.WaitArmed(context.Background(), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// A poison pill with action reset: the target acknowledges from its own
// slot, stops feeding its watchdog and is reset; the others declare it
// dead only after that.
func TestPoisonPillReset(t *testing.T) {
	p := newPool(t, lab.Options{Watchdog: true})
	hosts := masterFirst(t, startHosts(t, p, "p1", "p2", "p3"))
	a, b := hosts[0], hosts[1]
	waitAllArmed(t, hosts...)
	sent := time.Now()
	res, err := poison(t, p, a, b.Name, "reset")
	if err != nil || !res.Acked {
		t.Fatalf("fence: %+v, %v", res, err)
	}
	t.Logf("acknowledged after %.3fs: %s", res.AckSeconds, res.Message)
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.Hosts {
		if h.Name == b.Name && (h.Fenced || !strings.Contains(h.FencedHow, "poison pill acknowledged")) {
			t.Errorf("right after the ack, %s's status shows fenced %v, how %q", b.Name, h.Fenced, h.FencedHow)
		}
	}
	exitErr := waitExit(t, b, 3*hostDead)
	var ee *exec.ExitError
	if !errors.As(exitErr, &ee) || ee.ExitCode() != 99 {
		t.Fatalf("%s's watchdog stand-in exited with %v, want 99 (reset)", b.Name, exitErr)
	}
	resets := b.Resets()
	if len(resets) != 1 {
		t.Fatalf("%d resets", len(resets))
	}
	dead := waitState(t, a, b.Name, liveness.Dead, 3*hostDead)
	reset := lab.MonoTime(resets[0].MonoNS)
	t.Logf("pill → reset %v, → dead %v", reset.Sub(sent), dead.Sub(sent))
	if !reset.Before(dead) {
		t.Errorf("%s declared dead %v before its reset", b.Name, reset.Sub(dead))
	}
	st, err = a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.Hosts {
		if h.Name == b.Name && (!h.Fenced || !strings.Contains(h.FencedHow, "declared dead")) {
			t.Errorf("once dead, %s's status shows fenced %v, how %q", b.Name, h.Fenced, h.FencedHow)
		}
	}
	if !strings.Contains(b.Log(), "poison pill received") {
		t.Errorf("%s's log does not show the pill", b.Name)
	}
}

// A poison pill with action off: the target kills its guests, disarms its
// watchdog (no reset) and its daemon stops, out of the pool.
func TestPoisonPillOff(t *testing.T) {
	p := newPool(t, lab.Options{Watchdog: true})
	hosts := masterFirst(t, startHosts(t, p, "q1", "q2"))
	a, b := hosts[0], hosts[1]
	waitAllArmed(t, hosts...)
	res, err := poison(t, p, a, b.Name, "off")
	if err != nil || !res.Acked {
		t.Fatalf("fence: %+v, %v", res, err)
	}
	if exitErr := waitExit(t, b, 3*hostDead); exitErr != nil {
		t.Fatalf("%s exited with %v, want 0 (fenced off, watchdog disarmed)", b.Name, exitErr)
	}
	if r := b.Resets(); len(r) != 0 {
		t.Errorf("%s was reset %d times; action off must not reset", b.Name, len(r))
	}
	if !strings.Contains(b.Log(), "fenced off by a poison pill") {
		t.Errorf("%s's log does not say it was fenced off:\n%s", b.Name, b.Log())
	}
}

// A poison pill to a host that is not reading the storage is not
// acknowledged, and the command says the host is treated as dead only
// after host_dead.
func TestPoisonPillUnacknowledged(t *testing.T) {
	p := newPool(t, lab.Options{Watchdog: true})
	hosts := masterFirst(t, startHosts(t, p, "r1", "r2", "r3"))
	a, b, c := hosts[0], hosts[1], hosts[2]
	waitAllArmed(t, hosts...)
	if err := b.Freeze(); err != nil {
		t.Fatal(err)
	}
	res, err := poison(t, p, a, b.Name, "reset")
	if err == nil || res.Acked {
		t.Fatalf("a frozen host acknowledged: %+v", res)
	}
	if !strings.Contains(res.Message, "treated as dead after host_dead") || !strings.Contains(res.Message, "never earlier") {
		t.Errorf("message %q", res.Message)
	}
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Messages) != 1 || st.Messages[0].AckedAfterSeconds != -1 || st.Messages[0].TargetName != b.Name {
		t.Errorf("status shows messages %+v, want one unacknowledged pill to %s", st.Messages, b.Name)
	}
	// Refusals: fencing oneself, a host that is not there.
	if _, err := poison(t, p, a, a.Name, "reset"); err == nil || !strings.Contains(err.Error(), "is this host") {
		t.Errorf("self-fence: %v", err)
	}
	if _, err := poison(t, p, a, "nosuch", "reset"); err == nil || !strings.Contains(err.Error(), `no host "nosuch"`) {
		t.Errorf("unknown host: %v", err)
	}
	// Only the master orders a fence.
	if _, err := poison(t, p, c, a.Name, "reset"); err == nil || !strings.Contains(err.Error(), "only the pool master orders a fence") ||
		!strings.Contains(err.Error(), a.Name+" is (epoch") {
		t.Errorf("pill from a host that is not master: %v", err)
	}
}
