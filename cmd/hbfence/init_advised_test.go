package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hbfence init --profile advised --from PROBE.json formats the pool with
// the probe's advice, under the profile name "advised".
func TestInitAdvisedFromProbe(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := hb(t, "probe", "--duration", "1s", "--rate", "50ms", "--watchdog", "7s", "--json", dir)
	if code != 0 {
		t.Fatalf("probe: exit %d: %s", code, stderr)
	}
	a := decodeProbe(t, out).Advice
	if a == nil {
		t.Fatalf("probe gave no advice:\n%s", out)
	}
	probeFile := filepath.Join(dir, "probe.json")
	if err := os.WriteFile(probeFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := filepath.Join(dir, "pool.hb")
	code, out, stderr = hb(t, "init", "--json", "--profile", "advised", "--from", probeFile, pool)
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, stderr)
	}
	var h struct {
		Profile     string `json:"profile"`
		Interval    string `json:"interval"`
		IOTimeout   string `json:"io_timeout"`
		RenewalFail string `json:"renewal_fail"`
		Watchdog    string `json:"watchdog"`
		HostDead    string `json:"host_dead"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("init --json: %v\n%s", err, out)
	}
	if h.Profile != "advised" || h.Interval != a.Interval || h.IOTimeout != a.IOTimeout || h.RenewalFail != a.RenewalFail ||
		h.Watchdog != a.Watchdog || h.HostDead != a.HostDead {
		t.Errorf("init wrote %+v, the advice was %+v", h, a)
	}
}

// A bad PROBE.json is refused with an error naming the file and the
// field, and nothing is written.
func TestInitAdvisedRefusals(t *testing.T) {
	dir := t.TempDir()
	good := `{"interval": "300ms", "io_timeout": "500ms", "renewal_fail": "1.5s", "watchdog": "10s", "host_dead": "11.7s"}`
	with := func(field, value string) string {
		var m map[string]json.RawMessage
		json.Unmarshal([]byte(good), &m)
		if value == "" {
			delete(m, field)
		} else {
			m[field] = json.RawMessage(value)
		}
		b, _ := json.Marshal(m)
		return `{"target": "scratch file /x", "advice": ` + string(b) + `}`
	}
	cases := []struct {
		name     string
		content  string // "" : no file
		args     []string
		wantCode int
		want     string
	}{
		{"no --from", "", []string{"--profile", "advised"}, 2, "--profile advised needs --from PROBE.json"},
		{"--from without advised", "", []string{"--profile", "fast", "--from", "FILE"}, 2, "--from is for --profile advised"},
		{"missing file", "", []string{"--profile", "advised", "--from", "FILE"}, 1, "no such file or directory"},
		{"not JSON", "interval=2s", []string{"--profile", "advised", "--from", "FILE"}, 1, "FILE: not the output of hbfence probe --json"},
		{"no advice", `{"target": "x"}`, []string{"--profile", "advised", "--from", "FILE"}, 1, "FILE: no field advice"},
		{"advice null", `{"advice": null, "advice_error": "no write+read pair completed"}`, []string{"--profile", "advised", "--from", "FILE"}, 1,
			"FILE: field advice is null: the probe gave no advice (no write+read pair completed)"},
		{"field missing", with("renewal_fail", ""), []string{"--profile", "advised", "--from", "FILE"}, 1, "FILE: field advice.renewal_fail is missing"},
		{"field a number", with("io_timeout", "5"), []string{"--profile", "advised", "--from", "FILE"}, 1, `FILE: field advice.io_timeout is 5: want a duration in quotes`},
		{"field not a duration", with("host_dead", `"soon"`), []string{"--profile", "advised", "--from", "FILE"}, 1, `FILE: field advice.host_dead: "soon" is not a duration`},
		{"rule broken", with("host_dead", `"5s"`), []string{"--profile", "advised", "--from", "FILE"}, 1,
			`FILE: field advice: timing rule "host_dead > renewal_fail + watchdog + margin" is broken`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".json")
			if c.content != "" {
				if err := os.WriteFile(file, []byte(c.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"init"}
			for _, a := range c.args {
				args = append(args, strings.ReplaceAll(a, "FILE", file))
			}
			pool := file + ".hb"
			code, _, stderr := hb(t, append(args, pool)...)
			want := strings.ReplaceAll(c.want, "FILE", file)
			if code != c.wantCode || !strings.Contains(stderr, want) {
				t.Errorf("exit %d, stderr %q; want exit %d saying %q", code, stderr, c.wantCode, want)
			}
			if b, err := os.ReadFile(pool); err == nil && !bytes.Equal(b, make([]byte, len(b))) {
				t.Errorf("%s was written", pool)
			}
		})
	}
	// The good advice itself formats.
	file := filepath.Join(dir, "good.json")
	os.WriteFile(file, []byte(with("interval", `"300ms"`)), 0o600)
	mustInit(t, filepath.Join(dir, "good.hb"), "--profile", "advised", "--from", file)
}

// The header names the profile its timing is: a flag that changes a
// figure makes the timing "custom"; a flag that repeats the profile's own
// figure keeps its name.
func TestInitProfileNameFollowsTheTiming(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--profile", "fast"}, "fast"},
		{[]string{"--profile", "fast", "--interval", "250ms"}, "fast"},
		{[]string{"--profile", "fast", "--host-dead", "7s"}, "custom"},
		{[]string{"--interval", "1s", "--io-timeout", "2s"}, "custom"},
	} {
		pool := filepath.Join(t.TempDir(), "pool.hb")
		code, out, stderr := hb(t, append(append([]string{"init", "--json"}, c.args...), pool)...)
		if code != 0 {
			t.Fatalf("init %v: exit %d: %s", c.args, code, stderr)
		}
		var h struct {
			Profile string `json:"profile"`
		}
		if err := json.Unmarshal([]byte(out), &h); err != nil || h.Profile != c.want {
			t.Errorf("init %v: profile %q (%v), want %q", c.args, h.Profile, err, c.want)
		}
	}
}
