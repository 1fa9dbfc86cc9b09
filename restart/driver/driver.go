package driver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Spec names a guest for a driver.
type Spec struct {
	UUID string
	Name string
	// Config is the path of the guest's configuration (on the shared
	// storage, checked to lie inside a repository of the pool).
	Config string
}

// Driver is one hypervisor.
type Driver interface {
	// Name is the driver's name ("xl", "virsh", "exec", "process").
	Name() string
	Start(ctx context.Context, g Spec) error
	Stop(ctx context.Context, g Spec) error
	Destroy(ctx context.Context, g Spec) error
	Running(ctx context.Context) ([]string, error)
	// Migrate moves a running guest to host, live. ErrNoMigration when
	// the driver cannot: the caller stops it here and starts it there.
	Migrate(ctx context.Context, g Spec, host string) error
}

// ConfigReader is a driver that can read the UUID a guest's configuration
// gives the guest. Before every start the agent checks that it is the
// guest's UUID: a guest started under another UUID would never be listed
// as this guest, and could be started a second time elsewhere.
type ConfigReader interface {
	ConfigUUID(path string) (string, error)
}

// Settler is a driver whose hypervisor may list a guest a moment after a
// command about it returned (a create that goes on after its client was
// killed): ConfirmGone waits that long before its second listing.
type Settler interface {
	Settle() time.Duration
}

// ConfirmGone checks that none of the guests uuids is listed, and, for a
// driver that settles, still none after the settle time (one wait for
// them all): only then may a guest be reported gone (a failed start) or
// the host disarm (a fence).
func ConfirmGone(ctx context.Context, d Driver, uuids ...string) error {
	check := func() error {
		run, err := d.Running(ctx)
		if err != nil {
			return err
		}
		var still []string
		for _, u := range uuids {
			if slices.Contains(run, u) {
				still = append(still, u)
			}
		}
		if len(still) > 0 {
			return fmt.Errorf("guests %v are still listed by %s", still, d.Name())
		}
		return nil
	}
	if err := check(); err != nil {
		return err
	}
	if s, ok := d.(Settler); !ok || s.Settle() <= 0 || len(uuids) == 0 {
		return nil
	}
	if err := WaitSettle(ctx, d); err != nil {
		return err
	}
	return check()
}

// WaitSettle waits d's settle time (none for a driver that is not a
// Settler): a listing after it no longer misses a create or a destroy
// that was under way before it.
func WaitSettle(ctx context.Context, d Driver) error {
	s, ok := d.(Settler)
	if !ok || s.Settle() <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(s.Settle()):
		return nil
	}
}

// ErrNoMigration: the driver cannot migrate a running guest.
var ErrNoMigration = errors.New("this driver cannot migrate a running guest; it is stopped here and started on the target")

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ValidUUID checks a guest UUID (the 8-4-4-4-12 hex form).
func ValidUUID(u string) error {
	if !uuidRE.MatchString(u) {
		return fmt.Errorf("guest UUID %q is not of the form 8-4-4-4-12 hex digits", u)
	}
	return nil
}
