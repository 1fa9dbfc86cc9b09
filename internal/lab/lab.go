// Package lab runs a pool of real hbfence daemons on one machine: one
// process per host, each with its own configuration, control socket and
// log file, all on one heartbeat area. The demonstration pool
// (cmd/hbfence-lab) and the integration tests are built on it.
//
// The hosts are real processes running the real binary on real O_DIRECT
// storage; only the machine is shared, so each host gets its own
// [host] machine_id.
package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
	"golang.org/x/sys/unix"
)

// Pool is a set of host processes sharing one heartbeat area.
type Pool struct {
	Dir    string // holds configs, sockets and logs
	Binary string // the hbfence binary
	Area   string // the heartbeat file or device
	Offset int64

	// Watchdog is set when hosts run under hbfence-wdsim; WatchdogTimeout
	// is the pool's watchdog figure, its timeout.
	Watchdog        bool
	WatchdogTimeout time.Duration
	// FaultFS is set when each host reaches the area through its own
	// hbfence-faultfs mount (storage.go).
	FaultFS bool
	// Timing is the pool's timing, from its header.
	Timing PoolTiming
	// LogLevel is every host's [log] level.
	LogLevel string
	// Guests gives every host the process driver ([guests] drivers).
	Guests bool
	// MaxConcurrentStarts, when not 0, is every host's [guests]
	// max_concurrent_starts.
	MaxConcurrentStarts int

	mu    sync.Mutex
	hosts map[string]*Host
}

// PoolTiming is the pool's timing as hbfence dump reports it.
type PoolTiming struct {
	Interval, IOTimeout, RenewalFail, Watchdog, HostDead time.Duration
}

// Options for NewPool.
type Options struct {
	Binary string // path of the hbfence binary
	Dir    string // working directory (created)
	// Area is the heartbeat file or device; default Dir/.server_pool_hb.
	Area   string
	Offset int64
	// InitArgs are extra arguments for "hbfence init", e.g.
	// "--profile", "fast", "--slots", "8".
	InitArgs []string
	// NoInit skips formatting (the area is already formatted).
	NoInit bool
	// Watchdog runs every host under hbfence-wdsim (found next to
	// Binary), a watchdog stand-in that resets the host — kills its
	// process group — when the daemon stops feeding it. Without it,
	// hosts run with allow_no_watchdog and are unsafe.
	Watchdog bool
	// LogLevel is every host's [log] level; default "info". At "debug"
	// a master logs each round of its duties (MasterActs).
	LogLevel string
	// Guests gives every host the process driver, with its pid files in
	// the host's directory; the guest records live next to Area.
	Guests bool
	// MaxConcurrentStarts, when not 0, is every host's [guests]
	// max_concurrent_starts (with Guests).
	MaxConcurrentStarts int
	// FaultFS gives each host its own hbfence-faultfs mount (found next
	// to Binary) of the directory holding Area, so that its storage can
	// be cut, hung or slowed alone (storage.go). Root and /dev/fuse
	// only: NewPool fails with an error wrapping ErrNoFaultFS otherwise.
	FaultFS bool
}

// NewPool formats the area with "hbfence init" (unless NoInit) and returns
// a pool with no hosts yet.
func NewPool(ctx context.Context, o Options) (*Pool, error) {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	p := &Pool{Dir: o.Dir, Binary: o.Binary, Area: o.Area, Offset: o.Offset, Watchdog: o.Watchdog, FaultFS: o.FaultFS, LogLevel: o.LogLevel, Guests: o.Guests, MaxConcurrentStarts: o.MaxConcurrentStarts, hosts: map[string]*Host{}}
	if p.LogLevel == "" {
		p.LogLevel = "info"
	}
	if p.Area == "" {
		p.Area = filepath.Join(o.Dir, ".server_pool_hb")
	}
	if p.FaultFS {
		if err := p.checkFaultFS(); err != nil {
			return nil, err
		}
	}
	if !o.NoInit {
		args := append([]string{"init", "--offset", fmt.Sprint(o.Offset)}, o.InitArgs...)
		args = append(args, p.Area)
		if out, err := p.Run(ctx, args...); err != nil {
			return nil, fmt.Errorf("hbfence init: %v: %s", err, out)
		}
	}
	if err := p.readTiming(ctx); err != nil {
		return nil, err
	}
	p.WatchdogTimeout = p.Timing.Watchdog
	return p, nil
}

func (p *Pool) readTiming(ctx context.Context) error {
	out, err := p.Run(ctx, "dump", "--json", "--offset", fmt.Sprint(p.Offset), p.Area)
	if err != nil {
		return fmt.Errorf("hbfence dump: %v: %s", err, out)
	}
	var d struct {
		Header struct {
			Interval    string `json:"interval"`
			IOTimeout   string `json:"io_timeout"`
			RenewalFail string `json:"renewal_fail"`
			Watchdog    string `json:"watchdog"`
			HostDead    string `json:"host_dead"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		return fmt.Errorf("hbfence dump --json: %v", err)
	}
	for _, f := range []struct {
		s string
		d *time.Duration
	}{{d.Header.Interval, &p.Timing.Interval}, {d.Header.IOTimeout, &p.Timing.IOTimeout}, {d.Header.RenewalFail, &p.Timing.RenewalFail},
		{d.Header.Watchdog, &p.Timing.Watchdog}, {d.Header.HostDead, &p.Timing.HostDead}} {
		v, err := time.ParseDuration(f.s)
		if err != nil {
			return fmt.Errorf("hbfence dump --json: timing %q: %v", f.s, err)
		}
		*f.d = v
	}
	return nil
}

// Run runs the hbfence binary with args and returns its combined output.
func (p *Pool) Run(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, p.Binary, args...).CombinedOutput()
	return string(out), err
}

// Host is one daemon process.
type Host struct {
	Name      string
	MachineID string
	Config    string
	Socket    string
	LogPath   string
	// FIFO and WatchdogLog are the watchdog stand-in's FIFO and its log
	// of arms, feeds and resets (when the pool runs with Watchdog).
	FIFO        string
	WatchdogLog string
	// Metrics is the host's [metrics] textfile.
	Metrics string
	// HookScript is the host's [fence] kill_guests hook; HookLog records
	// its runs and HookFailFile, while it exists, makes it fail.
	HookScript, HookLog, HookFailFile string

	pool    *Pool
	storage *FaultFSServer // with Options.FaultFS
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	// pgid is the machine's process group under the watchdog stand-in
	// (found once, for the stand-in pgidOf).
	pgid, pgidOf int
	err          error // the process's exit error, once exited
}

// AddHost writes a configuration for a host named name. Its machine id is
// derived from the name, so a host restarted under the same name is the
// same machine; machineSalt, when not empty, makes a different machine
// with the same name.
func (p *Pool) AddHost(name, machineSalt string) (*Host, error) {
	sum := sha256.Sum256([]byte(name + "\x00" + machineSalt))
	dir := filepath.Join(p.Dir, name+machineSalt)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	h := &Host{
		Name:      name,
		MachineID: hex.EncodeToString(sum[:16]),
		Config:    filepath.Join(dir, "hbfence.toml"),
		Socket:    filepath.Join(dir, "hbfence.sock"),
		LogPath:   filepath.Join(dir, "hbfence.log"),
		pool:      p,
	}
	if err := h.writeHook(dir); err != nil {
		return nil, err
	}
	area := p.Area
	if p.FaultFS {
		var err error
		if area, err = h.mountStorage(dir); err != nil {
			return nil, err
		}
	}
	watchdogConf := "allow_no_watchdog = true\n"
	if p.Watchdog {
		h.FIFO = filepath.Join(dir, "watchdog.fifo")
		h.WatchdogLog = filepath.Join(dir, "wdsim.log")
		watchdogConf = fmt.Sprintf("device = %q\ntimeout = %q\n", h.FIFO, p.WatchdogTimeout.String())
	}
	cfg := fmt.Sprintf(`# written by hbfence-lab
[host]
name = %q
machine_id = %q

[heartbeat]
path = %q
offset = %d

[control]
socket = %q

[log]
level = %q
format = "json"

[fence]
kill_guests = [%q]

[watchdog]
%s`, name, h.MachineID, area, p.Offset, h.Socket, p.LogLevel, h.HookScript, watchdogConf)
	// Each lab host has a run directory and a state directory of its
	// own, as each machine does.
	cfg += fmt.Sprintf("\n[daemon]\nrun_dir = %q\nstate_dir = %q\n", filepath.Join(dir, "run"), filepath.Join(dir, "state"))
	h.Metrics = filepath.Join(dir, "hbfence.prom")
	cfg += fmt.Sprintf("\n[metrics]\ntextfile = %q\n", h.Metrics)
	if p.Guests {
		cfg += fmt.Sprintf("\n[guests]\ndrivers = [\"process\"]\nstate_dir = %q\n", filepath.Join(dir, "guests"))
		if p.MaxConcurrentStarts != 0 {
			cfg += fmt.Sprintf("max_concurrent_starts = %d\n", p.MaxConcurrentStarts)
		}
		// A lab pool: its cluster root is a temporary directory, not
		// mount_base/UUID on shared storage (hbfence pool validate).
		cfg += "\n[storage]\nlab_pool = true\n"
	}
	if err := os.WriteFile(h.Config, []byte(cfg), 0o600); err != nil {
		h.unmountStorage()
		return nil, err
	}
	p.mu.Lock()
	p.hosts[name+machineSalt] = h
	p.mu.Unlock()
	return h, nil
}

// Start starts the host's daemon in its own process group, logging to
// LogPath (appended).
func (h *Host) Start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd != nil && !h.exitedLocked() {
		return fmt.Errorf("%s is already running (pid %d)", h.Name, h.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(h.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(h.pool.Binary, "daemon", "--config", h.Config)
	if h.pool.Watchdog {
		wdsim := filepath.Join(filepath.Dir(h.pool.Binary), "hbfence-wdsim")
		cmd = exec.Command(wdsim, "--fifo", h.FIFO, "--timeout", h.pool.WatchdogTimeout.String(), "--log", h.WatchdogLog,
			"--", h.pool.Binary, "daemon", "--config", h.Config)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", h.Name, err)
	}
	exited := make(chan struct{})
	h.cmd, h.exited, h.err = cmd, exited, nil
	go func() {
		err := cmd.Wait()
		logf.Close()
		h.mu.Lock()
		h.err = err
		h.mu.Unlock()
		close(exited)
	}()
	return nil
}

func (h *Host) exitedLocked() bool {
	select {
	case <-h.exited:
		return true
	default:
		return false
	}
}

// PID is the daemon's process id (0 if never started).
func (h *Host) PID() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cmd == nil {
		return 0
	}
	return h.cmd.Process.Pid
}

// Signal sends sig to the daemon's whole process group.
func (h *Host) Signal(sig syscall.Signal) error {
	pid := h.PID()
	if pid == 0 {
		return fmt.Errorf("%s was never started", h.Name)
	}
	return syscall.Kill(-pid, sig)
}

// Kill kills the host with SIGKILL, as a power loss kills a machine: the
// daemon (and, under the watchdog stand-in, the whole machine) dies at
// once and no "left" is written.
func (h *Host) Kill() error {
	if h.pool.Watchdog {
		if pg := h.machineGroup(); pg > 0 {
			syscall.Kill(-pg, syscall.SIGKILL)
		}
	}
	if err := h.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_, err := h.Wait(context.Background())
	return err
}

// Freeze stops the daemon with SIGSTOP (a hung daemon, a stalled VM); the
// watchdog stand-in keeps running.
func (h *Host) Freeze() error {
	pid := h.DaemonPID()
	if pid == 0 {
		return fmt.Errorf("%s: no daemon process found", h.Name)
	}
	return syscall.Kill(pid, syscall.SIGSTOP)
}

// RestartDaemon kills the daemon alone (SIGKILL), as a crash of the agent
// would, and starts it again on the same machine: the watchdog stand-in
// keeps running (a restarted daemon reopens its FIFO before it fires), the
// machine's other processes — its guests — keep running, and the new
// daemon joins the machine's process group, so that a reset still takes
// it. Only for pools under the watchdog stand-in.
func (h *Host) RestartDaemon() error {
	if !h.pool.Watchdog {
		return fmt.Errorf("%s: RestartDaemon needs the watchdog stand-in", h.Name)
	}
	pg := h.machineGroup()
	if pg == 0 {
		return fmt.Errorf("%s: no daemon process found", h.Name)
	}
	if err := syscall.Kill(pg, syscall.SIGKILL); err != nil {
		return fmt.Errorf("%s: killing the daemon: %w", h.Name, err)
	}
	// The stand-in reaps it.
	for i := 0; ; i++ {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pg)); err != nil {
			break
		}
		if i == 500 {
			return fmt.Errorf("%s: the daemon (pid %d) did not go away", h.Name, pg)
		}
		time.Sleep(10 * time.Millisecond)
	}
	logf, err := os.OpenFile(h.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(h.pool.Binary, "daemon", "--config", h.Config)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pg, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		// The group is gone (no guest kept it): a group of its own.
		cmd = exec.Command(h.pool.Binary, "daemon", "--config", h.Config)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("restarting %s: %w", h.Name, err)
		}
	}
	go func() {
		cmd.Wait()
		logf.Close()
	}()
	return nil
}

// Thaw continues a daemon stopped by Freeze (SIGCONT).
func (h *Host) Thaw() error {
	pid := h.DaemonPID()
	if pid == 0 {
		return fmt.Errorf("%s: no daemon process found", h.Name)
	}
	return syscall.Kill(pid, syscall.SIGCONT)
}

// DaemonPID is the daemon's process id: the process started directly, or
// the watchdog stand-in's child.
func (h *Host) DaemonPID() int {
	if !h.pool.Watchdog {
		return h.PID()
	}
	return h.machineGroup()
}

// machineGroup finds the daemon started by the watchdog stand-in: its
// child, leader of the machine's process group.
func (h *Host) machineGroup() int {
	parent := h.PID()
	if parent == 0 {
		return 0
	}
	h.mu.Lock()
	cached, cachedFor := h.pgid, h.pgidOf
	h.mu.Unlock()
	if cached != 0 && cachedFor == parent {
		return cached
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		var state byte
		var ppid, pgrp int
		if _, err := fmt.Sscanf(s[i+2:], "%c %d %d", &state, &ppid, &pgrp); err == nil && ppid == parent {
			h.mu.Lock()
			h.pgid, h.pgidOf = pgrp, parent
			h.mu.Unlock()
			return pgrp
		}
	}
	return 0
}

// Resets returns the watchdog stand-in's reset records so far.
func (h *Host) Resets() []WatchdogRecord {
	var out []WatchdogRecord
	b, _ := os.ReadFile(h.WatchdogLog)
	for _, line := range strings.Split(string(b), "\n") {
		var r WatchdogRecord
		if json.Unmarshal([]byte(line), &r) == nil && r.Event == "reset" {
			out = append(out, r)
		}
	}
	return out
}

// MonoTime converts a CLOCK_MONOTONIC reading (as the watchdog stand-in
// logs it) to a time.Time comparable with time.Now().
func MonoTime(ns int64) time.Time {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Now().Add(-time.Duration(ts.Nano() - ns))
}

// WatchdogRecord is one line of the watchdog stand-in's log.
type WatchdogRecord struct {
	Event string `json:"event"`
	// SinceLastFeedNS is how long after the last feed the reset came.
	SinceLastFeedNS int64 `json:"since_last_feed_ns"`
	// MonoNS and LastFeedMonoNS are CLOCK_MONOTONIC times of the reset
	// and of the last feed.
	MonoNS         int64 `json:"mono_ns"`
	LastFeedMonoNS int64 `json:"last_feed_mono_ns"`
}

// Stop stops the host with SIGTERM, as systemd does, and waits for it.
func (h *Host) Stop(ctx context.Context) error {
	if err := h.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	exitErr, err := h.Wait(ctx)
	if err != nil {
		return err
	}
	return exitErr
}

// Wait waits for the process to exit and returns its exit error (nil for
// status 0).
func (h *Host) Wait(ctx context.Context) (exitErr error, err error) {
	h.mu.Lock()
	exited := h.exited
	h.mu.Unlock()
	if exited == nil {
		return nil, fmt.Errorf("%s was never started", h.Name)
	}
	select {
	case <-exited:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.err, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for %s to exit: %w", h.Name, ctx.Err())
	}
}

// Exited reports whether the process has exited.
func (h *Host) Exited() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.exited != nil && h.exitedLocked()
}

// Log returns the host's log so far.
func (h *Host) Log() string {
	b, _ := os.ReadFile(h.LogPath)
	return string(b)
}

// Status asks the host's daemon for its status.
func (h *Host) Status(ctx context.Context) (daemon.Status, error) {
	var st daemon.Status
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := control.Call(ctx, h.Socket, "status", nil, &st)
	return st, err
}

// PeerState is the state host h sees peer in, and since when (on this
// process's clock, from the daemon's state age).
func (h *Host) PeerState(ctx context.Context, peer string) (liveness.State, time.Time, daemon.Status, error) {
	at := time.Now()
	st, err := h.Status(ctx)
	if err != nil {
		return 0, time.Time{}, st, err
	}
	for _, p := range st.Hosts {
		if p.Name == peer {
			return p.State, at.Add(-time.Duration(p.StateAgeSeconds * float64(time.Second))), st, nil
		}
	}
	return 0, time.Time{}, st, fmt.Errorf("%s does not see %s", h.Name, peer)
}

// WaitArmed waits until the host has joined and its daemon feeds its
// watchdog (and, under hbfence-wdsim, that it is the FIFO stand-in).
func (h *Host) WaitArmed(ctx context.Context, timeout time.Duration) error {
	return WaitUntil(ctx, timeout, 20*time.Millisecond, h.Name+"'s watchdog armed", func() (bool, error) {
		st, err := h.Status(ctx)
		if err != nil {
			return false, err
		}
		if h.pool.Watchdog && (st.Watchdog.Backend != "fifo" || st.Watchdog.Unsafe) {
			return false, fmt.Errorf("%s's watchdog is %+v, want the FIFO stand-in", h.Name, st.Watchdog)
		}
		return st.Joined && st.Watchdog.Armed, nil
	})
}

// ErrTimeout is returned by WaitUntil when the condition did not hold in
// time.
var ErrTimeout = errors.New("condition not met in time")

// WaitUntil polls cond every poll until it returns true, returns an error,
// or timeout passes. It is a bounded wait for a condition, not a sleep.
func WaitUntil(ctx context.Context, timeout, poll time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("%w after %v: %s (last error: %v)", ErrTimeout, timeout, what, last)
			}
			return fmt.Errorf("%w after %v: %s", ErrTimeout, timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// WaitJoined waits until every host has joined and sees all the others
// live.
func (p *Pool) WaitJoined(ctx context.Context, timeout time.Duration, hosts ...*Host) error {
	return WaitUntil(ctx, timeout, 50*time.Millisecond, "all hosts joined and live", func() (bool, error) {
		for _, h := range hosts {
			if h.Exited() {
				return false, fmt.Errorf("%s exited: %s", h.Name, lastLines(h.Log(), 3))
			}
			st, err := h.Status(ctx)
			if err != nil || !st.Joined {
				return false, err
			}
			for _, o := range hosts {
				s, ok := find(st, o.Name)
				if !ok || s != liveness.Live {
					return false, nil
				}
			}
		}
		return true, nil
	})
}

func find(st daemon.Status, name string) (liveness.State, bool) {
	for _, p := range st.Hosts {
		if p.Name == name {
			return p.State, true
		}
	}
	return 0, false
}

// Hosts returns the pool's hosts, sorted by name.
func (p *Pool) Hosts() []*Host {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Host, 0, len(p.hosts))
	for _, h := range p.hosts {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Config < out[j].Config })
	return out
}

// Close kills every host still running, then unmounts the hosts'
// fault-injecting storage (releasing hung I/O first).
func (p *Pool) Close() {
	for _, h := range p.Hosts() {
		if h.PID() != 0 && !h.Exited() {
			h.Kill()
		}
	}
	for _, h := range p.Hosts() {
		h.unmountStorage()
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// SignalDaemon sends sig to the daemon process alone (under the watchdog
// stand-in, its child), as an operator's kill or systemctl kill does.
func (h *Host) SignalDaemon(sig syscall.Signal) error {
	pid := h.DaemonPID()
	if pid == 0 {
		return fmt.Errorf("%s has no daemon process", h.Name)
	}
	return syscall.Kill(pid, sig)
}
