package watchdog

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Watchdog is one watchdog backend. A fencing loop arms it, feeds it while
// the host's renewals are fresh, and either stops feeding (the machine is
// reset Effective after the last feed) or, on a clean stop, disarms it.
//
// The methods are safe for concurrent use.
type Watchdog interface {
	// Arm opens the watchdog, which starts its countdown, sets its
	// timeout where the backend can, feeds it once and returns the
	// effective firing time: how long after the last feed the machine
	// is reset, with every known correction applied (drivers round,
	// some fire only after twice their timeout). The caller checks it
	// against the pool's timing rule (fence.CheckWatchdog). Arm on an
	// armed watchdog is an error; after Disarm or Close it opens again.
	Arm() (effective time.Duration, err error)
	// Feed restarts the countdown.
	Feed() error
	// Disarm stops the countdown for good (the magic close: write 'V',
	// then close). Only for a clean stop, or once the guests are
	// confirmed gone.
	Disarm() error
	// Close closes without the magic close, as a crash does: the
	// countdown goes on and the machine is reset unless something opens
	// and feeds the watchdog again in time.
	Close() error
	// Describe says what the backend is and what it guarantees.
	Describe() Info
}

// Backend names a kind of watchdog.
type Backend string

const (
	// BackendDevice is a kernel watchdog device (/dev/watchdog*): a
	// fence, the hardware (or the kernel, for softdog) resets the
	// machine.
	BackendDevice Backend = "device"
	// BackendFIFO is a FIFO read by a supervisor such as hbfence-wdsim:
	// a stand-in for tests and the demonstration pool.
	BackendFIFO Backend = "fifo"
	// BackendFile is a plain file: a stand-in that resets nothing by
	// itself.
	BackendFile Backend = "file"
	// BackendSystemd is systemd's service watchdog: it restarts a hung
	// daemon; it is not a fence.
	BackendSystemd Backend = "systemd"
	// BackendNone is no watchdog at all (allow_no_watchdog): unsafe.
	BackendNone Backend = "none"
)

// Info describes a watchdog as status reports show it.
type Info struct {
	Backend Backend `json:"backend"`
	// Path is the device, FIFO or file ("" for systemd and none).
	Path string `json:"path,omitempty"`
	// Identity and FirmwareVersion are what the driver reports
	// (WDIOC_GETSUPPORT), e.g. "iTCO_wdt".
	Identity        string `json:"identity,omitempty"`
	FirmwareVersion uint32 `json:"firmware_version,omitempty"`
	// Options are the driver's WDIOF_* flags.
	Options uint32 `json:"options,omitempty"`
	// Requested is the timeout written with WDIOC_SETTIMEOUT (0: none
	// was written). SetError says why it could not be set.
	Requested time.Duration `json:"requested,omitempty"`
	SetError  string        `json:"set_error,omitempty"`
	// Reported is the timeout the driver reports back
	// (WDIOC_GETTIMEOUT), 0 if it reports none.
	Reported time.Duration `json:"reported,omitempty"`
	// Quirk names the known driver quirk applied to Reported, if any.
	Quirk string `json:"quirk,omitempty"`
	// Effective is how long after the last feed the machine is reset
	// (for systemd: the daemon is restarted; for none: 0, never).
	Effective time.Duration `json:"effective"`
	// Source says where Effective comes from.
	Source string `json:"source,omitempty"`
	// Armed is true between Arm and Disarm or Close.
	Armed bool `json:"armed"`
	// Fence is true when a host that stops feeding is reset: a device,
	// or a stand-in whose supervisor resets the host's process group.
	Fence bool `json:"fence"`
	// StandIn is true for a FIFO or file: whatever reads it does the
	// reset, not hardware.
	StandIn bool `json:"stand_in,omitempty"`
	// Nowayout is true when the driver cannot be stopped: Disarm cannot
	// prevent the reset.
	Nowayout bool `json:"nowayout,omitempty"`
	// Unsafe is true when nothing resets a stalled host: no watchdog,
	// or a backend that cannot reset the machine (a plain file).
	Unsafe bool `json:"unsafe"`
	// Note is one line for humans.
	Note string `json:"note,omitempty"`
}

// String is a one-line summary.
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(string(i.Backend))
	if i.Path != "" {
		fmt.Fprintf(&b, " %s", i.Path)
	}
	if i.Identity != "" {
		fmt.Fprintf(&b, " (%s)", i.Identity)
	}
	if i.Effective > 0 {
		fmt.Fprintf(&b, ", fires %v after the last feed", i.Effective)
		if i.Source != "" {
			fmt.Fprintf(&b, " (%s)", i.Source)
		}
	}
	if i.Note != "" {
		fmt.Fprintf(&b, ": %s", i.Note)
	}
	return b.String()
}

// DefaultPaths are tried in order when no device is configured.
var DefaultPaths = []string{"/dev/watchdog0", "/dev/watchdog"}

// Config chooses and sets up the fencing watchdog.
type Config struct {
	// Path is the watchdog device, or a FIFO or plain file standing in
	// for one. Empty: the first of DefaultPaths that exists.
	Path string
	// Timeout is the firing time wanted: how long after the last feed
	// the machine must be reset, normally the pool's watchdog figure.
	// For a device, the number written with WDIOC_SETTIMEOUT is this
	// divided by the driver's known quirk factor (iTCO_wdt: 2), rounded
	// down to whole seconds; what counts is the effective time Arm
	// returns, read back from the driver.
	Timeout time.Duration
	// TimeoutExplicit says Timeout was given explicitly in the
	// configuration ([watchdog] timeout), not taken from the pool. A
	// FIFO or file, which cannot report a timeout, is accepted only
	// then, and Timeout is its effective firing time: the
	// configuration vouches for the supervisor on the other end.
	TimeoutExplicit bool
	// AllowNone accepts running without any watchdog when no device is
	// configured and none of DefaultPaths exists (allow_no_watchdog).
	AllowNone bool
	// TestMode accepts a plain file as the watchdog ([watchdog]
	// test_mode): it resets nothing, so the host is unsafe (Info.Unsafe)
	// exactly as with no watchdog. Outside it a plain file is refused.
	TestMode bool
}

// Errors; test with errors.Is.
var (
	// ErrNoDevice: no device is configured and none of DefaultPaths
	// exists.
	ErrNoDevice = errors.New("no watchdog device")
	// ErrNoSupervisor: a FIFO has no reader.
	ErrNoSupervisor = errors.New("no supervisor is reading the watchdog FIFO")
	// ErrNotWatchdog: the path does not answer the watchdog ioctls and
	// cannot stand in for a watchdog.
	ErrNotWatchdog = errors.New("not a watchdog")
	// ErrNowayout: the driver cannot be stopped; the machine will be
	// reset unless something feeds it.
	ErrNowayout = errors.New("the watchdog cannot be stopped (nowayout)")
	// ErrArmed: Arm on a watchdog that is armed already.
	ErrArmed = errors.New("the watchdog is armed already")
	// ErrNotArmed: Feed, Disarm or Close on a watchdog that is not
	// armed.
	ErrNotArmed = errors.New("the watchdog is not armed")
)

// New returns the fencing watchdog the configuration asks for: the device
// (or FIFO or file) at cfg.Path, else the first of DefaultPaths that
// exists, else, only if cfg.AllowNone, None. It does not arm it.
func New(cfg Config) (Watchdog, error) {
	if cfg.Path != "" && cfg.AllowNone {
		return nil, errors.New("watchdog: both a device and allow_no_watchdog are configured; keep one")
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("watchdog: timeout %v: it must be positive", cfg.Timeout)
	}
	path := cfg.Path
	if path == "" {
		for _, p := range DefaultPaths {
			if _, err := os.Stat(p); err == nil {
				path = p
				break
			}
		}
	}
	if path == "" {
		if cfg.AllowNone {
			return NewNone(), nil
		}
		return nil, fmt.Errorf("watchdog: %w: none of %s exists; load a watchdog driver (for example softdog), set [watchdog] device, or set allow_no_watchdog = true to run unsafe",
			ErrNoDevice, strings.Join(DefaultPaths, ", "))
	}
	cfg.Path = path
	return NewDevice(cfg)
}
