package watchdog

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// ErrNoSystemdWatchdog: the process is not run by systemd with
// WatchdogSec= (no WATCHDOG_USEC, or WATCHDOG_PID names another process).
var ErrNoSystemdWatchdog = errors.New("systemd's service watchdog is not enabled for this process (no WatchdogSec=)")

// Systemd is systemd's service watchdog: the daemon sends WATCHDOG=1
// through sd_notify, and systemd kills and (with Restart=) restarts the
// service when no WATCHDOG=1 arrives for WatchdogSec=.
//
// It is NOT a fence. It restarts a hung daemon; it does not reset the
// machine, and the guests of a host whose daemon is restarted keep
// running. Use it in addition to a watchdog device, never instead: the
// device is what resets a host whose daemon is stalled or whose restart
// does not come back in time. Feed it from the daemon's main loop, to show
// the loop runs.
type Systemd struct {
	period time.Duration
	notify func(state string) (sent bool, err error)

	mu    sync.Mutex
	armed bool
}

// NewSystemd returns systemd's service watchdog, or an error wrapping
// ErrNoSystemdWatchdog when it is not enabled for this process.
func NewSystemd() (*Systemd, error) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return nil, fmt.Errorf("systemd watchdog: %w", err)
	}
	if d <= 0 {
		return nil, ErrNoSystemdWatchdog
	}
	return &Systemd{period: d, notify: func(state string) (bool, error) {
		return daemon.SdNotify(false, state)
	}}, nil
}

// Arm implements Watchdog: it sends a first WATCHDOG=1 and returns
// WatchdogSec=, after which systemd restarts a daemon that stopped
// feeding — not a reset.
func (s *Systemd) Arm() (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.armed {
		return 0, fmt.Errorf("systemd watchdog: %w", ErrArmed)
	}
	if err := s.feedLocked(); err != nil {
		return 0, err
	}
	s.armed = true
	return s.period, nil
}

// Feed implements Watchdog: WATCHDOG=1. Feed at least every half period
// (systemd's advice).
func (s *Systemd) Feed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.feedLocked()
}

func (s *Systemd) feedLocked() error {
	sent, err := s.notify(daemon.SdNotifyWatchdog)
	if err != nil {
		return fmt.Errorf("systemd watchdog: sd_notify WATCHDOG=1: %w", err)
	}
	if !sent {
		return errors.New("systemd watchdog: sd_notify WATCHDOG=1 was not sent: NOTIFY_SOCKET is not set")
	}
	return nil
}

// Disarm implements Watchdog. There is nothing to send: systemd stops
// watching when the service stops.
func (s *Systemd) Disarm() error { return s.Close() }

// Close implements Watchdog.
func (s *Systemd) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = false
	return nil
}

// Describe implements Watchdog: not a fence.
func (s *Systemd) Describe() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Info{
		Backend:   BackendSystemd,
		Effective: s.period,
		Source:    "WatchdogSec= (WATCHDOG_USEC)",
		Armed:     s.armed,
		Fence:     false,
		Note:      "systemd's service watchdog restarts a hung daemon; it does not reset the machine and is not a fence",
	}
}
