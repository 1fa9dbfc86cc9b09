package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseDefaultsAndPaths(t *testing.T) {
	c, err := Parse("/etc/hbfence/hbfence.toml", []byte(`
[host]
name = "ovs1"
[heartbeat]
path = "/OVS/.server_pool_hb"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Host.Name != "ovs1" || c.Heartbeat.Offset != 0 || c.Control.Socket != DefaultSocket ||
		c.Log.Level != "info" || c.Log.Format != "json" {
		t.Errorf("defaults: %+v", c)
	}
	c, err = Parse("/srv/lab/h1.toml", []byte("[heartbeat]\npath = \"hb\"\n[control]\nsocket = \"run/s.sock\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Heartbeat.Path != "/srv/lab/hb" || c.Control.Socket != "/srv/lab/run/s.sock" {
		t.Errorf("relative paths resolve against the file's directory: %+v", c)
	}
	host, _ := os.Hostname()
	if c.Host.Name != host {
		t.Errorf("default name %q, want the machine's host name %q", c.Host.Name, host)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ name, toml, want string }{
		{"typo in a key", "[heartbeat]\npath = \"x\"\n[host]\nnmae = \"a\"\n", "unknown key host.nmae"},
		{"unknown table", "[heartbeat]\npath = \"x\"\n[watchdg]\ndevice = \"/dev/watchdog\"\n", "unknown key watchdg"},
		{"no path", "[host]\nname = \"a\"\n", "[heartbeat] path is required"},
		{"negative offset", "[heartbeat]\npath = \"x\"\noffset = -1\n", "[heartbeat] offset is -1"},
		{"wrong type", "[heartbeat]\npath = \"x\"\noffset = \"1M\"\n", "offset"},
		{"bad level", "[heartbeat]\npath = \"x\"\n[log]\nlevel = \"loud\"\n", `[log] level is "loud"; use one of debug, info, warn, error`},
		{"bad format", "[heartbeat]\npath = \"x\"\n[log]\nformat = \"xml\"\n", `[log] format is "xml"`},
		{"bad machine id", "[heartbeat]\npath = \"x\"\n[host]\nmachine_id = \"abc\"\n", "[host] machine_id"},
		{"syntax", "[heartbeat\npath = \"x\"\n", "line "},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("/etc/hbfence/hbfence.toml", []byte(c.toml))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "/etc/hbfence/hbfence.toml") {
				t.Errorf("error %q; want it to name the file and say %q", err, c.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"))
	if err == nil || !strings.Contains(err.Error(), "nope.toml") {
		t.Errorf("got %v", err)
	}
}

// The example shipped in packaging/ must parse.
func TestPackagedExampleParses(t *testing.T) {
	path := filepath.Join("..", "..", "packaging", "hbfence.toml")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("packaging/hbfence.toml is missing: %v", err)
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchdogAndFence(t *testing.T) {
	c, err := Parse("/etc/hbfence/h.toml", []byte(`
[heartbeat]
path = "/OVS/.server_pool_hb"
[watchdog]
device = "wd.fifo"
timeout = "2s"
[fence]
kill_guests = ["/usr/libexec/hbfence/kill-ha-guests", "--all"]
kill_timeout = "1500ms"
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Watchdog.Device != "/etc/hbfence/wd.fifo" || c.Watchdog.Timeout.Seconds() != 2 ||
		len(c.Fence.KillGuests) != 2 || c.Fence.KillTimeout.Milliseconds() != 1500 {
		t.Errorf("parsed %+v %+v", c.Watchdog, c.Fence)
	}
	for _, tc := range []struct{ toml, want string }{
		{"[watchdog]\ndevice = \"/dev/watchdog0\"\nallow_no_watchdog = true\n", "keep one"},
		{"[watchdog]\ntimeout = \"ten seconds\"\n", `"ten seconds" is not a duration`},
		{"[watchdog]\ntimeout = \"-1s\"\n", "[watchdog] timeout is -1s"},
		{"[fence]\nkill_guests = [\"kill.sh\"]\n", "must be an absolute path"},
		{"[fence]\nkill_timeout = \"-2s\"\n", "[fence] kill_timeout"},
	} {
		_, err := Parse("/etc/hbfence/h.toml", []byte("[heartbeat]\npath = \"x\"\n"+tc.toml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.toml, err, tc.want)
		}
	}
}
