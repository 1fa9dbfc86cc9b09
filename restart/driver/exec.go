package driver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Exec runs the operator's own script for every operation, with an argv
// (never a shell string built from guest names):
//
//	SCRIPT start   UUID NAME CONFIG
//	SCRIPT stop    UUID NAME          (graceful; the daemon bounds it)
//	SCRIPT destroy UUID NAME          (force; must succeed if it does not run)
//	SCRIPT list                       (prints the running UUIDs, one a line:
//	                                   every guest the hypervisor runs; exit
//	                                   non-zero when it cannot tell, never
//	                                   skip a guest it cannot read)
//	SCRIPT migrate UUID NAME HOST     (live)
//
// The script is the operator's, with its own parser: the daemon adds no
// "--" (it would move every documented position), and refuses instead a
// NAME or HOST that begins with "-" (issue 10 item 13).
//
// Exit status 0 is success; for migrate, status 3 means the script cannot
// migrate (the daemon stops the guest here and starts it there); any other
// status is a failure, and the script's standard error is the message.
type Exec struct {
	// Argv is the script and its leading arguments.
	Argv []string
}

// Settle implements Settler: a domain may show up a moment after a
// cancelled create.
func (v *Exec) Settle() time.Duration { return 2 * time.Second }

// Name implements Driver.
func (e *Exec) Name() string { return "exec" }

func (e *Exec) cmd() command { return command{argv: e.Argv} }

// Start implements Driver.
func (e *Exec) Start(ctx context.Context, g Spec) error {
	if err := notOptions(g.Name, g.Config); err != nil {
		return err
	}
	_, err := e.cmd().run(ctx, "start", g.UUID, g.Name, g.Config)
	return err
}

// Stop implements Driver.
func (e *Exec) Stop(ctx context.Context, g Spec) error {
	if err := notOptions(g.Name); err != nil {
		return err
	}
	_, err := e.cmd().run(ctx, "stop", g.UUID, g.Name)
	return err
}

// Destroy implements Driver.
func (e *Exec) Destroy(ctx context.Context, g Spec) error {
	if err := notOptions(g.Name); err != nil {
		return err
	}
	_, err := e.cmd().run(ctx, "destroy", g.UUID, g.Name)
	return err
}

// Running implements Driver.
func (e *Exec) Running(ctx context.Context) ([]string, error) {
	out, err := e.cmd().run(ctx, "list")
	if err != nil {
		return nil, err
	}
	return ParseUUIDLines("exec list", out)
}

// ExitNoMigration is the status by which a script says it cannot migrate.
const ExitNoMigration = 3

// Migrate implements Driver.
func (e *Exec) Migrate(ctx context.Context, g Spec, host string) error {
	if err := notOptions(g.Name, host); err != nil {
		return err
	}
	_, err := e.cmd().run(ctx, "migrate", g.UUID, g.Name, host)
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code == ExitNoMigration {
		return ErrNoMigration
	}
	return err
}

// notOptions refuses positional values that a parser would take for an
// option.
func notOptions(vals ...string) error {
	for _, v := range vals {
		if strings.HasPrefix(v, "-") {
			return fmt.Errorf("%q begins with \"-\": the exec driver's script would take it for an option (rename it)", v)
		}
	}
	return nil
}
