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

	// Path is the file the configuration was read from.
	Path string `toml:"-"`
}

// Host identifies this host in the pool.
type Host struct {
	// Name is unique in the pool; default: the machine's host name.
	Name string `toml:"name"`
	// MachineID overrides /etc/machine-id. Only for running several hosts
	// on one machine (the demonstration pool, tests): it must differ
	// between hosts.
	MachineID string `toml:"machine_id"`
}

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

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `toml:"level"`
	// Format is "console" (human, for a terminal) or "json" (one object a
	// line, for journald and log shippers).
	Format string `toml:"format"`
}

var levels = []string{"debug", "info", "warn", "error"}
var formats = []string{"json", "console"}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return Parse(path, data)
}

// Parse validates a configuration held in memory; path is for messages
// and to resolve relative paths.
func Parse(path string, data []byte) (*Config, error) {
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
		return nil, fmt.Errorf("%s: unknown key %s (known keys: host.name, host.machine_id, heartbeat.path, heartbeat.offset, control.socket, log.level, log.format)",
			path, strings.Join(keys, ", "))
	}
	c.Path = path
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
	base := filepath.Dir(c.Path)
	for _, p := range []*string{&c.Heartbeat.Path, &c.Control.Socket} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return nil
}

func (c *Config) validate() error {
	if c.Heartbeat.Path == "" {
		return errors.New("[heartbeat] path is required: the .server_pool_hb file on the cluster root, or the shared block device")
	}
	if c.Heartbeat.Offset < 0 {
		return fmt.Errorf("[heartbeat] offset is %d; it must be 0 or more bytes", c.Heartbeat.Offset)
	}
	if c.Host.MachineID != "" {
		if _, err := ondisk.ParseUUID(c.Host.MachineID); err != nil {
			return fmt.Errorf("[host] machine_id: %v (it has the form of /etc/machine-id: 32 hex digits)", err)
		}
	}
	if !contains(levels, c.Log.Level) {
		return fmt.Errorf("[log] level is %q; use one of %s", c.Log.Level, strings.Join(levels, ", "))
	}
	if !contains(formats, c.Log.Format) {
		return fmt.Errorf("[log] format is %q; use one of %s", c.Log.Format, strings.Join(formats, ", "))
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
