package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

type probeResult struct {
	Mode        string `json:"mode"`
	Slot        *int   `json:"slot"`
	Interrupted bool   `json:"interrupted"`
	Samples     int    `json:"samples"`
	Cycles      int    `json:"cycles"`
	Errors      int    `json:"errors"`
	Latency     struct {
		P50  *float64 `json:"p50"`
		P99  *float64 `json:"p99"`
		P999 *float64 `json:"p999"`
		Max  *float64 `json:"max"`
	} `json:"latency_ms"`
	LongestStall *float64 `json:"longest_stall_ms"`
	Histogram    []struct {
		From  float64  `json:"from_ms"`
		To    *float64 `json:"to_ms"`
		Count int      `json:"count"`
	} `json:"histogram"`
	Advice *struct {
		Interval    string            `json:"interval"`
		IOTimeout   string            `json:"io_timeout"`
		RenewalFail string            `json:"renewal_fail"`
		Watchdog    string            `json:"watchdog"`
		HostDead    string            `json:"host_dead"`
		DeadWithin  string            `json:"dead_within"`
		InitFlags   string            `json:"init_flags"`
		Why         map[string]string `json:"why"`
	} `json:"advice"`
}

func decodeProbe(t *testing.T, out string) probeResult {
	t.Helper()
	var r probeResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("probe --json output: %v\n%s", err, out)
	}
	return r
}

// The probe's JSON has the documented fields, and the init flags it
// advises format a pool with exactly that timing.
func TestProbeJSONAndInitFlags(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := hb(t, "probe", "--duration", "1500ms", "--rate", "50ms", "--watchdog", "5s", "--json", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := decodeProbe(t, out)
	if r.Mode != "scratch" || r.Samples == 0 || r.Samples != 2*r.Cycles || r.Errors != 0 || r.Interrupted {
		t.Errorf("result %+v", r)
	}
	l := r.Latency
	if l.P50 == nil || l.P99 == nil || l.P999 == nil || l.Max == nil || r.LongestStall == nil {
		t.Fatalf("latency_ms lacks p50, p99, p999 or max, or longest_stall_ms is missing:\n%s", out)
	}
	if !(*l.P50 <= *l.P99 && *l.P99 <= *l.P999 && *l.P999 <= *l.Max) {
		t.Errorf("percentiles out of order: %s", out)
	}
	n := 0
	for _, b := range r.Histogram {
		n += b.Count
	}
	if n != r.Samples {
		t.Errorf("histogram holds %d, samples %d", n, r.Samples)
	}
	if !strings.Contains(stderr, "hbfence probe:   1s: ") || !strings.Contains(stderr, "p99 ") {
		t.Errorf("no progress line on stderr:\n%s", stderr)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("scratch file left behind: %v", ents)
	}
	a := r.Advice
	if a == nil || a.Watchdog != "5s" || len(a.Why) != 5 {
		t.Fatalf("advice %+v", a)
	}
	iv, err1 := time.ParseDuration(a.Interval)
	hd, err2 := time.ParseDuration(a.HostDead)
	dw, err3 := time.ParseDuration(a.DeadWithin)
	if err := errors.Join(err1, err2, err3); err != nil || dw != hd+iv {
		t.Errorf("dead_within %q, want host_dead + interval (%v): %v", a.DeadWithin, hd+iv, err)
	}
	pool := filepath.Join(dir, "pool.hb")
	code, out, stderr = hb(t, append(append([]string{"init", "--json"}, strings.Fields(a.InitFlags)...), pool)...)
	if code != 0 {
		t.Fatalf("init %s: exit %d: %s", a.InitFlags, code, stderr)
	}
	var h struct{ Interval, IOTimeout, RenewalFail, Watchdog, HostDead string }
	var raw map[string]any
	json.Unmarshal([]byte(out), &raw)
	h.Interval, h.IOTimeout, h.RenewalFail = raw["interval"].(string), raw["io_timeout"].(string), raw["renewal_fail"].(string)
	h.Watchdog, h.HostDead = raw["watchdog"].(string), raw["host_dead"].(string)
	if h.Interval != a.Interval || h.IOTimeout != a.IOTimeout || h.RenewalFail != a.RenewalFail || h.Watchdog != a.Watchdog || h.HostDead != a.HostDead {
		t.Errorf("init wrote %+v, the advice was %+v", h, a)
	}
}

func TestProbeText(t *testing.T) {
	dir := t.TempDir()
	code, out, stderr := hb(t, "probe", "--duration", "500ms", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"probed scratch file " + dir, "write+read", "p99.9", "longest stall", "histogram of all I/Os:",
		"advice (safety factor 3, watchdog 10s):", "io_timeout", "host_dead",
		"the master declares the host dead within host_dead + interval = ", "hbfence init --interval "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// On a formatted area the probe names the unused slot it used.
func TestProbeArea(t *testing.T) {
	pool := filepath.Join(t.TempDir(), "pool.hb")
	mustInit(t, pool, "--profile", "fast", "--slots", "4")
	before, _ := os.ReadFile(pool)
	code, out, stderr := hb(t, "probe", "--duration", "500ms", "--json", pool)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	r := decodeProbe(t, out)
	if r.Mode != "slot" || r.Slot == nil || *r.Slot != 3 {
		t.Errorf("mode %q slot %v, want slot 3", r.Mode, r.Slot)
	}
	if !strings.Contains(stderr, "unused slot 3") {
		t.Errorf("stderr does not say which slot:\n%s", stderr)
	}
	if after, _ := os.ReadFile(pool); !bytes.Equal(before, after) {
		t.Error("the area changed")
	}
}

// A stop signal (the context ends) prints what was measured.
func TestProbeInterrupted(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"probe", "--duration", "1h", "--json", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	r := decodeProbe(t, out.String())
	if !r.Interrupted || r.Samples == 0 || r.Advice == nil {
		t.Errorf("interrupted %v, samples %d, advice %v", r.Interrupted, r.Samples, r.Advice)
	}
	if !strings.Contains(errOut.String(), "interrupted after") {
		t.Errorf("stderr: %s", errOut.String())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("scratch file left behind: %v", ents)
	}
}

func TestProbeUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"probe"}, 2, "want exactly one PATH"},
		{[]string{"probe", "--factor", "0.5", dir}, 2, "--factor 0.5"},
		{[]string{"probe", "--watchdog", "0s", dir}, 2, "effective firing time"},
		{[]string{"probe", "--rate", "0s", dir}, 2, "must be positive"},
		{[]string{"probe", "--offset", "4096", dir}, 1, "is a directory"},
		{[]string{"probe", filepath.Join(dir, "nope")}, 1, "no such file"},
	} {
		code, _, stderr := hb(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// notifyWriter is a stderr that closes seen when a line containing want
// is written.
type notifyWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

// A real SIGINT (Ctrl-C) stops the probe, which reports and cleans up.
func TestProbeSIGINT(t *testing.T) {
	dir := t.TempDir()
	// The first progress line: the signal handler is installed and
	// pairs have completed.
	errOut := &notifyWriter{want: "hbfence probe:   1s: ", seen: make(chan struct{})}
	var out bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- run(context.Background(), []string{"probe", "--duration", "1h", "--json", dir}, &out, errOut)
	}()
	select {
	case <-errOut.seen:
	case c := <-code:
		t.Fatalf("probe ended with %d before it started: %s", c, errOut.buf.String())
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if c := <-code; c != 0 {
		t.Fatalf("exit %d after SIGINT: %s", c, errOut.buf.String())
	}
	r := decodeProbe(t, out.String())
	if !r.Interrupted {
		t.Errorf("not reported as interrupted: %s", out.String())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("scratch file left behind: %v", ents)
	}
}
