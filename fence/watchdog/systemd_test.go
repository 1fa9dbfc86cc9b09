package watchdog_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/fence/watchdog"
)

// notifySocket listens where sd_notify sends, as systemd does.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", p)
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestSystemd(t *testing.T) {
	c := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	s, err := watchdog.NewSystemd()
	if err != nil {
		t.Fatal(err)
	}
	eff, err := s.Arm()
	if err != nil {
		t.Fatal(err)
	}
	if eff != 3*time.Second {
		t.Errorf("Arm: %v, want WatchdogSec 3s", eff)
	}
	if got := receive(t, c); got != "WATCHDOG=1" {
		t.Errorf("Arm sent %q", got)
	}
	if err := s.Feed(); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, c); got != "WATCHDOG=1" {
		t.Errorf("Feed sent %q", got)
	}
	info := s.Describe()
	if info.Backend != watchdog.BackendSystemd || info.Fence || !info.Armed || !strings.Contains(info.Note, "not a fence") {
		t.Errorf("Describe: %+v", info)
	}
	if err := s.Disarm(); err != nil {
		t.Fatal(err)
	}
	if s.Describe().Armed {
		t.Error("armed after Disarm")
	}
}

func TestSystemdNotEnabled(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	if _, err := watchdog.NewSystemd(); !errors.Is(err, watchdog.ErrNoSystemdWatchdog) {
		t.Errorf("without WATCHDOG_USEC: %v", err)
	}
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	if _, err := watchdog.NewSystemd(); !errors.Is(err, watchdog.ErrNoSystemdWatchdog) {
		t.Errorf("WATCHDOG_PID of another process: %v", err)
	}
	t.Setenv("WATCHDOG_PID", "")
	t.Setenv("NOTIFY_SOCKET", "")
	s, err := watchdog.NewSystemd()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Arm(); err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
		t.Errorf("Arm without NOTIFY_SOCKET: %v", err)
	}
}
