package lab_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
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
	// An upgrade while the file names another control socket is refused
	// before anything stops.
	if err := os.WriteFile(h.Config, []byte(strings.Replace(cfg, "hbfence.sock", "other.sock", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.SignalDaemon(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	err = lab.WaitUntil(context.Background(), 5*time.Second, 20*time.Millisecond, "the upgrade refused", func() (bool, error) {
		return strings.Contains(h.Log(), "upgrade refused, nothing changed") && strings.Contains(h.Log(), "[control] socket"), nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, lastLines(h.Log(), "", 10))
	}
	for _, sig := range []syscall.Signal{syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGQUIT, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGALRM, syscall.SIGXFSZ} {
		if err := h.SignalDaemon(sig); err != nil {
			t.Fatal(err)
		}
	}
	// Renewals go on for 3 s
	// after the signals, as s2 reads them (fast profile: renewal_fail 3 s,
	// watchdog 2 s): a stopped daemon would have
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

// installBinaries copies the test's hbfence and hbfence-wdsim into a
// directory of the test's own, as an RPM installs them: the upgrade test
// replaces that copy, not the binary the other tests run.
func installBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range []string{"hbfence", "hbfence-wdsim"} {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(binary), n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "hbfence")
}

// An upgrade as an RPM and an operator do it: the installed binary is
// replaced by a newly built one (a rename over the path), and SIGUSR1
// makes the running daemon re-execute it in place. The daemon is the
// master's host, running HA guests: every guest keeps its process (one
// writer on its disk, never interrupted), nothing is placed elsewhere, no
// fence and no reset, the daemon keeps its pid, its slot and its
// generation, and its slot now names the new version. Figures: guest
// interruptions, and the longest gap between two changes of its slot's
// sequence as another host reads them.
func TestUpgradeBySIGUSR1KeepsGuests(t *testing.T) {
	installed := installBinaries(t)
	const newVersion = "0.2.0-upgraded"
	args := []string{"build", "-ldflags", "-X main.version=" + newVersion, "-o", installed + ".rpmnew"}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "github.com/hbfence/hbfence/cmd/hbfence")...).CombinedOutput(); err != nil {
		t.Fatalf("building the new version: %v\n%s", err, out)
	}

	p := newPool(t, lab.Options{Watchdog: true, Guests: true, Binary: installed})
	hosts := startHosts(t, p, "u1", "u2", "u3")
	waitAllArmed(t, hosts...)
	m, _ := waitActing(t, hosts, 0, 2*hostDead)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var guests []lab.GuestSpec
	for _, n := range []string{"g1", "g2", "g3"} {
		guests = append(guests, lab.GuestSpec{Name: n, HA: true, Placement: "manual", Preferred: []string{m.Name}})
	}
	guests = append(guests, lab.GuestSpec{Name: "g4", HA: true})
	if err := p.AddGuests(context.Background(), m, self, guests...); err != nil {
		t.Fatal(err)
	}
	before := waitGuests(t, m, 10*time.Second, "every guest running", func(gs map[string]agent.GuestStatus) bool {
		for _, g := range guests {
			if gs[g.Name].State != restart.Running {
				return false
			}
		}
		return true
	})
	var observer *lab.Host
	for _, h := range hosts {
		if h != m {
			observer = h
			break
		}
	}
	stBefore, err := m.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pid := m.DaemonPID()

	// Watch m's slot from the observer, every 20 ms, from before the
	// upgrade to well after it.
	type seen struct {
		at  time.Time
		seq uint64
	}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan []seen, 1)
	go func() {
		var out []seen
		for watchCtx.Err() == nil {
			if st, err := observer.Status(watchCtx); err == nil {
				for _, h := range st.Hosts {
					if h.Name == m.Name && (len(out) == 0 || out[len(out)-1].seq != h.Sequence) {
						out = append(out, seen{time.Now(), h.Sequence})
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		watched <- out
	}()
	time.Sleep(4 * interval)

	// The package manager replaces the file: a rename over the path.
	if err := os.Rename(installed+".rpmnew", installed); err != nil {
		t.Fatal(err)
	}
	if err := m.SignalDaemon(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	err = lab.WaitUntil(context.Background(), 10*time.Second, 20*time.Millisecond, m.Name+" running the new version", func() (bool, error) {
		st, err := m.Status(context.Background())
		return err == nil && st.Version == newVersion && st.Joined && st.Watchdog.Armed, nil
	})
	if err != nil {
		stopWatch()
		t.Fatalf("%v\n%s", err, lastLines(m.Log(), "", 30))
	}
	// Several rounds of every host and of a master after the upgrade.
	err = lab.WaitUntil(context.Background(), 20*time.Second, 50*time.Millisecond, "a master acting again", func() (bool, error) {
		_, _, _, err := lab.WaitActing(context.Background(), hosts, stBefore.Master.Epoch, 100*time.Millisecond)
		return err == nil, nil
	})
	if err != nil {
		t.Log(err)
	}
	for end := time.Now().Add(12 * interval); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		gs, err := observer.Guests(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range guests {
			if gs[g.Name].State != restart.Running || gs[g.Name].Host != before[g.Name].Host {
				t.Fatalf("%s after the upgrade: %+v; want still running on %s", g.Name, gs[g.Name], before[g.Name].Host)
			}
		}
	}
	stopWatch()
	obs := <-watched

	after, err := m.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if m.Exited() || after.PID != pid || m.DaemonPID() != pid {
		t.Fatalf("daemon pid %d → %d (exited %v): the upgrade must keep the process", pid, after.PID, m.Exited())
	}
	if after.Slot != stBefore.Slot || after.Generation != stBefore.Generation {
		t.Fatalf("slot/generation %d/%d after the upgrade, want %d/%d (no new join)", after.Slot, after.Generation, stBefore.Slot, stBefore.Generation)
	}
	if after.Fence == nil || after.Fence.State != fence.Healthy || len(m.Resets()) > 0 {
		t.Fatalf("fence %+v, resets %+v after the upgrade", after.Fence, m.Resets())
	}
	var agentSeen string
	var gapMax time.Duration
	if st, err := observer.Status(context.Background()); err == nil {
		for _, h := range st.Hosts {
			if h.Name == m.Name {
				agentSeen = h.Agent
				if h.Generation != stBefore.Generation || h.State.String() != "live" {
					t.Errorf("%s sees %s as %v generation %d", observer.Name, m.Name, h.State, h.Generation)
				}
			}
		}
	}
	if agentSeen != newVersion {
		t.Errorf("%s reads agent %q in %s's slot, want %q", observer.Name, agentSeen, m.Name, newVersion)
	}
	for i := 1; i < len(obs); i++ {
		gapMax = max(gapMax, obs[i].at.Sub(obs[i-1].at))
	}
	all := checkDisks(t, p, "g1", "g2", "g3", "g4")
	interruptions := 0
	for _, g := range guests {
		w := all[g.Name]
		if len(w) != 1 {
			interruptions += len(w) - 1
			t.Errorf("%s's disk shows writers %+v: want one process, never restarted", g.Name, w)
		}
	}
	log := m.Log()
	for _, want := range []string{"upgrade: re-executing the installed binary", "upgrade: this is the new image", "resumed the slot of the previous image"} {
		if !strings.Contains(log, want) {
			t.Errorf("%s's log lacks %q", m.Name, want)
		}
	}
	if strings.Contains(log, "joined the pool\"") && strings.Count(log, "\"joined the pool\"") > 1 {
		t.Errorf("%s joined again", m.Name)
	}
	if os.Getenv("HBFENCE_SHOW_LOG") != "" {
		t.Logf("log of %s:\n%s", m.Name, lastLines(log, "", 60))
	}
	t.Logf("FIGURES upgrade of %s (master, %d guests): guest interruptions %d; longest gap between two sequence changes seen by %s: %v (interval %v, renewal_fail 3s); %d changes observed",
		m.Name, len(guests), interruptions, observer.Name, gapMax.Round(time.Millisecond), interval, len(obs))
}

// An upgrade whose exec fails (the file installed is not a program the
// kernel runs): the old image takes everything back and resumes its slot,
// with its generation, its guests and its watchdog, and says why.
func TestUpgradeExecFailsResumes(t *testing.T) {
	installed := installBinaries(t)
	p := newPool(t, lab.Options{Watchdog: true, Guests: true, Binary: installed})
	hosts := startHosts(t, p, "f1", "f2")
	waitAllArmed(t, hosts...)
	m, _ := waitActing(t, hosts, 0, 2*hostDead)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	guests := []lab.GuestSpec{{Name: "e1", HA: true, Placement: "manual", Preferred: []string{m.Name}}}
	if err := p.AddGuests(context.Background(), m, self, guests...); err != nil {
		t.Fatal(err)
	}
	waitGuests(t, m, 10*time.Second, "e1 running", func(gs map[string]agent.GuestStatus) bool {
		return gs["e1"].State == restart.Running
	})
	before, err := m.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(installed+".rpmnew", []byte("\x00\x01 not a program\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(installed+".rpmnew", installed); err != nil {
		t.Fatal(err)
	}
	if err := m.SignalDaemon(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	err = lab.WaitUntil(context.Background(), 10*time.Second, 20*time.Millisecond, "the old image resumed", func() (bool, error) {
		return strings.Contains(m.Log(), "the re-exec failed; this image resumes") && strings.Contains(m.Log(), "resumed the slot of the previous image"), nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, lastLines(m.Log(), "", 30))
	}
	seq0 := seqSeen(t, hosts[1], m.Name)
	err = lab.WaitUntil(context.Background(), 10*time.Second, 50*time.Millisecond, "renewing for 3 s after the failed exec", func() (bool, error) {
		return seqSeen(t, hosts[1], m.Name) >= seq0+12, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	after, err := m.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation || after.Version != before.Version || after.Fence == nil || after.Fence.State != fence.Healthy || !after.Watchdog.Armed || len(m.Resets()) > 0 {
		t.Fatalf("after the failed exec: gen %d version %s fence %+v watchdog %+v resets %v; before gen %d", after.Generation, after.Version, after.Fence, after.Watchdog, m.Resets(), before.Generation)
	}
	gs, err := hosts[1].Guests(context.Background())
	if err != nil || gs["e1"].State != restart.Running || gs["e1"].Host != m.Name {
		t.Fatalf("e1 after the failed exec: %+v (%v)", gs["e1"], err)
	}
	if w := checkDisks(t, p, "e1")["e1"]; len(w) != 1 {
		t.Fatalf("e1's disk shows writers %+v, want one", w)
	}
}
