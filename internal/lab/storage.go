package lab

import (
	"bufio"
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

	"github.com/hbfence/hbfence/internal/faultfs"
	"golang.org/x/sys/unix"
)

// Per-host storage through hbfence-faultfs, and the kill_guests hook.
//
// With Options.FaultFS each host reaches the heartbeat file through its own
// FUSE mount of the directory that holds it, served by an hbfence-faultfs
// process the lab starts (found next to the hbfence binary). The host's
// [heartbeat] path points into its mount, so faults set on one host's mount
// (EIO, hangs, latency) hit that host alone while the others' storage
// works: a host cut off from shared storage.
//
// Every host also gets a kill_guests hook ([fence] kill_guests): a shell
// script written by the lab that appends one line per run to HookLog — the
// wall-clock time it ran, "ok" or "fail", and HBFENCE_REASON — and exits 1
// (guests not confirmed gone) while the file HookFailFile exists.

// ErrNoFaultFS wraps why per-host fault-injecting storage cannot be used
// here (not root, no /dev/fuse, no hbfence-faultfs binary).
var ErrNoFaultFS = errors.New("fault-injecting storage (hbfence-faultfs) unavailable")

// FaultFSAvailable says whether this process can mount hbfence-faultfs
// views: it must be root and /dev/fuse must exist. The error says which
// is missing.
func FaultFSAvailable() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: FUSE mounts need root (euid %d); run the tests as root (CI does)", ErrNoFaultFS, os.Geteuid())
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("%w: no /dev/fuse on this machine (%v)", ErrNoFaultFS, err)
	}
	return nil
}

// FaultFSBinary is where the lab looks for hbfence-faultfs: next to the
// hbfence binary.
func FaultFSBinary(hbfence string) string {
	return filepath.Join(filepath.Dir(hbfence), "hbfence-faultfs")
}

func (p *Pool) checkFaultFS() error {
	if err := FaultFSAvailable(); err != nil {
		return err
	}
	if _, err := os.Stat(FaultFSBinary(p.Binary)); err != nil {
		return fmt.Errorf("%w: %v (build it next to hbfence: go build ./cmd/hbfence-faultfs)", ErrNoFaultFS, err)
	}
	return nil
}

// FaultFSServer is one faultfs mount and the hbfence-faultfs process
// serving it: a host's storage (Options.FaultFS), or any other view a
// benchmark stalls (the soak's probe). If the lab dies, the server gets
// SIGTERM (Pdeathsig) and unmounts, lazily if files are still open,
// instead of leaving a dead mount behind.
type FaultFSServer struct {
	Mountpoint string
	control    string
	cmd        *exec.Cmd
	done       chan struct{}
}

// ServeFaultFS starts hbfence-faultfs (next to the hbfence binary) with a
// view of backing at mountpoint, its control socket and log in dir, and
// waits until it is mounted.
func ServeFaultFS(hbfence, backing, mountpoint, dir, name string) (*FaultFSServer, error) {
	s := &FaultFSServer{Mountpoint: mountpoint, control: filepath.Join(dir, "faultfs.sock"), done: make(chan struct{})}
	logPath := filepath.Join(dir, "faultfs.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(FaultFSBinary(hbfence), "serve", "--backing", backing, "--mountpoint", mountpoint,
		"--control", s.control, "--name", name)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting hbfence-faultfs for %s: %w", name, err)
	}
	s.cmd = cmd
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() && strings.HasPrefix(sc.Text(), "ready") {
			ready <- nil
		} else {
			ready <- fmt.Errorf("hbfence-faultfs for %s did not become ready", name)
		}
		for sc.Scan() {
		}
	}()
	go func() {
		cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	select {
	case err = <-ready:
	case <-time.After(10 * time.Second):
		err = fmt.Errorf("hbfence-faultfs for %s: not mounted after 10s", name)
	}
	if err != nil {
		s.Close()
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("%v: %s", err, lastLines(string(b), 3))
	}
	return s, nil
}

// Ctl sends one control command ("set all hang", "clear", "status") and
// returns the server's answer.
func (s *FaultFSServer) Ctl(cmd string) (string, error) {
	return faultfs.Control(s.control, cmd)
}

// Close releases hung operations, stops the server (which unmounts,
// aborting the FUSE connection if files are still open) and makes sure
// the mount is gone even if the server hangs or died.
func (s *FaultFSServer) Close() {
	faultfs.Control(s.control, "clear")
	if s.cmd.Process != nil {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	if mounted(s.Mountpoint) {
		unix.Unmount(s.Mountpoint, unix.MNT_DETACH)
	}
}

// mountStorage starts hbfence-faultfs for h over the directory holding
// the pool's area and waits until it is mounted. It returns the area's
// path inside the mount.
func (h *Host) mountStorage(dir string) (string, error) {
	p := h.pool
	mnt := filepath.Join(dir, "storage")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return "", err
	}
	s, err := ServeFaultFS(p.Binary, filepath.Dir(p.Area), mnt, dir, h.Name)
	if err != nil {
		return "", err
	}
	h.storage = s
	return filepath.Join(mnt, filepath.Base(p.Area)), nil
}

// unmountStorage stops the host's faultfs server and its mount.
func (h *Host) unmountStorage() {
	if h.storage != nil {
		h.storage.Close()
	}
}

// mounted reports whether path is a mount point (per /proc/self/mountinfo).
func mounted(path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && unescapeMount(f[4]) == path {
			return true
		}
	}
	return false
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Mountpoint is the host's faultfs mount ("" without Options.FaultFS).
func (h *Host) Mountpoint() string {
	if h.storage == nil {
		return ""
	}
	return h.storage.Mountpoint
}

func (h *Host) storageCtl(cmd string) (string, error) {
	if h.storage == nil {
		return "", fmt.Errorf("%s has no fault-injecting storage (Options.FaultFS)", h.Name)
	}
	return h.storage.Ctl(cmd)
}

// CutStorage makes every read, write and open of the host's storage fail
// with EIO.
func (h *Host) CutStorage() error {
	_, err := h.storageCtl("set all eio")
	return err
}

// HangStorage makes every read, write and open of the host's storage
// block until the storage is restored (or changed).
func (h *Host) HangStorage() error {
	_, err := h.storageCtl("set all hang")
	return err
}

// SlowStorage adds latency d to every read, write and open of the host's
// storage.
func (h *Host) SlowStorage(d time.Duration) error {
	_, err := h.storageCtl("set all delay " + d.String())
	return err
}

// RestoreStorage lets every operation pass again and releases hung ones.
func (h *Host) RestoreStorage() error {
	_, err := h.storageCtl("clear")
	return err
}

// StorageStatus is the host's mount's faults and counters.
func (h *Host) StorageStatus() (faultfs.Status, error) {
	var st faultfs.Status
	out, err := h.storageCtl("status")
	if err != nil {
		return st, err
	}
	err = json.Unmarshal([]byte(out), &st)
	return st, err
}

// writeHook writes the host's kill_guests hook into dir.
func (h *Host) writeHook(dir string) error {
	h.HookScript = filepath.Join(dir, "kill_guests")
	h.HookLog = filepath.Join(dir, "kill_guests.log")
	h.HookFailFile = filepath.Join(dir, "kill_guests.fail")
	script := fmt.Sprintf(`#!/bin/sh
# kill_guests hook written by hbfence-lab: records when it ran, and fails
# (guests not confirmed gone) while %[2]s exists.
now=$(date +%%s.%%N)
if [ -e %[2]q ]; then
	echo "$now fail $HBFENCE_REASON" >> %[1]q
	exit 1
fi
echo "$now ok $HBFENCE_REASON" >> %[1]q
exit 0
`, h.HookLog, h.HookFailFile)
	return os.WriteFile(h.HookScript, []byte(script), 0o755)
}

// SetHookFails makes the host's kill_guests hook fail (true) or confirm
// (false) from its next run on.
func (h *Host) SetHookFails(fail bool) error {
	if !fail {
		err := os.Remove(h.HookFailFile)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		return err
	}
	return os.WriteFile(h.HookFailFile, nil, 0o600)
}

// HookRun is one run of a host's kill_guests hook.
type HookRun struct {
	At        time.Time // when it started, wall clock
	Confirmed bool      // exited 0: guests confirmed gone
	Reason    string    // HBFENCE_REASON
}

// HookRuns returns the runs of the host's kill_guests hook so far.
func (h *Host) HookRuns() []HookRun {
	var runs []HookRun
	b, _ := os.ReadFile(h.HookLog)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, " ", 3)
		if len(f) < 2 {
			continue
		}
		sec, nsec, _ := strings.Cut(f[0], ".")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		ns, err2 := strconv.ParseInt((nsec + "000000000")[:9], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		r := HookRun{At: time.Unix(s, ns), Confirmed: f[1] == "ok"}
		if len(f) == 3 {
			r.Reason = f[2]
		}
		runs = append(runs, r)
	}
	return runs
}

// WatchdogEvents returns the watchdog stand-in's log records with the
// given event ("armed", "disarmed", "reset", ...).
func (h *Host) WatchdogEvents(event string) []WatchdogRecord {
	var out []WatchdogRecord
	b, _ := os.ReadFile(h.WatchdogLog)
	for _, line := range strings.Split(string(b), "\n") {
		var r WatchdogRecord
		if json.Unmarshal([]byte(line), &r) == nil && r.Event == event {
			out = append(out, r)
		}
	}
	return out
}

// LastRenewal asks the daemon when its last successful renewal began (on
// this process's clock); zero before the first.
func (h *Host) LastRenewal(ctx context.Context) (time.Time, error) {
	at := time.Now()
	st, err := h.Status(ctx)
	if err != nil || !st.Joined {
		return time.Time{}, err
	}
	return at.Add(-time.Duration(st.LastRenewalAgeSeconds * float64(time.Second))), nil
}
