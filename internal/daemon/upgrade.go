package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hbfence/hbfence/fence/watchdog"
	"github.com/hbfence/hbfence/heartbeat"
	"golang.org/x/sys/unix"
)

// upgradeEnv carries the hand-over from one image of the daemon to the
// next across the exec of an upgrade (SIGUSR1).
const upgradeEnv = "HBFENCE_UPGRADE"

// handover is what the old image hands the new one: its open descriptors
// (inherited across the exec) and the state that lets it resume its slot
// without joining. Extension point: what else outlives an image (the
// run-state file is on disk already and is read again by the new image).
type handover struct {
	// FromVersion and FromPID are the old image's, for the log.
	FromVersion string `json:"from_version"`
	FromPID     int    `json:"from_pid"`
	// Exe is the path exec'd, and how it was found.
	Exe       string `json:"exe"`
	ExeSource string `json:"exe_source"`
	Pool      string `json:"pool"`
	// The descriptors: the instance lock, the heartbeat's and the
	// lease's opens of the area, the control socket's listener, and the
	// watchdog (nil for none).
	LockFD     int              `json:"lock_fd"`
	HostLockFD int              `json:"host_lock_fd"`
	AreaFD     int              `json:"area_fd"`
	LeaseFD    int              `json:"lease_fd"`
	ListenerFD int              `json:"listener_fd"`
	Watchdog   *watchdog.Handed `json:"watchdog,omitempty"`
	// Member is the slot as the old image held it (heartbeat.Member
	// Suspend), and LastRenewalRaw the issue time of its last
	// successful renewal as an absolute reading of the safety clock
	// (clock.go: Go's monotonic reading does not survive an exec).
	Member         heartbeat.ResumeState `json:"member"`
	LastRenewalRaw int64                 `json:"last_renewal_raw_ns"`
	// ExecMono is when the old image exec'd, for the log.
	ExecMono int64 `json:"exec_mono_ns"`
}

// executable is the path of the binary as installed, resolved at start:
// after a package upgrade replaced the file, /proc/self/exe names the
// old, deleted inode; the path names the new file.
func executable() (path, source string) {
	if p, err := os.Executable(); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r, "os.Executable at start (/proc/self/exe), symlinks resolved"
		}
		return p, "os.Executable at start (/proc/self/exe)"
	}
	if p, err := filepath.Abs(os.Args[0]); err == nil {
		return p, "argv[0] at start, made absolute"
	}
	return os.Args[0], "argv[0]"
}

// checkExecutable says whether path can be exec'd now (before the old
// image stops anything).
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("the installed binary %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("the installed binary %s is not an executable file (%v)", path, fi.Mode())
	}
	return nil
}

// inherit clears close-on-exec on fd, so that the new image gets it.
func inherit(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
	return err
}

// reexec hands the daemon over to the installed binary, in place (same
// pid). It returns only when that failed, with the descriptors handed back
// and armed again here: the caller resumes the slot in this image.
func (d *Daemon) reexec(rs heartbeat.ResumeState) error {
	hv := handover{FromVersion: d.version, FromPID: os.Getpid(), Exe: d.exe, ExeSource: d.exeSource, Pool: d.h.PoolUUID.String(),
		LockFD: int(d.lockFile.Fd()), HostLockFD: int(d.hostLock.File().Fd()), AreaFD: int(d.a.Device().File().Fd()), LeaseFD: int(d.la.Device().File().Fd()),
		Member: rs, LastRenewalRaw: toHandover(rs.LastRenewal)}
	b, _ := d.wd.(*backend)
	handedOff := false
	defer func() {
		if !handedOff && b != nil {
			b.carry() // still armed by this image: the next Arm feeds it
		}
	}()
	ln, err := d.srv.File()
	if err != nil {
		return err
	}
	defer ln.Close()
	hv.ListenerFD = int(ln.Fd())
	// The new image must feed the watchdog and renew before the old
	// image's last renewal is renewal_fail old.
	if age := clk.Now().Sub(rs.LastRenewal); age >= d.t.RenewalFail-d.dur.reexecBudget {
		return fmt.Errorf("the last renewal is %v old, too close to renewal_fail (%v) for a re-exec", age.Round(time.Millisecond), d.t.RenewalFail)
	}
	for _, fd := range []int{hv.LockFD, hv.HostLockFD, hv.AreaFD, hv.LeaseFD, hv.ListenerFD} {
		if err := inherit(fd); err != nil {
			return fmt.Errorf("handing descriptor %d over: %w", fd, err)
		}
	}
	if b != nil {
		hv.Watchdog, err = b.handoff() // fed just now
		if err != nil {
			return fmt.Errorf("handing the watchdog over: %w", err)
		}
		if hv.Watchdog != nil {
			if err := inherit(hv.Watchdog.FD); err != nil {
				b.adopt(hv.Watchdog)
				return fmt.Errorf("handing the watchdog over: %w", err)
			}
		}
	}
	handedOff = true
	hv.ExecMono = monoNow()
	js, _ := json.Marshal(hv)
	env := append(os.Environ(), upgradeEnv+"="+string(js))
	d.log.Info().Str("exe", d.exe).Str("exe_source", d.exeSource).Str("from_version", d.version).
		Int("slot", rs.Slot).Int64("last_renewal_raw_ns", hv.LastRenewalRaw).Int64("mono_ns", hv.ExecMono).
		Msg("upgrade: re-executing the installed binary in place (same pid): slot, generation, watchdog and guests kept")
	err = syscall.Exec(d.exe, os.Args, env)
	// Still here: the exec failed. Take everything back.
	for _, fd := range []int{hv.LockFD, hv.HostLockFD, hv.AreaFD, hv.LeaseFD} {
		unix.CloseOnExec(fd)
	}
	if b != nil && hv.Watchdog != nil {
		unix.CloseOnExec(hv.Watchdog.FD)
		if aerr := b.adopt(hv.Watchdog); aerr != nil {
			err = errors.Join(err, fmt.Errorf("taking the watchdog back: %w", aerr))
		}
	} else if b != nil {
		b.carry()
	}
	return fmt.Errorf("exec %s: %w", d.exe, err)
}

// takeHandover reads the hand-over of the previous image from the
// environment (nil when this is a fresh start) and removes it, so that no
// child inherits it.
func takeHandover() (*handover, error) {
	s, ok := os.LookupEnv(upgradeEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(upgradeEnv)
	var hv handover
	if err := json.Unmarshal([]byte(s), &hv); err != nil {
		return nil, fmt.Errorf("%s: the hand-over of the previous image is not valid: %w", upgradeEnv, err)
	}
	// Nothing of it may leak into the guests or hooks this image starts.
	for _, fd := range []int{hv.LockFD, hv.HostLockFD, hv.AreaFD, hv.LeaseFD, hv.ListenerFD} {
		unix.CloseOnExec(fd)
	}
	if hv.Watchdog != nil {
		unix.CloseOnExec(hv.Watchdog.FD)
	}
	hv.Member.LastRenewal = fromHandover(hv.LastRenewalRaw)
	return &hv, nil
}
