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
// only when they are confirmed gone. The restart issue's hypervisor
// drivers implement it; until then the daemon uses ExecKiller, or
// NoGuests when no hook is configured.
type GuestKiller interface {
	// KillHAGuests is told why the host is fencing (for the logs of
	// whatever it drives).
	KillHAGuests(ctx context.Context, reason string) error
}

// NoGuests is the killer of a host that runs no HA guests: there is
// nothing to kill, so they are gone at once.
type NoGuests struct{}

// KillHAGuests confirms at once.
func (NoGuests) KillHAGuests(context.Context, string) error { return nil }

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
