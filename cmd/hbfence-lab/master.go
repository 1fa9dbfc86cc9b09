package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/internal/lab"
)

// actingMaster is a host that acts as master, with its epoch and when it
// began to act (on this process's clock).
type actingMaster struct {
	host  *lab.Host
	epoch uint64
	since time.Time
}

// waitMaster waits until one of hosts acts as master with an epoch above
// after.
func (d *demo) waitMaster(ctx context.Context, hosts []*lab.Host, after uint64, timeout time.Duration) (actingMaster, error) {
	h, m, since, err := lab.WaitActing(ctx, hosts, after, timeout)
	return actingMaster{host: h, epoch: m.Self.Epoch, since: since}, err
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// move runs hbfence master move on the master's host and checks that to
// took the next epoch.
func (d *demo) move(ctx context.Context, from *lab.Host, to string, epoch uint64) (daemon.MoveResult, error) {
	var res daemon.MoveResult
	d.say("hbfence master move %s --config %s", to, from.Config)
	out, err := d.run(ctx, "master", "move", to, "--config", from.Config, "--json")
	if err != nil {
		return res, fmt.Errorf("master move: %v: %s", err, out)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		return res, fmt.Errorf("master move --json: %v: %s", err, out)
	}
	d.show(res.Message)
	d.check(res.To == to && res.NewEpoch == epoch+1, "%s took the master role with epoch %d (was %s, epoch %d)", to, epoch+1, from.Name, epoch)
	d.check(res.Intervals <= 3, "the move took %.1f intervals (≤ 3: a message there and back, a ballot, a read)", res.Intervals)
	return res, nil
}

func sceneMaster(ctx context.Context, d *demo) error {
	all := []*lab.Host{d.hosts["node1"], d.hosts["node2"], d.hosts["node3"]}
	m, err := d.waitMaster(ctx, all, 0, 3*secs(d.timing.HostDead))
	if err != nil {
		return err
	}
	d.say("the first host to win the Disk Paxos ballot for the lease is master: %s, epoch %d", m.host.Name, m.epoch)
	out, err := d.run(ctx, "master", "--config", d.hosts["node1"].Config)
	if err != nil {
		return fmt.Errorf("master: %v: %s", err, out)
	}
	d.say("hbfence master --config %s", d.hosts["node1"].Config)
	d.show(out)
	// Move the role to node2, the host the next scene kills.
	if m.host.Name == "node2" {
		res, err := d.move(ctx, m.host, "node1", m.epoch)
		if err != nil {
			return err
		}
		m = actingMaster{host: d.hosts["node1"], epoch: res.NewEpoch}
	}
	res, err := d.move(ctx, m.host, "node2", m.epoch)
	if err != nil {
		return err
	}
	d.figure("move_intervals", res.Intervals)
	d.figure("move_seconds", res.TakenSeconds)
	// node3 reads the leader record once an interval.
	err = lab.WaitUntil(ctx, 4*secs(d.timing.Interval), 20*time.Millisecond, "node3 reads node2's record", func() (bool, error) {
		m, err := d.hosts["node3"].Master(ctx)
		return err == nil && m.Name == "node2" && m.Epoch == res.NewEpoch, err
	})
	if err != nil {
		return err
	}
	out, err = d.run(ctx, "master", "--config", d.hosts["node3"].Config)
	if err != nil {
		return fmt.Errorf("master: %v: %s", err, out)
	}
	d.say("hbfence master --config %s (a host that took no part in the move)", d.hosts["node3"].Config)
	d.show(out)
	return nil
}

// benchMaster measures, over runs, a planned move of the master to the
// next host (in intervals, from the command's start to the new master's
// record read by the old one) and the takeover after the master is killed
// with SIGKILL (from the kill until the new master began to act, as a
// ratio to host_dead). The killed host is restarted after each run.
func benchMaster(ctx context.Context, d *demo, runs int) error {
	if err := sceneStart(ctx, d); err != nil {
		return err
	}
	t := d.timing
	all := []*lab.Host{d.hosts["node1"], d.hosts["node2"], d.hosts["node3"]}
	var moves, takeovers []float64
	var before uint64 // the epoch before the current master's
	for i := 0; i < runs; i++ {
		m, err := d.waitMaster(ctx, all, before, 3*secs(t.HostDead))
		if err != nil {
			return err
		}
		// A planned move to the next host.
		var to *lab.Host
		for j, h := range all {
			if h == m.host {
				to = all[(j+1)%len(all)]
			}
		}
		res, err := d.move(ctx, m.host, to.Name, m.epoch)
		if err != nil {
			return err
		}
		moves = append(moves, res.Intervals)
		// Kill the new master.
		killed := time.Now()
		if err := to.Kill(); err != nil {
			return err
		}
		var rest []*lab.Host
		for _, h := range all {
			if h != to {
				rest = append(rest, h)
			}
		}
		n, err := d.waitMaster(ctx, rest, res.NewEpoch, 3*secs(t.HostDead))
		if err != nil {
			return err
		}
		took := n.since.Sub(killed).Seconds()
		takeovers = append(takeovers, took/t.HostDead)
		d.check(took >= t.HostDead-t.Interval-0.05, "run %d: takeover %.2fs after the kill, not before host_dead − interval", i+1, took)
		d.say("run %d/%d: move %s → %s in %.2f intervals; %s killed, %s master (epoch %d) after %.2fs = %.3f × host_dead",
			i+1, runs, m.host.Name, to.Name, res.Intervals, to.Name, n.host.Name, n.epoch, took, took/t.HostDead)
		before = n.epoch - 1
		if err := to.Start(); err != nil {
			return err
		}
		if err := d.pool.WaitJoined(ctx, 30*time.Second, all...); err != nil {
			return err
		}
	}
	lo, med, hi := stats(moves)
	d.say("planned move over %d runs: min %.2f, median %.2f, max %.2f intervals (interval %gs)", runs, lo, med, hi, t.Interval)
	d.figure("move_runs", runs)
	d.figure("move_intervals_min", lo)
	d.figure("move_intervals_median", med)
	d.figure("move_intervals_max", hi)
	lo, med, hi = stats(takeovers)
	d.say("takeover after kill -9 over %d runs: min %.3f, median %.3f, max %.3f × host_dead (%gs)", runs, lo, med, hi, t.HostDead)
	d.figure("takeover_ratio_min", lo)
	d.figure("takeover_ratio_median", med)
	d.figure("takeover_ratio_max", hi)
	return nil
}
