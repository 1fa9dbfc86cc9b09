package watchdog

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Device is a watchdog reached through a path: a kernel watchdog device,
// or a FIFO or plain file standing in for one. All three take the same
// path: open (which starts a device's countdown), the watchdog ioctls
// where the path answers them, a keepalive per Feed, and on Disarm the
// magic close — write 'V', then close.
type Device struct {
	cfg Config
	sys system

	mu             sync.Mutex
	fd             int // -1 when not armed
	kind           Backend
	keepaliveIoctl bool // feed with WDIOC_KEEPALIVE, else write a byte
	magic          bool // Disarm writes 'V'
	info           Info
}

// feedByte is what a write-feed writes: any byte but 'V'.
var feedByte = []byte{'.'}

// NewDevice returns the watchdog at cfg.Path, not yet armed. The path must
// exist and be a character device, a FIFO or a regular file.
func NewDevice(cfg Config) (*Device, error) {
	return newDevice(cfg, realSystem{})
}

func newDevice(cfg Config, sys system) (*Device, error) {
	if cfg.Path == "" {
		return nil, errors.New("watchdog: no path")
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("watchdog %s: timeout %v: it must be positive", cfg.Path, cfg.Timeout)
	}
	st, err := sys.stat(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("watchdog %s: %w", cfg.Path, err)
	}
	kind, err := kindOf(cfg.Path, st.Mode)
	if err != nil {
		return nil, err
	}
	if err := cfg.allowKind(kind); err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, sys: sys, fd: -1, kind: kind}
	d.info = Info{Backend: kind, Path: cfg.Path, StandIn: kind != BackendDevice, Unsafe: kind == BackendFile}
	if kind == BackendFile {
		d.info.Note = plainFileNote
	}
	return d, nil
}

// plainFileNote is the status line of a plain file: it resets nothing.
const plainFileNote = "UNSAFE: a plain file stands in for the watchdog ([watchdog] test_mode): nothing resets this host if its daemon stalls, so its guests may run on after other hosts restart them"

// allowKind refuses a plain file outside test mode: it resets nothing, so
// a host that stalls would keep its guests while the pool restarts them.
func (cfg Config) allowKind(kind Backend) error {
	if kind == BackendFile && !cfg.TestMode {
		return fmt.Errorf("watchdog %s is a plain file, which resets nothing: %w; set [watchdog] device to the kernel watchdog device (or a FIFO read by hbfence-wdsim), or, for tests only, [watchdog] test_mode = true (the host is then reported unsafe)",
			cfg.Path, ErrNotWatchdog)
	}
	return nil
}

func kindOf(path string, mode uint32) (Backend, error) {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return BackendDevice, nil
	case unix.S_IFIFO:
		return BackendFIFO, nil
	case unix.S_IFREG:
		return BackendFile, nil
	case unix.S_IFDIR:
		return "", fmt.Errorf("watchdog %s is a directory: %w", path, ErrNotWatchdog)
	case unix.S_IFBLK:
		return "", fmt.Errorf("watchdog %s is a block device: %w", path, ErrNotWatchdog)
	case unix.S_IFSOCK:
		return "", fmt.Errorf("watchdog %s is a socket: %w", path, ErrNotWatchdog)
	default:
		return "", fmt.Errorf("watchdog %s is a file of type %#o: %w", path, mode&unix.S_IFMT, ErrNotWatchdog)
	}
}

// NoSupervisorError is returned by Arm when a FIFO has no reader: nothing
// would reset the host. errors.Is(err, ErrNoSupervisor) holds.
type NoSupervisorError struct{ Path string }

func (e *NoSupervisorError) Error() string {
	return "watchdog: no supervisor is reading " + e.Path + " (start hbfence-wdsim --fifo " + e.Path + " first)"
}

// Is makes errors.Is(err, ErrNoSupervisor) true.
func (e *NoSupervisorError) Is(target error) bool { return target == ErrNoSupervisor }

// Arm implements Watchdog.
func (d *Device) Arm() (time.Duration, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd >= 0 {
		return 0, fmt.Errorf("watchdog %s: %w", d.cfg.Path, ErrArmed)
	}
	path := d.cfg.Path
	st, err := d.sys.stat(path)
	if err != nil {
		return 0, fmt.Errorf("watchdog %s: %w", path, err)
	}
	kind, err := kindOf(path, st.Mode)
	if err != nil {
		return 0, err
	}
	if err := d.cfg.allowKind(kind); err != nil {
		return 0, err
	}
	d.kind = kind
	flags := unix.O_WRONLY
	switch kind {
	case BackendFIFO:
		// Never block waiting for a reader: with none, nothing would
		// reset the host, and that must be an error now.
		flags |= unix.O_NONBLOCK
	case BackendFile:
		flags |= unix.O_APPEND
	}
	fd, err := d.sys.open(path, flags)
	if err != nil {
		switch {
		case kind == BackendFIFO && errors.Is(err, unix.ENXIO):
			return 0, &NoSupervisorError{Path: path}
		case kind == BackendDevice && errors.Is(err, unix.EBUSY):
			return 0, fmt.Errorf("watchdog %s is open already, and a watchdog has one owner: another hbfence, or a watchdog daemon (watchdog.service, wdmd, systemd's RuntimeWatchdogSec=)? (%w)", path, err)
		}
		return 0, fmt.Errorf("watchdog: open %s: %w", path, err)
	}
	info := Info{Backend: kind, Path: path}
	if err := d.setup(fd, st, &info); err != nil {
		d.abort(fd)
		return 0, err
	}
	d.fd = fd
	if err := d.feedLocked(); err != nil {
		d.abort(fd)
		d.fd = -1
		return 0, fmt.Errorf("watchdog %s: first keepalive: %w", path, err)
	}
	info.Armed = true
	d.info = info
	return info.Effective, nil
}

// setup finds out what is behind fd and sets its timeout.
func (d *Device) setup(fd int, st unix.Stat_t, info *Info) error {
	path, kind := d.cfg.Path, d.kind
	d.magic, d.keepaliveIoctl = false, false
	wi, err := d.sys.getSupport(fd)
	if err != nil {
		if kind == BackendDevice {
			return fmt.Errorf("watchdog %s: WDIOC_GETSUPPORT: %v: the character device is %w", path, err, ErrNotWatchdog)
		}
		if !errors.Is(err, unix.ENOTTY) {
			return fmt.Errorf("watchdog %s: WDIOC_GETSUPPORT: %w", path, err)
		}
		// A FIFO or file: a stand-in, accepted only if the
		// configuration vouches for its firing time.
		if !d.cfg.TimeoutExplicit {
			return fmt.Errorf("watchdog %s is a %s, which does not answer the watchdog ioctls (%v): it stands in for a watchdog only with an explicit [watchdog] timeout, the firing time of its supervisor: %w",
				path, kindName(kind), err, ErrNotWatchdog)
		}
		d.keepaliveIoctl = false
		d.magic = true
		info.StandIn = true
		info.Effective = d.cfg.Timeout
		info.Source = "the configured [watchdog] timeout (a " + kindName(kind) + " cannot report one)"
		if kind == BackendFIFO {
			info.Fence = true
			info.Note = "stand-in: the supervisor reading the FIFO (hbfence-wdsim) resets the host's process group; not a hardware reset"
		} else {
			info.Unsafe = true
			info.Note = plainFileNote
		}
		return nil
	}

	identity := cleanIdentity(string(wi.Identity[:]))
	info.Identity = identity
	info.FirmwareVersion = wi.Version
	info.Options = wi.Options
	q, known := LookupQuirk(identity)
	d.magic = wi.Options&unix.WDIOF_MAGICCLOSE != 0
	d.keepaliveIoctl = wi.Options&unix.WDIOF_KEEPALIVEPING != 0
	nowayout, _ := d.sys.nowayout(st.Rdev)
	info.Nowayout = nowayout
	if !d.magic && !nowayout {
		return fmt.Errorf("watchdog %s (%s) has no magic close, so any close stops it: a crashed daemon would leave this machine running, unfenced, with its guests; use another driver, or load this one with nowayout=1",
			path, identity)
	}

	secs := RequestSeconds(identity, d.cfg.Timeout)
	setBack := 0
	switch {
	case wi.Options&unix.WDIOF_SETTIMEOUT == 0:
		info.SetError = "the driver cannot set its timeout (no WDIOF_SETTIMEOUT)"
	case secs < 1:
		info.SetError = fmt.Sprintf("cannot ask for %v: the driver counts whole seconds", d.cfg.Timeout)
		if q.Factor > 1 {
			info.SetError += fmt.Sprintf(" and fires after %d× the timeout", q.Factor)
		}
	default:
		info.Requested = time.Duration(secs) * time.Second
		v, err := d.sys.setTimeout(fd, secs)
		if err != nil {
			info.SetError = fmt.Sprintf("WDIOC_SETTIMEOUT %d: %v", secs, err)
		} else {
			setBack = v
		}
	}
	rep, gerr := d.sys.getTimeout(fd)
	switch {
	case gerr == nil && rep > 0:
		info.Reported = time.Duration(rep) * time.Second
		info.Source = "read back with WDIOC_GETTIMEOUT"
	case setBack > 0:
		info.Reported = time.Duration(setBack) * time.Second
		info.Source = "as WDIOC_SETTIMEOUT wrote it back"
	case d.cfg.TimeoutExplicit:
		info.Effective = d.cfg.Timeout
		info.Source = "the configured [watchdog] timeout (the driver reports none)"
	default:
		why := "it reports 0"
		if gerr != nil {
			why = gerr.Error()
		}
		return fmt.Errorf("watchdog %s (%s): its timeout is unknown (WDIOC_GETTIMEOUT: %s; %s) and none is configured: set [watchdog] timeout to its real firing time",
			path, identity, why, orNone(info.SetError))
	}
	if info.Reported > 0 {
		info.Effective = time.Duration(q.Factor) * info.Reported
		if known && q.Factor != 1 {
			info.Quirk = q.Identity
			info.Source += fmt.Sprintf(", × %d: %s fires after %d× its timeout", q.Factor, q.Identity, q.Factor)
		}
	}
	info.Fence = true
	switch {
	case nowayout:
		info.Note = "nowayout: it cannot be stopped; after a clean stop the machine is reset unless something feeds it"
	case known && q.Factor == 1:
		info.Note = q.Why
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "the timeout was set"
	}
	return s
}

func kindName(k Backend) string {
	switch k {
	case BackendFIFO:
		return "FIFO"
	case BackendFile:
		return "plain file"
	default:
		return string(k)
	}
}

// abort undoes a failed Arm: close, never the magic close. After a
// restart the countdown the crashed predecessor left running is what
// resets this machine if its guests are not confirmed gone; a 'V' here
// would stop it while the refused watchdog feeds nothing.
func (d *Device) abort(fd int) {
	d.sys.close(fd)
}

// Feed implements Watchdog.
func (d *Device) Feed() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return fmt.Errorf("watchdog %s: %w", d.cfg.Path, ErrNotArmed)
	}
	return d.feedLocked()
}

func (d *Device) feedLocked() error {
	if d.keepaliveIoctl {
		err := d.sys.keepalive(d.fd)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("watchdog %s: WDIOC_KEEPALIVE: %w", d.cfg.Path, err)
		}
		// Some drivers take only writes.
	}
	_, err := d.sys.write(d.fd, feedByte)
	switch {
	case err == nil:
		return nil
	case d.kind == BackendFIFO && errors.Is(err, unix.EAGAIN):
		return fmt.Errorf("watchdog %s: the supervisor is not reading (the FIFO is full): %w", d.cfg.Path, err)
	case d.kind == BackendFIFO && errors.Is(err, unix.EPIPE):
		return fmt.Errorf("watchdog %s: no supervisor is reading it any more: %w", d.cfg.Path, err)
	}
	return fmt.Errorf("watchdog %s: keepalive write: %w", d.cfg.Path, err)
}

// Disarm implements Watchdog: the magic close. With a nowayout driver it
// closes and returns an error wrapping ErrNowayout: the countdown goes on.
func (d *Device) Disarm() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return fmt.Errorf("watchdog %s: %w", d.cfg.Path, ErrNotArmed)
	}
	var werr error
	if d.magic {
		_, werr = d.sys.write(d.fd, []byte{'V'})
	}
	cerr := d.sys.close(d.fd)
	d.fd = -1
	d.info.Armed = false
	switch {
	case werr != nil:
		return fmt.Errorf("watchdog %s: magic close failed (%v): it is still counting down and resets the machine %v after the last feed", d.cfg.Path, werr, d.info.Effective)
	case cerr != nil:
		return fmt.Errorf("watchdog %s: close after the magic close: %w", d.cfg.Path, cerr)
	case d.info.Nowayout:
		return fmt.Errorf("watchdog %s: %w: the machine is reset %v after the last feed unless something feeds it", d.cfg.Path, ErrNowayout, d.info.Effective)
	}
	return nil
}

// Close implements Watchdog: close without the magic close.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return fmt.Errorf("watchdog %s: %w", d.cfg.Path, ErrNotArmed)
	}
	err := d.sys.close(d.fd)
	d.fd = -1
	d.info.Armed = false
	if err != nil {
		return fmt.Errorf("watchdog %s: close: %w", d.cfg.Path, err)
	}
	return nil
}

// Describe implements Watchdog.
func (d *Device) Describe() Info {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.info
}

// Handed is an armed watchdog as one image of a process hands it to the
// next (a re-exec): the open descriptor and what Arm learnt of it. The
// descriptor is never closed across the hand-over: closing a kernel
// watchdog without the magic close leaves it counting, and opening it again
// may fail (one owner) or re-arm a driver with other settings.
type Handed struct {
	FD             int  `json:"fd"`
	KeepaliveIoctl bool `json:"keepalive_ioctl"`
	Magic          bool `json:"magic"`
	Info           Info `json:"info"`
}

// Handoff returns the armed watchdog's descriptor and state for the next
// image, and forgets it here: after Handoff this Device is not armed and
// its descriptor is the caller's. Adopt undoes it (the exec failed).
func (d *Device) Handoff() (Handed, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return Handed{}, fmt.Errorf("watchdog %s: %w", d.cfg.Path, ErrNotArmed)
	}
	h := Handed{FD: d.fd, KeepaliveIoctl: d.keepaliveIoctl, Magic: d.magic, Info: d.info}
	d.fd = -1
	d.info.Armed = false
	return h, nil
}

// Adopt makes this Device the armed owner of a watchdog handed over by the
// previous image. It feeds at once: the previous image fed just before it
// exec'd, and the budget counts from that feed.
func (d *Device) Adopt(h Handed) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd >= 0 {
		return fmt.Errorf("watchdog %s: %w", d.cfg.Path, ErrArmed)
	}
	if h.Info.Path != d.cfg.Path {
		return fmt.Errorf("watchdog handed over is %s, the configuration names %s ([watchdog] device changed: that needs a restart)", h.Info.Path, d.cfg.Path)
	}
	d.fd, d.kind, d.keepaliveIoctl, d.magic, d.info = h.FD, h.Info.Backend, h.KeepaliveIoctl, h.Magic, h.Info
	d.info.Armed = true
	if err := d.feedLocked(); err != nil {
		return fmt.Errorf("watchdog %s handed over: first keepalive: %w", d.cfg.Path, err)
	}
	return nil
}
