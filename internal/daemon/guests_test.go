package daemon

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbfence/hbfence/restart/driver"
)

// landingDriver lists nothing at first; a create cut off by the fence
// lands half its settle time after the first listing.
type landingDriver struct {
	mu    sync.Mutex
	first time.Time
	run   []string
}

const landing = "11111111-2222-3333-4444-555555555555"

func (d *landingDriver) Name() string                                  { return "landing" }
func (d *landingDriver) Start(context.Context, driver.Spec) error      { return nil }
func (d *landingDriver) Stop(ctx context.Context, g driver.Spec) error { return d.Destroy(ctx, g) }
func (d *landingDriver) Migrate(context.Context, driver.Spec, string) error {
	return driver.ErrNoMigration
}
func (d *landingDriver) Settle() time.Duration { return 20 * time.Millisecond }
func (d *landingDriver) Destroy(_ context.Context, g driver.Spec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.run = slices.DeleteFunc(d.run, func(u string) bool { return u == g.UUID })
	return nil
}
func (d *landingDriver) Running(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.first.IsZero() {
		d.first = time.Now()
	} else if time.Since(d.first) >= d.Settle()/2 && !slices.Contains(d.run, landing) {
		d.run = append(d.run, landing)
	}
	return slices.Clone(d.run), nil
}

// The fence kill does not call a host clean on an empty listing: it lists
// again a settle time later, so a create that lands within the settle
// time is seen, and the kill is not confirmed (the watchdog resets the
// machine). (A kill that listed again at once would miss it.)
func TestDriverKillerSeesALateCreate(t *testing.T) {
	d := &landingDriver{}
	err := driverKiller{drivers: map[string]driver.Driver{"landing": d}}.KillHAGuests(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), landing) {
		t.Fatalf("kill with a create landing after the first listing: %v, want not confirmed naming %s", err, landing)
	}
}
