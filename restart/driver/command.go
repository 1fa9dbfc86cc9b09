package driver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/hbfence/hbfence/internal/sysprio"
)

// command runs one program with an argv, never through a shell.
type command struct {
	argv []string // the program and its leading arguments
}

// ExitError is a command that ran and failed.
type ExitError struct {
	Argv   []string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no message"
	}
	return fmt.Sprintf("%s exited with status %d: %s", strings.Join(e.Argv, " "), e.Code, msg)
}

func (c command) run(ctx context.Context, args ...string) (string, error) {
	argv := append(append([]string(nil), c.argv...), args...)
	run := sysprio.Argv(argv) // the normal policy and OOM score in the child
	cmd := exec.CommandContext(ctx, run[0], run[1:]...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), nil
	case ctx.Err() != nil:
		return out.String(), fmt.Errorf("%s: %w", strings.Join(argv, " "), ctx.Err())
	case errors.As(err, &ee):
		return out.String(), &ExitError{Argv: argv, Code: ee.ExitCode(), Stderr: errb.String()}
	}
	return out.String(), fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
}
