// Package config reads the daemon's TOML configuration file. Every key is
// checked when the file is read: an unknown key, a wrong type or a bad
// value is an error naming the file, the key and what would fix it.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// DefaultPath is where the RPM installs the configuration.
const DefaultPath = "/etc/hbfence/hbfence.toml"

// DefaultSocket is the control socket the daemon listens on.
const DefaultSocket = "/run/hbfence/hbfence.sock"

// Config is the daemon's configuration.
type Config struct {
	Host      Host      `toml:"host"`
	Heartbeat Heartbeat `toml:"heartbeat"`
	Control   Control   `toml:"control"`
	Log       Log       `toml:"log"`
	Watchdog  Watchdog  `toml:"watchdog"`
	Fence     Fence     `toml:"fence"`
	Guests    Guests    `toml:"guests"`
	Daemon    Daemon    `toml:"daemon"`
	Metrics   Metrics   `toml:"metrics"`
	Storage   Storage   `toml:"storage"`

	// Path is the file the configuration was read from.
	Path string `toml:"-"`
	// Warnings are findings that do not stop the daemon but that the
	// operator should see (the daemon logs each at start), each naming
	// its key.
	Warnings []string `toml:"-"`
}

// MaxSocketPath is the longest control socket path a unix socket address
// holds (sun_path is 108 bytes with its terminating NUL).
const MaxSocketPath = 107

// Host identifies this host in the pool.
type Host struct {
	// Name is unique in the pool; default: the machine's host name.
	Name string `toml:"name"`
	// MachineID overrides /etc/machine-id. Only for running several hosts
	// on one machine (the demonstration pool, tests): it must differ
	// between hosts.
	MachineID string `toml:"machine_id"`
}

// Daemon is where the daemon keeps what outlives one incarnation of it on
// this boot (package internal/runstate).
type Daemon struct {
	// RunDir holds the run-state file; default /run/hbfence (systemd's
	// RuntimeDirectory=, emptied at boot).
	RunDir string `toml:"run_dir"`
	// StateDir keeps what must outlive a reset of the machine: the
	// reason of the last fence (internal/lastfence, file last-fence);
	// default /var/lib/hbfence (systemd's StateDirectory=).
	StateDir string `toml:"state_dir"`
	// LockMemory locks the daemon's memory (mlockall); default true.
	LockMemory *bool `toml:"lock_memory"`
	// RealtimePriority runs the daemon's threads under SCHED_RR at this
	// priority (1-99); 0 keeps the normal policy; default 1.
	RealtimePriority *int `toml:"realtime_priority"`
	// OOMScoreAdj is the daemon's oom_score_adj (-1000..1000); default
	// -1000 (never chosen by the OOM killer).
	OOMScoreAdj *int `toml:"oom_score_adj"`
}

// Protection is what internal/sysprio applies: the [daemon] keys with
// their defaults.
func (d Daemon) Protection() (lockMemory bool, realtimePriority, oomScoreAdj int) {
	lockMemory, realtimePriority, oomScoreAdj = true, DefaultRealtimePriority, DefaultOOMScoreAdj
	if d.LockMemory != nil {
		lockMemory = *d.LockMemory
	}
	if d.RealtimePriority != nil {
		realtimePriority = *d.RealtimePriority
	}
	if d.OOMScoreAdj != nil {
		oomScoreAdj = *d.OOMScoreAdj
	}
	return
}

// The defaults of [daemon] realtime_priority and oom_score_adj. Any
// real-time priority runs before every normal process (the guests, a
// backup); a higher one matters only against other real-time tasks, which
// the kernel's own threads are.
const (
	DefaultRealtimePriority = 1
	DefaultOOMScoreAdj      = -1000
)

// DefaultRunDir is the default [daemon] run_dir.
const DefaultRunDir = "/run/hbfence"

// DefaultStateDir is the default [daemon] state_dir.
const DefaultStateDir = "/var/lib/hbfence"

// Heartbeat locates the heartbeat area.
type Heartbeat struct {
	// Path is the .server_pool_hb file on the cluster root, or the shared
	// block device.
	Path string `toml:"path"`
	// Offset is where the area starts, in bytes (an OCFS2 pool's region
	// of the shared device).
	Offset int64 `toml:"offset"`
}

// Control is the local control socket.
type Control struct {
	Socket string `toml:"socket"`
}

// Watchdog says what resets this machine when the daemon stops feeding.
type Watchdog struct {
	// Device is the kernel watchdog device, or a plain file or FIFO read
	// by a supervisor (tests, the demonstration pool). Empty: the first of
	// /dev/watchdog0 and /dev/watchdog that exists.
	Device string `toml:"device"`
	// Timeout is the timeout to set, as a Go duration ("10s"); default:
	// the pool's watchdog figure. Required for a file or FIFO, which
	// cannot report one.
	Timeout Duration `toml:"timeout"`
	// AllowNoWatchdog runs without any watchdog. The host is then unsafe
	// (a stalled daemon cannot fence it) and every status says so.
	AllowNoWatchdog bool `toml:"allow_no_watchdog"`
	// TestMode accepts a plain file at Device (tests only). A plain file
	// resets nothing: the host is then unsafe, as with no watchdog, and
	// every status says so. Without it a plain file is refused.
	TestMode bool `toml:"test_mode"`
}

// Fence says how this host fences itself.
type Fence struct {
	// KillGuests is the hook (argv, no shell) that destroys every HA
	// guest of this host and exits 0 only when they are confirmed gone.
	// Empty: this host runs no HA guests.
	KillGuests []string `toml:"kill_guests"`
	// KillTimeout bounds the hook; default: half the pool's watchdog.
	KillTimeout Duration `toml:"kill_timeout"`
}

// Guests configures the guest side: where the pool's guest records live
// and which hypervisor drivers this host has.
type Guests struct {
	// Root is the cluster root; the records live in ROOT/.hbfence.
	// Default: the directory of [heartbeat] path when that is a file (an
	// NFS pool's .server_pool_hb). Required on a block-device pool, where
	// it is the OCFS2 cluster root's mount point.
	Root string `toml:"root"`
	// Drivers this host runs guests with: any of process, xl, virsh,
	// exec. Empty: this host runs no guests (it still reports, and may be
	// master).
	Drivers []string `toml:"drivers"`
	// StateDir keeps the process driver's pid files; default
	// /run/hbfence/guests.
	StateDir string `toml:"state_dir"`
	// Exec is the exec driver's script (argv, absolute path).
	Exec []string `toml:"exec"`
	// XlPath, VirshPath: the programs (default: found on PATH).
	XlPath    string `toml:"xl_path"`
	VirshPath string `toml:"virsh_path"`
	// VirshURI is libvirt's connection (default qemu:///system);
	// VirshMigrateURI the destination of a live migration, %s for the
	// host (default qemu+ssh://%s/system).
	VirshURI        string `toml:"virsh_uri"`
	VirshMigrateURI string `toml:"virsh_migrate_uri"`
	// OpTimeout bounds one start or stop; default 2m.
	OpTimeout Duration `toml:"op_timeout"`
	// MaxConcurrentStarts bounds the guest starts under way on this host
	// at once (a failed host's guests placed here wait their turn);
	// default DefaultMaxConcurrentStarts.
	MaxConcurrentStarts int `toml:"max_concurrent_starts"`
}

// DefaultMaxConcurrentStarts is [guests] max_concurrent_starts when the key
// is left out.
const DefaultMaxConcurrentStarts = 8

// DriverNames are the drivers [guests] drivers may name.
var DriverNames = []string{"process", "xl", "virsh", "exec"}

// Duration is a time.Duration written as a Go duration string ("10s").
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write it like \"10s\" or \"1m30s\")", b)
	}
	d.Duration = v
	return nil
}

// Log configures logging.
// Metrics is [metrics]: the figures of hbfence status --check for a
// monitoring system, without a listener.
type Metrics struct {
	// Textfile, when set, is a file the daemon rewrites every interval in
	// the Prometheus text format, for node_exporter's textfile collector
	// (its directory, e.g. /var/lib/node_exporter/textfile_collector,
	// must exist). Empty: no file.
	Textfile string `toml:"textfile"`
}

type Log struct {
	// Level is debug, info, warn or error.
	Level string `toml:"level"`
	// Format is "console" (human, for a terminal) or "json" (one object a
	// line, for journald and log shippers).
	Format string `toml:"format"`
	// Target is where the lines go: "auto" (the default: the journal's
	// native protocol when stderr is the journal, as under systemd,
	// else stderr), "journal" (always the journal; a line it does not
	// take goes to stderr) or "stderr" (never the journal).
	Target string `toml:"target"`
}

var levels = []string{"debug", "info", "warn", "error"}
var formats = []string{"json", "console"}

// LogTargets are the values of [log] target.
var LogTargets = []string{"auto", "journal", "stderr"}

// ErrInvalid marks an error of the configuration: the file cannot be
// read, or a key is unknown, has a bad value, or names a path or device
// that is missing or of the wrong kind. The daemon exits 78 (EX_CONFIG)
// on such an error, so that systemd (RestartPreventExitStatus=78) does
// not start it again until the operator fixes the file.
var ErrInvalid = errors.New("configuration error")

type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{e.err, ErrInvalid} }

// Invalid marks err as an error of the configuration (ErrInvalid); nil
// stays nil.
func Invalid(err error) error {
	if err == nil || errors.Is(err, ErrInvalid) {
		return err
	}
	return invalidError{err}
}

// Load reads and validates the file at path. Every error it returns is
// ErrInvalid.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, Invalid(fmt.Errorf("reading configuration: %w; the RPM installs one with every key commented (/etc/hbfence/hbfence.toml; in the source: packaging/hbfence.toml): copy it there, or name another file with --config (a client command can name the daemon's socket with --socket instead)", err))
	}
	if err != nil {
		return nil, Invalid(fmt.Errorf("reading configuration: %w", err))
	}
	return Parse(path, data)
}

// Parse validates a configuration held in memory; path is for messages
// and to resolve relative paths. Every error it returns is ErrInvalid.
func Parse(path string, data []byte) (*Config, error) {
	c, err := parse(path, data)
	return c, Invalid(err)
}

func parse(path string, data []byte) (*Config, error) {
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%s: line %d: %s", path, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown key %s (known keys: host.name, host.machine_id, heartbeat.path, heartbeat.offset, control.socket, log.level, log.format, log.target, watchdog.device, watchdog.timeout, watchdog.allow_no_watchdog, watchdog.test_mode, fence.kill_guests, fence.kill_timeout, guests.root, guests.drivers, guests.state_dir, guests.exec, guests.xl_path, guests.virsh_path, guests.virsh_uri, guests.virsh_migrate_uri, guests.op_timeout, guests.max_concurrent_starts, daemon.run_dir, daemon.state_dir, daemon.lock_memory, daemon.realtime_priority, daemon.oom_score_adj, metrics.textfile, storage.cluster_root, storage.cluster_root_uuid, storage.nfs_version, storage.ocfs2_heartbeat, storage.mount_base, storage.ovs_link, storage.mount_attempts, storage.mount_backoff, storage.lab_pool)",
			path, strings.Join(keys, ", "))
	}
	c.Path = path
	if err := c.explicitZeroes(md); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.defaults(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) defaults() error {
	if c.Host.Name == "" {
		n, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("[host] name is not set and the host name cannot be read: %w", err)
		}
		c.Host.Name = n
	}
	if c.Control.Socket == "" {
		c.Control.Socket = DefaultSocket
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "json"
	}
	if c.Log.Target == "" {
		c.Log.Target = "auto"
	}
	if c.Daemon.StateDir == "" {
		c.Daemon.StateDir = DefaultStateDir
	}
	if c.Guests.StateDir == "" {
		c.Guests.StateDir = "/run/hbfence/guests"
	}
	if c.Daemon.RunDir == "" {
		c.Daemon.RunDir = DefaultRunDir
	}
	if c.Guests.OpTimeout.Duration == 0 {
		c.Guests.OpTimeout.Duration = 2 * time.Minute
	}
	if c.Guests.MaxConcurrentStarts == 0 {
		c.Guests.MaxConcurrentStarts = DefaultMaxConcurrentStarts
	}
	c.Storage.defaults()
	if c.Guests.Root != "" && !filepath.IsAbs(c.Guests.Root) {
		return fmt.Errorf("[guests] root %q is relative; name the cluster root's mount point by its absolute path", c.Guests.Root)
	}
	base := filepath.Dir(c.Path)
	for _, p := range []*string{&c.Heartbeat.Path, &c.Control.Socket, &c.Watchdog.Device, &c.Guests.Root, &c.Guests.StateDir, &c.Daemon.RunDir, &c.Daemon.StateDir, &c.Metrics.Textfile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	if t := c.Metrics.Textfile; t != "" {
		if !strings.HasSuffix(t, ".prom") {
			return fmt.Errorf("[metrics] textfile %q: node_exporter reads only files ending in .prom; name it so (e.g. /var/lib/node_exporter/textfile_collector/hbfence.prom)", t)
		}
		if fi, err := os.Stat(filepath.Dir(t)); err != nil || !fi.IsDir() {
			return fmt.Errorf("[metrics] textfile %q: its directory %s does not exist (create it, or point the key at node_exporter's --collector.textfile.directory)", t, filepath.Dir(t))
		}
	}
	return nil
}

// explicitZeroes refuses a duration key written as zero: a zero left out
// means the default, but one written down is a mistake the default would
// hide.
func (c *Config) explicitZeroes(md toml.MetaData) error {
	for _, k := range []struct {
		table, key string
		d          Duration
	}{
		{"watchdog", "timeout", c.Watchdog.Timeout},
		{"fence", "kill_timeout", c.Fence.KillTimeout},
		{"guests", "op_timeout", c.Guests.OpTimeout},
		{"storage", "mount_backoff", c.Storage.MountBackoff},
	} {
		if md.IsDefined(k.table, k.key) && k.d.Duration == 0 {
			return fmt.Errorf("[%s] %s is 0; leave the key out for the default, or give a positive duration", k.table, k.key)
		}
	}
	if md.IsDefined("guests", "max_concurrent_starts") && c.Guests.MaxConcurrentStarts == 0 {
		return errors.New("[guests] max_concurrent_starts is 0; leave the key out for the default (8), or give 1 or more (1: one start at a time)")
	}
	if md.IsDefined("storage", "mount_attempts") && c.Storage.MountAttempts == 0 {
		return errors.New("[storage] mount_attempts is 0; leave the key out for the default (4), or give 1 or more")
	}
	return nil
}

func (c *Config) validate() error {
	if err := ondisk.ValidHostName(c.Host.Name); err != nil {
		return fmt.Errorf("[host] name: %w", err)
	}
	if len(c.Control.Socket) > MaxSocketPath {
		return fmt.Errorf("[control] socket %q is %d bytes; a unix socket path holds at most %d: choose a shorter path", c.Control.Socket, len(c.Control.Socket), MaxSocketPath)
	}
	if c.Heartbeat.Path == "" {
		return errors.New("[heartbeat] path is required: the .server_pool_hb file on the cluster root, or the shared block device")
	}
	if c.Heartbeat.Offset < 0 {
		return fmt.Errorf("[heartbeat] offset is %d; it must be 0 or more bytes", c.Heartbeat.Offset)
	}
	if c.Host.MachineID != "" {
		u, err := ondisk.ParseUUID(c.Host.MachineID)
		if err != nil {
			return fmt.Errorf("[host] machine_id: %v (it has the form of /etc/machine-id: 32 hex digits)", err)
		}
		if u.IsZero() {
			return errors.New("[host] machine_id is all zeroes, which turns off the join's checks against this machine's own records; give each host its own id (systemd-id128 new)")
		}
	}
	if c.Watchdog.Device != "" && c.Watchdog.AllowNoWatchdog {
		return errors.New("[watchdog] sets both device and allow_no_watchdog = true; keep one")
	}
	if c.Watchdog.TestMode && c.Watchdog.Device == "" {
		return errors.New("[watchdog] test_mode = true accepts a plain file at [watchdog] device, and no device is set: set device, or remove test_mode")
	}
	if d := c.Watchdog.Timeout.Duration; d < 0 {
		return fmt.Errorf("[watchdog] timeout is %v; it must be positive", d)
	} else if d != 0 && (d < time.Second || d%time.Second != 0) {
		return fmt.Errorf("[watchdog] timeout is %v; it must be a whole number of seconds, at least 1s (the kernel's watchdog counts seconds)", d)
	}
	if p := c.Daemon.RealtimePriority; p != nil && (*p < 0 || *p > 99) {
		return fmt.Errorf("[daemon] realtime_priority is %d; it must be 0 (the normal policy) or a SCHED_RR priority from 1 to 99", *p)
	}
	if a := c.Daemon.OOMScoreAdj; a != nil && (*a < -1000 || *a > 1000) {
		return fmt.Errorf("[daemon] oom_score_adj is %d; it must be from -1000 to 1000", *a)
	}
	if c.Fence.KillTimeout.Duration < 0 {
		return fmt.Errorf("[fence] kill_timeout is %v; it must be positive", c.Fence.KillTimeout.Duration)
	}
	if len(c.Fence.KillGuests) > 0 {
		if err := executable("[fence] kill_guests", c.Fence.KillGuests[0]); err != nil {
			return err
		}
	}
	for i, d := range c.Guests.Drivers {
		if !contains(DriverNames, d) {
			return fmt.Errorf("[guests] drivers: unknown driver %q; use any of %s", d, strings.Join(DriverNames, ", "))
		}
		if contains(c.Guests.Drivers[:i], d) {
			return fmt.Errorf("[guests] drivers names %q twice; name each driver once", d)
		}
	}
	if c.Guests.Root != "" {
		if fi, err := os.Stat(c.Guests.Root); err != nil {
			c.Warnings = append(c.Warnings, fmt.Sprintf("[guests] root %s: %v; the guest side waits for it (is the cluster root mounted?)", c.Guests.Root, err))
		} else if !fi.IsDir() {
			return fmt.Errorf("[guests] root %s is not a directory; name the cluster root's mount point", c.Guests.Root)
		}
	}
	if contains(c.Guests.Drivers, "exec") {
		if len(c.Guests.Exec) == 0 {
			return errors.New("[guests] drivers names exec: set [guests] exec to the script's argv, starting with its absolute path")
		}
		if err := executable("[guests] exec", c.Guests.Exec[0]); err != nil {
			return err
		}
	}
	if err := c.validateDriverPaths(); err != nil {
		return err
	}
	if c.Guests.OpTimeout.Duration < 0 {
		return fmt.Errorf("[guests] op_timeout is %v; it must be positive", c.Guests.OpTimeout.Duration)
	}
	if n := c.Guests.MaxConcurrentStarts; n < 1 {
		return fmt.Errorf("[guests] max_concurrent_starts is %d; it must be 1 or more (1: one start at a time)", n)
	}
	if err := c.validateStorage(); err != nil {
		return err
	}
	if !contains(levels, c.Log.Level) {
		return fmt.Errorf("[log] level is %q; use one of %s", c.Log.Level, strings.Join(levels, ", "))
	}
	if !contains(formats, c.Log.Format) {
		return fmt.Errorf("[log] format is %q; use one of %s", c.Log.Format, strings.Join(formats, ", "))
	}
	if !contains(LogTargets, c.Log.Target) {
		return fmt.Errorf("[log] target is %q; use one of %s", c.Log.Target, strings.Join(LogTargets, ", "))
	}
	return nil
}

// executable checks that a hook or script named by key exists and can be
// run: found missing only when the fence needs it would be too late.
func executable(key, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%s: %q must be an absolute path", key, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %v; install it or fix the path", key, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s: %s is not an executable file (mode %v)", key, path, fi.Mode())
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// validateDriverPaths checks [guests] xl_path, virsh_path (absolute
// executable files when set), virsh_uri (a libvirt URI with a scheme) and
// virsh_migrate_uri (a URI with one %s for the destination host).
func (c *Config) validateDriverPaths() error {
	g := c.Guests
	for _, p := range []struct{ key, path string }{{"[guests] xl_path", g.XlPath}, {"[guests] virsh_path", g.VirshPath}} {
		if p.path == "" {
			continue
		}
		if !filepath.IsAbs(p.path) {
			return fmt.Errorf("%s %q is not an absolute path; name the program's path (such as /usr/sbin/xl), or remove the key to find it on PATH", p.key, p.path)
		}
		if err := executable(p.key, p.path); err != nil {
			return err
		}
	}
	if g.VirshURI != "" && !strings.Contains(g.VirshURI, ":/") {
		return fmt.Errorf("[guests] virsh_uri %q is not a libvirt URI (such as qemu:///system); remove the key for the default", g.VirshURI)
	}
	if u := g.VirshMigrateURI; u != "" && (strings.Count(u, "%s") != 1 || strings.Count(u, "%") != 1 || !strings.Contains(u, "://")) {
		return fmt.Errorf("[guests] virsh_migrate_uri %q must be a URI with one %%s for the destination host (such as qemu+ssh://%%s/system), and no other %%", u)
	}
	return nil
}
