package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
	"golang.org/x/sys/unix"
)

// massRun is one mass failover, in seconds from the kill.
type massRun struct {
	dead      float64 // the master declared the victim dead
	lastExec  float64 // the last guest's new copy was executed (its process's start time)
	lastFirst float64 // ... and wrote its first record
}

// benchMass measures mass failover (issue 13): for each bound of
// concurrent starts, runs times, a fresh pool of three hosts under the
// watchdog stand-in (the default profile unless -profile was given, every
// host with [guests] max_concurrent_starts = bound): node1 alone starts
// guests HA process guests (a record every second), node2 and node3 join,
// the master role moves to node2, and node1 is killed with SIGKILL (the
// whole machine). From the disks: the time from the kill to the first
// record of the last guest's new copy, as a ratio to host_dead; from the
// master's status: when it declared node1 dead; from /proc: when the last
// guest's new process began. The daemons' share is from "dead" to that
// exec; the guest's own start, from its exec to its first record.
func benchMass(ctx context.Context, d *demo, guests, runs int, bounds []int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	all := map[string]any{}
	for _, bound := range bounds {
		var res []massRun
		for i := 0; i < runs; i++ {
			r, err := massOnce(ctx, d, self, guests, bound, fmt.Sprintf("bound%d-run%d", bound, i+1))
			if d.pool != nil {
				d.pool.Close()
			}
			if err != nil {
				return fmt.Errorf("bound %d, run %d: %w", bound, i+1, err)
			}
			res = append(res, r)
			t := d.timing
			goal := t.HostDead + 2*t.Interval + (r.lastFirst - r.lastExec)
			d.say("bound %d, run %d/%d: dead after %.2fs = %.3f × host_dead; the last of %d guests wrote again elsewhere after %.2fs = %.3f × host_dead; the daemons' share (dead → its exec) %.2fs, its own start %.3fs; goal host_dead + 2 intervals + its start = %.2fs: %s",
				bound, i+1, runs, r.dead, r.dead/t.HostDead, guests, r.lastFirst, r.lastFirst/t.HostDead, r.lastExec-r.dead, r.lastFirst-r.lastExec, goal,
				map[bool]string{true: "met", false: "NOT met"}[r.lastFirst <= goal])
			d.check(r.dead <= deadWithin(t), "bound %d, run %d: node1 declared dead within host_dead + interval (+ %gs for the I/O and the kill)", bound, i+1, deadSlack)
		}
		t := d.timing
		var ratio, share, start []float64
		met := 0
		for _, r := range res {
			ratio = append(ratio, r.lastFirst/t.HostDead)
			share = append(share, r.lastExec-r.dead)
			start = append(start, r.lastFirst-r.lastExec)
			if r.lastFirst <= t.HostDead+2*t.Interval+(r.lastFirst-r.lastExec) {
				met++
			}
		}
		_, rmed, rmax := stats(ratio)
		_, smed, smax := stats(share)
		_, gmed, gmax := stats(start)
		d.say("max_concurrent_starts %d, %d guests, %d runs: the last guest after median %.3f, max %.3f × host_dead (%gs); the daemons' share median %.2fs, max %.2fs; the guest's own start median %.3fs, max %.3fs; goal met in %d of %d",
			bound, guests, runs, rmed, rmax, t.HostDead, smed, smax, gmed, gmax, met, runs)
		all[strconv.Itoa(bound)] = map[string]any{"runs": runs, "guests": guests,
			"last_guest_ratio_median": rmed, "last_guest_ratio_max": rmax,
			"daemon_share_seconds_median": smed, "daemon_share_seconds_max": smax,
			"guest_start_seconds_median": gmed, "guest_start_seconds_max": gmax, "goal_met": met}
	}
	d.figure("mass_failover", map[string]any{"profile": d.profile, "host_dead": d.timing.HostDead, "interval": d.timing.Interval, "by_max_concurrent_starts": all})
	return nil
}

func massOnce(ctx context.Context, d *demo, self string, guests, bound int, name string) (massRun, error) {
	var r massRun
	p, err := lab.NewPool(ctx, lab.Options{Binary: d.binary, Dir: filepath.Join(d.dir, name), Watchdog: true, Guests: true, MaxConcurrentStarts: bound,
		InitArgs: []string{"--profile", d.profile, "--slots", "8"}})
	if err != nil {
		return r, err
	}
	d.pool = p
	tm := p.Timing
	d.timing = timingSeconds{Interval: tm.Interval.Seconds(), RenewalFail: tm.RenewalFail.Seconds(), HostDead: tm.HostDead.Seconds(), Watchdog: tm.Watchdog.Seconds()}
	hosts := map[string]*lab.Host{}
	start := func(names ...string) error {
		var hs []*lab.Host
		for _, n := range names {
			h, err := p.AddHost(n, "")
			if err != nil {
				return err
			}
			if err := h.Start(); err != nil {
				return err
			}
			hosts[n] = h
		}
		for _, h := range hosts {
			hs = append(hs, h)
		}
		return p.WaitJoined(ctx, 2*time.Minute, hs...)
	}
	if err := start("node1"); err != nil {
		return r, err
	}
	victim := hosts["node1"]
	if _, _, _, err := lab.WaitActing(ctx, []*lab.Host{victim}, 0, 3*tm.HostDead); err != nil {
		return r, err
	}
	var specs []lab.GuestSpec
	var names []string
	for i := 1; i <= guests; i++ {
		specs = append(specs, lab.GuestSpec{Name: fmt.Sprintf("m%03d", i), HA: true, Period: time.Second})
		names = append(names, specs[i-1].Name)
	}
	if err := p.AddGuests(ctx, victim, self, specs...); err != nil {
		return r, err
	}
	onVictim := func(gs map[string]agent.GuestStatus) bool { return len(guestsOn(gs, "node1")) == guests }
	if _, err := victim.WaitGuests(ctx, 5*time.Minute, "every guest running on node1", onVictim); err != nil {
		return r, err
	}
	if err := start("node2", "node3"); err != nil {
		return r, err
	}
	if _, err := victim.MoveMaster(ctx, "node2"); err != nil {
		return r, fmt.Errorf("master move to node2: %w", err)
	}
	master := hosts["node2"]
	if _, _, _, err := lab.WaitActing(ctx, []*lab.Host{master}, 0, 3*tm.HostDead); err != nil {
		return r, err
	}
	if _, err := master.WaitGuests(ctx, 3*tm.HostDead, "node2's plan: every guest on node1", onVictim); err != nil {
		return r, err
	}
	killedMono := time.Duration(lab.MonoNow())
	killed := time.Now()
	if err := victim.Kill(); err != nil {
		return r, err
	}
	seen, err := d.watch(ctx, "node1", []*lab.Host{master}, []liveness.State{liveness.Dead}, 3*tm.HostDead)
	if err != nil {
		return r, err
	}
	r.dead = seen[liveness.Dead][0].at.Sub(killed).Seconds()
	if _, err := master.WaitGuests(ctx, 3*tm.HostDead+5*time.Minute, "every guest running on node2 or node3", func(gs map[string]agent.GuestStatus) bool {
		return len(guestsIn(gs, restart.Running)) == guests && len(guestsOn(gs, "node1")) == 0
	}); err != nil {
		return r, err
	}
	// The last new copy by its first record, and its process's start.
	var lastGuest string
	var lastPID int
	err = lab.WaitUntil(ctx, 30*time.Second, 50*time.Millisecond, "the first record of every guest's new copy", func() (bool, error) {
		r.lastFirst = 0
		for _, n := range names {
			ws, err := lab.ReadDisk(p.Disk(n))
			if err != nil {
				return false, err
			}
			i := slices.IndexFunc(ws, func(w lab.Writer) bool { return w.Host != "node1" && time.Duration(w.First) > killedMono })
			if i < 0 {
				return false, nil
			}
			if at := (time.Duration(ws[i].First) - killedMono).Seconds(); at > r.lastFirst {
				r.lastFirst, lastGuest, lastPID = at, n, ws[i].PID
			}
		}
		return true, nil
	})
	if err != nil {
		return r, err
	}
	execMono, err := processStartMono(lastPID)
	if err != nil {
		return r, fmt.Errorf("%s's new copy (pid %d): %w", lastGuest, lastPID, err)
	}
	r.lastExec = (execMono - killedMono).Seconds()
	bad, _, err := p.CheckDisks(names...)
	if err != nil {
		return r, err
	}
	for _, b := range bad {
		d.fail("%s", b)
	}
	return r, nil
}

// processStartMono is when process pid began, on CLOCK_MONOTONIC (from
// its start time in /proc, CLOCK_BOOTTIME in clock ticks of 10 ms).
func processStartMono(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22
	if err != nil {
		return 0, err
	}
	var boot, mono unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono)
	return time.Duration(ticks)*10*time.Millisecond - time.Duration(boot.Nano()-mono.Nano()), nil
}

// parseBounds reads -bench-mass-bounds: a comma-separated list of
// max_concurrent_starts values, each 1 or more.
func parseBounds(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-bench-mass-bounds %q: %q is not a whole number of 1 or more", s, f)
		}
		out = append(out, n)
	}
	return out, nil
}
