package lab_test

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/internal/lab"
)

// SIGHUP reloads [log] from the configuration file and says which other
// changed key needs a restart; it does not kill the daemon, fence, or
// change its slot. Every other signal an operator may send is ignored on
// purpose: the daemon renews on, its watchdog fed.
func TestSignalsReloadAndIgnore(t *testing.T) {
	p := newPool(t, lab.Options{Watchdog: true})
	hosts := startHosts(t, p, "s1", "s2")
	waitAllArmed(t, hosts...)
	h := hosts[0]
	before, err := h.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pid := h.DaemonPID()
	b, err := os.ReadFile(h.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), `level = "info"`, `level = "debug"`, 1)
	cfg = strings.Replace(cfg, "[fence]\n", "[fence]\nkill_timeout = \"3s\"\n", 1)
	if err := os.WriteFile(h.Config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.Log(), `"level":"debug"`) {
		t.Fatal("debug lines before the reload")
	}
	if err := h.SignalDaemon(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	err = lab.WaitUntil(context.Background(), 5*time.Second, 20*time.Millisecond, "a debug line after SIGHUP", func() (bool, error) {
		if h.Exited() {
			return false, os.ErrProcessDone
		}
		return strings.Contains(h.Log(), `"level":"debug"`), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if log := h.Log(); !strings.Contains(log, "needs a restart: [fence] kill_timeout") || !strings.Contains(log, `"applied":["[log] level"]`) {
		t.Fatalf("the reload did not say what it applied and what needs a restart:\n%s", lastLines(log, "", 20))
	}
	for _, sig := range []syscall.Signal{syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGQUIT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGALRM, syscall.SIGXFSZ} {
		if err := h.SignalDaemon(sig); err != nil {
			t.Fatal(err)
		}
	}
	// Renewals go on for longer than renewal_fail (fast profile: 1.5 s)
	// after the signals, as s2 reads them: a stopped daemon would have
	// fenced or been reset by then.
	seq0 := seqSeen(t, hosts[1], "s1")
	err = lab.WaitUntil(context.Background(), 10*time.Second, 50*time.Millisecond, "s1 renewing for 3 s after the signals", func() (bool, error) {
		return seqSeen(t, hosts[1], "s1") >= seq0+12, nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, lastLines(h.Log(), "", 20))
	}
	after, err := h.Status(context.Background())
	if err != nil {
		t.Fatalf("status after the signals: %v\n%s", err, lastLines(h.Log(), "", 20))
	}
	if h.Exited() || h.DaemonPID() != pid || after.PID != pid {
		t.Fatalf("daemon pid %d → %d (exited %v)", pid, after.PID, h.Exited())
	}
	if after.Generation != before.Generation || after.Slot != before.Slot || after.Fence == nil || after.Fence.State != fence.Healthy || len(h.Resets()) > 0 {
		t.Fatalf("after the signals: slot %d gen %d fence %+v resets %v; before: slot %d gen %d", after.Slot, after.Generation, after.Fence, h.Resets(), before.Slot, before.Generation)
	}
	if s, _, _, err := hosts[1].PeerState(context.Background(), "s1"); err != nil || s.String() != "live" {
		t.Fatalf("s2 sees s1 %v (%v)", s, err)
	}
}

// seqSeen is the sequence of peer's slot as observer last read it.
func seqSeen(t *testing.T, observer *lab.Host, peer string) uint64 {
	t.Helper()
	st, err := observer.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.Hosts {
		if h.Name == peer {
			return h.Sequence
		}
	}
	t.Fatalf("%s does not see %s", observer.Name, peer)
	return 0
}
