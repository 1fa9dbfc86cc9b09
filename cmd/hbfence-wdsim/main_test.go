package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/wdsim"
)

// The test binary is also the hbfence-wdsim binary when run with
// HBFENCE_WDSIM_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("HBFENCE_WDSIM_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func wdsimCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "HBFENCE_WDSIM_MAIN=1")
	return cmd
}

func exitCode(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("hbfence-wdsim did not exit; stderr %s", stderr.String())
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"no fifo":    {"--timeout", "1s", "--", "true"},
		"no timeout": {"--fifo", filepath.Join(dir, "f"), "--", "true"},
		"no command": {"--fifo", filepath.Join(dir, "f"), "--timeout", "1s"},
		"bad flag":   {"--bogus"},
	} {
		code, stderr := exitCode(t, wdsimCmd(args...))
		if code != 2 || !strings.Contains(stderr, "hbfence-wdsim") && !strings.Contains(stderr, "usage") {
			t.Errorf("%s: exit %d, stderr %q; want 2 and a message", name, code, stderr)
		}
	}
}

func TestStatusPassesThrough(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "wd")
	code, _ := exitCode(t, wdsimCmd("--fifo", fifo, "--timeout", "1s", "--", "sh", "-c", "exit 5"))
	if code != 5 {
		t.Errorf("exit %d, want the command's 5", code)
	}
}

func TestResetWithLog(t *testing.T) {
	dir := t.TempDir()
	fifo, logf := filepath.Join(dir, "wd"), filepath.Join(dir, "wd.log")
	// The shell opens the FIFO (arming it), writes one feed, and hangs.
	code, stderr := exitCode(t, wdsimCmd("--fifo", fifo, "--timeout", "300ms", "--log", logf, "--",
		"sh", "-c", "exec 3>"+fifo+"; printf . >&3; sleep 3600"))
	if code != wdsim.ExitReset {
		t.Errorf("exit %d, want %d after a reset; stderr %s", code, wdsim.ExitReset, stderr)
	}
	if !strings.Contains(stderr, "reset: no feed for") {
		t.Errorf("stderr %q does not report the reset", stderr)
	}
	b, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	var reset *wdsim.Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r wdsim.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		events = append(events, r.Event)
		if r.Event == "reset" {
			reset = &r
		}
	}
	if got := strings.Join(events, " "); got != "start armed reset exited exit" {
		t.Errorf("log events %q", got)
	}
	if reset == nil || time.Duration(reset.SinceLastFeedNS) < 300*time.Millisecond || reset.LastFeedMonoNS == 0 {
		t.Errorf("reset record %+v", reset)
	}
}

func TestSignalsReachTheGroup(t *testing.T) {
	dir := t.TempDir()
	fifo, ready := filepath.Join(dir, "wd"), filepath.Join(dir, "ready")
	cmd := wdsimCmd("--fifo", fifo, "--timeout", "10s", "--",
		"sh", "-c", "trap 'exit 42' TERM; touch "+ready+"; while :; do sleep 0.05; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			break // the trap is set
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the command never got ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("no exit after SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 42 {
		t.Errorf("exit %d; want 42, the command's trap of the SIGTERM passed on to its group", code)
	}
}
