package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/lab"
)

// benchDetect measures kill -9 detection over runs: a pool of three
// hosts; each run kills one, records when each observer declares it dead,
// restarts it and waits until it is live again. It reports min, median
// and max of the detection time and its ratio to host_dead.
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
