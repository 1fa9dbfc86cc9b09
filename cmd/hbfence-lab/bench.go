package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/lab"
)

// benchDetect measures kill -9 detection over runs: a pool of three
// hosts; each run kills one, records when each observer declares it dead,
// restarts it and waits until it is live again. It reports min, median
// and max of the detection time and its ratio to host_dead.
// deadSlack is what a power loss's detection may take beyond host_dead +
// interval in the lab: the latencies of the reads and of a round's write,
// the kill itself, scheduling.
const deadSlack = 0.5

// deadWithin bounds, in seconds, a power loss's detection by an observer
// (heartbeat.Member.Run: its rounds see the last renewal land at most an
// interval late, and it reads at the deadline).
func deadWithin(t timingSeconds) float64 { return t.HostDead + t.Interval + deadSlack }

func benchDetect(ctx context.Context, d *demo, runs int) error {
	if err := sceneStart(ctx, d); err != nil {
		return err
	}
	t := d.timing
	victim := d.hosts["node2"]
	observers := []*lab.Host{d.hosts["node1"], d.hosts["node3"]}
	var samples []float64
	for i := 0; i < runs; i++ {
		killed := time.Now()
		if err := victim.Kill(); err != nil {
			return err
		}
		seen, err := d.watch(ctx, victim.Name, observers, []liveness.State{liveness.Dead}, time.Duration(3*t.HostDead*float64(time.Second)))
		if err != nil {
			return err
		}
		for _, tr := range seen[liveness.Dead] {
			after := tr.at.Sub(killed).Seconds()
			samples = append(samples, after)
			d.check(after >= t.HostDead-t.Interval-0.05, "run %d: %s declared dead after %.2fs, not before host_dead − interval", i+1, tr.observer, after)
			d.check(after <= deadWithin(t), "run %d: %s declared dead within host_dead + interval (+ %gs for the I/O and the kill)", i+1, tr.observer, deadSlack)
		}
		d.say("run %d/%d: dead after %s", i+1, runs, fmtSamples(seen[liveness.Dead], killed))
		if err := victim.Start(); err != nil {
			return err
		}
		if err := d.pool.WaitJoined(ctx, 30*time.Second, append(observers, victim)...); err != nil {
			return err
		}
	}
	slices.Sort(samples)
	lo, med, hi := samples[0], samples[len(samples)/2], samples[len(samples)-1]
	d.say("kill -9 → dead over %d runs × %d observers: min %.2fs, median %.2fs, max %.2fs; host_dead %gs; ratio median %.3f, max %.3f",
		runs, len(observers), lo, med, hi, t.HostDead, med/t.HostDead, hi/t.HostDead)
	d.figure("detection_runs", runs)
	d.figure("detection_seconds_min", lo)
	d.figure("detection_seconds_median", med)
	d.figure("detection_seconds_max", hi)
	d.figure("detection_ratio_median", med/t.HostDead)
	d.figure("detection_ratio_max", hi/t.HostDead)
	return nil
}

func fmtSamples(trs []transition, from time.Time) string {
	s := ""
	for i, tr := range trs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s %.2fs", tr.observer, tr.at.Sub(from).Seconds())
	}
	return s
}

// benchFence measures the fencing margins over runs, on a pool of three
// hosts under the watchdog stand-in (each on its own hbfence-faultfs
// mount when this machine can mount FUSE):
//
//   - freeze: node2's daemon is stopped with SIGSTOP; its watchdog resets
//     it; the margin is from the reset (wdsim's CLOCK_MONOTONIC stamp) to
//     the first observer declaring it dead;
//   - storage cut (faultfs only): node2's storage fails with EIO and its
//     kill_guests hook fails, so its watchdog resets it; same margin, and
//     the hook's lead over the first "dead";
//   - stalls (faultfs only): node3's storage hangs for growing fractions
//     of renewal_fail; the largest fraction survived without a fence.
//
// Between runs node2 is restarted and waited for until its watchdog is
// armed.
func benchFence(ctx context.Context, d *demo, runs int) error {
	faultErr := lab.FaultFSAvailable()
	if faultErr == nil {
		if _, err := os.Stat(lab.FaultFSBinary(d.binary)); err != nil {
			faultErr = fmt.Errorf("%w: %v (make build puts it next to hbfence)", lab.ErrNoFaultFS, err)
		}
	}
	p, err := lab.NewPool(ctx, lab.Options{Binary: d.binary, Dir: d.dir, Watchdog: true, FaultFS: faultErr == nil,
		InitArgs: []string{"--profile", d.profile, "--slots", "8"}})
	if err != nil {
		return err
	}
	if _, err := d.startHosts(ctx, p, []string{"node1", "node2", "node3"}, 60*time.Second); err != nil {
		return err
	}
	tm := p.Timing
	d.timing = timingSeconds{Interval: tm.Interval.Seconds(), RenewalFail: tm.RenewalFail.Seconds(), HostDead: tm.HostDead.Seconds(), Watchdog: tm.Watchdog.Seconds()}
	d.say("pool %s: interval %v, io_timeout %v, renewal_fail %v, watchdog %v, host_dead %v; three hosts under hbfence-wdsim",
		d.profile, tm.Interval, tm.IOTimeout, tm.RenewalFail, tm.Watchdog, tm.HostDead)
	if faultErr == nil {
		d.say("each host reaches the heartbeat file through its own hbfence-faultfs mount")
	} else {
		d.say("no storage-cut or stall runs: %v", faultErr)
	}
	d.figure("fence_timing", map[string]float64{"interval": tm.Interval.Seconds(), "io_timeout": tm.IOTimeout.Seconds(),
		"renewal_fail": tm.RenewalFail.Seconds(), "watchdog": tm.Watchdog.Seconds(), "host_dead": tm.HostDead.Seconds()})

	victim := d.hosts["node2"]
	observers := []*lab.Host{d.hosts["node1"], d.hosts["node3"]}
	freeze := func() error { return victim.Freeze() }
	margins, _, err := benchResets(ctx, d, "freeze", victim, observers, runs, freeze, nil)
	if err != nil {
		return err
	}
	reportMargins(d, "freeze", "SIGSTOP → watchdog reset → first dead", margins, nil)
	if faultErr != nil {
		return nil
	}
	if err := victim.SetHookFails(true); err != nil {
		return err
	}
	margins, hookLeads, err := benchResets(ctx, d, "cut", victim, observers, runs, victim.CutStorage, victim.RestoreStorage)
	if err != nil {
		return err
	}
	reportMargins(d, "storage_cut", "storage EIO, hook fails → watchdog reset → first dead", margins, hookLeads)
	return benchStalls(ctx, d, d.hosts["node3"], []*lab.Host{d.hosts["node1"], victim})
}

// benchResets runs fault on victim runs times; each time the victim must
// be reset by its watchdog before every observer declares it dead. It
// returns the margins (first dead − reset) and, when the victim ran its
// kill_guests hook, the hook's lead over the first dead.
func benchResets(ctx context.Context, d *demo, name string, victim *lab.Host, observers []*lab.Host, runs int, fault, restore func() error) (margins, hookLeads []float64, err error) {
	t := d.timing
	for i := 0; i < runs; i++ {
		if err := waitArmed(ctx, victim); err != nil {
			return nil, nil, err
		}
		hooks := len(victim.HookRuns())
		resetsBefore := len(victim.Resets())
		start := time.Now()
		if err := fault(); err != nil {
			return nil, nil, err
		}
		seen, err := d.watch(ctx, victim.Name, observers, []liveness.State{liveness.Dead}, time.Duration(3*t.HostDead*float64(time.Second)))
		if err != nil {
			return nil, nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = victim.Wait(wctx)
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("%s run %d: %v", name, i+1, err)
		}
		resets := victim.Resets()
		if len(resets) != resetsBefore+1 {
			return nil, nil, fmt.Errorf("%s run %d: %d new reset records, want 1", name, i+1, len(resets)-resetsBefore)
		}
		reset := lab.MonoTime(resets[len(resets)-1].MonoNS)
		first := seen[liveness.Dead][0].at
		for _, tr := range seen[liveness.Dead] {
			if tr.at.Before(first) {
				first = tr.at
			}
		}
		m := first.Sub(reset).Seconds()
		margins = append(margins, m)
		d.check(m > 0, "%s run %d/%d: reset %.2fs after the fault, first dead %.2fs after: margin %.3fs",
			name, i+1, runs, reset.Sub(start).Seconds(), first.Sub(start).Seconds(), m)
		if hr := victim.HookRuns(); len(hr) > hooks {
			lead := first.Sub(hr[hooks].At).Seconds()
			hookLeads = append(hookLeads, lead)
			d.check(lead > 0, "%s run %d/%d: kill_guests hook ran %.2fs after the fault, %.3fs before the first dead", name, i+1, runs, hr[hooks].At.Sub(start).Seconds(), lead)
		}
		if restore != nil {
			if err := restore(); err != nil {
				return nil, nil, err
			}
		}
		if err := victim.Start(); err != nil {
			return nil, nil, err
		}
		if err := d.pool.WaitJoined(ctx, 30*time.Second, append(observers, victim)...); err != nil {
			return nil, nil, err
		}
	}
	return margins, hookLeads, nil
}

func waitArmed(ctx context.Context, h *lab.Host) error {
	return lab.WaitUntil(ctx, 10*time.Second, 20*time.Millisecond, h.Name+"'s watchdog armed", func() (bool, error) {
		st, err := h.Status(ctx)
		return err == nil && st.Watchdog.Armed && !st.Watchdog.Unsafe, err
	})
}

func reportMargins(d *demo, key, what string, margins, hookLeads []float64) {
	lo, med, hi := stats(margins)
	d.say("%s over %d runs: margin reset → first dead min %.3fs, median %.3fs, max %.3fs (host_dead − renewal_fail − watchdog = %gs)",
		what, len(margins), lo, med, hi, d.timing.HostDead-d.timing.RenewalFail-d.timing.Watchdog)
	d.figure(key+"_runs", len(margins))
	d.figure(key+"_reset_to_dead_margin_seconds_min", lo)
	d.figure(key+"_reset_to_dead_margin_seconds_median", med)
	d.figure(key+"_reset_to_dead_margin_seconds_max", hi)
	if len(hookLeads) > 0 {
		lo, med, hi := stats(hookLeads)
		d.say("%s: kill_guests hook → first dead min %.3fs, median %.3fs, max %.3fs", key, lo, med, hi)
		d.figure(key+"_hook_to_dead_seconds_min", lo)
		d.figure(key+"_hook_to_dead_seconds_median", med)
		d.figure(key+"_hook_to_dead_seconds_max", hi)
	}
}

func stats(v []float64) (lo, med, hi float64) {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1]
}

// benchStalls hangs h's storage for growing fractions of renewal_fail,
// five times each at random phases of the renewal schedule, and reports the largest fraction no stall of which
// fenced h (with all smaller ones survived too). h's hook confirms, so a
// stall that fences it leaves it to rejoin once the storage is back.
func benchStalls(ctx context.Context, d *demo, h *lab.Host, observers []*lab.Host) error {
	if err := h.SetHookFails(false); err != nil {
		return err
	}
	rf := time.Duration(d.timing.RenewalFail * float64(time.Second))
	const tries = 5
	largest := 0.0
	broken := false
	var results []map[string]any
	for _, f := range []float64{0.5, 0.7, 0.8, 0.85, 0.9, 0.95} {
		stall := time.Duration(f * float64(rf)).Round(time.Millisecond)
		fences := 0
		for i := 0; i < tries; i++ {
			if err := waitArmed(ctx, h); err != nil {
				return err
			}
			fenced, gap, err := stallHost(ctx, d, h, observers, stall, rf)
			if err != nil {
				return err
			}
			if fenced {
				fences++
			}
			d.say("stall %.2f × renewal_fail (%v), try %d/%d: %s", f, stall, i+1, tries,
				map[bool]string{true: "FENCED (kill_guests hook ran)", false: fmt.Sprintf("survived, largest gap between renewals %.3fs", gap.Seconds())}[fenced])
		}
		results = append(results, map[string]any{"fraction": f, "stall_seconds": stall.Seconds(), "tries": tries, "fenced": fences})
		if fences == 0 && !broken {
			largest = f
		}
		if fences > 0 {
			broken = true
		}
	}
	d.say("largest storage stall survived without a fence (every try, and every smaller fraction): %.2f × renewal_fail = %.3fs (renewal_fail %v, interval %gs)",
		largest, largest*rf.Seconds(), rf, d.timing.Interval)
	d.figure("stall_runs", results)
	d.figure("stall_survived_fraction", largest)
	d.figure("stall_survived_seconds", largest*rf.Seconds())
	return nil
}

// stallHost hangs h's storage for stall, then restores it, and watches
// until renewal_fail plus a second after the stall began: fenced is true if
// h ran its kill_guests hook (then it waits until h has rejoined). An
// observer declaring h dead is an error: a stall this short never lets
// host_dead pass.
func stallHost(ctx context.Context, d *demo, h *lab.Host, observers []*lab.Host, stall, rf time.Duration) (fenced bool, gap time.Duration, err error) {
	hooks := len(h.HookRuns())
	last, err := h.LastRenewal(ctx)
	if err != nil {
		return false, 0, err
	}
	var bad error
	watch := func() {
		if lr, err := h.LastRenewal(ctx); err == nil && !lr.IsZero() && lr.After(last.Add(time.Millisecond)) {
			gap = max(gap, lr.Sub(last))
			last = lr
		}
		for _, o := range observers {
			if s, _, _, err := o.PeerState(ctx, h.Name); err == nil && s == liveness.Dead && bad == nil {
				bad = fmt.Errorf("%s declared %s dead during a %v stall", o.Name, h.Name, stall)
			}
		}
	}
	// Start at a random phase of the renewal schedule: just after a
	// renewal began, plus a random part of an interval. (Tries spaced by
	// whole intervals would otherwise all hit the same phase.)
	err = lab.WaitUntil(ctx, 5*time.Second, time.Millisecond, h.Name+" renews", func() (bool, error) {
		lr, err := h.LastRenewal(ctx)
		return err == nil && lr.After(last.Add(time.Millisecond)), err
	})
	if err != nil {
		return false, 0, err
	}
	interval := time.Duration(d.timing.Interval * float64(time.Second))
	time.Sleep(rand.N(interval))
	last, _ = h.LastRenewal(ctx)
	start := time.Now()
	if err := h.HangStorage(); err != nil {
		return false, 0, err
	}
	restored := false
	err = lab.WaitUntil(ctx, stall+rf+5*time.Second, 10*time.Millisecond, "the stall and renewal_fail after it", func() (bool, error) {
		if !restored && time.Since(start) >= stall {
			if err := h.RestoreStorage(); err != nil {
				return false, err
			}
			restored = true
		}
		watch()
		return bad != nil || (restored && time.Since(start) > rf+time.Second), nil
	})
	if !restored {
		h.RestoreStorage()
	}
	if bad != nil {
		return false, gap, bad
	}
	if err != nil {
		return false, gap, err
	}
	fenced = len(h.HookRuns()) > hooks
	if fenced {
		// It rejoins as a new incarnation; wait until all see it live.
		err = waitLive(ctx, h, observers)
	}
	return fenced, gap, err
}

func waitLive(ctx context.Context, h *lab.Host, observers []*lab.Host) error {
	return lab.WaitUntil(ctx, 30*time.Second, 20*time.Millisecond, h.Name+" live again after its fence", func() (bool, error) {
		st, err := h.Status(ctx)
		if err != nil || !st.Joined {
			return false, err
		}
		for _, o := range observers {
			s, _, _, err := o.PeerState(ctx, h.Name)
			if err != nil || s != liveness.Live {
				return false, err
			}
		}
		return true, nil
	})
}
