package daemon

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/restart/driver"
	"github.com/hbfence/hbfence/restart/store"
	"github.com/rs/zerolog"
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

// hbfence guest add takes a guest name and preferred host names only by
// their one rule (store.ValidGuestName, ondisk.ValidHostName); the
// refusal names the flag and does not echo a raw name (issue 10 item 16).
func TestGuestAddNameRule(t *testing.T) {
	add := func(name string, preferred ...string) error {
		_, err := newGuest(GuestRequest{Op: "add", Name: name, UUID: landing, Driver: "process", Config: "/OVS/g.json",
			Placement: "manual", Preferred: preferred}, store.PoolConfig{}, "")
		return err
	}
	for _, c := range []struct{ name, flag string }{
		{"web\x1b[2Jx", "--name"},
		{strings.Repeat("a", 10000), "--name"},
		{"web\xff01", "--name"},
		{"-sCMD", "--name"},
		{"a b", "--name"},
		{"a/b", "--name"},
		{"", "--name"},
	} {
		err := add(c.name, "h1")
		if err == nil || !strings.HasPrefix(err.Error(), c.flag+":") || strings.ContainsAny(err.Error(), "\x1b\xff") || len(err.Error()) > 300 {
			t.Errorf("name %.20q: %v", c.name, err)
		}
	}
	for _, h := range []string{"-sCMD", "h\x1b[0m", "h 1", ""} {
		if err := add("web01", h); err == nil || !strings.HasPrefix(err.Error(), "--preferred:") {
			t.Errorf("preferred %q: %v", h, err)
		}
	}
	// A good name and host pass the name checks (and fail later, here on
	// the pool's repositories).
	if err := add("web01.é", "ovs01"); err == nil || strings.HasPrefix(err.Error(), "--name") || strings.HasPrefix(err.Error(), "--preferred") {
		t.Errorf("good name: %v", err)
	}
}

// hbfence pool role HOST: HOST follows the host-name rule (issue 10 item 16).
func TestPoolRoleHostNameRule(t *testing.T) {
	for _, h := range []string{"-sCMD", "h\x1b[0m", "", strings.Repeat("h", 10000)} {
		if _, err := hostRoles(h, []string{"vm"}); err == nil || !strings.HasPrefix(err.Error(), "pool role: host name") || strings.Contains(err.Error(), "\x1b") {
			t.Errorf("host %.20q: %v", h, err)
		}
	}
	if rs, err := hostRoles("ovs01", []string{"vm", "utility"}); err != nil || len(rs) != 2 {
		t.Errorf("ovs01: %v %v", rs, err)
	}
}

// A fence of a host with no driver and no hook confirms nothing: before,
// it confirmed at once, and the host disarmed with its guests unknown
// (issue 10 item 4). With a hook, the hook decides; with drivers, the
// drivers' listing does (and the hook, if any, too).
func TestGuestKillerWithNothingCannotConfirm(t *testing.T) {
	ctx := context.Background()
	var c config.Config
	err := guestKiller(&c, time.Second, nil, nil, zerolog.Nop()).KillHAGuests(ctx, "test")
	if !errors.Is(err, fence.ErrCannotConfirm) {
		t.Fatalf("no driver, no hook: %v; want ErrCannotConfirm", err)
	}
	c.Fence.KillGuests = []string{"/bin/true"}
	if err := guestKiller(&c, time.Second, nil, nil, zerolog.Nop()).KillHAGuests(ctx, "test"); err != nil {
		t.Fatalf("a hook that confirms: %v", err)
	}
	c.Fence.KillGuests = []string{"/bin/false"}
	if err := guestKiller(&c, time.Second, nil, nil, zerolog.Nop()).KillHAGuests(ctx, "test"); err == nil {
		t.Fatal("a hook that fails confirmed")
	}
	c.Fence.KillGuests = nil
	k := guestKiller(&c, time.Second, map[string]driver.Driver{"landing": &landingDriver{}}, nil, zerolog.Nop())
	if _, ok := k.(bothKillers); !ok {
		t.Fatalf("with a driver: %T; want the drivers' killer", k)
	}
}
