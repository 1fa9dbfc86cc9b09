package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/internal/lastfence"
)

// buildBinary builds this command into a temporary directory: the exit
// code is the process's, as systemd sees it.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hbfence")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// A configuration error exits 78 (EX_CONFIG: RestartPreventExitStatus=78
// stops systemd's respawning), naming the file, the key and the fix; a
// runtime failure exits 1.
func TestDaemonExitCodes(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	area := filepath.Join(dir, ".server_pool_hb")
	if out, err := exec.Command(bin, "init", "--profile", "fast", "--slots", "4", area).CombinedOutput(); err != nil {
		t.Fatalf("hbfence init: %v\n%s", err, out)
	}
	base := "[host]\nname = \"x1\"\nmachine_id = \"0123456789abcdef0123456789abcdef\"\n" +
		"[control]\nsocket = \"" + filepath.Join(dir, "run", "x.sock") + "\"\n" +
		"[daemon]\nrun_dir = \"" + filepath.Join(dir, "run") + "\"\nstate_dir = \"" + filepath.Join(dir, "state") + "\"\nlock_memory = false\nrealtime_priority = 0\n"
	for _, c := range []struct {
		name, toml string
		code       int
		want       []string // in stderr, besides the file's name
	}{
		{"unknown key", base + "[heartbeat]\npath = \"" + area + "\"\n[log]\nlevle = \"debug\"\n", 78, []string{"unknown key log.levle", "known keys:"}},
		{"bad value", base + "[heartbeat]\npath = \"" + area + "\"\n[log]\ntarget = \"syslog\"\n", 78, []string{`[log] target is "syslog"; use one of auto, journal, stderr`}},
		{"wrong type", base + "[heartbeat]\npath = \"" + area + "\"\noffset = \"1M\"\n", 78, []string{"offset"}},
		{"missing watchdog device", base + "[heartbeat]\npath = \"" + area + "\"\n[watchdog]\ndevice = \"" + filepath.Join(dir, "no-watchdog") + "\"\ntimeout = \"2s\"\n", 78,
			[]string{"[watchdog] device", "no-watchdog", "load the watchdog's driver"}},
		{"missing heartbeat path", base + "[heartbeat]\npath = \"" + filepath.Join(dir, "none", ".server_pool_hb") + "\"\n[watchdog]\nallow_no_watchdog = true\n", 78,
			[]string{"[heartbeat] path", "mount the cluster root first"}},
		{"a missing hook", base + "[heartbeat]\npath = \"" + area + "\"\n[fence]\nkill_guests = [\"" + filepath.Join(dir, "kill.sh") + "\"]\n", 78,
			[]string{"[fence] kill_guests", "install it or fix the path"}},
		// Not the configuration: an area that is no heartbeat area is
		// the storage's state, and a restart may find it repaired.
		{"not an area", base + "[heartbeat]\npath = \"" + filepath.Join(dir, "garbage") + "\"\n[watchdog]\nallow_no_watchdog = true\n", 1, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, "garbage"), make([]byte, 1<<20), 0o600)
			cfg := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".toml")
			if err := os.WriteFile(cfg, []byte(c.toml), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "daemon", "--config", cfg)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("hbfence daemon: %v; want exit %d\n%s", err, c.code, stderr.String())
			}
			if ee.ExitCode() != c.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", ee.ExitCode(), c.code, stderr.String())
			}
			last := lastLine(stderr.String())
			if c.code == 78 && !strings.Contains(last, cfg) {
				t.Errorf("the error does not name the file %s: %q", cfg, last)
			}
			for _, w := range c.want {
				if !strings.Contains(last, w) {
					t.Errorf("the error does not say %q: %q", w, last)
				}
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestDaemonHelpListsExitCodes(t *testing.T) {
	code, _, stderr := hb(t, "daemon", "-h")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, w := range []string{"exit codes:", "\n  78  a configuration error (EX_CONFIG)", "RestartPreventExitStatus=78", "\n  1   a runtime failure", "\n  0   stopped cleanly"} {
		if !strings.Contains(stderr, w) {
			t.Errorf("hbfence daemon -h does not say %q:\n%s", w, stderr)
		}
	}
}

func TestStatusPrintsLastFence(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 2, 3, 0, time.UTC)
	st := daemon.Status{Started: at.Add(time.Hour), BootID: "b2",
		LastFence: &lastfence.Record{Time: at, Reason: "no successful renewal for 3.004s (renewal_fail 3s)", Slot: 1, Generation: 4, BootID: "b1"}}
	var b strings.Builder
	printStatus(&b, st)
	if !strings.Contains(b.String(), "fence    last fence: no successful renewal for 3.004s (renewal_fail 3s) at ") ||
		!strings.Contains(b.String(), "(slot 1, generation 4), in an earlier boot") {
		t.Errorf("status without a fence state:\n%s", b.String())
	}
	st.LastFence, st.LastFenceError = nil, "last fence: /var/lib/hbfence/last-fence: unexpected end of JSON input (remove it if it is damaged)"
	b.Reset()
	printStatus(&b, st)
	if !strings.Contains(b.String(), "last fence: unknown (last fence: /var/lib/hbfence/last-fence: unexpected end") {
		t.Errorf("status with a damaged record:\n%s", b.String())
	}
}
