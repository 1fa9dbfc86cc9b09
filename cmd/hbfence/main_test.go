package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hb runs the command line in-process and returns its exit code and
// output.
func hb(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustInit(t *testing.T, path string, args ...string) {
	t.Helper()
	code, _, stderr := hb(t, append(append([]string{"init"}, args...), path)...)
	if code != 0 {
		t.Fatalf("init %s: exit %d: %s", path, code, stderr)
	}
}

func TestInitThenDump(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".server_pool_hb")
	code, out, stderr := hb(t, "init", "--profile", "fast", "--slots", "2000", "--uuid", "0123456789abcdef0123456789abcdef", "--json", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var h struct {
		PoolUUID string `json:"pool_uuid"`
		Slots    int    `json:"slots"`
		HostDead string `json:"host_dead"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatal(err)
	}
	if h.PoolUUID != "01234567-89ab-cdef-0123-456789abcdef" || h.Slots != 2000 || h.HostDead != "6s" {
		t.Errorf("init wrote %+v", h)
	}
	code, out, stderr = hb(t, "dump", path)
	if code != 0 {
		t.Fatalf("dump: exit %d: %s", code, stderr)
	}
	for _, want := range []string{"01234567-89ab-cdef-0123-456789abcdef", "2000 slots", "host_dead 6s", "(no slot in use)"} {
		if !strings.Contains(out, want) {
			t.Errorf("dump output lacks %q:\n%s", want, out)
		}
	}
}

// Bad input gets a clear error and changes nothing on storage.
func TestInitRefusals(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name     string
		content  []byte // nil: an existing hbfence area
		args     []string
		wantCode int
		want     string
	}{
		{"existing area", nil, nil, 1, "holds an hbfence area of pool"},
		{"another program's file", bytes.Repeat([]byte("SQLite format 3\x00"), 512), nil, 1, `data that is not zeroes at byte 0 of the area (first bytes "SQLite format 3\x00")`},
		{"timing rule", make([]byte, 0), []string{"--host-dead", "20s"}, 1, `timing rule "host_dead > renewal_fail + watchdog + margin" is broken`},
		{"interval rule", make([]byte, 0), []string{"--interval", "6s"}, 1, `timing rule "interval < io_timeout"`},
		{"renewal rule", make([]byte, 0), []string{"--renewal-fail", "14s"}, 1, `timing rule "renewal_fail >= 3 × io_timeout"`},
		{"unknown profile", make([]byte, 0), []string{"--profile", "turbo"}, 2, `unknown timing profile "turbo" (known: default, fast, slow)`},
		{"bad sector size", make([]byte, 0), []string{"--sector-size", "1024"}, 2, "use 512 or 4096"},
		{"too many slots", make([]byte, 0), []string{"--slots", "5000"}, 1, "slot count 5000 is out of range"},
		{"bad uuid", make([]byte, 0), []string{"--uuid", "xyz"}, 2, "--uuid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			if c.content == nil {
				mustInit(t, path)
			} else if err := os.WriteFile(path, c.content, 0o600); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(path)
			code, _, stderr := hb(t, append(append([]string{"init"}, c.args...), path)...)
			if code != c.wantCode {
				t.Errorf("exit %d, want %d: %s", code, c.wantCode, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("error %q does not say %q", stderr, c.want)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(before, after) {
				t.Error("the file changed")
			}
		})
	}
}

func TestInitForceOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hb")
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xAA}, 1<<16), 0o600); err != nil {
		t.Fatal(err)
	}
	mustInit(t, path, "--force", "--profile", "fast")
	if code, _, stderr := hb(t, "dump", path); code != 0 {
		t.Fatalf("dump after --force: %s", stderr)
	}
}

func TestDumpBadInput(t *testing.T) {
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated")
	mustInit(t, truncated, "--slots", "64")
	if err := os.Truncate(truncated, 8192); err != nil {
		t.Fatal(err)
	}
	zeroes := filepath.Join(dir, "zeroes")
	os.WriteFile(zeroes, make([]byte, 1<<16), 0o600)
	other := filepath.Join(dir, "other")
	os.WriteFile(other, bytes.Repeat([]byte("\x7fELF"), 1<<14), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{truncated}, "truncated: the header describes"},
		{[]string{zeroes}, "not formatted (all zeroes); format it with hbfence init"},
		{[]string{other}, `not an hbfence heartbeat area: first bytes are "\x7fELF\x7fELF"`},
		{[]string{filepath.Join(dir, "missing")}, "no such file or directory"},
		{[]string{"--offset", "100", zeroes}, "must be a multiple of"},
		{[]string{}, "want exactly one PATH"},
	} {
		code, _, stderr := hb(t, append([]string{"dump"}, c.args...)...)
		if code == 0 || !strings.Contains(stderr, c.want) {
			t.Errorf("dump %v: exit %d, %q; want an error saying %q", c.args, code, stderr, c.want)
		}
	}
}

func TestDaemonConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hbfence.toml")
	os.WriteFile(cfg, []byte("[heartbeat]\npath = \"/x\"\n[host]\nnmae = \"a\"\n"), 0o600)
	code, _, stderr := hb(t, "daemon", "--config", cfg)
	if code != 78 || !strings.Contains(stderr, "unknown key host.nmae") || !strings.Contains(stderr, cfg) {
		t.Errorf("exit %d: %q; want the file and the unknown key named", code, stderr)
	}
	code, _, stderr = hb(t, "status", "--socket", filepath.Join(dir, "none.sock"))
	if code != 1 || !strings.Contains(stderr, "no hbfence daemon at") {
		t.Errorf("status without a daemon: exit %d: %q", code, stderr)
	}
}

func TestUsage(t *testing.T) {
	if code, _, stderr := hb(t, "frobnicate"); code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if code, out, _ := hb(t, "version"); code != 0 || !strings.HasPrefix(out, "hbfence ") {
		t.Errorf("version: %d %q", code, out)
	}
	if code, _, _ := hb(t, "init", "--bogus", "x"); code != 2 {
		t.Errorf("bad flag: exit %d, want 2", code)
	}
}

// hbfence --version is hbfence version (the RPM's test runs the installed
// binary with it).
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, stderr := hb(t, args...)
		if code != 0 || out != "hbfence "+version+"\n" {
			t.Errorf("hbfence %s: exit %d, stdout %q, stderr %q; want 0 and %q", strings.Join(args, " "), code, out, stderr, "hbfence "+version+"\n")
		}
	}
}
