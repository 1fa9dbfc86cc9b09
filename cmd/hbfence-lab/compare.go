package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/probe"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// compareRow is one line of the side-by-side table.
type compareRow struct {
	What        string    `json:"what"`
	Timing      string    `json:"timing"`
	Measures    string    `json:"measures"`
	HostDead    float64   `json:"host_dead_seconds"`
	Rule        string    `json:"host_dead_is"`
	Seconds     []float64 `json:"seconds"`
	Median      float64   `json:"median_seconds"`
	Max         float64   `json:"max_seconds"`
	MedianRatio float64   `json:"median_ratio_to_host_dead"`
	MaxRatio    float64   `json:"max_ratio_to_host_dead"`
	Skipped     string    `json:"skipped,omitempty"`
}

// benchCompare measures, on the working directory's storage and for the
// same kill (SIGKILL of the whole "machine" of the host that holds the
// lease or runs the guests), sanlock's resource-lease takeover at each
// io_timeout of ios, and hbfence's guest failover at its default profile
// and at the profile of equal stall tolerance to each of those sanlock
// settings (sanlockEquivalent), runs times each; each as seconds and as a
// ratio to its own host_dead. Without sanlock its half is skipped, and
// says so.
func benchCompare(ctx context.Context, d *demo, runs int, ios []int) error {
	var rows []compareRow
	def, err := timing.Profile("default")
	if err != nil {
		return err
	}
	row, err := compareHbfence(ctx, d, "hbfence, default profile", def, runs)
	if err != nil {
		return err
	}
	rows = append(rows, row)

	bin, preload, why := sanlockSetup(ctx, d)
	if why != nil {
		d.say("the sanlock half is skipped: %v", why)
	}
	for _, io := range ios {
		r := compareRow{What: fmt.Sprintf("sanlock %s, io_timeout %ds", sanlockVersion(ctx, bin), io),
			Measures: "kill → the other host holds the resource lease",
			Timing:   fmt.Sprintf("io_timeout=%ds id_renewal=%ds id_renewal_fail=%ds watchdog_fire=%ds", io, 2*io, sanlockRenewalFail(io), sanlockWatchdogFire),
			HostDead: float64(sanlockHostDead(io)), Rule: fmt.Sprintf("8 × io_timeout + 60 = %d s", sanlockHostDead(io))}
		if why != nil {
			r.Skipped = why.Error()
		} else if r.Seconds, err = sanlockTakeovers(ctx, d, bin, preload, io, runs); err != nil {
			return fmt.Errorf("sanlock, io_timeout %ds: %w", io, err)
		}
		rows = append(rows, r)
		eq, err := sanlockEquivalent(io)
		if err != nil {
			return err
		}
		row, err := compareHbfence(ctx, d, fmt.Sprintf("hbfence, renewal_fail = sanlock's %ds at io_timeout %ds", sanlockRenewalFail(io), io), eq, runs)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	printCompare(d, rows, runs)
	d.figure("compare_runs", runs)
	d.figure("compare", rows)
	return nil
}

// sanlockEquivalent is the hbfence timing whose stall tolerance equals
// sanlock's at io_timeout io: the same io_timeout (one I/O slower than
// that has failed, on both), and renewal_fail = sanlock's
// id_renewal_fail_seconds, 8 × io_timeout (no successful renewal for that
// long and the host gives its leases up, on both). The interval is the
// default profile's (2 s) or, where that is not below io_timeout, half of
// io_timeout; the watchdog is the default profile's 10 s, the
// watchdog's real firing time here (sanlock's 60 s is a constant of
// wdmd, not a property of the storage); host_dead is the least value the
// rules allow.
func sanlockEquivalent(io int) (timing.Params, error) {
	def, err := timing.Profile("default")
	if err != nil {
		return timing.Params{}, err
	}
	p := timing.Params{
		Interval:    def.Interval,
		IOTimeout:   time.Duration(io) * time.Second,
		RenewalFail: time.Duration(sanlockRenewalFail(io)) * time.Second,
		Watchdog:    def.Watchdog,
	}
	if p.Interval >= p.IOTimeout {
		p.Interval = p.IOTimeout / 2
	}
	hd, ok := probe.LeastHostDead(p)
	if !ok {
		return timing.Params{}, fmt.Errorf("no host_dead validates %v", p)
	}
	p.HostDead = hd
	return p, nil
}

// compareHbfence runs guestFailovers on a pool of its own with timing p.
func compareHbfence(ctx context.Context, d *demo, what string, p timing.Params, runs int) (compareRow, error) {
	name := fmt.Sprintf("hbfence-hd%v", p.HostDead)
	sub := newDemo(d.out, d.binary, filepath.Join(d.dir, name), "default")
	sub.start = d.start
	sub.initArgs = []string{"--profile", "default", "--interval", p.Interval.String(), "--io-timeout", p.IOTimeout.String(),
		"--renewal-fail", p.RenewalFail.String(), "--watchdog", p.Watchdog.String(), "--host-dead", p.HostDead.String()}
	d.say("%s: %v", what, p)
	worst, err := guestFailovers(ctx, sub, runs)
	sub.close()
	d.failed = append(d.failed, sub.failed...)
	if err != nil {
		return compareRow{}, fmt.Errorf("%s: %w", what, err)
	}
	return compareRow{What: what, Timing: p.String(), Measures: "kill → the last of the host's guests writing its disk elsewhere",
		HostDead: p.HostDead.Seconds(), Rule: "from the pool's header", Seconds: worst}, nil
}

// sanlockSetup finds sanlock and checks that its daemon starts here; it
// returns why not (the half is then skipped). A machine that refuses
// sanlock's setrlimit gets the shim (sanlockShim), and the narration says
// so.
func sanlockSetup(ctx context.Context, d *demo) (bin, preload string, why error) {
	bin, err := exec.LookPath("sanlock")
	if err != nil {
		return "", "", errNoSanlock
	}
	dir := filepath.Join(d.dir, "sanlock-check")
	r := &sanlockRig{bin: bin, dir: dir}
	h, err := r.startDaemon(1)
	if err == nil {
		h.kill()
		return bin, "", nil
	}
	if !strings.Contains(err.Error(), "cannot set the limits") {
		return "", "", fmt.Errorf("its daemon does not start here: %w", err)
	}
	so, err := sanlockShim(ctx, d.dir)
	if err != nil {
		return "", "", err
	}
	r.preload = so
	if h, err = r.startDaemon(1); err != nil {
		return "", "", fmt.Errorf("its daemon does not start here, even with the setrlimit shim: %w", err)
	}
	h.kill()
	d.say("sanlock's daemon exits here when it may not raise its memlock/rtprio/core limits to unlimited (no CAP_SYS_RESOURCE); it runs with an LD_PRELOAD shim that keeps them at the hard limit (%s), which changes none of its timing", so)
	return bin, so, nil
}

func sanlockVersion(ctx context.Context, bin string) string {
	if bin == "" {
		return ""
	}
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(strings.Fields(string(out) + " ?")[0], "sanlock")
}

// sanlockTakeovers measures sanlock's lease takeover over runs, each on a
// fresh lease file with two fresh daemons: both join the lockspace, host
// 1's holder takes the resource lease, host 2 is seen to watch host 1
// renew, then host 1's machine (daemon, helper, holder) is killed with
// SIGKILL and host 2 asks for the lease at once and again after each
// refusal (the owner still seen alive), until it holds it; the leader
// record must then name host 2.
func sanlockTakeovers(ctx context.Context, d *demo, bin, preload string, io, runs int) ([]float64, error) {
	hostDead := time.Duration(sanlockHostDead(io)) * time.Second
	var out []float64
	for i := range runs {
		r, err := newSanlockRig(ctx, bin, filepath.Join(d.dir, fmt.Sprintf("sanlock-io%d-run%d", io, i+1)), io, preload)
		if err != nil {
			return nil, err
		}
		took, err := sanlockTakeover(ctx, d, r)
		r.close()
		if err != nil {
			return nil, err
		}
		out = append(out, took.Seconds())
		d.say("sanlock io_timeout %ds, run %d/%d: host 2 held the lease %.2fs after the kill of host 1 = %.3f × its host_dead (%v)",
			io, i+1, runs, took.Seconds(), took.Seconds()/hostDead.Seconds(), hostDead)
	}
	return out, nil
}

func sanlockTakeover(ctx context.Context, d *demo, r *sanlockRig) (time.Duration, error) {
	a, b := r.hosts[0], r.hosts[1]
	joined, err := r.join(ctx)
	if err != nil {
		return 0, err
	}
	for _, h := range r.hosts {
		if err := r.register(ctx, h); err != nil {
			return 0, err
		}
	}
	if err := r.acquire(ctx, a); err != nil {
		return 0, fmt.Errorf("host 1 taking the free lease: %w", err)
	}
	if o, err := r.owner(ctx); err != nil || o != 1 {
		return 0, fmt.Errorf("the lease's owner is %d (%v), not host 1", o, err)
	}
	if err := r.seenRenewing(ctx, b, a); err != nil {
		return 0, err
	}
	d.say("sanlock io_timeout %ds: both hosts joined in %.1fs; host 1 holds the lease, host 2 sees it renew; kill -9 of host 1's daemon and holder", r.io, joined.Seconds())
	killed := time.Now()
	a.kill()
	limit := 3 * time.Duration(sanlockHostDead(r.io)) * time.Second
	refused := 0
	for {
		err := r.acquire(ctx, b)
		if err == nil {
			break
		}
		refused++
		if time.Since(killed) > limit {
			return 0, fmt.Errorf("host 2 had not taken the lease %v after the kill: %w", limit, err)
		}
		if errors.Is(ctx.Err(), context.Canceled) {
			return 0, ctx.Err()
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(killed)
	if o, err := r.owner(ctx); err != nil || o != 2 {
		return 0, fmt.Errorf("after the takeover the lease's owner is %d (%v), not host 2", o, err)
	}
	d.check(true, "host 2 owns the lease (leader record), after %d refusals while host 1 still counted as alive", refused)
	return took, nil
}

func printCompare(d *demo, rows []compareRow, runs int) {
	d.say("side by side, kill -9 of the host that holds the lease or runs the guests, %d runs each (median, max; × its own host_dead):", runs)
	for i := range rows {
		r := &rows[i]
		if r.Skipped != "" {
			d.say("  %-62s host_dead %6.1fs (%s): skipped, %s", r.What, r.HostDead, r.Rule, r.Skipped)
			continue
		}
		r.Median, r.Max = median(r.Seconds), slices.Max(r.Seconds)
		r.MedianRatio, r.MaxRatio = r.Median/r.HostDead, r.Max/r.HostDead
		d.say("  %-62s host_dead %6.1fs (%s): median %6.2fs = %.3f ×, max %6.2fs = %.3f ×",
			r.What, r.HostDead, r.Rule, r.Median, r.MedianRatio, r.Max, r.MaxRatio)
	}
}

// median is the middle value, or the mean of the two middle values of an
// even count.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
