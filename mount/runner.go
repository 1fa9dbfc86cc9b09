package mount

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Runner runs one mount(8) or umount(8) command.
type Runner interface {
	Run(ctx context.Context, argv []string) error
}

// ExecRunner runs the command as a process, bounded by Timeout (default
// DefaultCommandTimeout); its error carries the command's stderr.
type ExecRunner struct {
	Timeout time.Duration
}

// DefaultCommandTimeout bounds one mount or umount command: an NFS server
// that does not answer holds mount(8) until then (retry=0 stops mount.nfs
// from trying again on its own, not the kernel's first request).
const DefaultCommandTimeout = 90 * time.Second

// Run runs argv.
func (r ExecRunner) Run(ctx context.Context, argv []string) error {
	to := r.Timeout
	if to <= 0 {
		to = DefaultCommandTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(stderr.String())
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("killed after %v: %w", to, err)
	}
	if msg != "" {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, msg)
	}
	return fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
}
