package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// The two-pool scene (issue 12): the Oracle VM layout of two pools, each
// running the other's manager as an HA guest. Pool A's manager (mgr-a) is
// an HA guest of pool B, pool B's (mgr-b) an HA guest of pool A; each
// pool records which guest manages it (pool managed-by) and refuses HA
// for it. The host of pool A that runs mgr-b is killed: mgr-b runs again
// in pool A, and pool B — its guests, mgr-a among them — is untouched.

// The managers' UUIDs, as their hypervisors would know them.
const (
	mgrAUUID = "0004fb00-0006-0000-0000-00000000a001"
	mgrBUUID = "0004fb00-0006-0000-0000-00000000b001"
)

// labPool is one of the scene's pools.
type labPool struct {
	name  string // A or B
	p     *lab.Pool
	hosts []*lab.Host
	uuid  string
}

func (lp *labPool) live() []*lab.Host {
	var out []*lab.Host
	for _, h := range lp.hosts {
		if !h.Exited() {
			out = append(out, h)
		}
	}
	return out
}

// run runs hbfence against host h of the pool.
func (lp *labPool) run(ctx context.Context, h *lab.Host, args ...string) (string, error) {
	return lp.p.Run(ctx, append(args, "--socket", h.Socket)...)
}

// startPool formats a heartbeat area for pool name and starts its three
// hosts (a1..a3 or b1..b3).
func (d *demo) startPool(ctx context.Context, name string) (*labPool, error) {
	p, err := lab.NewPool(ctx, lab.Options{Binary: d.binary, Dir: filepath.Join(d.dir, "pool-"+name), Watchdog: true, Guests: true,
		InitArgs: []string{"--profile", d.profile, "--slots", "8"}})
	if err != nil {
		return nil, err
	}
	d.extra = append(d.extra, p)
	lp := &labPool{name: name, p: p}
	for i := 1; i <= 3; i++ {
		h, err := p.AddHost(fmt.Sprintf("%s%d", strings.ToLower(name), i), "")
		if err != nil {
			return nil, err
		}
		if err := h.Start(); err != nil {
			return nil, err
		}
		lp.hosts = append(lp.hosts, h)
	}
	return lp, nil
}

const twoPoolsTitle = "Two pools, each running the other's manager as an HA guest: kill the host of pool A that runs pool B's manager"

func sceneTwoPools(ctx context.Context, d *demo) error {
	if d.pool != nil {
		d.pool.Close() // two more pools of three hosts each: the first one's daemons make room
		d.say("the first pool's hosts are switched off; two new pools on this machine, each with its own heartbeat file and cluster root")
	}
	began := time.Now()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	pools := map[string]*labPool{}
	for _, name := range []string{"A", "B"} {
		lp, err := d.startPool(ctx, name)
		if err != nil {
			return err
		}
		pools[name] = lp
	}
	a, b := pools["A"], pools["B"]
	for _, lp := range []*labPool{a, b} {
		if err := lp.p.WaitJoined(ctx, 60*time.Second, lp.hosts...); err != nil {
			return err
		}
		st, err := lp.hosts[0].Status(ctx)
		if err != nil {
			return err
		}
		lp.uuid = st.PoolUUID.String()
		if d.timing.HostDead == 0 {
			d.timing = timingSeconds{Interval: st.Timing.Interval, RenewalFail: st.Timing.RenewalFail, HostDead: st.Timing.HostDead, Watchdog: st.Timing.Watchdog}
		}
		d.say("pool %s (%s): hosts %s, %s, %s joined, on %s", lp.name, lp.uuid, lp.hosts[0].Name, lp.hosts[1].Name, lp.hosts[2].Name, lp.p.Area)
	}
	d.check(a.uuid != b.uuid, "the two pools have two pool UUIDs")
	masters := map[string]*lab.Host{}
	for _, lp := range []*labPool{a, b} {
		m, err := d.waitMaster(ctx, lp.hosts, 0, 3*secs(d.timing.HostDead))
		if err != nil {
			return err
		}
		masters[lp.name] = m.host
	}

	// Each pool runs the other's manager with HA, beside guests of its own.
	guestsA := []lab.GuestSpec{{Name: "mgr-b", HA: true, UUID: mgrBUUID, Manages: b.uuid}, {Name: "app-a", HA: true}}
	guestsB := []lab.GuestSpec{{Name: "mgr-a", HA: true, UUID: mgrAUUID, Manages: a.uuid}, {Name: "app-b1", HA: true}, {Name: "app-b2", HA: true}}
	if err := a.p.AddGuests(ctx, masters["A"], self, guestsA...); err != nil {
		return err
	}
	if err := b.p.AddGuests(ctx, masters["B"], self, guestsB...); err != nil {
		return err
	}
	d.say("pool A: hbfence guest add --name mgr-b --uuid %s --manages %s --ha (pool B's manager), and app-a", mgrBUUID, b.uuid)
	d.say("pool B: hbfence guest add --name mgr-a --uuid %s --manages %s --ha (pool A's manager), and app-b1, app-b2", mgrAUUID, a.uuid)

	// The relation, recorded from a host that is not the master (the
	// command is forwarded to it).
	for _, c := range []struct {
		lp  *labPool
		mgr string
	}{{a, mgrAUUID}, {b, mgrBUUID}} {
		h := c.lp.hosts[0]
		if h == masters[c.lp.name] {
			h = c.lp.hosts[1]
		}
		// A command is forwarded to the master this host knows of.
		m := masters[c.lp.name].Name
		if err := lab.WaitUntil(ctx, 3*secs(d.timing.Interval), 20*time.Millisecond, h.Name+" knowing its master", func() (bool, error) {
			st, err := h.Status(ctx)
			return err == nil && st.Master != nil && st.Master.Name == m, err
		}); err != nil {
			return err
		}
		d.say("on %s (not pool %s's master): hbfence pool managed-by --manager-uuid %s", h.Name, c.lp.name, c.mgr)
		out, err := c.lp.run(ctx, h, "pool", "managed-by", "--manager-uuid", c.mgr)
		if err != nil {
			return fmt.Errorf("pool managed-by: %v: %s", err, out)
		}
		d.show(out)
	}

	// What the relation refuses, in pool A.
	cfg := filepath.Join(a.p.Repo(), "app-a.json")
	out, err := a.run(ctx, masters["A"], "guest", "add", "--name", "mgr-a", "--uuid", mgrAUUID, "--driver", "process", "--guest-config", cfg, "--ha")
	d.say("pool A: hbfence guest add --name mgr-a --uuid %s --ha ...", mgrAUUID)
	d.show(out)
	d.check(err != nil && strings.Contains(out, "manages this pool"), "pool A refuses HA for its own manager mgr-a")
	out, err = a.run(ctx, masters["A"], "guest", "add", "--name", "mgr-x", "--driver", "process", "--guest-config", cfg, "--manages", a.uuid)
	d.say("pool A: hbfence guest add --name mgr-x --manages %s (pool A's own UUID) ...", a.uuid)
	d.show(out)
	d.check(err != nil && strings.Contains(out, "this pool's own UUID"), "pool A refuses a guest that would manage pool A itself")

	running := func(n int) func(map[string]agent.GuestStatus) bool {
		return func(gs map[string]agent.GuestStatus) bool { return len(guestsIn(gs, restart.Running)) == n }
	}
	ga, err := masters["A"].WaitGuests(ctx, 10*secs(d.timing.Interval)+5*time.Second, "pool A's guests running", running(len(guestsA)))
	if err != nil {
		return err
	}
	gb, err := masters["B"].WaitGuests(ctx, 10*secs(d.timing.Interval)+5*time.Second, "pool B's guests running", running(len(guestsB)))
	if err != nil {
		return err
	}
	d.check(ga["mgr-b"].HA && ga["mgr-b"].Manages == b.uuid, "in pool A, mgr-b has HA and manages pool B")
	d.check(gb["mgr-a"].HA && gb["mgr-a"].Manages == a.uuid, "in pool B, mgr-a has HA and manages pool A")
	for _, c := range []struct {
		lp  *labPool
		mgr string
	}{{a, mgrAUUID}, {b, mgrBUUID}} {
		st, err := c.lp.hosts[2].Status(ctx)
		if err != nil {
			return err
		}
		d.check(st.ManagedBy == c.mgr, "%s's status: pool %s is managed by %s", c.lp.hosts[2].Name, c.lp.name, st.ManagedBy)
	}
	out, _ = a.run(ctx, a.hosts[2], "guest", "show", "mgr-b")
	d.say("pool A: hbfence guest show mgr-b")
	d.show(out)
	out, _ = b.run(ctx, b.hosts[2], "pool", "show")
	d.say("pool B: hbfence pool show")
	d.show(out)
	d.check(strings.Contains(out, "manager  guest "+mgrBUUID+" (an HA guest of another pool)"), "pool B's pool show names its manager, an HA guest of another pool")

	// Kill the host of pool A that runs pool B's manager.
	var victim *lab.Host
	for _, h := range a.hosts {
		if h.Name == ga["mgr-b"].Host {
			victim = h
		}
	}
	if victim == nil {
		return fmt.Errorf("mgr-b runs on %q, not a host of pool A", ga["mgr-b"].Host)
	}
	var observer *lab.Host
	for _, h := range a.hosts {
		if h != victim {
			observer = h
			break
		}
	}
	// Pool B's guests before the kill: the copy (host/pid) each runs as.
	copyOf := map[string]string{}
	for _, g := range guestsB {
		ws, err := lab.ReadDisk(b.p.Disk(g.Name))
		if err != nil {
			return err
		}
		if len(ws) != 1 {
			return fmt.Errorf("pool B's %s: %d copies on its disk before the kill, want 1", g.Name, len(ws))
		}
		copyOf[g.Name] = fmt.Sprintf("%s/%d", ws[0].Host, ws[0].PID)
	}
	role := ""
	if victim == masters["A"] {
		role = " and is pool A's master (the lease is taken over too)"
	}
	killedMono := lab.MonoNow()
	killed := time.Now()
	if err := victim.Kill(); err != nil {
		return err
	}
	d.say("kill -9 %s (pool A), which runs pool B's manager mgr-b%s", victim.Name, role)
	bound := 1.1*d.timing.HostDead + 3*d.timing.Interval
	now, err := observer.WaitGuests(ctx, 3*secs(d.timing.HostDead), "mgr-b running again in pool A", func(gs map[string]agent.GuestStatus) bool {
		g := gs["mgr-b"]
		return g.State == restart.Running && g.Host != victim.Name
	})
	if err != nil {
		return err
	}
	took := time.Since(killed).Seconds()
	d.say("mgr-b: running again on %s (pool A) %.2fs after the kill = %.2f × host_dead (as seen by polling %s's status)", now["mgr-b"].Host, took, took/d.timing.HostDead, observer.Name)
	d.check(took <= bound, "pool B's manager ran again in pool A within 1.1 × host_dead + three intervals (%.2fs ≤ %.2fs)", took, bound)
	// Its disk: a new copy on another host of pool A wrote after the kill.
	if err := lab.WaitUntil(ctx, 5*time.Second, 50*time.Millisecond, "mgr-b's new copy writing", func() (bool, error) {
		ws, err := lab.ReadDisk(a.p.Disk("mgr-b"))
		return err == nil && len(ws) >= 2 && ws[len(ws)-1].First > killedMono, err
	}); err != nil {
		return err
	}
	ws, _ := lab.ReadDisk(a.p.Disk("mgr-b"))
	last := ws[len(ws)-1]
	first := time.Duration(last.First - killedMono).Seconds()
	d.say("mgr-b's disk: %s pid %d wrote its first record %.2fs after the kill = %.2f × host_dead", last.Host, last.PID, first, first/d.timing.HostDead)
	d.check(last.Host != victim.Name && last.Host == now["mgr-b"].Host, "mgr-b's new copy writes from %s, a live host of pool A", last.Host)
	// Safety: not before the victim could have been fenced (dead is
	// host_dead after the last change seen, at most an interval before
	// the kill).
	d.check(first >= d.timing.HostDead-d.timing.Interval-0.05, "mgr-b's new copy wrote no earlier than host_dead − one interval after the kill (%.2fs ≥ %.2fs)", first, d.timing.HostDead-d.timing.Interval-0.05)
	d.figure("two_pools_manager_failover_seconds", took)
	d.figure("two_pools_manager_failover_ratio_to_host_dead", took/d.timing.HostDead)
	d.figure("two_pools_manager_first_write_seconds", first)

	// Pool B: untouched. Every guest kept its one copy and wrote all along.
	endMono := lab.MonoNow()
	for _, g := range guestsB {
		w, err := lab.ReadDiskWindow(b.p.Disk(g.Name), killedMono, endMono)
		if err != nil {
			return err
		}
		d.say("pool B, %s: %d records from %v since the kill, longest gap %.2fs", g.Name, w.Records, w.Writers, w.MaxGap.Seconds())
		d.check(len(w.Writers) == 1 && w.Writers[0] == copyOf[g.Name] && w.MaxGap < time.Second,
			"pool B's %s kept its one copy (%s, as before the kill) and kept writing through pool A's failover (gaps < 1s)", g.Name, copyOf[g.Name])
	}
	gbAfter, err := b.hosts[0].Guests(ctx)
	if err != nil {
		return err
	}
	for _, g := range guestsB {
		was, is := gb[g.Name], gbAfter[g.Name]
		d.check(is.State == restart.Running && is.Host == was.Host, "pool B's %s still runs on %s", g.Name, was.Host)
	}
	for _, h := range b.hosts {
		d.check(!h.Exited(), "pool B's host %s is still up", h.Name)
	}

	// Never two writers at once, in either pool.
	for _, c := range []struct {
		lp     *labPool
		guests []lab.GuestSpec
	}{{a, guestsA}, {b, guestsB}} {
		var names []string
		for _, g := range c.guests {
			names = append(names, g.Name)
		}
		bad, _, err := c.lp.p.CheckDisks(names...)
		if err != nil {
			return err
		}
		for _, x := range bad {
			d.fail("pool %s: %s", c.lp.name, x)
		}
		d.check(len(bad) == 0, "pool %s: never two writers at once on any guest's disk", c.lp.name)
	}
	d.say("the two-pool scene took %s", since(began))
	d.figure("two_pools_scene_seconds", time.Since(began).Seconds())
	return nil
}
