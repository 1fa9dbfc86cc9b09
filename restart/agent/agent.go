package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/runstate"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/driver"
	"github.com/hbfence/hbfence/restart/store"
	"github.com/rs/zerolog"
)

// Peer is one host as this daemon's heartbeat sees it.
type Peer struct {
	// Name is empty for a slot in use whose record cannot be read.
	Name       string
	Slot       int
	Generation uint64
	State      liveness.State
	Unsafe     bool // no watchdog
	// GuestsUnknown: the host cannot list its guests (ondisk.FlagGuestsUnknown).
	GuestsUnknown bool
}

// Cluster is what the agent needs of the heartbeat and the master lease.
type Cluster interface {
	// Self is this incarnation as the lease names it.
	Self() ondisk.Owner
	// Leader is the leader record as this host knows it.
	Leader() lease.Holder
	// Master says whether this host acts as master now.
	Master(now time.Time) (lease.Mastership, bool)
	// Peers is the liveness view, this host included.
	Peers() []Peer
	// Fresh says whether this host's last successful renewal began less
	// than renewal_fail ago: a host whose renewals lapsed is fencing (or
	// about to), and starts nothing.
	Fresh(now time.Time) bool
	// Now is the safety clock Master and Fresh take their instants on
	// (the member's: CLOCK_MONOTONIC_RAW in the daemon).
	Now() time.Time
}

// Config configures an agent.
type Config struct {
	Cluster Cluster
	Store   *store.Store
	// Drivers by name; a guest names its driver.
	Drivers map[string]driver.Driver
	Timing  timing.Params
	Log     zerolog.Logger
	// OpTimeout bounds one start or stop (default 2 minutes).
	OpTimeout time.Duration
	// MaxConcurrentStarts bounds the guest starts under way on this host
	// at once ([guests] max_concurrent_starts; default
	// DefaultMaxConcurrentStarts): a hypervisor is not asked to boot a
	// failed host's hundred domains at once (doc.go, "Concurrent starts").
	MaxConcurrentStarts int
	// RunState is where hypervisor orders are recorded before they are
	// issued (doc.go). Nil only in tests: orders are then not recorded.
	RunState *runstate.File
	// Now is the clock of the settle times (default time.Now).
	Now func() time.Time
	// MountBase is where the pool's repositories are mounted ([storage]
	// mount_base): a guest's configuration may lie in one of them.
	MountBase string
}

// Agent is one incarnation's guest side.
type Agent struct {
	cfg Config
	log zerolog.Logger

	// opMu is held (shared) while a driver starts or stops a guest;
	// halted, set under it held exclusively, forbids every later start
	// (Halt). halting is set first, so that starts still waiting for
	// their turn refuse at once and Halt gets the lock.
	opMu    sync.RWMutex
	halted  bool
	halting atomic.Bool

	mu          sync.Mutex // guards what Status and the commands read
	plan        restart.Plan
	pool        store.PoolConfig
	poolHdr     store.Header
	seq         uint64
	attempted   map[string]restart.AttemptID
	done        map[string]restart.AttemptID
	cleanup     map[string]restart.Failure // failed starts not yet confirmed gone
	cleanupIDs  map[string]uint64          // and their orders' ids
	failed      map[string]restart.Failure
	updMu       sync.Mutex // serialises Update
	leaving     bool
	ownPlan     restart.Plan // the last plan this host wrote as master
	planWritten time.Time
	// seen is the newest report read of each host incarnation: a stale
	// read (an older sequence) never takes the master back.
	seen    map[restart.HostID]restart.Report
	lastErr string
	// foreign is why the pool's records are not this pool's (the last
	// read of the pool record or the plan named another pool): while
	// set, this host writes no plan and no pool record over them.
	foreign map[store.Kind]error

	// unsettled are the guests with an order not confirmed settled
	// (orders.go); badRunState is why the run-state file cannot be read.
	unsettled   map[string]*unsettled
	loaded      bool
	badRunState error
	orderSeq    uint64
	pid         int

	kick     chan struct{}
	fastTill time.Time // full rounds every quarter interval until then
}

// DefaultMaxConcurrentStarts is how many guest starts a host runs at once
// unless Config.MaxConcurrentStarts says otherwise.
const DefaultMaxConcurrentStarts = 8

// New returns an agent; Run starts it.
func New(cfg Config) *Agent {
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = 2 * time.Minute
	}
	if cfg.MaxConcurrentStarts <= 0 {
		cfg.MaxConcurrentStarts = DefaultMaxConcurrentStarts
	}
	return &Agent{cfg: cfg, log: cfg.Log.With().Str("component", "guests").Logger(),
		attempted: map[string]restart.AttemptID{}, done: map[string]restart.AttemptID{}, cleanup: map[string]restart.Failure{}, cleanupIDs: map[string]uint64{}, failed: map[string]restart.Failure{}, kick: make(chan struct{}, 1),
		seen: map[restart.HostID]restart.Report{}, unsettled: map[string]*unsettled{}, pid: os.Getpid()}
}

// Kick asks for a round now, and for rounds every quarter interval for
// the next two intervals: something changed that may move guests (a host
// turned dead or left, the master changed, the plan changed).
func (a *Agent) Kick() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run runs a round every interval until ctx ends, and more often after a
// Kick or when a new plan appears: between two rounds it reads the plan
// every quarter interval, and a plan of a new epoch or sequence starts a
// round at once. A guest placed on this host is started within a quarter
// interval of the plan that places it.
func (a *Agent) Run(ctx context.Context) {
	quarter := a.cfg.Timing.Interval / 4
	tick := time.NewTicker(quarter)
	defer tick.Stop()
	last := time.Time{}
	for {
		now := time.Now()
		a.mu.Lock()
		fast := now.Before(a.fastTill)
		a.mu.Unlock()
		if fast || now.Sub(last) >= a.cfg.Timing.Interval-quarter/2 || a.newPlan() {
			a.Round(ctx)
			last = now
		}
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
			a.mu.Lock()
			a.fastTill = time.Now().Add(2 * a.cfg.Timing.Interval)
			a.mu.Unlock()
		case <-tick.C:
		}
	}
}

// newPlan reads the plan and reports whether it is newer than the one this
// host acts on (it is then kept by the round's own read).
func (a *Agent) newPlan() bool {
	_, p, _, err := a.cfg.Store.ReadPlan()
	if err != nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return p.After(a.plan)
}

// Round is one round: the host's part (read the plan, act, report), then,
// while master, the master's (read the reports, write the plan).
func (a *Agent) Round(ctx context.Context) {
	leader := a.cfg.Cluster.Leader()
	a.readPool()
	a.hostRound(ctx, leader)
	if m, ok := a.cfg.Cluster.Master(a.cfg.Cluster.Now()); ok {
		a.masterRound(m)
	}
}

func (a *Agent) self() restart.HostID {
	s := a.cfg.Cluster.Self()
	return restart.HostID{Name: s.Name, Generation: s.Generation}
}

// readPool keeps the newest pool record read (by epoch, then sequence).
// It returns the read's error, store.ErrEmpty for a pool never written.
func (a *Agent) readPool() error {
	h, c, err := a.cfg.Store.ReadPool()
	a.setForeign(store.KindPool, err)
	if err != nil {
		if !errors.Is(err, store.ErrEmpty) {
			a.note("reading the pool record: %v", err)
		}
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if h.Epoch > a.poolHdr.Epoch || h.Epoch == a.poolHdr.Epoch && h.Seq >= a.poolHdr.Seq {
		a.pool, a.poolHdr = c, h
	}
	return nil
}

// hostRound reads the plan, does this host's part, and reports.
func (a *Agent) hostRound(ctx context.Context, leader lease.Holder) {
	epoch := leader.Epoch
	a.readPlan(leader)
	a.loadOrders()
	running, err := a.listRunning(ctx)
	if err != nil {
		// Unknown is not "none": no action, no report this round.
		a.note("listing the guests that run here: %v", err)
		return
	}
	a.settle(running)
	a.mu.Lock()
	in := restart.HostInput{Self: a.self(), Epoch: epoch, Plan: a.plan, Running: running, Attempted: a.attempted}
	leaving := a.leaving
	a.mu.Unlock()
	if !leaving {
		a.retryCleanups(ctx)
		a.act(ctx, restart.Decide(in))
		if running, err = a.listRunning(ctx); err != nil {
			a.note("listing the guests that run here: %v", err)
			return
		}
	}
	a.report(epoch, running, leaving)
}

// readPlan keeps the newest plan of the current epoch written by its
// owner (restart doc.go, H1): an older epoch is over, another writer is
// not the master.
func (a *Agent) readPlan(leader lease.Holder) {
	_, p, writer, err := a.cfg.Store.ReadPlan()
	a.setForeign(store.KindPlan, err)
	if err != nil {
		if !errors.Is(err, store.ErrEmpty) {
			a.note("reading the plan: %v", err)
		}
		return
	}
	if leader.Check(p.Epoch, writer) != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if p.After(a.plan) {
		a.plan = p
	}
}

func (a *Agent) guest(uuid string) (store.GuestDef, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i, ok := a.pool.Find(uuid)
	if !ok {
		return store.GuestDef{}, false
	}
	return a.pool.Guests[i], true
}

// act carries out a round's actions in their order, the starts up to
// MaxConcurrentStarts at once (doc.go, "Concurrent starts"). A start
// beyond the bound waits here for one under way to return; until then it
// is neither recorded nor issued. It returns once every action it issued
// has returned, so the round's listing and report (restart doc.go, H4)
// come after every start of the round. When ctx ends (the agent stops or
// halts), the starts still waiting are not issued.
func (a *Agent) act(ctx context.Context, acts []restart.Action) {
	turns := make(chan struct{}, a.cfg.MaxConcurrentStarts)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, act := range acts {
		if act.Kind != restart.Start {
			a.do(ctx, act)
			continue
		}
		select {
		case turns <- struct{}{}:
		case <-ctx.Done():
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-turns }()
			a.do(ctx, act)
		}()
	}
}

// Halt forbids every start from now on and waits (at most ctx) for every
// start or stop under way to return: once it returns nil, nothing this
// agent does can bring a guest up. The fencing path halts the agent before
// it kills the guests. It does not wait for storage I/O. Starts are
// forbidden from its call on, even when it returns an error.
func (a *Agent) Halt(ctx context.Context) error {
	a.halting.Store(true)
	for !a.opMu.TryLock() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("a guest start or stop under way did not return: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	a.halted = true
	a.opMu.Unlock()
	return nil
}

// do performs one action. A failed start is cleaned up and confirmed
// absent before the failure is reported (restart doc.go, H3).
func (a *Agent) do(ctx context.Context, act restart.Action) {
	a.opMu.RLock()
	defer a.opMu.RUnlock()
	if act.Kind != restart.Stop && (a.halted || a.halting.Load() || !a.cfg.Cluster.Fresh(a.cfg.Cluster.Now())) {
		// Fencing, or a stalled daemon that woke past its renewals (it
		// may be judged dead already): start and migrate nothing. The
		// order is not carried out; it stays for a later round.
		a.log.Warn().Str("uuid", act.Guest).Str("action", act.Kind.String()).Msg("not now: this host is fencing or its renewals have lapsed")
		return
	}
	g, ok := a.guest(act.Guest)
	if !ok {
		a.note("the plan names guest %s, which the pool record does not define", act.Guest)
		return
	}
	if act.Kind != restart.Stop && a.isUnsettled(g.UUID) {
		// An earlier order may still land: nothing new until settled.
		return
	}
	d, ok := a.cfg.Drivers[g.Driver]
	spec := specOf(g)
	log := a.log.With().Str("guest", g.Name).Str("uuid", g.UUID).Str("driver", g.Driver).Logger()
	// Write-ahead: the order is recorded before it is issued, or not
	// issued (doc.go).
	id, rerr := a.record(g.UUID, g.Driver, act.Kind.String(), fmt.Sprintf("%d.%d", act.Attempt.Epoch, act.Attempt.N))
	if rerr != nil {
		log.Error().Err(rerr).Str("action", act.Kind.String()).Msg("order not issued")
		a.note("%v", rerr)
		return
	}
	switch act.Kind {
	case restart.Start:
		a.mu.Lock()
		a.attempted[g.UUID] = act.Attempt
		a.mu.Unlock()
		var err error
		switch {
		case !ok:
			err = fmt.Errorf("no %q driver on this host", g.Driver)
		default:
			err = a.checkConfig(g)
		}
		if cr, isReader := d.(driver.ConfigReader); err == nil && ok && isReader {
			if u, cerr := cr.ConfigUUID(g.Config); cerr != nil {
				err = cerr
			} else if u != strings.ToLower(g.UUID) {
				err = fmt.Errorf("the configuration %s gives the guest UUID %s, not %s: it would run unseen by the pool", g.Config, u, g.UUID)
			}
		}
		if err == nil {
			opCtx, cancel := context.WithTimeout(ctx, a.cfg.OpTimeout)
			err = d.Start(opCtx, spec)
			cancel()
		}
		if err == nil {
			a.confirmStarted(ctx, id, g.UUID, g.Driver)
			log.Info().Uint64("attempt_epoch", act.Attempt.Epoch).Int("attempt", act.Attempt.N).Msg("guest started")
			a.mu.Lock()
			delete(a.failed, g.UUID)
			a.done[g.UUID] = act.Attempt
			a.mu.Unlock()
			return
		}
		if ok {
			if cerr := a.destroy(ctx, d, spec); cerr != nil {
				// Not confirmed gone: report nothing, so the master
				// keeps it here; clean up again every round until it
				// is confirmed gone, then report the failure.
				log.Error().Err(cerr).Msg("a failed start could not be cleaned up; the guest stays assigned here")
				a.mu.Lock()
				a.cleanup[g.UUID] = restart.Failure{Attempt: act.Attempt, Message: err.Error()}
				a.cleanupIDs[g.UUID] = id
				a.mu.Unlock()
				return
			}
		}
		// Failed and confirmed gone (or never issued to a driver).
		a.forget(id)
		log.Warn().Err(err).Uint64("attempt_epoch", act.Attempt.Epoch).Int("attempt", act.Attempt.N).Msg("guest start failed")
		a.mu.Lock()
		a.failed[g.UUID] = restart.Failure{Attempt: act.Attempt, Message: err.Error()}
		a.mu.Unlock()
	case restart.Migrate:
		a.mu.Lock()
		a.attempted[g.UUID] = act.Attempt
		a.mu.Unlock()
		err := fmt.Errorf("no %q driver on this host", g.Driver)
		if ok {
			opCtx, cancel := context.WithTimeout(ctx, a.cfg.OpTimeout)
			err = d.Migrate(opCtx, spec, act.Target)
			cancel()
		}
		// Landed or failed, the migration may still be under way here
		// (a failed one may go on): settled by listings.
		a.hold(g.UUID, g.Driver)
		if err == nil {
			log.Info().Str("target", act.Target).Msg("guest migrated")
			a.mu.Lock()
			delete(a.failed, g.UUID)
			a.mu.Unlock()
			return
		}
		// The master stops it here and restarts it elsewhere.
		log.Warn().Err(err).Str("target", act.Target).Msg("guest migration failed")
		a.mu.Lock()
		a.failed[g.UUID] = restart.Failure{Attempt: act.Attempt, Message: err.Error()}
		a.mu.Unlock()
	case restart.Stop:
		if !ok {
			a.forget(id)
			a.note("cannot stop %s: no %q driver on this host", g.Name, g.Driver)
			return
		}
		// Settled by listings: gone a settle time, or running again.
		defer a.hold(g.UUID, g.Driver)
		opCtx, cancel := context.WithTimeout(ctx, a.cfg.OpTimeout)
		err := d.Stop(opCtx, spec)
		cancel()
		if err != nil {
			log.Warn().Err(err).Msg("graceful stop failed; destroying")
			if err := a.destroy(ctx, d, spec); err != nil {
				log.Error().Err(err).Msg("guest could not be stopped")
				return
			}
		}
		log.Info().Msg("guest stopped")
	}
}

// retryCleanups destroys again the guests whose failed start could not be
// confirmed gone; once one is, its failure is reported.
func (a *Agent) retryCleanups(ctx context.Context) {
	a.mu.Lock()
	pending := maps.Clone(a.cleanup)
	a.mu.Unlock()
	for u, f := range pending {
		g, ok := a.guest(u)
		if !ok {
			continue
		}
		d, ok := a.cfg.Drivers[g.Driver]
		if !ok {
			continue
		}
		if err := a.destroy(ctx, d, specOf(g)); err != nil {
			continue
		}
		a.mu.Lock()
		id := a.cleanupIDs[u]
		delete(a.cleanupIDs, u)
		a.mu.Unlock()
		a.forget(id)
		a.mu.Lock()
		delete(a.cleanup, u)
		a.failed[u] = f
		a.mu.Unlock()
	}
}

func specOf(g store.GuestDef) driver.Spec {
	return driver.Spec{UUID: g.UUID, Name: g.Name, Config: g.Config}
}

func (a *Agent) destroy(ctx context.Context, d driver.Driver, g driver.Spec) error {
	opCtx, cancel := context.WithTimeout(ctx, a.cfg.OpTimeout)
	defer cancel()
	if err := d.Destroy(opCtx, g); err != nil {
		return err
	}
	return driver.ConfirmGone(opCtx, d, g.UUID)
}

// checkConfig checks, before every start, that the guest's configuration
// resolves inside a repository of the pool (links are followed).
func (a *Agent) checkConfig(g store.GuestDef) error {
	a.mu.Lock()
	repos := a.pool.RepositoryDirs(a.cfg.MountBase)
	a.mu.Unlock()
	if len(repos) == 0 {
		repos = []string{a.cfg.Store.Root()}
	}
	return InsideRepository(g.Config, repos)
}

// InsideRepository checks that path, with every link resolved, lies inside
// one of repos (each resolved too).
func InsideRepository(path string, repos []string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("guest configuration %q: not an absolute path", path)
	}
	if slices.Contains(strings.Split(path, "/"), "..") {
		return fmt.Errorf("guest configuration %q: \"..\" is not allowed", path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("guest configuration %q: %w", path, err)
	}
	for _, r := range repos {
		rr, err := filepath.EvalSymlinks(r)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(rr, real); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return nil
		}
	}
	return fmt.Errorf("guest configuration %q resolves to %q, outside the pool's repositories %v", path, real, repos)
}

// listRunning lists the guests every driver runs.
func (a *Agent) listRunning(ctx context.Context) ([]string, error) {
	var all []string
	for _, n := range slices.Sorted(maps.Keys(a.cfg.Drivers)) {
		opCtx, cancel := context.WithTimeout(ctx, a.cfg.OpTimeout)
		run, err := a.cfg.Drivers[n].Running(opCtx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		all = append(all, run...)
	}
	sort.Strings(all)
	return slices.Compact(all), nil
}

// report writes this host's report (restart doc.go, H4): epoch is the
// leader epoch read at the start of the round.
func (a *Agent) report(epoch uint64, running []string, leaving bool) {
	a.mu.Lock()
	a.seq++
	// A failure stays reported until a later order for the guest
	// succeeds here (a failed migration leaves the guest running).
	r := restart.Report{Host: a.self(), Seq: a.seq, Epoch: epoch, Running: running, Failed: maps.Clone(a.failed), Leaving: leaving,
		Done: maps.Clone(a.done), Absent: restart.Absent(a.self(), epoch, a.plan, running), Unsettled: a.unsettledList(running)}
	a.mu.Unlock()
	if err := a.cfg.Store.WriteReport(r); err != nil {
		a.note("writing this host's report: %v", err)
	}
}

// masterRound: read every report, reconcile, write the plan of the epoch.
func (a *Agent) masterRound(m lease.Mastership) {
	peers := a.cfg.Cluster.Peers()
	a.mu.Lock()
	pool := a.pool
	prev := a.ownPlan
	if prev.Epoch != m.Epoch {
		prev = a.plan // the plan of an earlier epoch, for its history
	}
	a.mu.Unlock()
	if prev.Epoch != m.Epoch {
		// A new master: the newest plan on storage, if newer than the
		// one this host last read.
		_, p, _, err := a.cfg.Store.ReadPlan()
		a.setForeign(store.KindPlan, err)
		if err == nil && p.After(prev) {
			prev = p
		}
	}
	in := restart.Input{Epoch: m.Epoch, Pool: restart.Pool{HA: pool.HA, MaxAttempts: pool.MaxAttempts, ManagedBy: pool.ManagedBy}, Prev: prev}
	for host, e := range pool.Evacuations {
		in.Evacuations = append(in.Evacuations, restart.Evacuation{Host: restart.HostID{Name: host, Generation: e.Generation}, All: e.All, Migrate: e.Migrate})
	}
	in.Maintenance = slices.Sorted(maps.Keys(pool.Maintenance))
	for _, g := range pool.Guests {
		in.Guests = append(in.Guests, g.Guest())
	}
	named := map[string]bool{}
	for _, p := range peers {
		named[p.Name] = true
		if p.Name == "" {
			// A slot whose record this host cannot read: someone may
			// be there. A placeholder that is neither gone nor caught
			// up holds every placement back (restart doc.go, M4).
			in.Hosts = append(in.Hosts, restart.Host{ID: restart.HostID{Name: fmt.Sprintf("(slot %d)", p.Slot)}, State: liveness.Unknown})
			continue
		}
		h := restart.Host{ID: restart.HostID{Name: p.Name, Generation: p.Generation}, State: p.State, Unsafe: p.Unsafe, GuestsUnknown: p.GuestsUnknown, Roles: pool.RolesOf(p.Name)}
		if _, r, err := a.cfg.Store.ReadReport(p.Name); err == nil {
			if old, ok := a.seen[r.Host]; ok && old.Seq > r.Seq {
				r = old
			}
			a.seen[r.Host] = r
			h.Report = &r
		} else if !errors.Is(err, store.ErrEmpty) {
			a.note("reading the report of %s: %v", p.Name, err)
		}
		in.Hosts = append(in.Hosts, h)
	}
	// A host that has a report but is not in the liveness view (a new
	// master that has not read its slot yet) is not gone: its report
	// counts, and it is unknown.
	// Reconcile treats a host it cannot name as gone: a master that
	// cannot list them, or read one, does not call it gone (M3).
	names, err := a.cfg.Store.Hosts()
	if err != nil {
		a.note("listing the hosts' reports: %v; no plan this round", err)
		return
	}
	for _, n := range names {
		if named[n] {
			continue
		}
		// A host that left (its slot taken since) keeps its last
		// report, written after it stopped every guest: not a host.
		_, r, err := a.cfg.Store.ReadReport(n)
		switch {
		case err == nil && !r.Leaving:
			in.Hosts = append(in.Hosts, restart.Host{ID: r.Host, State: liveness.Unknown, Report: &r})
		case err != nil && !errors.Is(err, store.ErrEmpty):
			a.note("reading the report of %s: %v", n, err)
			in.Hosts = append(in.Hosts, restart.Host{ID: restart.HostID{Name: n}, State: liveness.Unknown})
		}
	}
	plan, notes := restart.Reconcile(in)
	if err := a.Foreign(); err != nil {
		// The records are another pool's: a plan written over them
		// would place that pool's guests (issue 9, item 6: the split
		// pool's two masters accepted each other's plans), and the
		// other pool would lose its own.
		a.note("no plan written: %v", err)
		return
	}
	// Act only while still master: ask again right before the write.
	if now, ok := a.cfg.Cluster.Master(a.cfg.Cluster.Now()); !ok || now.Epoch != m.Epoch {
		return
	}
	// The plan counts as written before the write: a write that fails
	// may still land, and the next plan must not reuse its sequence or
	// its start orders. An unchanged plan (same sequence) is written
	// again only now and then, in case a late write of an older master
	// landed over it.
	a.mu.Lock()
	a.ownPlan = plan
	unchanged := plan.Epoch == prev.Epoch && plan.Seq == prev.Seq && time.Since(a.planWritten) < 4*a.cfg.Timing.Interval
	a.mu.Unlock()
	if unchanged {
		a.logNotes(notes, pool, plan)
		return
	}
	if err := a.cfg.Store.WritePlan(plan, a.cfg.Cluster.Self()); err != nil {
		// Written again next round, with the same sequence.
		a.note("writing the plan: %v", err)
		return
	}
	a.mu.Lock()
	a.planWritten = time.Now()
	a.mu.Unlock()
	a.logNotes(notes, pool, plan)
}

func (a *Agent) logNotes(notes []restart.Note, pool store.PoolConfig, plan restart.Plan) {
	for _, n := range notes {
		ev := a.log.Info()
		if n.Alarm {
			ev = a.log.Error()
		}
		name := n.Guest
		if g, ok := pool.Find(n.Guest); ok {
			name = pool.Guests[g].Name
		}
		ev.Str("guest", name).Str("uuid", n.Guest).Uint64("epoch", plan.Epoch).Msg(n.Text)
	}
}

func (a *Agent) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.mu.Lock()
	same := msg == a.lastErr
	a.lastErr = msg
	a.mu.Unlock()
	if !same {
		a.log.Warn().Msg(msg)
	}
}

// Leave stops every guest of the pool this host runs and reports them
// stopped, before the daemon writes "left": a host that left runs no guest
// (restart doc.go, M2), and the master restarts the HA ones at once.
// Guests without HA are stopped too: "left" promises the pool that nothing
// of it runs here. It returns an error unless a final listing shows none
// of the pool's guests: the daemon must then not write "left" (it fences
// instead).
func (a *Agent) Leave(ctx context.Context, epoch uint64) error {
	a.mu.Lock()
	a.leaving = true
	poolKnown := a.poolHdr.Seq > 0
	a.mu.Unlock()
	if !poolKnown {
		a.readPool()
		a.mu.Lock()
		poolKnown = a.poolHdr.Seq > 0
		a.mu.Unlock()
	}
	running, err := a.listRunning(ctx)
	if err != nil {
		return fmt.Errorf("listing the guests to stop before leaving: %w", err)
	}
	if !poolKnown && len(running) > 0 {
		return fmt.Errorf("the pool record was never read, so guests %v cannot be told apart from the pool's", running)
	}
	for _, u := range running {
		if _, ok := a.guest(u); ok {
			a.do(ctx, restart.Action{Kind: restart.Stop, Guest: u})
		}
	}
	// A start that failed, or that the halt cut off, and whose guest is
	// not confirmed gone yet (it may still come up): destroyed and
	// confirmed now, with the driver's settle time, or no leave.
	a.retryCleanups(ctx)
	a.mu.Lock()
	unconfirmed := slices.Sorted(maps.Keys(a.cleanup))
	a.mu.Unlock()
	if len(unconfirmed) > 0 {
		return fmt.Errorf("guests %v, whose start failed or was cut off, are not confirmed gone", unconfirmed)
	}
	// Confirmed gone, with each driver's settle time.
	for name, d := range a.cfg.Drivers {
		var ours []string
		for _, u := range running {
			if g, ok := a.guest(u); ok && g.Driver == name {
				ours = append(ours, u)
			}
		}
		if err := driver.ConfirmGone(ctx, d, ours...); err != nil {
			return fmt.Errorf("guests not confirmed gone after their stop: %w", err)
		}
	}
	if running, err = a.listRunning(ctx); err != nil {
		return fmt.Errorf("listing the guests after stopping them: %w", err)
	}
	var left []string
	for _, u := range running {
		if _, ok := a.guest(u); ok {
			left = append(left, u)
		}
	}
	a.report(epoch, running, true)
	if len(left) > 0 {
		return fmt.Errorf("guests %v still run after their stop", left)
	}
	return nil
}

// GuestStatus is one guest as status shows it.
type GuestStatus struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
	// HA is effective HA: on for the pool and the guest, and not the
	// pool's management instance.
	HA        bool              `json:"ha"`
	HAGuest   bool              `json:"ha_guest"`
	HAPool    bool              `json:"ha_pool"`
	Driver    string            `json:"driver"`
	Config    string            `json:"config"`
	Placement restart.Placement `json:"placement"`
	Preferred []string          `json:"preferred,omitempty"`
	// Host is where it runs (or is starting); empty when not running.
	Host  string        `json:"host"`
	State restart.State `json:"state"`
	// Target is where a migrating guest goes.
	Target  string `json:"target,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	Message string `json:"message,omitempty"`
	// Manages is the pool this guest manages (guest add --manages);
	// ManagesThisPool: the pool record names it as this pool's manager
	// (pool managed-by), so HA never protects it here.
	Manages         string `json:"manages,omitempty"`
	ManagesThisPool bool   `json:"manages_this_pool,omitempty"`
}

// Guests reports every guest of the pool as the last plan read here shows
// it.
func (a *Agent) Guests() []GuestStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	plan := a.plan
	if a.ownPlan.After(plan) {
		plan = a.ownPlan
	}
	out := make([]GuestStatus, 0, len(a.pool.Guests))
	for _, g := range a.pool.Guests {
		s := GuestStatus{Name: g.Name, UUID: g.UUID, HAGuest: g.HA, HAPool: a.pool.HA, HA: a.pool.HA && g.HA && !g.Management && !a.pool.IsManager(g.UUID),
			Driver: g.Driver, Config: g.Config, Placement: g.Placement, Preferred: g.Preferred, State: restart.Stopped,
			Manages: g.Manages, ManagesThisPool: a.pool.IsManager(g.UUID)}
		if e, ok := plan.Guests[g.UUID]; ok {
			s.State, s.Attempt, s.Message = e.State, e.Tries, e.Message
			if e.State == restart.Running || e.State == restart.Starting || e.State == restart.Stopping || e.State == restart.Migrating {
				s.Host = e.Host.Name
			}
			if e.State == restart.Migrating {
				s.Target = e.Target.Name
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// setForeign keeps whether the last read of the record of kind k named
// another pool.
func (a *Agent) setForeign(k store.Kind, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if errors.Is(err, store.ErrOtherPool) {
		if a.foreign == nil {
			a.foreign = map[store.Kind]error{}
		}
		a.foreign[k] = err
	} else if err == nil || errors.Is(err, store.ErrEmpty) {
		delete(a.foreign, k)
	}
}

// Foreign is why the pool's records on the cluster root are not this
// pool's (an *store.OtherPoolError), or nil: the master then writes no
// plan and refuses every change (an alarm for status).
func (a *Agent) Foreign() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range []store.Kind{store.KindPool, store.KindPlan} {
		if err := a.foreign[k]; err != nil {
			return err
		}
	}
	return nil
}

// ErrNotMaster: a change of the pool's records must be made on the master.
var ErrNotMaster = errors.New("changes to the pool's guests are made by the master")

// Update changes the pool record, on the master only: f edits a copy of
// the newest record, which is written stamped with the master's epoch.
func (a *Agent) Update(f func(*store.PoolConfig) error) error {
	a.updMu.Lock()
	defer a.updMu.Unlock()
	m, ok := a.cfg.Cluster.Master(a.cfg.Cluster.Now())
	if !ok {
		return ErrNotMaster
	}
	// An edit of a record this host could not read would write the
	// edit alone over the pool's guests: refused until a read succeeds.
	if err := a.readPool(); err != nil && !errors.Is(err, store.ErrEmpty) {
		return fmt.Errorf("the pool record cannot be read, so it is not changed (nothing was written; try again, or see the storage): %w", err)
	}
	a.mu.Lock()
	c := clonePool(a.pool)
	a.mu.Unlock()
	if err := f(&c); err != nil {
		return err
	}
	if now, ok := a.cfg.Cluster.Master(a.cfg.Cluster.Now()); !ok || now.Epoch != m.Epoch {
		return ErrNotMaster
	}
	if err := a.cfg.Store.WritePool(m.Epoch, c); err != nil && !errors.Is(err, store.ErrBackupFailed) {
		return err
	} else if err != nil {
		a.note("%v", err) // the change is made; the next one writes the backup again
	}
	a.readPool()
	return nil
}

// Repaired says what RepairPool wrote.
type Repaired struct {
	// From is where the copy came from: "master" (the newest good copy
	// this master read) or "backup" (pool.backup).
	From string `json:"from"`
	// Epoch, Seq and Written are those of the pool record copied.
	Epoch   uint64    `json:"epoch"`
	Seq     uint64    `json:"seq"`
	Written time.Time `json:"written"`
	Guests  int       `json:"guests"`
	// Kept is where the unreadable record was copied before the repair.
	Kept string `json:"kept"`
}

// RepairPool writes a good pool record over one that cannot be read
// (issue 10, item 17: every edit is rightly refused then, and nothing could
// write a good one): the newer of the copy this master last read and the
// backup copy (pool.backup, written after every change), by epoch and
// sequence. The unreadable file is kept beside it first. Refused on a host
// that is not the master, when the record reads fine or is another pool's
// (the alarm records-of-another-pool), and when there is no good copy.
// Changes made after the copy's epoch and sequence are lost: the answer
// names them.
func (a *Agent) RepairPool() (Repaired, error) {
	a.updMu.Lock()
	defer a.updMu.Unlock()
	m, ok := a.cfg.Cluster.Master(a.cfg.Cluster.Now())
	if !ok {
		return Repaired{}, ErrNotMaster
	}
	err := a.readPool()
	switch {
	case err == nil:
		a.mu.Lock()
		h := a.poolHdr
		a.mu.Unlock()
		return Repaired{}, fmt.Errorf("the pool record reads fine (epoch %d, sequence %d): nothing to repair", h.Epoch, h.Seq)
	case errors.Is(err, store.ErrEmpty):
		return Repaired{}, errors.New("there is no pool record yet: nothing to repair (the first change writes one)")
	case errors.Is(err, store.ErrOtherPool):
		return Repaired{}, fmt.Errorf("not repaired: %w", err)
	}
	a.mu.Lock()
	c, h, from := clonePool(a.pool), a.poolHdr, "master"
	a.mu.Unlock()
	if bh, bc, berr := a.cfg.Store.ReadPoolBackup(); berr == nil && (h.Seq == 0 || bh.Epoch > h.Epoch || bh.Epoch == h.Epoch && bh.Seq > h.Seq) {
		c, h, from = bc, bh, "backup"
	} else if h.Seq == 0 {
		return Repaired{}, fmt.Errorf("the pool record cannot be read (%v) and there is no good copy: this master never read one, and the backup copy cannot be read either (%v); restore %s from a backup of the cluster root", err, berr, store.Dir+"/pool")
	}
	kept, kerr := a.cfg.Store.KeepUnreadablePool(time.Now())
	if kerr != nil {
		return Repaired{}, kerr
	}
	if now, ok := a.cfg.Cluster.Master(a.cfg.Cluster.Now()); !ok || now.Epoch != m.Epoch {
		return Repaired{}, ErrNotMaster
	}
	if werr := a.cfg.Store.WritePool(m.Epoch, c); werr != nil && !errors.Is(werr, store.ErrBackupFailed) {
		return Repaired{}, werr
	}
	a.readPool()
	return Repaired{From: from, Epoch: h.Epoch, Seq: h.Seq, Written: h.Written, Guests: len(c.Guests), Kept: kept}, nil
}

func clonePool(c store.PoolConfig) store.PoolConfig {
	out := c
	out.Guests = slices.Clone(c.Guests)
	out.Repositories = slices.Clone(c.Repositories)
	if c.Evacuations != nil {
		out.Evacuations = map[string]store.Evacuation{}
		for k, v := range c.Evacuations {
			v.Migrate = slices.Clone(v.Migrate)
			out.Evacuations[k] = v
		}
	}
	out.Maintenance = maps.Clone(c.Maintenance)
	if c.Roles != nil {
		out.Roles = map[string][]restart.Role{}
		for k, v := range c.Roles {
			out.Roles[k] = slices.Clone(v)
		}
	}
	return out
}

// MountBase is where the pool's repositories are mounted (Config).
func (a *Agent) MountBase() string { return a.cfg.MountBase }

// Pool is the newest pool record read here.
func (a *Agent) Pool() store.PoolConfig {
	a.mu.Lock()
	defer a.mu.Unlock()
	return clonePool(a.pool)
}

// PoolHeader is the header of the pool record Pool came from (zero: none
// read yet).
func (a *Agent) PoolHeader() store.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.poolHdr
}
