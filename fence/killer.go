package fence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/hbfence/hbfence/internal/sysprio"
)

// GuestKiller destroys every HA guest running on this host and returns nil
// only when they are confirmed gone. The daemon combines its hypervisor
// drivers' killer with ExecKiller (the operator's hook) when there is one,
// or NoGuests when there is none; a host with neither uses CannotConfirm.
type GuestKiller interface {
	// KillHAGuests is told why the host is fencing (for the logs of
	// whatever it drives).
	KillHAGuests(ctx context.Context, reason string) error
}

// NoGuests adds nothing to another killer: it confirms at once. It is the
// hook side of a host whose drivers' killer lists and kills its guests;
// alone, it would confirm guests gone that nothing listed.
type NoGuests struct{}

// KillHAGuests confirms at once.
func (NoGuests) KillHAGuests(context.Context, string) error { return nil }

// ErrCannotConfirm: the host has no means to list its guests, so none of
// its fences can confirm them gone.
var ErrCannotConfirm = errors.New("this host cannot list its guests (no [guests] drivers and no [fence] kill_guests hook), so it cannot confirm them gone")

// CannotConfirm is the killer of a host that can neither list its guests
// (no hypervisor driver) nor have them killed (no hook): it never
// confirms, so the fencer leaves the watchdog to reset the machine, or,
// with no watchdog, the host stays UNSAFE. Confirming at once would
// disarm the watchdog and tell the pool the host's guests are gone while
// nothing was stopped.
type CannotConfirm struct{}

// KillHAGuests returns ErrCannotConfirm.
func (CannotConfirm) KillHAGuests(context.Context, string) error { return ErrCannotConfirm }

// ExecKiller runs an operator's hook to destroy the HA guests.
//
// Contract: the hook is run as Argv (no shell), with no standard input, in
// its own process group, and must exit 0 only when every HA guest of this
// host is confirmed gone (destroyed, not merely asked to stop). Any other
// exit, or no exit within Timeout (the group is then killed), means "not
// confirmed": the host stops feeding its watchdog and is reset. The
// environment carries HBFENCE_REASON, why the host is fencing.
type ExecKiller struct {
	Argv    []string
	Timeout time.Duration
}

// KillHAGuests runs the hook.
func (k *ExecKiller) KillHAGuests(ctx context.Context, reason string) error {
	if len(k.Argv) == 0 {
		return errors.New("no kill_guests hook configured")
	}
	ctx, cancel := context.WithTimeout(ctx, k.Timeout)
	defer cancel()
	run := sysprio.Argv(k.Argv) // the normal policy and OOM score in the hook
	cmd := exec.CommandContext(ctx, run[0], run[1:]...)
	cmd.Env = append(cmd.Environ(), "HBFENCE_REASON="+reason)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("kill_guests hook %s did not finish within %v: %s", k.Argv[0], k.Timeout, lastLine(out.String()))
	}
	if err != nil {
		return fmt.Errorf("kill_guests hook %s: %v: %s", k.Argv[0], err, lastLine(out.String()))
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}
