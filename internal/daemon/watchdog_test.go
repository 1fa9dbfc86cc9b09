package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/fence/watchdog"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/config"
)

// A plain file resets nothing: the daemon refuses it outside test mode,
// and in test mode reports the host unsafe before it arms (when the slot's
// no-watchdog flag is chosen) and after (issue 10 item 2).
func TestPlainFileWatchdogIsUnsafe(t *testing.T) {
	p, _ := timing.Profile("default")
	wd := filepath.Join(t.TempDir(), "wd")
	if err := os.WriteFile(wd, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &config.Config{Path: "/etc/hbfence/hbfence.toml"}
	c.Watchdog.Device = wd
	c.Watchdog.Timeout = config.Duration{Duration: 10 * time.Second}
	_, err := openWatchdog(c, p)
	if !errors.Is(err, watchdog.ErrNotWatchdog) || !strings.Contains(err.Error(), "test_mode") {
		t.Fatalf("a plain file outside test mode: %v; want a refusal naming test_mode", err)
	}
	c.Watchdog.TestMode = true
	b, err := openWatchdog(c, p)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Info().Unsafe {
		t.Fatalf("a plain file before Arm: %+v; want unsafe", b.Info())
	}
	if err := b.Arm(); err != nil {
		t.Fatal(err)
	}
	if i := b.Info(); !i.Unsafe || !i.Armed {
		t.Fatalf("a plain file after Arm: %+v; want unsafe", i)
	}
	b.Disarm()
}
