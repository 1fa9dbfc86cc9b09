package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/faultfs"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// soakPlan is what -bench-soak runs: a pool formatted with the advice of
// a probe of stalling storage, kept under the same stalls for duration,
// with a power loss every killEvery.
type soakPlan struct {
	duration  time.Duration // the soak, after the pool has started
	killEvery time.Duration // a power loss this often
	maxStall  time.Duration // every injected stall lasts at most this
	probeFor  time.Duration // the probe before the pool is formatted
	watchdog  time.Duration // the watchdog's effective firing time (probe --watchdog)
	target    time.Duration // each power loss: the last guest back within this
}

// The stalls, on the probe's mount and on every host's: one every
// stallGapMin..stallGapMax, of 1 ms..maxStall, half of them on every
// host at once (the filer stalls for the whole pool), half on one host
// (its path to the filer).
const (
	stallGapMin = 2 * time.Second
	stallGapMax = 20 * time.Second
	soakGuests  = 6
)

// benchSoak is the fast-failover soak of issue 13: on storage whose
// stalls stay under plan.maxStall, hbfence probe (through a faultfs
// mount that injects those stalls) advises a timing; the pool of three
// hosts under the watchdog stand-in, each through its own faultfs mount,
// is formatted with it (init --profile advised --from), runs six HA
// guests and is kept under the same stalls for plan.duration, with a
// power loss (kill -9 of the host running the most guests, its guests
// with it) every plan.killEvery. It checks that every power loss had its
// last guest writing again elsewhere within plan.target, and that over
// the whole soak no host was fenced (no kill_guests hook, no watchdog
// reset, no daemon exit that was not a kill) and none was seen dead
// unless killed; and, at the end, that no guest disk ever had two writers
// at once.
func benchSoak(ctx context.Context, d *demo, plan soakPlan) error {
	if err := lab.FaultFSAvailable(); err != nil {
		return fmt.Errorf("the soak injects its stalls through faultfs: %w", err)
	}
	if _, err := os.Stat(lab.FaultFSBinary(d.binary)); err != nil {
		return fmt.Errorf("%w: %v (make build puts it next to hbfence)", lab.ErrNoFaultFS, err)
	}
	probeFile := filepath.Join(d.dir, "probe.json")
	if err := soakProbe(ctx, d, plan, probeFile); err != nil {
		return err
	}
	d.initArgs = []string{"--profile", "advised", "--from", probeFile}
	if err := sceneStart(ctx, d); err != nil {
		return err
	}
	t := d.timing
	target := plan.target.Seconds()
	d.say("the advised pool: host_dead %gs; a power loss then takes about 1.02 × host_dead = %.1fs to the guests' restart, within the %gs target if the guests start at once", t.HostDead, 1.02*t.HostDead, target)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	m, err := d.masterHost(ctx)
	if err != nil {
		return err
	}
	specs, names := haGuests(soakGuests)
	if err := d.pool.AddGuests(ctx, m, self, specs...); err != nil {
		return err
	}
	allRunning := func(gs map[string]agent.GuestStatus) bool { return len(guestsIn(gs, restart.Running)) == len(specs) }
	if _, err := m.WaitGuests(ctx, 3*secs(t.HostDead), "every guest running", allRunning); err != nil {
		return err
	}

	hosts := d.liveHosts()
	mon := newSoakMonitor(hosts)
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stalls := &stallLog{}
	var injectErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		injectErr = injectStalls(sctx, plan.maxStall, hosts, nil, stalls)
	}()
	go func() { defer wg.Done(); mon.run(sctx) }()
	d.say("soak: %v under stalls of up to %v (one every %v–%v, half on every host at once), a power loss every %v", plan.duration, plan.maxStall, stallGapMin, stallGapMax, plan.killEvery)

	began := time.Now()
	var failovers []float64
	var runErr error
	for time.Since(began)+plan.killEvery <= plan.duration && runErr == nil {
		select {
		case <-ctx.Done():
			runErr = ctx.Err()
			continue
		case <-time.After(plan.killEvery):
		}
		gs, err := hosts[0].WaitGuests(ctx, 3*secs(t.HostDead), "every guest running", allRunning)
		if err != nil {
			runErr = err
			continue
		}
		victim := busiest(gs, hosts)
		lost := guestsOn(gs, victim.Name)
		mon.killed(victim.Name, true)
		took, err := powerLoss(ctx, d, victim, lost)
		if err != nil {
			runErr = err
			continue
		}
		failovers = append(failovers, took)
		d.check(took <= target, "power loss %d at %v: %s with %d guests; the last of them wrote again elsewhere %.2fs later = %.3f × host_dead (target %gs)",
			len(failovers), time.Since(began).Round(time.Second), victim.Name, len(lost), took, took/t.HostDead, target)
		if err := victim.Start(); err != nil {
			runErr = err
			continue
		}
		if err := d.pool.WaitJoined(ctx, 30*time.Second+secs(t.HostDead), hosts...); err != nil {
			runErr = err
			continue
		}
		if err := waitLive(ctx, victim, othersThan(hosts, victim)); err != nil {
			runErr = err
			continue
		}
		mon.killed(victim.Name, false)
	}
	if rest := plan.duration - time.Since(began); rest > 0 && runErr == nil {
		select {
		case <-ctx.Done():
			runErr = ctx.Err()
		case <-time.After(rest):
		}
	}
	stop()
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	if injectErr != nil && !errors.Is(injectErr, context.Canceled) {
		return injectErr
	}
	return reportSoak(d, plan, time.Since(began), failovers, stalls, mon, names)
}

// soakProbe runs hbfence probe --json through a faultfs mount of the
// pool's directory under the soak's stalls and saves its output: the
// advice the pool is then formatted with.
func soakProbe(ctx context.Context, d *demo, plan soakPlan, probeFile string) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	mnt, err := os.MkdirTemp("", "hbfence-soak-probe-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	fs, err := faultfs.Mount(faultfs.Options{Backing: d.dir, Mountpoint: mnt, Name: "soak-probe"})
	if err != nil {
		return err
	}
	defer fs.Unmount()
	pctx, stop := context.WithCancel(ctx)
	stalls := &stallLog{}
	injected := make(chan error, 1)
	go func() { injected <- injectStalls(pctx, plan.maxStall, nil, fs, stalls) }()
	d.say("hbfence probe --json --duration %v --watchdog %v %s (a faultfs mount of the pool's directory, stalled as the soak will stall it)", plan.probeFor, plan.watchdog, mnt)
	out, err := exec.CommandContext(ctx, d.binary, "probe", "--json", "--duration", plan.probeFor.String(), "--watchdog", plan.watchdog.String(), mnt).Output()
	stop()
	if ierr := <-injected; ierr != nil && !errors.Is(ierr, context.Canceled) {
		return ierr
	}
	if err != nil {
		return fmt.Errorf("hbfence probe: %v\n%s", err, out)
	}
	var r struct {
		LongestStallMS float64 `json:"longest_stall_ms"`
		Pair           struct {
			P99, P999, Max float64
		} `json:"write_read_ms"`
		Advice map[string]any `json:"advice"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Advice == nil {
		return fmt.Errorf("hbfence probe --json: no advice (%v):\n%s", err, out)
	}
	n, longest := stalls.summary()
	d.say("the probe saw write+read p99 %.1fms, p99.9 %.1fms, max %.1fms, longest stall %.1fms; %d stalls were injected, the longest %v",
		r.Pair.P99, r.Pair.P999, r.Pair.Max, r.LongestStallMS, n, longest)
	d.say("its advice: interval %v, io_timeout %v, renewal_fail %v, watchdog %v, host_dead %v",
		r.Advice["interval"], r.Advice["io_timeout"], r.Advice["renewal_fail"], r.Advice["watchdog"], r.Advice["host_dead"])
	d.figure("soak_probe", map[string]any{"write_read_p99_ms": r.Pair.P99, "write_read_p999_ms": r.Pair.P999, "write_read_max_ms": r.Pair.Max,
		"longest_stall_ms": r.LongestStallMS, "stalls_injected": n, "advice": r.Advice})
	return os.WriteFile(probeFile, out, 0o600)
}

// stallLog counts the injected stalls.
type stallLog struct {
	mu      sync.Mutex
	n       int
	shared  int
	longest time.Duration
}

func (s *stallLog) add(d time.Duration, shared bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if shared {
		s.shared++
	}
	s.longest = max(s.longest, d)
}

func (s *stallLog) summary() (int, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.longest
}

// injectStalls hangs storage until ctx ends: after a random gap, for a
// random time up to maxStall, either every target at once or one of them
// (hosts' faultfs mounts, or one in-process mount fs). It always leaves
// the storage passing.
func injectStalls(ctx context.Context, maxStall time.Duration, hosts []*lab.Host, fs *faultfs.FS, log *stallLog) error {
	type target struct {
		hang, pass func() error
	}
	var targets []target
	for _, h := range hosts {
		targets = append(targets, target{h.HangStorage, h.RestoreStorage})
	}
	if fs != nil {
		targets = append(targets, target{func() error { return fs.Set(faultfs.OpAll, faultfs.Fault{Hang: true}) }, func() error { fs.Clear(); return nil }})
	}
	for {
		gap := stallGapMin + rand.N(stallGapMax-stallGapMin)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(gap):
		}
		chosen := targets
		shared := len(targets) == 1 || rand.N(2) == 0
		if !shared {
			chosen = []target{targets[rand.N(len(targets))]}
		}
		stall := time.Millisecond + rand.N(maxStall)
		var err error
		for _, t := range chosen {
			err = errors.Join(err, t.hang())
		}
		time.Sleep(stall)
		for _, t := range chosen {
			err = errors.Join(err, t.pass())
		}
		if err != nil {
			return fmt.Errorf("injecting a %v stall: %w", stall, err)
		}
		log.add(stall, shared)
	}
}

// busiest is the host that runs the most guests.
func busiest(gs map[string]agent.GuestStatus, hosts []*lab.Host) *lab.Host {
	count := map[string]int{}
	for _, g := range gs {
		count[g.Host]++
	}
	best := hosts[0]
	for _, h := range hosts[1:] {
		if count[h.Name] > count[best.Name] {
			best = h
		}
	}
	return best
}

func othersThan(hosts []*lab.Host, h *lab.Host) []*lab.Host {
	return slices.DeleteFunc(slices.Clone(hosts), func(o *lab.Host) bool { return o == h })
}

// powerLoss kills victim (the whole machine: its guests die with it) and
// returns the seconds from the kill (CLOCK_MONOTONIC) to the first record
// of the last of its guests, lost, written by a new copy on another host,
// read from the guests' disk images.
func powerLoss(ctx context.Context, d *demo, victim *lab.Host, lost []agent.GuestStatus) (float64, error) {
	t := d.timing
	killedMono := time.Duration(lab.MonoNow())
	if err := victim.Kill(); err != nil {
		return 0, err
	}
	rest := othersThan(d.liveHosts(), victim)
	if len(rest) == 0 {
		return 0, fmt.Errorf("no host left after the kill of %s", victim.Name)
	}
	if _, err := rest[0].WaitGuests(ctx, 3*secs(t.HostDead), victim.Name+"'s guests running elsewhere", func(gs map[string]agent.GuestStatus) bool {
		return runningElsewhere(gs, lost, victim.Name)
	}); err != nil {
		return 0, err
	}
	var worst float64
	err := lab.WaitUntil(ctx, 10*time.Second, 20*time.Millisecond, "the first record of every moved guest's new copy", func() (bool, error) {
		worst = 0
		for _, g := range lost {
			ws, err := lab.ReadDisk(d.pool.Disk(g.Name))
			if err != nil {
				return false, err
			}
			i := slices.IndexFunc(ws, func(w lab.Writer) bool { return w.Host != victim.Name && time.Duration(w.First) > killedMono })
			if i < 0 {
				return false, nil
			}
			worst = max(worst, (time.Duration(ws[i].First) - killedMono).Seconds())
		}
		return true, nil
	})
	return worst, err
}

// soakMonitor watches every host for the whole soak, every 200 ms: a
// host seen dead (or fenced, or exited) that was not killed is a false
// fence; it also keeps the suspects seen and the worst renewal figures.
type soakMonitor struct {
	hosts []*lab.Host

	mu       sync.Mutex
	down     map[string]bool // killed, until live again
	state    map[[2]string]liveness.State
	suspects int
	falses   []string
	minLeft  float64 // the least renewal_margin_seconds seen
	maxGap   float64 // the largest renewal_gap_max_seconds seen
	polls    int
	pollErrs int
}

func newSoakMonitor(hosts []*lab.Host) *soakMonitor {
	return &soakMonitor{hosts: hosts, down: map[string]bool{}, state: map[[2]string]liveness.State{}, minLeft: -1}
}

func (m *soakMonitor) killed(name string, down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down[name] = down
}

func (m *soakMonitor) run(ctx context.Context) {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			m.poll(context.Background()) // a last look
			return
		case <-tick.C:
			m.poll(ctx)
		}
	}
}

func (m *soakMonitor) poll(ctx context.Context) {
	m.mu.Lock()
	down := maps.Clone(m.down)
	m.polls++
	m.mu.Unlock()
	for _, h := range m.hosts {
		if down[h.Name] {
			continue
		}
		if runs := h.HookRuns(); len(runs) > 0 {
			m.falseFence(fmt.Sprintf("%s ran its kill_guests hook (%s)", h.Name, runs[0].Reason))
		}
		if r := h.Resets(); len(r) > 0 {
			m.falseFence(fmt.Sprintf("%s was reset by its watchdog", h.Name))
		}
		if h.Exited() {
			m.falseFence(fmt.Sprintf("%s's daemon exited", h.Name))
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := h.Status(sctx)
		cancel()
		m.mu.Lock()
		if err != nil {
			m.pollErrs++ // a status call in a stall; the hook and the watchdog say whether it fenced
			m.mu.Unlock()
			continue
		}
		if m.minLeft < 0 || st.RenewalMarginSeconds < m.minLeft {
			m.minLeft = st.RenewalMarginSeconds
		}
		m.maxGap = max(m.maxGap, st.RenewalGapMaxSeconds)
		for _, p := range st.Hosts {
			key := [2]string{h.Name, p.Name}
			was := m.state[key]
			m.state[key] = p.State
			if p.State == was || p.Name == h.Name || down[p.Name] {
				continue
			}
			switch p.State {
			case liveness.Suspect:
				m.suspects++
			case liveness.Dead:
				m.falseFenceLocked(fmt.Sprintf("%s saw %s dead, which was not killed", h.Name, p.Name))
			}
		}
		m.mu.Unlock()
	}
}

// falseFence records what, once.
func (m *soakMonitor) falseFence(what string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.falseFenceLocked(what)
}

func (m *soakMonitor) falseFenceLocked(what string) {
	if !slices.Contains(m.falses, what) {
		m.falses = append(m.falses, what)
	}
}

func reportSoak(d *demo, plan soakPlan, ran time.Duration, failovers []float64, stalls *stallLog, mon *soakMonitor, guests []string) error {
	t := d.timing
	mon.mu.Lock()
	defer mon.mu.Unlock()
	n, longest := stalls.summary()
	d.say("soak over after %v: %d stalls injected (%d on every host at once), the longest %v", ran.Round(time.Second), n, stalls.shared, longest)
	d.check(n > 0, "stalls were injected (%d)", n)
	for _, f := range mon.falses {
		d.fail("false fence: %s", f)
	}
	d.check(len(mon.falses) == 0, "no false fence over %v: no kill_guests hook, no watchdog reset, no exit and no host seen dead that was not killed (%d polls of every host's status, %d unanswered)",
		ran.Round(time.Second), mon.polls, mon.pollErrs)
	d.say("hosts seen suspect (a slot not renewed for an interval or more, then live again): %d times; the largest gap between two renewals of a host %.3fs, the least left of renewal_fail (%gs) %.3fs",
		mon.suspects, mon.maxGap, t.RenewalFail, mon.minLeft)
	d.figure("soak_seconds", ran.Seconds())
	d.figure("soak_stalls", n)
	d.figure("soak_stalls_shared", stalls.shared)
	d.figure("soak_stall_longest_seconds", longest.Seconds())
	d.figure("soak_false_fences", len(mon.falses))
	d.figure("soak_suspects", mon.suspects)
	d.figure("soak_renewal_gap_max_seconds", mon.maxGap)
	d.figure("soak_renewal_margin_min_seconds", mon.minLeft)
	d.figure("soak_timing", map[string]float64{"interval": t.Interval, "renewal_fail": t.RenewalFail, "watchdog": t.Watchdog, "host_dead": t.HostDead})
	if len(failovers) > 0 {
		lo, med, hi := stats(failovers)
		d.say("%d power losses: the last guest back elsewhere after min %.2fs, median %.2fs, max %.2fs = median %.3f, max %.3f × host_dead (%gs); target %v",
			len(failovers), lo, med, hi, med/t.HostDead, hi/t.HostDead, t.HostDead, plan.target)
		d.figure("soak_power_losses", len(failovers))
		d.figure("soak_failover_seconds", failovers)
		d.figure("soak_failover_seconds_median", med)
		d.figure("soak_failover_seconds_max", hi)
		d.figure("soak_failover_ratio_median", med/t.HostDead)
		d.figure("soak_failover_ratio_max", hi/t.HostDead)
	}
	bad, _, err := d.pool.CheckDisks(guests...)
	if err != nil {
		return err
	}
	for _, b := range bad {
		d.fail("%s", b)
	}
	d.check(len(bad) == 0, "no guest disk ever had two writers at once over %d power losses", len(failovers))
	return nil
}
