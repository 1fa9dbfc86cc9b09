package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// scenes is the story of the demonstration pool, in order.
var scenes = []scene{
	{"Format a heartbeat file and start three hosts", sceneStart},
	{"The pool master: who holds the lease, and moving it to node2", sceneMaster},
	{"HA guests: six with HA, one without, each a process writing to its disk image", sceneGuests},
	{"Power loss of the master: SIGKILL node2, watch the others judge it, take over and restart its HA guests", sceneKill},
	{"Clean stop: SIGTERM node3, the master now, which releases the lease and writes \"left\"", sceneLeave},
	{"Restart node2: a new incarnation of the same machine", sceneRejoin},
	{"A second machine calling itself node1 is refused", sceneDuplicate},
	{"Evacuate node1 before a planned shutdown: hbfence host evacuate --migrate-all", sceneEvacuate},
	{"A frozen daemon: SIGSTOP node3, whose watchdog resets it", sceneFreeze},
	{"Storage cut: node2's path to the heartbeat file fails", sceneStorageCut},
	{"The heartbeat area, read without a daemon", sceneDump},
	{"Verdict: every guest's disk image, read for two writers at once", sceneVerdict},
	{twoPoolsTitle, sceneTwoPools},
}

func sceneStart(ctx context.Context, d *demo) error {
	began := time.Now()
	d.faultErr = lab.FaultFSAvailable()
	if d.faultErr == nil {
		if _, err := os.Stat(lab.FaultFSBinary(d.binary)); err != nil {
			d.faultErr = fmt.Errorf("%w: %v (make build puts it next to hbfence)", lab.ErrNoFaultFS, err)
		}
	}
	timingArgs := d.initArgs
	if timingArgs == nil {
		timingArgs = []string{"--profile", d.profile}
	}
	p, err := lab.NewPool(ctx, lab.Options{Binary: d.binary, Dir: d.dir, Watchdog: true, FaultFS: d.faultErr == nil, Guests: true,
		InitArgs: append(slices.Clone(timingArgs), "--slots", "8")})
	if err != nil {
		return err
	}
	d.pool = p
	out, err := d.run(ctx, "dump", p.Area)
	if err != nil {
		return fmt.Errorf("dump: %v: %s", err, out)
	}
	d.say("hbfence init %s --slots 8 %s", strings.Join(timingArgs, " "), p.Area)
	for _, name := range []string{"node1", "node2", "node3"} {
		h, err := p.AddHost(name, "")
		if err != nil {
			return err
		}
		if err := h.Start(); err != nil {
			return err
		}
		d.hosts[name] = h
		d.say("started %s (pid %d): hbfence daemon --config %s", name, h.PID(), h.Config)
	}
	all := []*lab.Host{d.hosts["node1"], d.hosts["node2"], d.hosts["node3"]}
	if err := p.WaitJoined(ctx, 60*time.Second, all...); err != nil {
		return err
	}
	st, err := d.hosts["node1"].Status(ctx)
	if err != nil {
		return err
	}
	d.timing = timingSeconds{Interval: st.Timing.Interval, RenewalFail: st.Timing.RenewalFail, HostDead: st.Timing.HostDead, Watchdog: st.Timing.Watchdog}
	d.say("each host runs under hbfence-wdsim, a watchdog stand-in that kills the host's whole process group when the daemon stops feeding its FIFO for %gs", st.Timing.Watchdog)
	d.figure("timing", st.Timing)
	d.say("all three joined and see each other live (join took %s with JoinWait = 2 × io_timeout)", since(began))
	out, err = d.statusOf(ctx, d.hosts["node1"])
	if err != nil {
		return fmt.Errorf("status: %v: %s", err, out)
	}
	d.say("hbfence status --config %s", d.hosts["node1"].Config)
	d.show(out)
	slots := map[int]string{}
	for _, h := range all {
		st, err := h.Status(ctx)
		if err != nil {
			return err
		}
		if other, dup := slots[st.Slot]; dup {
			d.fail("%s and %s both hold slot %d", h.Name, other, st.Slot)
		}
		slots[st.Slot] = h.Name
	}
	d.check(len(slots) == 3, "three hosts hold three different slots")
	return nil
}

func sceneKill(ctx context.Context, d *demo) error {
	victim := d.hosts["node2"]
	observers := []*lab.Host{d.hosts["node1"], d.hosts["node3"]}
	vm, err := victim.Master(ctx)
	if err != nil {
		return err
	}
	d.check(vm.Self.Acting, "node2 is the master (epoch %d) before the kill", vm.Self.Epoch)
	gs, err := victim.Guests(ctx) // node2 is master: its own plan
	if err != nil {
		return err
	}
	lost := guestsOn(gs, "node2")
	var names []string
	for _, g := range lost {
		names = append(names, g.Name)
	}
	d.say("node2 runs the guests %v", names)
	killed := time.Now()
	if err := victim.Kill(); err != nil {
		return err
	}
	d.say("kill -9 node2 (pid %d): no \"left\" is written, its slot just stops changing", victim.PID())
	seen, err := d.watch(ctx, "node2", observers, []liveness.State{liveness.Suspect, liveness.Dead}, time.Duration(3*d.timing.HostDead*float64(time.Second)))
	if err != nil {
		return err
	}
	t := d.timing
	for _, tr := range seen[liveness.Suspect] {
		d.say("%s: node2 suspect %.2fs after the kill (renewal_fail %gs)", tr.observer, tr.at.Sub(killed).Seconds(), t.RenewalFail)
	}
	var worst float64
	for _, tr := range seen[liveness.Dead] {
		after := tr.at.Sub(killed).Seconds()
		worst = max(worst, after)
		d.say("%s: node2 DEAD %.2fs after the kill = %.2f × host_dead (%gs)", tr.observer, after, after/t.HostDead, t.HostDead)
		// Safety: dead needs host_dead of silence after the last change
		// the observer saw, which is at most one interval (plus a read)
		// before the kill.
		d.check(after >= t.HostDead-t.Interval-0.05,
			"%s declared node2 dead no earlier than host_dead − one interval after the kill (%.2fs ≥ %.2fs)", tr.observer, after, t.HostDead-t.Interval-0.05)
		d.check(after <= 1.1*t.HostDead+t.Interval,
			"%s declared node2 dead within 1.1 × host_dead + one interval (%.2fs ≤ %.2fs)", tr.observer, after, 1.1*t.HostDead+t.Interval)
	}
	for _, tr := range seen[liveness.Suspect] {
		for _, dt := range seen[liveness.Dead] {
			if dt.observer == tr.observer {
				d.check(!tr.at.After(dt.at), "%s saw suspect before dead", tr.observer)
			}
		}
	}
	d.check(len(seen[liveness.Dead]) == len(observers), "both observers declared node2 dead")
	d.figure("detection_seconds", worst)
	d.figure("detection_ratio_to_host_dead", worst/t.HostDead)

	m, err := d.waitMaster(ctx, observers, vm.Self.Epoch, secs(3*t.HostDead))
	if err != nil {
		return err
	}
	took := m.since.Sub(killed).Seconds()
	d.say("%s took the master lease: epoch %d (was node2, epoch %d), %.2fs after the kill = %.2f × host_dead (%gs)",
		m.host.Name, m.epoch, vm.Self.Epoch, took, took/t.HostDead, t.HostDead)
	d.check(m.epoch == vm.Self.Epoch+1, "the new master holds the next epoch")
	d.check(took >= t.HostDead-t.Interval-0.05, "no host took the lease before node2 could be known fenced (%.2fs ≥ host_dead − interval)", took)
	d.check(took <= 1.1*t.HostDead+t.Interval, "takeover within 1.1 × host_dead + one interval (%.2fs ≤ %.2fs)", took, 1.1*t.HostDead+t.Interval)
	d.figure("master_takeover_seconds", took)
	d.figure("master_takeover_ratio_to_host_dead", took/t.HostDead)
	if err := d.checkFailover(ctx, killed, lost); err != nil {
		return err
	}
	if m.host.Name != "node3" {
		// The next scene stops node3 as the master.
		if _, err := d.move(ctx, m.host, "node3", m.epoch); err != nil {
			return err
		}
	}
	return nil
}

func sceneLeave(ctx context.Context, d *demo) error {
	h := d.hosts["node3"]
	hm, err := h.Master(ctx)
	if err != nil {
		return err
	}
	d.check(hm.Self.Acting, "node3 is the master before its SIGTERM")
	gs, err := h.Guests(ctx) // node3 is master: its own plan
	if err != nil {
		return err
	}
	moving := guestsOn(gs, "node3")
	stopped := time.Now()
	if err := h.Stop(ctx); err != nil {
		return fmt.Errorf("node3 did not stop cleanly: %v", err)
	}
	d.say("SIGTERM node3: it wrote \"left\" and exited 0 after %s", since(stopped))
	seen, err := d.watch(ctx, "node3", []*lab.Host{d.hosts["node1"]}, []liveness.State{liveness.Left}, 10*time.Second)
	if err != nil {
		return err
	}
	after := seen[liveness.Left][0].at.Sub(stopped).Seconds()
	d.say("node1: node3 left %.2fs after the SIGTERM — no need to wait host_dead (%gs)", after, d.timing.HostDead)
	d.check(after < d.timing.HostDead/2, "node1 saw node3 leave well before host_dead")
	d.figure("leave_seen_seconds", after)
	if hm.Self.Acting {
		m, err := d.waitMaster(ctx, []*lab.Host{d.hosts["node1"]}, hm.Self.Epoch, secs(d.timing.HostDead))
		if err != nil {
			return err
		}
		took := m.since.Sub(stopped).Seconds()
		d.say("node3 was master (epoch %d): it released the lease, and node1 took epoch %d %.2fs after the SIGTERM", hm.Self.Epoch, m.epoch, took)
		d.check(strings.Contains(h.Log(), fmt.Sprintf(`"event":"released","epoch":%d`, hm.Self.Epoch)), "node3's log shows the release of epoch %d", hm.Self.Epoch)
		d.check(took < d.timing.HostDead/2, "the master role moved on a clean stop without waiting host_dead")
		d.figure("master_after_clean_stop_seconds", took)
	}
	return d.checkLeave(ctx, stopped, moving)
}

func sceneRejoin(ctx context.Context, d *demo) error {
	h := d.hosts["node2"]
	before, err := d.hosts["node1"].Status(ctx)
	if err != nil {
		return err
	}
	var oldGen uint64
	for _, p := range before.Hosts {
		if p.Name == "node2" {
			oldGen = p.Generation
		}
	}
	restarted := time.Now()
	if err := h.Start(); err != nil {
		return err
	}
	d.say("restarted node2 (pid %d) with the same name and machine id", h.PID())
	var newGen uint64
	err = lab.WaitUntil(ctx, 30*time.Second, 20*time.Millisecond, "node1 sees node2 live in a new generation", func() (bool, error) {
		st, err := d.hosts["node1"].Status(ctx)
		if err != nil {
			return false, err
		}
		for _, p := range st.Hosts {
			if p.Name == "node2" && p.State == liveness.Live && p.Generation > oldGen {
				newGen = p.Generation
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	after := time.Since(restarted).Seconds()
	d.say("node1: node2 live again, generation %d → %d, %.2fs after the restart", oldGen, newGen, after)
	d.say("(its slot bore its own name and machine id, so it rejoined without the join wait: a restarted daemon must be back before its watchdog fires)")
	d.check(newGen == oldGen+1, "the generation grew by one (a new incarnation)")
	d.figure("rejoin_seconds", after)
	return nil
}

func sceneDuplicate(ctx context.Context, d *demo) error {
	impostor, err := d.pool.AddHost("node1", "-other-machine")
	if err != nil {
		return err
	}
	if err := impostor.Start(); err != nil {
		return err
	}
	d.say("started a daemon named node1 with another machine id")
	wctx, cancel := context.WithTimeout(ctx, time.Duration(3*d.timing.HostDead*float64(time.Second)))
	defer cancel()
	exitErr, err := impostor.Wait(wctx)
	if err != nil {
		return err
	}
	var ee *exec.ExitError
	refused := errors.As(exitErr, &ee) && ee.ExitCode() != 0
	msg := lastError(impostor.Log())
	d.say("it exited with %v:", exitErr)
	d.show(msg)
	st, err := d.hosts["node1"].Status(ctx)
	if err != nil {
		return err
	}
	d.check(refused, "the impostor exited with a non-zero status")
	d.check(strings.Contains(msg, fmt.Sprintf("slot %d", st.Slot)) && strings.Contains(msg, "in use by a live host"),
		"its error names node1's slot (%d) and says the name is in use by a live host", st.Slot)
	d.check(st.Joined && st.Generation > 0, "the real node1 kept its slot")
	return nil
}

func sceneDump(ctx context.Context, d *demo) error {
	out, err := d.run(ctx, "dump", d.pool.Area)
	if err != nil {
		return fmt.Errorf("dump: %v: %s", err, out)
	}
	d.say("hbfence dump %s", d.pool.Area)
	d.show(out)
	return nil
}

// lastError returns the daemon's final error line from its log.
func lastError(log string) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "hbfence daemon:") {
			return lines[i]
		}
	}
	return tail(log, 2)
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }

func sceneFreeze(ctx context.Context, d *demo) error {
	h := d.hosts["node3"]
	if err := h.Start(); err != nil {
		return err
	}
	if err := d.pool.WaitJoined(ctx, 30*time.Second, d.hosts["node1"], h); err != nil {
		return err
	}
	if err := h.WaitArmed(ctx, 10*time.Second); err != nil {
		return err
	}
	d.say("node3 is back (a new incarnation) and feeds its watchdog")
	if gs, err := d.hosts["node1"].WaitGuests(ctx, 4*secs(d.timing.HostDead), "billing running on node3 again", func(gs map[string]agent.GuestStatus) bool {
		return gs["billing"].State == restart.Running && gs["billing"].Host == "node3"
	}); err == nil {
		d.say("billing, pending while its only preferred host was away, runs on node3 again (%s)", gs["billing"].State)
	} else {
		d.fail("billing did not start on node3 when it came back: %v", err)
	}
	frozen := time.Now()
	if err := h.Freeze(); err != nil {
		return err
	}
	d.say("kill -STOP node3's daemon: it can neither renew its slot nor feed its watchdog")
	seen, rec, err := d.awaitReset(ctx, h, d.hosts["node1"])
	if err != nil {
		return err
	}
	reset := lab.MonoTime(rec.MonoNS)
	dead := seen[liveness.Dead][0].at
	t := d.timing
	d.say("node3's watchdog reset the machine %.2fs after the freeze (%.2fs after its last feed; watchdog %gs)",
		reset.Sub(frozen).Seconds(), float64(rec.SinceLastFeedNS)/1e9, t.Watchdog)
	d.say("node1: node3 suspect after %.2fs, DEAD after %.2fs — %.2fs after the reset (renewal_fail %gs + watchdog %gs < host_dead %gs)",
		seen[liveness.Suspect][0].at.Sub(frozen).Seconds(), dead.Sub(frozen).Seconds(), dead.Sub(reset).Seconds(), t.RenewalFail, t.Watchdog, t.HostDead)
	d.check(reset.Before(dead), "node3 was reset before node1 declared it dead (margin %.2fs)", dead.Sub(reset).Seconds())
	d.figure("freeze_reset_seconds", reset.Sub(frozen).Seconds())
	d.figure("freeze_reset_to_dead_margin_seconds", dead.Sub(reset).Seconds())
	return nil
}

// sceneStorageCut cuts one host off from the storage (its own
// fault-injecting mount starts failing every I/O with EIO). At
// renewal_fail it stops feeding its watchdog and runs its kill_guests
// hook; here the hook cannot confirm the guests gone, so the watchdog
// resets the machine — before the others declare it dead.
func sceneStorageCut(ctx context.Context, d *demo) error {
	if d.faultErr != nil {
		d.say("skipped: %v", d.faultErr)
		return nil
	}
	h := d.hosts["node2"]
	if err := h.SetHookFails(true); err != nil {
		return err
	}
	if err := h.WaitArmed(ctx, 10*time.Second); err != nil {
		return err
	}
	hooks := len(h.HookRuns())
	cut := time.Now()
	if err := h.CutStorage(); err != nil {
		return err
	}
	d.say("node2's storage now fails every read and write with EIO (its own hbfence-faultfs mount); its kill_guests hook is told to fail")
	seen, rec, err := d.awaitReset(ctx, h, d.hosts["node1"])
	if err != nil {
		return err
	}
	runs := h.HookRuns()
	if len(runs) <= hooks {
		return fmt.Errorf("node2's kill_guests hook did not run after the cut")
	}
	hook := runs[len(runs)-1].At
	reset := lab.MonoTime(rec.MonoNS)
	dead := seen[liveness.Dead][0].at
	t := d.timing
	d.say("node2 ran its kill_guests hook %.2fs after the cut (renewal_fail %gs after its last renewal); the hook failed, so it stopped feeding", hook.Sub(cut).Seconds(), t.RenewalFail)
	d.say("node2's watchdog reset the machine %.2fs after the cut; node1 declared it DEAD %.2fs after the cut", reset.Sub(cut).Seconds(), dead.Sub(cut).Seconds())
	d.check(hook.Before(dead), "node2 killed its guests before node1 declared it dead (margin %.2fs)", dead.Sub(hook).Seconds())
	d.check(reset.Before(dead), "node2 was reset before node1 declared it dead (margin %.2fs; the design's floor is host_dead − renewal_fail − watchdog = %.2fs)",
		dead.Sub(reset).Seconds(), t.HostDead-t.RenewalFail-t.Watchdog)
	d.figure("storage_cut_reset_to_dead_margin_seconds", dead.Sub(reset).Seconds())
	return h.RestoreStorage()
}

// awaitReset watches observer see h suspect then dead, waits for h's
// watchdog stand-in to end, and returns its one reset record.
func (d *demo) awaitReset(ctx context.Context, h, observer *lab.Host) (map[liveness.State][]transition, lab.WatchdogRecord, error) {
	seen, err := d.watch(ctx, h.Name, []*lab.Host{observer}, []liveness.State{liveness.Suspect, liveness.Dead},
		time.Duration(3*d.timing.HostDead*float64(time.Second)))
	if err != nil {
		return nil, lab.WatchdogRecord{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := h.Wait(wctx); err != nil {
		return nil, lab.WatchdogRecord{}, err
	}
	resets := h.Resets()
	if len(resets) != 1 {
		return nil, lab.WatchdogRecord{}, fmt.Errorf("%s's watchdog stand-in logged %d resets, want 1", h.Name, len(resets))
	}
	return seen, resets[0], nil
}
