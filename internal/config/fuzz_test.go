package config

import (
	"os"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text as a configuration file. Whatever it is,
// Parse never panics; a refusal names the file; an accepted configuration
// is one the daemon can start from (its durations are not negative and its
// paths absolute).
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("../../packaging/hbfence.toml"); err == nil {
		f.Add(string(b))
	}
	for _, s := range []string{
		"",
		"[host]\nname = \"a\"\n[heartbeat]\npath = \"/OVS/.server_pool_hb\"\n",
		"[host]\nname = \"..\"\n",
		"[watchdog]\ntimeout = \"1ns\"\n",
		"[guests]\nop_timeout = \"0s\"\nroot = \"rel\"\n",
		"[host]\nnmae = \"a\"\n",
		"[control]\nsocket = \"" + strings.Repeat("x", 200) + "\"\n",
		"[[[",
		"\x00\xff",
	} {
		f.Add(s)
	}
	const path = "/etc/hbfence/fuzz.toml"
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(path, []byte(text))
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if c.Heartbeat.Path == "" || !strings.HasPrefix(c.Heartbeat.Path, "/") {
			t.Fatalf("accepted a heartbeat path %q that is not absolute", c.Heartbeat.Path)
		}
		if c.Control.Socket == "" || !strings.HasPrefix(c.Control.Socket, "/") {
			t.Fatalf("accepted a control socket %q that is not absolute", c.Control.Socket)
		}
		if c.Guests.OpTimeout.Duration <= 0 || c.Fence.KillTimeout.Duration < 0 { // kill_timeout 0: the default, half the watchdog
			t.Fatalf("accepted non-positive durations: op_timeout %v, kill_timeout %v", c.Guests.OpTimeout, c.Fence.KillTimeout)
		}
	})
}
