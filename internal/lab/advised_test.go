package lab_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/probe"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/faultfs"
	"github.com/hbfence/hbfence/internal/lab"
)

// The advised profile survives the stalls it was advised for. The
// storage hangs for 3 s in the middle of a probe (hbfence probe, a real
// process, through a faultfs mount of the pool's directory); a pool
// formatted from the probe's advice (hbfence init --profile advised
// --from PROBE.json) hangs as long under a real daemon, which neither
// fences nor is seen dead. The next faster timing, what the same probe
// would have advised had it not seen the stall (the same I/O latencies,
// no stall), has a renewal_fail below the stall: a pool with it, hung as
// long, fences.
func TestAdvisedProfileSurvivesItsStalls(t *testing.T) {
	if err := lab.FaultFSAvailable(); err != nil {
		t.Skip("SKIP: " + err.Error())
	}
	const stall = 3 * time.Second
	ctx := context.Background()
	dir := t.TempDir() // the pool's directory, probed first
	probeFile := filepath.Join(t.TempDir(), "probe.json")
	advised, obs := probeWithStall(t, dir, probeFile, stall)

	p, hosts := faultPoolWith(t, lab.Options{Dir: dir, InitArgs: []string{"--profile", "advised", "--from", probeFile, "--slots", "8"}}, "a1", "a2")
	a, b := hosts[0], hosts[1]
	if got := (timing.Params{Interval: p.Timing.Interval, IOTimeout: p.Timing.IOTimeout, RenewalFail: p.Timing.RenewalFail,
		Watchdog: p.Timing.Watchdog, HostDead: p.Timing.HostDead}); got != advised {
		t.Fatalf("the pool's header holds %v, the advice was %v", got, advised)
	}
	waitArmed(t, b)
	worst, err := stallOnce(ctx, b, []*lab.Host{a}, "hang", stall)
	if err != nil {
		t.Fatalf("advised pool %v, storage hung %v: %v\nlog:\n%s", advised, stall, err, lastLog(b, 10))
	}
	if runs := b.HookRuns(); len(runs) != 0 {
		t.Fatalf("%s's kill_guests hook ran: %+v", b.Name, runs)
	}
	if r := b.Resets(); len(r) != 0 || b.Exited() {
		t.Fatalf("%s was reset (%d records) or exited (%v)", b.Name, len(r), b.Exited())
	}
	t.Logf("advised %v: storage hung %v, no fence (worst renewal gap %v)", advised, stall, worst.Round(time.Millisecond))

	quiet := obs
	quiet.LongestStall, quiet.Timeouts = 0, 0
	adv, err := probe.Advise(quiet, probe.DefaultFactor, advised.Watchdog)
	if err != nil {
		t.Fatal(err)
	}
	faster := adv.Params
	if faster.HostDead >= advised.HostDead || faster.RenewalFail >= probe.DefaultFactor*obs.LongestStall {
		t.Fatalf("the advice without the stall, %v, is not faster than %v or covers the stall", faster, advised)
	}
	// A stall of more than renewal_fail + one interval (the renewal before
	// it began at most an interval earlier) fences the host during it.
	if faster.RenewalFail+faster.Interval >= stall {
		t.Fatalf("renewal_fail %v + interval %v of %v is not below the stall %v: it proves nothing", faster.RenewalFail, faster.Interval, faster, stall)
	}
	_, hosts = faultPoolWith(t, lab.Options{InitArgs: []string{"--interval", faster.Interval.String(), "--io-timeout", faster.IOTimeout.String(),
		"--renewal-fail", faster.RenewalFail.String(), "--watchdog", faster.Watchdog.String(), "--host-dead", faster.HostDead.String(), "--slots", "8"}}, "f1", "f2")
	f := hosts[1]
	waitArmed(t, f)
	if err := f.HangStorage(); err != nil {
		t.Fatal(err)
	}
	err = lab.WaitUntil(ctx, stall, 10*time.Millisecond, f.Name+" fences while its storage hangs", func() (bool, error) {
		return len(f.HookRuns()) > 0, nil
	})
	if rerr := f.RestoreStorage(); rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatalf("%v, storage hung %v: %v\nlog:\n%s", faster, stall, err, lastLog(f, 10))
	}
	t.Logf("next faster %v: storage hung %v, fenced (%s)", faster, stall, f.HookRuns()[0].Reason)
}

// probeWithStall runs hbfence probe --json through a faultfs mount of dir
// that hangs every operation for stall once the probe is under way, writes
// its output to probeFile and returns its advice and what it observed;
// the probe must have seen the stall.
func probeWithStall(t *testing.T, dir, probeFile string, stall time.Duration) (timing.Params, probe.Observed) {
	t.Helper()
	mnt := t.TempDir()
	fs, err := faultfs.Mount(faultfs.Options{Backing: dir, Mountpoint: mnt, Name: "advised-probe"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := fs.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	}()
	hung := make(chan error, 1)
	go func() {
		ctx := context.Background()
		err := lab.WaitUntil(ctx, 10*time.Second, 5*time.Millisecond, "the probe writing", func() (bool, error) { return fs.Stats().Writes >= 10, nil })
		if err == nil {
			err = fs.Set(faultfs.OpAll, faultfs.Fault{Hang: true})
		}
		if err == nil {
			err = lab.WaitUntil(ctx, 10*time.Second, 5*time.Millisecond, "an I/O hung", func() (bool, error) { return fs.Stats().Hung > 0, nil })
			time.Sleep(stall) // the stall itself, from the first hung I/O
		}
		if serr := fs.Set(faultfs.OpAll, faultfs.Fault{}); err == nil {
			err = serr
		}
		hung <- err
	}()
	// --timeout below the stall: the hung I/O times out and counts in the
	// longest stall; --watchdog: the lab's watchdog stand-in fires
	// after the pool's watchdog figure, so that is its effective time.
	out, err := exec.Command(binary, "probe", "--json", "--duration", "6s", "--timeout", "500ms", "--watchdog", "2s", mnt).Output()
	if herr := <-hung; herr != nil {
		t.Fatal(herr)
	}
	if err != nil {
		t.Fatalf("hbfence probe: %v\n%s", err, out)
	}
	var r struct {
		LongestStallMS float64 `json:"longest_stall_ms"`
		Timeouts       int     `json:"timeouts"`
		Pair           struct {
			P999 float64 `json:"p999"`
			Max  float64 `json:"max"`
		} `json:"write_read_ms"`
		Advice map[string]any `json:"advice"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Advice == nil {
		t.Fatalf("probe --json: %v, no advice:\n%s", err, out)
	}
	msec := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	obs := probe.Observed{PairMax: msec(r.Pair.Max), PairP999: msec(r.Pair.P999), LongestStall: msec(r.LongestStallMS), Timeouts: r.Timeouts}
	if obs.LongestStall < stall {
		t.Fatalf("the probe's longest stall is %v, shorter than the %v the storage hung", obs.LongestStall, stall)
	}
	if err := os.WriteFile(probeFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	var p timing.Params
	for name, d := range map[string]*time.Duration{"interval": &p.Interval, "io_timeout": &p.IOTimeout, "renewal_fail": &p.RenewalFail, "watchdog": &p.Watchdog, "host_dead": &p.HostDead} {
		s, _ := r.Advice[name].(string)
		if *d, err = time.ParseDuration(s); err != nil {
			t.Fatalf("advice.%s: %v", name, err)
		}
	}
	t.Logf("probe through a %v hang: %+v; advice %v", stall, obs, p)
	return p, obs
}
