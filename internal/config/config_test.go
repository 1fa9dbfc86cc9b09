package config

import (
	"errors"
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
		c.Log.Level != "info" || c.Log.Format != "json" || c.Log.Target != "auto" || c.Daemon.StateDir != DefaultStateDir ||
		c.Guests.MaxConcurrentStarts != DefaultMaxConcurrentStarts {
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
		{"zero concurrent starts", "[heartbeat]\npath = \"x\"\n[guests]\nmax_concurrent_starts = 0\n", "[guests] max_concurrent_starts is 0"},
		{"negative concurrent starts", "[heartbeat]\npath = \"x\"\n[guests]\nmax_concurrent_starts = -2\n", "[guests] max_concurrent_starts is -2; it must be 1 or more"},
		{"concurrent starts not a number", "[heartbeat]\npath = \"x\"\n[guests]\nmax_concurrent_starts = \"8\"\n", "max_concurrent_starts"},
		{"bad log target", "[heartbeat]\npath = \"x\"\n[log]\ntarget = \"syslog\"\n", `[log] target is "syslog"; use one of auto, journal, stderr`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("/etc/hbfence/hbfence.toml", []byte(c.toml))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q is not ErrInvalid: the daemon would not exit 78", err)
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
	hook := filepath.Join(t.TempDir(), "kill-ha-guests")
	if err := os.WriteFile(hook, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("/etc/hbfence/h.toml", []byte(`
[heartbeat]
path = "/OVS/.server_pool_hb"
[watchdog]
device = "wd.fifo"
timeout = "2s"
[fence]
kill_guests = ["`+hook+`", "--all"]
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
		{"[watchdog]\ntest_mode = true\n", "no device is set"},
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

// The rules of docs/configuration.md's bad-input table: each refused with
// the key named, before any side effect.
func TestBadInputRules(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	long := "/run/" + strings.Repeat("s", MaxSocketPath)
	for _, tc := range []struct{ name, toml, want string }{
		{"dotdot host", "[host]\nname = \"..\"\n", "[host] name"},
		{"slash host", "[host]\nname = \"a/b\"\n", "contains '/'"},
		{"traversal host", "[host]\nname = \"../../etc\"\n", "[host] name"},
		{"option host", "[host]\nname = \"-sCMD\"\n", "begins with '-'"},
		{"zero machine id", "[host]\nname = \"a\"\nmachine_id = \"00000000000000000000000000000000\"\n", "all zeroes"},
		{"1ns watchdog", "[watchdog]\ntimeout = \"1ns\"\n", "whole number of seconds"},
		{"499ms watchdog", "[watchdog]\ntimeout = \"499ms\"\n", "whole number of seconds"},
		{"1.5s watchdog", "[watchdog]\ntimeout = \"1500ms\"\n", "whole number of seconds"},
		{"0s watchdog", "[watchdog]\ntimeout = \"0s\"\n", "[watchdog] timeout is 0"},
		{"0s op_timeout", "[guests]\nop_timeout = \"0s\"\n", "[guests] op_timeout is 0"},
		{"0s kill_timeout", "[fence]\nkill_timeout = \"0s\"\n", "[fence] kill_timeout is 0"},
		{"missing hook", "[fence]\nkill_guests = [\"/nonexistent/kill\"]\n", "install it or fix the path"},
		{"hook not executable", "[fence]\nkill_guests = [\"" + notExec + "\"]\n", "not an executable file"},
		{"relative root", "[guests]\nroot = \"ovs\"\n", "[guests] root \"ovs\" is relative"},
		{"root a file", "[guests]\nroot = \"" + notExec + "\"\n", "is not a directory"},
		{"driver twice", "[guests]\ndrivers = [\"xl\", \"xl\"]\n", "names \"xl\" twice"},
		{"exec script missing", "[guests]\ndrivers = [\"exec\"]\nexec = [\"/nonexistent/guestctl\"]\n", "[guests] exec"},
		{"relative xl_path", "[guests]\nxl_path = \"xl\"\n", "[guests] xl_path \"xl\" is not an absolute path"},
		{"virsh_path not executable", "[guests]\nvirsh_path = \"" + notExec + "\"\n", "not an executable file"},
		{"virsh_uri not a URI", "[guests]\nvirsh_uri = \"system\"\n", "[guests] virsh_uri \"system\" is not a libvirt URI"},
		{"virsh_migrate_uri without %s", "[guests]\nvirsh_migrate_uri = \"qemu+ssh://node2/system\"\n", "one %s for the destination host"},
		{"virsh_migrate_uri two %s", "[guests]\nvirsh_migrate_uri = \"qemu+ssh://%s/%s\"\n", "one %s for the destination host"},
		{"socket too long", "[control]\nsocket = \"" + long + "\"\n", "at most 107"},
		{"metrics not .prom", "[metrics]\ntextfile = \"" + dir + "/hbfence.txt\"\n", "ending in .prom"},
		{"metrics directory missing", "[metrics]\ntextfile = \"/nonexistent/collector/hbfence.prom\"\n", "its directory /nonexistent/collector does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(filepath.Join(dir, "h.toml"), []byte("[heartbeat]\npath = \"/OVS/.server_pool_hb\"\n"+tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat("/run/" + strings.Repeat("s", MaxSocketPath)); err == nil {
		t.Error("the too-long socket's path exists")
	}
}

// A cluster root that is not there yet is a warning, not an error: the
// daemon may start before the mount.
func TestMissingRootWarns(t *testing.T) {
	c, err := Parse("/etc/hbfence/h.toml", []byte("[heartbeat]\npath = \"/OVS/.server_pool_hb\"\n[guests]\nroot = \"/nonexistent/ovs\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "[guests] root /nonexistent/ovs") {
		t.Errorf("warnings %q, want one naming [guests] root", c.Warnings)
	}
}

func TestLoadMissingFileIsInvalid(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "none.toml") {
		t.Errorf("Load of a missing file: %v; want ErrInvalid naming the file", err)
	}
	if Invalid(nil) != nil {
		t.Error("Invalid(nil) is not nil")
	}
}
