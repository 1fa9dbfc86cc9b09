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
	"syscall"
	"time"

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
	deadWithin := t.HostDead + t.Interval
	d.say("the advised pool: host_dead %gs, interval %gs; a power loss is declared within host_dead + interval = %.1fs of it, and its guests start after that: within the %gs target if the plan and their start take under %.1fs",
		t.HostDead, t.Interval, deadWithin, target, target-deadWithin)
	specs, names, err := addHAGuests(ctx, d, soakGuests)
	if err != nil {
		return err
	}
	allRunning := func(gs map[string]agent.GuestStatus) bool { return len(guestsIn(gs, restart.Running)) == len(specs) }
	if _, err := d.liveHosts()[0].WaitGuests(ctx, 3*secs(t.HostDead), "every guest running", allRunning); err != nil {
		return err
	}

	hosts := d.liveHosts()
	mon := newSoakMonitor(hosts, secs(t.HostDead))
	for _, h := range hosts {
		st, err := h.Status(ctx)
		if err != nil {
			return err
		}
		mon.logFrom[h.Name], mon.generation[h.Name] = fileSize(h.LogPath), st.Generation
	}
	// The soak's context ends early if the stalls cannot be injected:
	// a soak without its stalls proves nothing.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	stalls := &stallLog{}
	var injectErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		if injectErr = injectStalls(sctx, plan.maxStall, hosts, nil, stalls); !errors.Is(injectErr, context.Canceled) {
			stop()
		}
	}()
	go func() { defer wg.Done(); mon.run(sctx) }()
	d.say("soak: %v under stalls of up to %v (one every %v–%v, half on every host at once), a power loss at every %v of it", plan.duration, plan.maxStall, stallGapMin, stallGapMax, plan.killEvery)

	began := time.Now()
	var failovers []float64
	runErr := func() error {
		for k := 1; k*int(plan.killEvery/time.Second) <= int(plan.duration/time.Second); k++ {
			if err := sleepUntil(sctx, began.Add(time.Duration(k)*plan.killEvery)); err != nil {
				return err
			}
			gs, err := hosts[0].WaitGuests(sctx, 3*secs(t.HostDead), "every guest running", allRunning)
			if err != nil {
				return err
			}
			victim := busiest(gs, hosts)
			lost := guestsOn(gs, victim.Name)
			st, err := victim.Status(sctx)
			if err != nil {
				return err
			}
			mon.killed(victim.Name, st.Generation)
			took, err := powerLoss(sctx, d, victim, lost)
			if err != nil {
				return err
			}
			failovers = append(failovers, took)
			d.check(took <= target, "power loss %d at %v: %s (generation %d) with %d guests; the last of them wrote again elsewhere %.2fs later = %.3f × host_dead (target %gs)",
				len(failovers), time.Since(began).Round(time.Second), victim.Name, st.Generation, len(lost), took, took/t.HostDead, target)
			if err := victim.Start(); err != nil {
				return err
			}
			if err := d.pool.WaitJoined(sctx, 30*time.Second+secs(t.HostDead), hosts...); err != nil {
				return err
			}
			if err := waitLive(sctx, victim, othersThan(hosts, victim)); err != nil {
				return err
			}
			mon.live(victim.Name)
		}
		return sleepUntil(sctx, began.Add(plan.duration))
	}()
	stop()
	wg.Wait()
	if injectErr != nil && !errors.Is(injectErr, context.Canceled) {
		return injectErr
	}
	if runErr != nil {
		return runErr
	}
	return reportSoak(ctx, d, plan, time.Since(began), failovers, stalls, mon, names)
}

// sleepUntil waits until at, or until ctx ends (its error).
func sleepUntil(ctx context.Context, at time.Time) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(at)):
		return nil
	}
}

// soakProbe runs hbfence probe --json through a faultfs mount of the
// pool's directory under the soak's stalls and saves its output: the
// advice the pool is then formatted with.
func soakProbe(ctx context.Context, d *demo, plan soakPlan, probeFile string) (err error) {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	// The view is served by an hbfence-faultfs process, as the hosts'
	// are: if hbfence-lab is killed, it unmounts rather than leave a dead
	// mount behind.
	base, err := os.MkdirTemp("", "hbfence-soak-probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	mnt := filepath.Join(base, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		return err
	}
	fs, err := lab.ServeFaultFS(d.binary, d.dir, mnt, base, "soak-probe")
	if err != nil {
		return err
	}
	defer fs.Close()
	pctx, stop := context.WithCancel(ctx)
	stalls := &stallLog{}
	injected := make(chan error, 1)
	go func() { injected <- injectStalls(pctx, plan.maxStall, nil, fs, stalls) }()
	d.say("hbfence probe --json --duration %v --watchdog %v %s (a faultfs mount of the pool's directory, stalled as the soak will stall it)", plan.probeFor, plan.watchdog, mnt)
	cmd := exec.CommandContext(ctx, d.binary, "probe", "--json", "--duration", plan.probeFor.String(), "--watchdog", plan.watchdog.String(), mnt)
	// If hbfence-lab dies, SIGTERM stops the probe (it removes its
	// scratch file), so that the view can unmount.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.Output()
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
// random time under maxStall, either every target at once or one of them
// (hosts' faultfs mounts, or one other faultfs view fs). The stall logged
// is each target's own, from before its hang to after its release (the
// control calls included); it always leaves the storage passing, and
// returns the first error, with which the soak ends.
func injectStalls(ctx context.Context, maxStall time.Duration, hosts []*lab.Host, fs *lab.FaultFSServer, log *stallLog) error {
	type target struct {
		hang, pass func() error
	}
	var targets []target
	for _, h := range hosts {
		targets = append(targets, target{h.HangStorage, h.RestoreStorage})
	}
	if fs != nil {
		ctl := func(cmd string) func() error { return func() error { _, err := fs.Ctl(cmd); return err } }
		targets = append(targets, target{ctl("set all hang"), ctl("clear")})
	}
	// The control calls take a few milliseconds; drawn below this, a
	// stall stays under maxStall with them.
	const slack = 10 * time.Millisecond
	for {
		gap := stallGapMin + rand.N(stallGapMax-stallGapMin)
		if err := sleepUntil(ctx, time.Now().Add(gap)); err != nil {
			return err
		}
		chosen := targets
		shared := len(targets) == 1 || rand.N(2) == 0
		if !shared {
			chosen = []target{targets[rand.N(len(targets))]}
		}
		stall := time.Millisecond + rand.N(max(maxStall-slack-time.Millisecond, time.Millisecond))
		began := make([]time.Time, len(chosen))
		var err error
		for i, t := range chosen {
			began[i] = time.Now()
			err = errors.Join(err, t.hang())
		}
		time.Sleep(stall - time.Since(began[0]))
		longest := time.Duration(0)
		for i, t := range chosen {
			err = errors.Join(err, pass(t.pass))
			longest = max(longest, time.Since(began[i]))
		}
		if err != nil {
			return fmt.Errorf("injecting a %v stall: %w", stall, err)
		}
		log.add(longest, shared)
	}
}

// pass releases a stall, trying again for a while: a mount left hung
// would fence its host.
func pass(release func() error) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = release(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
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

// soakMonitor watches every host for the whole soak. Every 200 ms (one
// host after another) it reads what cannot be undone and so cannot be
// missed between two looks: a kill_guests hook run (a file the hook
// appends to as it starts; every fence runs it), a watchdog reset (the
// stand-in's log), a daemon exit; and the renewal figures of each host's
// status. A host whose status goes unanswered for longer than host_dead
// is an error too: the monitor was blind to it. What each daemon saw of
// the others is read at the end from the logs, which hold every
// transition (lookedSeen).
type soakMonitor struct {
	hosts    []*lab.Host
	hostDead time.Duration

	mu         sync.Mutex
	logFrom    map[string]int64    // each host's log size when the soak began
	generation map[string]uint64   // each host's generation then
	gone       map[string][]uint64 // the incarnations killed, by host
	down       map[string]bool     // killed, until live again
	answered   map[string]time.Time
	falses     []string
	minLeft    float64 // the least renewal_margin_seconds seen
	maxGap     float64 // the largest renewal_gap_max_seconds seen
	polls      int
	pollErrs   int
}

func newSoakMonitor(hosts []*lab.Host, hostDead time.Duration) *soakMonitor {
	m := &soakMonitor{hosts: hosts, hostDead: hostDead, logFrom: map[string]int64{}, generation: map[string]uint64{},
		gone: map[string][]uint64{}, down: map[string]bool{}, answered: map[string]time.Time{}, minLeft: -1}
	for _, h := range hosts {
		m.answered[h.Name] = time.Now()
	}
	return m
}

// killed marks incarnation generation of name as killed: the others may
// see it suspect and dead, and name is not looked at until live again.
func (m *soakMonitor) killed(name string, generation uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down[name] = true
	m.gone[name] = append(m.gone[name], generation)
}

func (m *soakMonitor) live(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down[name] = false
	m.answered[name] = time.Now()
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
		if runs := h.HookRuns(); len(runs) > 0 {
			m.falseFence(fmt.Sprintf("%s ran its kill_guests hook (%s)", h.Name, runs[0].Reason))
		}
		if r := h.Resets(); len(r) > 0 {
			m.falseFence(fmt.Sprintf("%s was reset by its watchdog", h.Name))
		}
		if down[h.Name] {
			continue
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
			m.pollErrs++
			if blind := time.Since(m.answered[h.Name]); blind > m.hostDead && !m.down[h.Name] {
				m.falseFenceLocked(fmt.Sprintf("%s's status unanswered for %v, longer than host_dead: the soak could not see it", h.Name, blind.Round(time.Millisecond)))
			}
			m.mu.Unlock()
			continue
		}
		m.answered[h.Name] = time.Now()
		if m.minLeft < 0 || st.RenewalMarginSeconds < m.minLeft {
			m.minLeft = st.RenewalMarginSeconds
		}
		m.maxGap = max(m.maxGap, st.RenewalGapMaxSeconds)
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

// lookedSeen reads every host's log from the soak's start: each
// "suspect" or "dead" of an incarnation that was not killed (its peer
// and generation) is false — dead is a false fence, suspect a slot late
// by more than an interval; it also checks that every host's generation
// grew only by its kills (a daemon that restarted by itself would
// otherwise pass unseen between two polls).
func (m *soakMonitor) lookedSeen(ctx context.Context) (falseSuspects []string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.hosts {
		for _, e := range transitions(h.LogPath, m.logFrom[h.Name]) {
			if (e.to != "suspect" && e.to != "dead") || slices.Contains(m.gone[e.peer], e.generation) {
				continue
			}
			what := fmt.Sprintf("%s saw %s (generation %d, not killed) %s", h.Name, e.peer, e.generation, e.to)
			if e.to == "dead" {
				m.falseFenceLocked(what)
			} else {
				falseSuspects = append(falseSuspects, what)
			}
		}
		st, err := h.Status(ctx)
		if err != nil {
			return nil, err
		}
		if want := m.generation[h.Name] + uint64(len(m.gone[h.Name])); st.Generation != want {
			m.falseFenceLocked(fmt.Sprintf("%s is at generation %d, not %d (%d at the start + %d kills): it restarted by itself", h.Name, st.Generation, want, m.generation[h.Name], len(m.gone[h.Name])))
		}
	}
	return falseSuspects, nil
}

func reportSoak(ctx context.Context, d *demo, plan soakPlan, ran time.Duration, failovers []float64, stalls *stallLog, mon *soakMonitor, guests []string) error {
	t := d.timing
	falseSuspects, err := mon.lookedSeen(ctx)
	if err != nil {
		return err
	}
	mon.mu.Lock()
	defer mon.mu.Unlock()
	n, longest := stalls.summary()
	d.say("soak over after %v: %d stalls injected (%d on every host at once), the longest %v (hang to release, the control calls included)", ran.Round(time.Second), n, stalls.shared, longest.Round(time.Millisecond))
	d.check(n > 0, "stalls were injected (%d)", n)
	for _, f := range mon.falses {
		d.fail("false fence: %s", f)
	}
	d.check(len(mon.falses) == 0, "no false fence over %v: no kill_guests hook, no watchdog reset, no exit or new generation but the kills', no host seen dead in any log that was not killed (%d polls of every host's status, %d unanswered)",
		ran.Round(time.Second), mon.polls, mon.pollErrs)
	d.say("hosts seen suspect (a slot late by an interval or more, then live again) that were not killed: %d %v; the largest gap between two renewals of a host %.3fs, the least left of renewal_fail (%gs) %.3fs",
		len(falseSuspects), falseSuspects, mon.maxGap, t.RenewalFail, mon.minLeft)
	d.figure("soak_seconds", ran.Seconds())
	d.figure("soak_stalls", n)
	d.figure("soak_stalls_shared", stalls.shared)
	d.figure("soak_stall_longest_seconds", longest.Seconds())
	d.figure("soak_false_fences", len(mon.falses))
	d.figure("soak_false_suspects", len(falseSuspects))
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
