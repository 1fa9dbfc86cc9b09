package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// demoGuests are the guests of the story.
var demoGuests = []lab.GuestSpec{
	{Name: "web1", HA: true}, {Name: "web2", HA: true}, {Name: "db1", HA: true},
	{Name: "db2", HA: true}, {Name: "cache1", HA: true},
	{Name: "billing", HA: true, Placement: "manual", Preferred: []string{"node3"}},
	{Name: "scratch", HA: false, Placement: "manual", Preferred: []string{"node2"}},
}

func (d *demo) masterHost(ctx context.Context) (*lab.Host, error) {
	m, err := d.waitMaster(ctx, d.liveHosts(), 0, 3*secs(d.timing.HostDead))
	return m.host, err
}

func (d *demo) liveHosts() []*lab.Host {
	var out []*lab.Host
	for _, n := range []string{"node1", "node2", "node3"} {
		if h := d.hosts[n]; h != nil && !h.Exited() {
			out = append(out, h)
		}
	}
	return out
}

func sceneGuests(ctx context.Context, d *demo) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	m, err := d.masterHost(ctx)
	if err != nil {
		return err
	}
	d.say("on the master (%s): hbfence pool repository add %s; hbfence pool ha enable; hbfence guest add ...; hbfence guest start ...", m.Name, d.pool.Repo())
	if err := d.pool.AddGuests(ctx, m, self, demoGuests...); err != nil {
		return err
	}
	d.say("added and started six HA guests (billing: manual placement, preferred host node3) and one without HA (scratch, placed on node2); each is a process appending records to its disk image in %s", filepath.Join(d.pool.Repo(), "disks"))
	g, err := m.WaitGuests(ctx, 10*secs(d.timing.Interval)+5*time.Second, "every guest running", func(gs map[string]agent.GuestStatus) bool {
		return len(guestsIn(gs, restart.Running)) == len(demoGuests)
	})
	if err != nil {
		return err
	}
	out, _ := d.run(ctx, "guest", "list", "--socket", m.Socket)
	d.show(out)
	d.check(g["billing"].Host == "node3", "billing runs on its preferred host node3")
	d.check(g["scratch"].Host == "node2", "scratch runs on node2")
	return nil
}

// guestsOn lists the guests host runs, as the plan says, by name.
func guestsOn(gs map[string]agent.GuestStatus, host string) []agent.GuestStatus {
	var out []agent.GuestStatus
	for _, g := range guestsIn(gs, restart.Running) {
		if g.Host == host {
			out = append(out, g)
		}
	}
	return out
}

// runningElsewhere reports whether every one of guests runs, on a host
// other than host.
func runningElsewhere(gs map[string]agent.GuestStatus, guests []agent.GuestStatus, host string) bool {
	for _, g := range guests {
		if gs[g.Name].State != restart.Running || gs[g.Name].Host == host {
			return false
		}
	}
	return true
}

// guestsIn lists the guests in state st, by name.
func guestsIn(gs map[string]agent.GuestStatus, st restart.State) []agent.GuestStatus {
	var out []agent.GuestStatus
	for _, g := range gs {
		if g.State == st {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// checkFailover is run by the kill scene once node2 is dead: every HA
// guest it ran runs on another host, the one without HA is stopped.
func (d *demo) checkFailover(ctx context.Context, killed time.Time, lost []agent.GuestStatus) error {
	obs := d.hosts["node1"]
	var ha []agent.GuestStatus
	for _, g := range lost {
		if g.HA && g.Placement == restart.Auto {
			ha = append(ha, g)
		}
	}
	d.check(len(ha) > 0, "node2 ran HA guests when it was killed (%d)", len(ha))
	m, err := obs.WaitGuests(ctx, 3*secs(d.timing.HostDead), "node2's HA guests running elsewhere", func(m map[string]agent.GuestStatus) bool {
		return runningElsewhere(m, ha, "node2")
	})
	if err != nil {
		return err
	}
	took := time.Since(killed).Seconds()
	for _, g := range lost {
		now := m[g.Name]
		switch {
		case g.HA && g.Placement == restart.Auto:
			d.say("%s: running again on %s", g.Name, now.Host)
		default:
			d.say("%s: %s (%s)", g.Name, now.State, now.Message)
		}
		if !g.HA {
			d.check(now.State == restart.Stopped, "%s, without HA, was not restarted", g.Name)
		}
	}
	d.say("all of node2's HA guests ran again on other hosts %.2fs after the kill = %.2f × host_dead (as seen by polling node1's status)", took, took/d.timing.HostDead)
	d.check(took <= 1.1*d.timing.HostDead+3*d.timing.Interval, "guest failover within 1.1 × host_dead + three intervals (%.2fs)", took)
	d.figure("guest_failover_seconds", took)
	d.figure("guest_failover_ratio_to_host_dead", took/d.timing.HostDead)
	return nil
}

// sceneVerdict reads every guest's disk image: no two copies of a guest
// ever wrote in overlapping time.
func sceneVerdict(ctx context.Context, d *demo) error {
	var names []string
	for _, g := range demoGuests {
		names = append(names, g.Name)
	}
	bad, all, err := d.pool.CheckDisks(names...)
	if err != nil {
		return err
	}
	for _, b := range bad {
		d.fail("%s", b)
	}
	for _, n := range names {
		ws := all[n]
		var parts []string
		for i, w := range ws {
			parts = append(parts, fmt.Sprintf("%s pid %d (%d records)", w.Host, w.PID, w.Records))
			if i > 0 {
				parts[i] += fmt.Sprintf(" after a gap of %.2fs", time.Duration(w.First-ws[i-1].Last).Seconds())
			}
		}
		overlap := slices.ContainsFunc(bad, func(b string) bool { return strings.HasPrefix(b, n+":") })
		d.say("%s: %s", n, strings.Join(parts, " → "))
		copies := fmt.Sprintf("%d copies", len(ws))
		if len(ws) == 1 {
			copies = "1 copy"
		}
		d.check(!overlap, "%s: never two writers at once (%s over the story)", n, copies)
	}
	return nil
}

// checkLeave: the guests of a host stopped the way systemd stops it run
// again elsewhere within seconds (the auto ones), and a manual guest whose
// only preferred host left waits, pending.
func (d *demo) checkLeave(ctx context.Context, stopped time.Time, moving []agent.GuestStatus) error {
	var names []string
	for _, g := range moving {
		names = append(names, g.Name)
	}
	d.say("node3 ran %v; on SIGTERM its daemon stops them and reports them stopped before it writes \"left\" (the disks, read at the end, show whether two copies ever overlapped)", names)
	m, err := d.hosts["node1"].WaitGuests(ctx, secs(d.timing.HostDead), "node3's guests placed again", func(m map[string]agent.GuestStatus) bool {
		for _, g := range moving {
			want := restart.Running
			if g.Placement == restart.Manual {
				want = restart.Pending
			}
			if m[g.Name].State != want || (want == restart.Running && m[g.Name].Host == "node3") {
				return false
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	took := time.Since(stopped).Seconds()
	for _, g := range moving {
		now := m[g.Name]
		if now.State == restart.Running {
			d.say("%s: running on %s", g.Name, now.Host)
		} else {
			d.say("%s: %s (%s)", g.Name, now.State, now.Message)
		}
	}
	d.say("node3's guests were placed again %.2fs after the SIGTERM (host_dead %gs: not waited for)", took, d.timing.HostDead)
	d.check(took < d.timing.HostDead/2, "a planned stop moves the guests in seconds, well before host_dead")
	d.figure("guests_after_clean_stop_seconds", took)
	return nil
}

// benchGuests measures guest failover over runs: three hosts under the
// watchdog stand-in with six HA guests; each run kills (SIGKILL, the whole
// machine) the host that runs the most guests, and measures, from each of
// its guests' disk images, the time from the kill (CLOCK_MONOTONIC) to the
// first record of the guest's new copy on another host. The killed host is
// restarted after each run. It reports the worst guest of each run, min,
// median and max, as a ratio to host_dead, and checks every disk for two
// writers at once.
func benchGuests(ctx context.Context, d *demo, runs int) error {
	worst, err := guestFailovers(ctx, d, runs)
	if err != nil {
		return err
	}
	t := d.timing
	ratios := make([]float64, len(worst))
	for i, w := range worst {
		ratios[i] = w / t.HostDead
	}
	lo, med, hi := stats(ratios)
	d.say("guest failover (kill → the last guest of the host writing again elsewhere) over %d runs: min %.3f, median %.3f, max %.3f × host_dead (%gs)", runs, lo, med, hi, t.HostDead)
	d.figure("guest_failover_runs", runs)
	d.figure("guest_failover_ratio_min", lo)
	d.figure("guest_failover_ratio_median", med)
	d.figure("guest_failover_ratio_max", hi)
	return nil
}

// guestFailovers starts the pool of benchGuests and returns, for each of
// runs kills, the seconds from the kill to the first record of the last of
// the killed host's guests written elsewhere. A disk with two writers at
// once fails the demo.
func guestFailovers(ctx context.Context, d *demo, runs int) ([]float64, error) {
	if err := sceneStart(ctx, d); err != nil {
		return nil, err
	}
	specs, names, err := addHAGuests(ctx, d, 6)
	if err != nil {
		return nil, err
	}
	t := d.timing
	obs := func() *lab.Host { return d.liveHosts()[0] }
	allRunning := func(gs map[string]agent.GuestStatus) bool { return len(guestsIn(gs, restart.Running)) == len(specs) }
	var worst []float64
	for i := 0; i < runs; i++ {
		gs, err := obs().WaitGuests(ctx, 3*secs(t.HostDead), "every guest running", allRunning)
		if err != nil {
			return nil, err
		}
		victim := busiest(gs, d.liveHosts())
		lost := guestsOn(gs, victim.Name)
		runWorst, err := powerLoss(ctx, d, victim, lost)
		if err != nil {
			return nil, err
		}
		worst = append(worst, runWorst)
		d.say("run %d/%d: killed %s with %d guests; the last of them wrote again elsewhere %.2fs later = %.3f × host_dead", i+1, runs, victim.Name, len(lost), runWorst, runWorst/t.HostDead)
		if err := victim.Start(); err != nil {
			return nil, err
		}
		if err := d.pool.WaitJoined(ctx, 30*time.Second+secs(t.HostDead), d.liveHosts()...); err != nil {
			return nil, err
		}
	}
	bad, _, err := d.pool.CheckDisks(names...)
	if err != nil {
		return nil, err
	}
	for _, b := range bad {
		d.fail("%s", b)
	}
	d.check(len(bad) == 0, "no disk ever had two writers at once over %d failovers", runs)
	return worst, nil
}

// sceneEvacuate empties node1 before a planned shutdown with hbfence host
// evacuate --migrate-all: the process driver cannot live-migrate, so each
// guest is stopped there and started on another host, and the command
// shows each guest's progress.
func sceneEvacuate(ctx context.Context, d *demo) error {
	m, err := d.masterHost(ctx)
	if err != nil {
		return err
	}
	gs, err := m.Guests(ctx)
	if err != nil {
		return err
	}
	moving := guestsOn(gs, "node1")
	d.say("hbfence host evacuate node1 --migrate-all (on the master, %s)", m.Name)
	start := time.Now()
	out, err := d.run(ctx, "host", "evacuate", "node1", "--migrate-all", "--wait", "30s", "--socket", m.Socket)
	d.show(out)
	if err != nil {
		return fmt.Errorf("host evacuate: %v", err)
	}
	took := time.Since(start).Seconds()
	gs, err = m.WaitGuests(ctx, 5*time.Second, "node1's guests running elsewhere", func(gs map[string]agent.GuestStatus) bool {
		return runningElsewhere(gs, moving, "node1")
	})
	if err != nil {
		return err
	}
	d.check(len(guestsOn(gs, "node1")) == 0, "node1 runs none of the pool's guests after %.2fs: it can be shut down", took)
	d.figure("evacuation_seconds", took)
	return nil
}

// addHAGuests adds, on the master, n HA guests g1…gn with automatic
// placement, run by this program (-guest-disk), and starts them; it
// returns them and their names.
func addHAGuests(ctx context.Context, d *demo, n int) ([]lab.GuestSpec, []string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	m, err := d.masterHost(ctx)
	if err != nil {
		return nil, nil, err
	}
	var specs []lab.GuestSpec
	var names []string
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("g%d", i)
		specs = append(specs, lab.GuestSpec{Name: name, HA: true})
		names = append(names, name)
	}
	return specs, names, d.pool.AddGuests(ctx, m, self, specs...)
}
