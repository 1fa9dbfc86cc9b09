package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hbfence/hbfence/internal/sysprio"
)

// Process is the process driver: a guest is a local process started from
// the argv in its configuration, a JSON file {"argv": ["/path", "arg"...]}.
// It is for the demonstration pool and the tests, documented as such: a
// process is not a virtual machine, and its migration is stop-then-start.
//
// The guest runs in the daemon's process group (so that a machine's reset,
// which kills the group, kills it too) and outlives the daemon itself: a
// daemon that restarts finds it through its pid file in StateDir and adopts
// it. A pid file records the pid and the process's start time, so that a
// reused pid is never taken for the guest. The guest gets its UUID, name
// and host in HBFENCE_GUEST_UUID, HBFENCE_GUEST_NAME and HBFENCE_HOST.
type Process struct {
	StateDir string // pid files and logs, one of each per guest
	Host     string // this host's name, for the guest's environment
}

// ProcessConfig is a process guest's configuration file.
type ProcessConfig struct {
	Argv []string `json:"argv"`
}

// Name implements Driver.
func (p *Process) Name() string { return "process" }

func (p *Process) pidFile(uuid string) string { return filepath.Join(p.StateDir, uuid+".pid") }

// ReadProcessConfig reads and checks a process guest's configuration.
func ReadProcessConfig(path string) (ProcessConfig, error) {
	var c ProcessConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("guest configuration: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("guest configuration %s: %v (want {\"argv\": [\"/absolute/program\", \"arg\", ...]})", path, err)
	}
	if len(c.Argv) == 0 || !filepath.IsAbs(c.Argv[0]) {
		return c, fmt.Errorf("guest configuration %s: argv must start with an absolute program path, got %q", path, c.Argv)
	}
	return c, nil
}

// Start implements Driver.
func (p *Process) Start(ctx context.Context, g Spec) error {
	if err := ValidUUID(g.UUID); err != nil {
		return err
	}
	if _, ok := p.alive(g.UUID); ok {
		return nil // already running: starting is idempotent
	}
	c, err := ReadProcessConfig(g.Config)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.StateDir, 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(p.StateDir, g.UUID+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	run := sysprio.Argv(c.Argv) // the guest runs with the normal policy and OOM score
	cmd := exec.Command(run[0], run[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HBFENCE_GUEST_UUID="+g.UUID, "HBFENCE_GUEST_NAME="+g.Name, "HBFENCE_HOST="+p.Host)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting guest %s: %w", g.Name, err)
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reap it while this daemon lives
	st, err := startTime(pid)
	if err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("guest %s (pid %d) exited at once", g.Name, pid)
	}
	tmp := p.pidFile(g.UUID) + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d %d\n", pid, st)), 0o600); err != nil {
		cmd.Process.Kill()
		return err
	}
	if err := os.Rename(tmp, p.pidFile(g.UUID)); err != nil {
		cmd.Process.Kill()
		return err
	}
	return nil
}

// alive reads a guest's pid file and reports its pid if that process
// still runs (same start time, not a zombie).
func (p *Process) alive(uuid string) (int, bool) {
	b, err := os.ReadFile(p.pidFile(uuid))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, false
	}
	pid, err1 := strconv.Atoi(f[0])
	st, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0, false
	}
	now, err := startTime(pid)
	if err != nil || now != st {
		return 0, false
	}
	return pid, true
}

// gone checks that a guest whose pid file does not show a live process is
// really gone: its pid file unreadable only because it does not exist, or
// its process absent from /proc (or another process, or a zombie).
func (p *Process) gone(uuid string) error {
	b, err := os.ReadFile(p.pidFile(uuid))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("guest %s: pid file: %w", uuid, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return nil // a torn pid file: written only after the guest started, never by halves
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return nil
	}
	if _, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("guest %s: /proc/%d: %w", uuid, pid, err)
	}
	return nil
}

// startTime is the process's start time (field 22 of /proc/PID/stat),
// or an error if it does not run or is a zombie.
func startTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	if f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("pid %d is a zombie", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// Running implements Driver.
func (p *Process) Running(context.Context) ([]string, error) {
	ents, err := os.ReadDir(p.StateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		uuid, ok := strings.CutSuffix(e.Name(), ".pid")
		if !ok || ValidUUID(uuid) != nil {
			continue
		}
		if _, ok := p.alive(uuid); ok {
			out = append(out, uuid)
			continue
		}
		// Not running, or unknown: a pid file that cannot be read, or a
		// /proc that cannot be read, is "unknown", never "none".
		if err := p.gone(uuid); err != nil {
			return nil, err
		}
		os.Remove(p.pidFile(uuid))
	}
	return out, nil
}

// Stop implements Driver: SIGTERM, then wait until it is gone or ctx ends.
func (p *Process) Stop(ctx context.Context, g Spec) error {
	return p.signal(ctx, g, syscall.SIGTERM)
}

// Destroy implements Driver: SIGKILL, then wait until it is gone (at most
// ctx).
func (p *Process) Destroy(ctx context.Context, g Spec) error {
	return p.signal(ctx, g, syscall.SIGKILL)
}

func (p *Process) signal(ctx context.Context, g Spec, sig syscall.Signal) error {
	pid, ok := p.alive(g.UUID)
	if !ok {
		os.Remove(p.pidFile(g.UUID))
		return nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("guest %s (pid %d): %v: %w", g.Name, pid, sig, err)
	}
	for {
		if _, ok := p.alive(g.UUID); !ok {
			os.Remove(p.pidFile(g.UUID))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("guest %s (pid %d) still runs after %v: %w", g.Name, pid, sig, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Migrate implements Driver: a process cannot move.
func (p *Process) Migrate(context.Context, Spec, string) error { return ErrNoMigration }
