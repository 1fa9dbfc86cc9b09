package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/fence/watchdog"
	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/journal"
	"github.com/hbfence/hbfence/internal/lastfence"
	"github.com/hbfence/hbfence/internal/nfsbound"
	"github.com/hbfence/hbfence/internal/privdir"
	"github.com/hbfence/hbfence/internal/runstate"
	"github.com/hbfence/hbfence/internal/sysprio"
	"github.com/hbfence/hbfence/mount"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/hbfence/hbfence/restart/driver"
	"github.com/hbfence/hbfence/restart/store"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Status is what the "status" command returns: the member's view of the
// pool plus where the daemon runs.
type Status struct {
	heartbeat.Status
	Version  string       `json:"version"`
	PID      int          `json:"pid"`
	Area     AreaInfo     `json:"area"`
	Watchdog WatchdogInfo `json:"watchdog"`
	// Protection is what protects the daemon from the machine's load
	// (memory locked, real-time policy, OOM score: internal/sysprio).
	Protection sysprio.Report `json:"protection"`
	Fence      *fence.Status  `json:"fence,omitempty"`
	// Master is the master role as this host sees it (once joined).
	Master *master.Status `json:"master,omitempty"`
	// Guests are the pool's guests as the last plan read here shows
	// them; GuestsOff says why this host has no guest side.
	Guests    []agent.GuestStatus `json:"guests"`
	GuestsOff string              `json:"guests_off,omitempty"`
	// GuestsUnknown says why this host cannot confirm its guests gone
	// (no hypervisor driver, no kill hook): its slot carries
	// ondisk.FlagGuestsUnknown and the pool treats it as unsafe.
	GuestsUnknown string `json:"guests_unknown,omitempty"`
	// Warnings are pool-wide conditions the operator should fix.
	Warnings []string `json:"warnings,omitempty"`
	// Alarms are the conditions the operator must act on, each with a
	// stable code (areawatch.go); always present, empty when none.
	Alarms []Alarm `json:"alarms"`
	// Roles are each host's roles in the pool record as this host last
	// read it (a host not listed has the vm role).
	Roles map[string][]restart.Role `json:"roles,omitempty"`
	// ManagedBy is the UUID of the guest that manages this pool (hbfence
	// pool managed-by), "" for none.
	ManagedBy string `json:"managed_by,omitempty"`
	// Mounts are the pool's storage on this host ([storage]), when the
	// daemon mounts it.
	Mounts *mount.Status `json:"mounts,omitempty"`
	// Started is when this image of the daemon started; LastFence is
	// this host's last fence as [daemon] state_dir records it (from
	// before this start, or since), LastFenceError why it cannot be read.
	Started        time.Time         `json:"started"`
	LastFence      *lastfence.Record `json:"last_fence,omitempty"`
	LastFenceError string            `json:"last_fence_error,omitempty"`
	// BootID is this boot's id (a last fence of another boot was
	// followed by a reset or a reboot).
	BootID string `json:"boot_id,omitempty"`
}

// AreaInfo says where the heartbeat area is.
type AreaInfo struct {
	Path       string `json:"path"`
	Offset     int64  `json:"offset"`
	SectorSize uint32 `json:"sector_size"`
	Slots      uint32 `json:"slots"`
}

// Run runs the daemon until SIGTERM or SIGINT (a clean leave) or a fatal
// error. Signals: signals.go.
func Run(ctx context.Context, c *config.Config, version string, logs *Logs) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// Before anything else, so that every thread and page is covered.
	lockMem, rtPrio, oomAdj := c.Daemon.Protection()
	prot := sysprio.Apply(sysprio.Settings{LockMemory: lockMem, RealtimePriority: rtPrio, OOMScoreAdj: oomAdj})
	d, err := open(c, version, logs)
	if err != nil {
		return err
	}
	d.svc = newService()
	if d.hv != nil {
		d.svc.mainPID = os.Getpid() // READY=1 after a re-exec names the pid again
	}
	d.protection = prot
	d.log.Info().Bool("memory_locked", prot.MemoryLocked).Str("scheduler", prot.Scheduler).Int("realtime_priority", prot.RealtimePriority).
		Int("oom_score_adj", prot.OOMScoreAdj).Msg("protection from the machine's load")
	for _, p := range prot.Problems {
		d.log.Warn().Msg("protection not applied: " + p)
	}
	defer d.close()
	if err := d.serve(); err != nil {
		if d.hv != nil {
			return d.refuse(err)
		}
		return err
	}
	sigCtx, sigStop := context.WithCancel(context.Background())
	defer sigStop()
	go d.signals(sigCtx, stop)
	go d.serviceLoop(sigCtx)
	if t := c.Metrics.Textfile; t != "" {
		go d.metricsLoop(sigCtx, t, d.t.Interval)
	}
	if sd, err := watchdog.NewSystemd(); err == nil {
		go feedSystemd(ctx, sd, d.currentFencing, d.t, d.log)
	} else if !errors.Is(err, watchdog.ErrNoSystemdWatchdog) {
		d.log.Warn().Err(err).Msg("systemd service watchdog")
	}
	return d.lifecycle(ctx)
}

// Daemon is one host's daemon: what lives as long as the process (the
// instance lock, the area's two opens, the watchdog, the guest records,
// the control socket) and the current incarnation, which lives from a
// join to a leave or a fence (lifecycle.go).
type Daemon struct {
	c       *config.Config
	version string
	logs    *Logs
	// svc tells systemd how the daemon is (service.go); started is when
	// this image began; lastFence is the last fence recorded on local
	// disk (lastfence.go).
	svc       *service
	started   time.Time
	lastFence lastFenceState
	// log names the host; memberLog does not (the member adds it).
	log, memberLog zerolog.Logger
	self           join.Identity
	dur            durations
	// leaseQuietUntil is the end of the master lease's quarantine
	// (lease.Config.QuietUntil): a fresh start, after the host lock,
	// waits lease.Quarantine before any ballot or leader write, since a
	// crashed predecessor's writes may still land until then. Zero after
	// a re-exec: the old image's lease was quiescent before it.
	leaseQuietUntil time.Time

	// lockFile holds the instance lock (lockInstance) for as long as
	// the process lives, across re-execs.
	lockFile *os.File
	// hostLock proves that no other daemon of this machine serves this
	// host of this pool (hostlock.go), held across re-execs too.
	hostLock   *HostLock
	a          *area.Area // the heartbeat's open
	h          ondisk.Header
	t          timing.Params
	la         *area.Area // the master lease's open
	leaseStore lease.Storage
	wd         Watchdog
	wi         WatchdogInfo
	// unsafeWhy is set (under mu) once an incarnation stayed unsafe: its
	// guests not confirmed gone and its watchdog not to be trusted.
	unsafeWhy string
	// replaced is set (under mu) once the heartbeat area was found
	// replaced (areawatch.go): the daemon never joins it again.
	replaced *area.ReplacedError
	// aw is the area watch's own open of the area (a duplicate of a's
	// descriptor: a device runs one I/O at a time, and the watch must
	// never make a renewal fail as busy).
	aw *area.Area
	// mounts is the pool's storage on this host ([storage]); nil when
	// the daemon mounts nothing.
	mounts *mount.Mounter
	// storageKick asks the storage loop for a round now (poolstorage.go).
	storageKick chan struct{}
	// served: the forwarded commands this host carried out as master.
	served    served
	gstore    *store.Store
	guestsOff string
	drv       map[string]driver.Driver
	killer    fence.GuestKiller
	// guestsUnknown says why this host cannot list its guests (empty
	// when it can).
	guestsUnknown string
	// runState holds the hypervisor orders not yet confirmed, for the
	// next incarnation of this daemon on this boot (restart/agent).
	runState *runstate.File
	// protection is what sysprio.Apply achieved at start.
	protection sysprio.Report

	srv     *control.Server
	srvStop context.CancelFunc

	// exe is the installed binary an upgrade exec's (upgrade.go), and
	// how it was found; upgrade carries SIGUSR1 to the lifecycle.
	exe, exeSource string
	upgrade        chan struct{}
	// hv is the previous image's hand-over, after an upgrade's exec;
	// adopted: its watchdog was taken over here.
	hv      *handover
	adopted bool
	// resume, when set, makes the next incarnation resume this slot
	// instead of joining (after an upgrade, or a re-exec that failed).
	resume *heartbeat.ResumeState

	mu  sync.Mutex
	cur *incarnation
}

// incarnation is one join's worth of the daemon: its member under its
// fencer, its part in the master role, its guest side.
type incarnation struct {
	fc *fencing
	ms *masterSide
	r  *master.Runner // once joined
	ar *agentRun      // once joined, nil when the guest side is off
	// kick is the guest side, once started, for the member's and the
	// lease's observers.
	kick atomic.Pointer[agent.Agent]
}

// open takes the instance lock and opens everything that lives as long as
// the process, checking the pool's rules. After an upgrade's exec it takes
// them over from the previous image instead (upgrade.go), and checks the
// pool's rules again: if they no longer hold it fences (refuse) and fails.
func open(c *config.Config, version string, logs *Logs) (d *Daemon, err error) {
	log := logs.Logger()
	d = &Daemon{c: c, version: version, logs: logs, memberLog: log, upgrade: make(chan struct{}, 1), storageKick: make(chan struct{}, 1), started: time.Now()}
	opened := d // the returns below set d to nil on an error
	defer func() {
		if err != nil {
			if opened.hv != nil {
				err = opened.refuse(err)
			}
			opened.close()
		}
	}()
	d.log = log.With().Str("host", c.Host.Name).Logger()
	d.exe, d.exeSource = executable()
	if d.hv, err = takeHandover(); err != nil {
		return nil, err
	}
	d.self, err = identity(c, version)
	if err != nil {
		return nil, config.Invalid(err)
	}
	if d.hv != nil {
		d.lockFile, err = adoptLock(d.hv.LockFD, c.Control.Socket+".lock")
	} else {
		d.lockFile, err = lockInstance(c.Control.Socket + ".lock")
	}
	if err != nil {
		return nil, err
	}

	if d.hv == nil {
		// The cluster root first: the heartbeat area lives on it.
		if d.mounts, err = mountStorage(c, d.log, d.repositoryInUse); err != nil {
			return nil, err
		}
	}
	if d.hv != nil {
		d.a, err = area.FromFile(os.NewFile(uintptr(d.hv.AreaFD), c.Heartbeat.Path), c.Heartbeat.Path, c.Heartbeat.Offset)
	} else {
		d.a, err = area.Open(c.Heartbeat.Path, c.Heartbeat.Offset, directio.ReadWrite)
	}
	if err != nil {
		return nil, missingIsInvalid(err, c, "[heartbeat] path", "fix the path, or mount the cluster root first (the unit's RequiresMountsFor=)")
	}
	d.h = d.a.Header()
	d.t = d.h.Timing
	d.dur = durationsOf(d.t, c)
	if d.hv == nil {
		// Every write must land within LateWrite or never, also one of
		// a killed daemon (heartbeat/lease doc.go, "Late writes"): on
		// NFS only a soft mount with short retransmissions bounds it.
		if err := nfsbound.CheckPath(c.Heartbeat.Path, lease.LateWrite(d.t)); err != nil {
			return nil, config.Invalid(fmt.Errorf("%s: [heartbeat] path: %w", c.Path, err))
		}
	}
	d.log = log.With().Str("host", d.self.Name).Logger()

	d.wd, err = openWatchdog(c, d.t)
	if err != nil {
		return nil, missingIsInvalid(err, c, "[watchdog] device", "load the watchdog's driver (softdog, iTCO_wdt, ...) or fix the path")
	}
	if d.hv != nil {
		// Feed at once: the old image fed just before its exec.
		if err := d.wd.(*backend).adopt(d.hv.Watchdog); err != nil {
			return nil, err
		}
		d.adopted = d.hv.Watchdog != nil
		// The area is open already (handed over): the mounts go on
		// beside the daemon, whose watchdog must not wait for their
		// retries.
		if d.mounts, err = newMounter(c, d.log, d.repositoryInUse); err != nil {
			return nil, err
		}
		d.ensureMountsLater()
		if got := d.h.PoolUUID.String(); got != d.hv.Pool {
			return nil, fmt.Errorf("%s: the area's header names pool %s, the previous image ran in pool %s: the area was replaced", c.Heartbeat.Path, got, d.hv.Pool)
		}
		if err := d.t.Validate(); err != nil {
			return nil, fmt.Errorf("%s: pool timing in the header: %w", c.Heartbeat.Path, err)
		}
	}
	// One daemon per host and pool on this machine, whatever its paths
	// (hostlock.go): the join's fast path relies on it.
	if d.hv != nil {
		d.hostLock, err = HostLockFromFile(os.NewFile(uintptr(d.hv.HostLockFD), "host lock"), d.h.PoolUUID, d.self.MachineID, d.self.Name)
	} else {
		d.hostLock, err = LockHost(d.h.PoolUUID, d.self.MachineID, d.self.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path, err)
	}
	if d.hv == nil {
		// The host lock is ours: any earlier daemon of this host has
		// exited, but its writes may still be in flight.
		q := lease.Quarantine(d.t)
		d.leaseQuietUntil = clk.Now().Add(q)
		d.log.Info().Dur("quarantine", q).
			Msg("master lease: no ballot before the quarantine ends (writes of a crashed predecessor may still land until then)")
	}
	// The master lease does its I/O on an open of its own: the
	// heartbeat's rounds never wait behind a ballot, and a stuck lease
	// I/O blocks only the lease.
	if d.hv != nil {
		d.la, err = area.FromFile(os.NewFile(uintptr(d.hv.LeaseFD), c.Heartbeat.Path), c.Heartbeat.Path, c.Heartbeat.Offset)
	} else {
		d.la, err = area.Open(c.Heartbeat.Path, c.Heartbeat.Offset, directio.ReadWrite)
	}
	if err != nil {
		return nil, err
	}
	d.leaseStore = lease.NewAreaStorage(d.la)
	// The member adds the host field to its own lines; the daemon's
	// lines get it here.
	h := d.h
	d.log.Info().Str("path", c.Heartbeat.Path).Int64("offset", c.Heartbeat.Offset).
		Str("pool", h.PoolUUID.String()).Uint32("slots", h.SlotCount).Uint32("sector_size", h.SectorSize).
		Str("profile", h.Profile).Str("timing", h.Timing.String()).Str("version", version).
		Msg("starting")
	for _, w := range c.Warnings {
		d.log.Warn().Str("config", c.Path).Msg(w)
	}
	if d.hv != nil {
		d.log.Info().Str("from_version", d.hv.FromVersion).Int("pid", os.Getpid()).Str("exe", d.hv.Exe).Str("exe_source", d.hv.ExeSource).
			Dur("exec_took_ms", time.Duration(monoNow()-d.hv.ExecMono)).Int("slot", d.hv.Member.Slot).
			Msg("upgrade: this is the new image; resuming the slot without a join")
	}

	if err := fence.CheckWatchdog(d.t, d.wd.Effective()); err != nil {
		return nil, config.Invalid(fmt.Errorf("%s: refusing to join the pool: %w", c.Path, err))
	}
	d.wi = d.wd.Info()
	if d.wi.Unsafe {
		journal.Crit(d.log.Warn(), journal.MsgUnsafe).Str("watchdog", d.wi.Backend).Msg(d.wi.Note)
		d.self.Flags |= ondisk.FlagNoWatchdog
	}
	d.gstore, d.guestsOff, err = openGuestStore(c, d.t)
	if err != nil {
		return nil, err
	}
	if d.gstore != nil {
		// Every record names the pool; another pool's is never used.
		d.gstore.BindPool(d.a.Header().PoolUUID)
		d.log.Info().Str("root", d.gstore.Root()).Strs("drivers", c.Guests.Drivers).Msg("guest records on the cluster root")
	} else {
		d.log.Warn().Msg("guest side off: " + d.guestsOff)
	}
	d.drv = drivers(c, d.self.Name)
	// Hypervisor orders not yet confirmed outlive this process (restart/agent doc.go).
	d.runState, err = runstate.Open(c.Daemon.RunDir, h.PoolUUID.String(), d.self.Name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path, err)
	}
	d.killer = guestKiller(c, d.t.Watchdog, d.drv, d.runState, d.log)
	if d.mounts != nil {
		d.killer = hardRepositoryGuard{inner: d.killer, mounted: d.mounts.Status}
	}
	if len(d.drv) == 0 {
		// Nothing lists this host's guests: its reports and its "left"
		// prove no guest absent (the slot says so), and unless the hook
		// kills them, no fence confirms them gone either.
		d.guestsUnknown = "this host cannot list its guests (no [guests] drivers): the pool places no guest here, and none of the guests it may run is restarted elsewhere when it leaves; set [guests] drivers"
		if _, none := d.killer.(fence.CannotConfirm); none {
			d.guestsUnknown = "UNSAFE: " + fence.ErrCannotConfirm.Error() + ": a fence leaves the watchdog to reset this machine (with no watchdog, the host stays UNSAFE), the pool places no guest here, and none of the guests it may run is restarted elsewhere when it leaves; set [guests] drivers or [fence] kill_guests"
		}
		d.self.Flags |= ondisk.FlagGuestsUnknown
		ev := d.log.Warn()
		if strings.HasPrefix(d.guestsUnknown, "UNSAFE") {
			ev = journal.Crit(ev, journal.MsgUnsafe)
		}
		ev.Msg(d.guestsUnknown)
	}
	if d.hv != nil {
		d.resume = &d.hv.Member
	}
	// The last fence's record outlives the machine's reset.
	if err := privdir.Ensure(c.Daemon.StateDir, "[daemon] state_dir"); err != nil {
		return nil, config.Invalid(fmt.Errorf("%s: %w", c.Path, err))
	}
	d.readLastFence()
	return d, nil
}

// close releases what open and serve took, in reverse order.
func (d *Daemon) close() {
	if d.srvStop != nil {
		d.srvStop()
	}
	if d.srv != nil {
		d.srv.Close()
	}
	if d.gstore != nil {
		d.gstore.Close()
	}
	if d.la != nil {
		d.la.Close()
	}
	if d.aw != nil {
		d.aw.Close()
	}
	if d.a != nil {
		d.a.Close()
	}
	if d.hostLock != nil {
		d.hostLock.Close()
	}
	if d.lockFile != nil {
		d.lockFile.Close()
	}
}

func (d *Daemon) current() *incarnation {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur
}

func (d *Daemon) setCurrent(in *incarnation) {
	d.mu.Lock()
	d.cur = in
	d.mu.Unlock()
}

func (d *Daemon) currentFencing() *fencing {
	if in := d.current(); in != nil {
		return in.fc
	}
	return nil
}

func (d *Daemon) currentMaster() *masterSide {
	if in := d.current(); in != nil {
		return in.ms
	}
	return nil
}

// currentAgent is the current incarnation's guest agent, if it has one
// yet: start sets in.ar under d.mu while status may be asked.
func (d *Daemon) currentAgent() *agent.Agent {
	d.mu.Lock()
	defer d.mu.Unlock()
	if in := d.cur; in != nil && in.ar != nil {
		return in.ar.ag
	}
	return nil
}

// handlers are the control socket's commands, as this host carries them
// out; every command asks the current incarnation.
func (d *Daemon) handlers() map[string]control.Handler {
	return map[string]control.Handler{
		"fence": func(ctx context.Context, args json.RawMessage) (any, error) {
			return fenceHost(ctx, d.currentFencing(), d.currentMaster(), d.t, args)
		},
		"master.move": func(ctx context.Context, args json.RawMessage) (any, error) {
			return moveMaster(ctx, d.currentFencing(), d.currentMaster(), d.t, args)
		},
		"guest": func(_ context.Context, args json.RawMessage) (any, error) {
			return guestCommand(d.currentAgent(), d.currentMaster(), func() []heartbeat.HostStatus { return d.status().Hosts }, args)
		},
		"pool":            d.poolWithValidation,
		"pool.validate":   func(ctx context.Context, _ json.RawMessage) (any, error) { return d.validatePool(ctx) },
		"repository":      d.repositoryCommand,
		"repository.list": d.repositoryList,
		"pool.show": func(context.Context, json.RawMessage) (any, error) {
			return poolView(d.currentAgent(), d.status())
		},
		"pool.repair": func(context.Context, json.RawMessage) (any, error) {
			return repairPool(d.currentAgent(), d.currentMaster())
		},
		"host.evacuate": func(_ context.Context, args json.RawMessage) (any, error) {
			return evacuate(d.currentAgent(), d.currentMaster(), d.currentFencing(), args)
		},
		"host.maintenance": func(ctx context.Context, args json.RawMessage) (any, error) {
			return maintenanceCommand(ctx, d.currentAgent(), d.currentMaster(), d.currentFencing(), d.t, args)
		},
		"pool.managed-by": func(_ context.Context, args json.RawMessage) (any, error) {
			return managedBy(d.currentAgent(), d.currentMaster(), args)
		},
		"status": func(context.Context, json.RawMessage) (any, error) { return d.status(), nil },
	}
}

// serve answers the control socket. A command only the master carries out
// is forwarded to it from any other host (forward.go).
func (d *Daemon) serve() error {
	handlers := d.handlers()
	for method, h := range handlers {
		if forwardable[method] {
			handlers[method] = d.forwarding(method, h)
		}
	}
	var srv *control.Server
	var err error
	if d.hv != nil {
		srv, err = control.FromFile(d.c.Control.Socket, os.NewFile(uintptr(d.hv.ListenerFD), d.c.Control.Socket), handlers)
	} else {
		srv, err = control.Listen(d.c.Control.Socket, handlers)
	}
	if err != nil {
		return err
	}
	d.srv = srv
	srvCtx, srvStop := context.WithCancel(context.Background())
	d.srvStop = srvStop
	go srv.Serve(srvCtx)
	return nil
}

func (d *Daemon) status() Status {
	st := Status{
		Version:  d.version,
		PID:      os.Getpid(),
		Area:     AreaInfo{Path: d.c.Heartbeat.Path, Offset: d.c.Heartbeat.Offset, SectorSize: d.h.SectorSize, Slots: d.h.SlotCount},
		Watchdog: d.wd.Info(), Protection: d.protection,
	}
	st.GuestsUnknown = d.guestsUnknown
	st.Started, st.BootID = d.started, bootID()
	st.LastFence, st.LastFenceError = d.lastFence.get()
	d.mu.Lock()
	if why := d.unsafeWhy; why != "" {
		st.Watchdog.Unsafe, st.Watchdog.Note = true, why
	}
	d.mu.Unlock()
	in := d.current()
	if in != nil {
		st.Status = in.fc.m.Status(clk.Now())
		fs := in.fc.status()
		st.Fence = &fs
		if r := in.ms.runner(); r != nil {
			m := r.Status(clk.Now())
			st.Master = &m
		}
	}
	st.Guests, st.GuestsOff = []agent.GuestStatus{}, d.guestsOff
	if ag := d.currentAgent(); ag != nil {
		st.Guests = ag.Guests()
		pool := ag.Pool()
		st.Warnings = poolWarnings(pool, st.Status)
		st.ManagedBy = pool.ManagedBy
		st.Roles = map[string][]restart.Role{}
		for _, h := range st.Hosts {
			if h.Name != "" {
				st.Roles[h.Name] = pool.RolesOf(h.Name)
			}
		}
	}
	st.Alarms = append([]Alarm{}, d.alarms()...)
	if d.mounts != nil {
		ms := d.mounts.Status()
		st.Mounts = &ms
	}
	return st
}

// guestKiller is what a fence uses to kill this host's HA guests: the
// drivers' guests first, then the operator's hook (if any), both of which
// must confirm; a host with neither can confirm nothing (CannotConfirm).
func guestKiller(c *config.Config, watchdog time.Duration, drv map[string]driver.Driver, rs *runstate.File, log zerolog.Logger) fence.GuestKiller {
	var hook fence.GuestKiller = fence.NoGuests{}
	if len(c.Fence.KillGuests) > 0 {
		timeout := c.Fence.KillTimeout.Duration
		if timeout == 0 {
			timeout = watchdog / 2
		}
		hook = &fence.ExecKiller{Argv: c.Fence.KillGuests, Timeout: timeout}
	}
	switch {
	case len(drv) > 0:
		return bothKillers{driverKiller{drivers: drv, rs: rs, log: log}, hook}
	case len(c.Fence.KillGuests) > 0:
		return hook
	}
	return fence.CannotConfirm{}
}

// missingIsInvalid marks an error of a path the configuration names that
// does not exist as an error of the configuration (the daemon exits 78:
// restarting it would not help), naming the file, the key and the fix.
func missingIsInvalid(err error, c *config.Config, key, fix string) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if strings.Contains(err.Error(), c.Path) {
		return config.Invalid(fmt.Errorf("%w (%s); %s", err, key, fix)) // names the file already
	}
	return config.Invalid(fmt.Errorf("%s: %s: %w; %s", c.Path, key, err, fix))
}

func identity(c *config.Config, version string) (join.Identity, error) {
	id := join.Identity{Name: c.Host.Name, Agent: version}
	if err := ondisk.ValidHostName(c.Host.Name); err != nil {
		return id, fmt.Errorf("%s: [host] name: %w", c.Path, err)
	}
	mid := c.Host.MachineID
	if mid == "" {
		for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
			if b, err := os.ReadFile(p); err == nil {
				mid = strings.TrimSpace(string(b))
				break
			}
		}
	}
	if mid == "" {
		return id, fmt.Errorf("%s: no /etc/machine-id on this machine; set [host] machine_id to a unique 32-hex-digit id", c.Path)
	}
	u, err := ondisk.ParseUUID(mid)
	if err != nil {
		return id, fmt.Errorf("machine id: %w", err)
	}
	id.MachineID = u
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		id.BootID, _ = ondisk.ParseUUID(strings.TrimSpace(string(b)))
	}
	return id, nil
}

// lockInstance takes an exclusive lock that lives as long as this process:
// it proves that no other daemon of this machine runs with this control
// socket, so a slot bearing this host's name and machine id was written by
// a dead incarnation of this very daemon. The lock is the open file: an
// upgrade hands it to the new image (adoptLock).
func lockInstance(path string) (*os.File, error) {
	if err := privdir.Ensure(dirOf(path), "[control] socket (its lock "+path+")"); err != nil {
		return nil, err
	}
	// O_NOFOLLOW: a symbolic link planted there is refused, never followed.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w (a symbolic link is refused: remove it)", path, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("lock %s: not a regular file: remove it", path)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another hbfence daemon on this machine holds %s (it uses the same control socket); stop it first", path)
	}
	return f, nil
}

// adoptLock takes over the instance lock the previous image held on fd,
// and checks that it is still this process's lock on path.
func adoptLock(fd int, path string) (*os.File, error) {
	f := os.NewFile(uintptr(fd), path)
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil {
		f.Close()
		return nil, fmt.Errorf("the instance lock handed over (fd %d): %w", fd, err)
	}
	if err := unix.Stat(path, &b); err != nil || a.Ino != b.Ino || a.Dev != b.Dev {
		f.Close()
		return nil, fmt.Errorf("the instance lock handed over is not %s (%v)", path, err)
	}
	// Our own lock: taking it again on the same open succeeds at once.
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("the instance lock handed over (%s): %w", path, err)
	}
	return f, nil
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}

// feedSystemd feeds systemd's service watchdog (WatchdogSec=) while the
// member's loop shows progress: an I/O finished within interval +
// 2 × io_timeout. It restarts a hung daemon; it is not a fence — the
// fencing watchdog is what resets the machine.
func feedSystemd(ctx context.Context, sd *watchdog.Systemd, current func() *fencing, t timing.Params, log zerolog.Logger) {
	period, err := sd.Arm()
	if err != nil {
		log.Warn().Err(err).Msg("systemd service watchdog")
		return
	}
	log.Info().Dur("watchdog_sec_ms", period).Msg("systemd service watchdog fed while the heartbeat loop runs (restarts a hung daemon; not a fence)")
	started := time.Now()
	tick := time.NewTicker(period / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		last := started
		if fc := current(); fc != nil {
			last = fc.m.Activity()
		}
		if time.Since(last) < progressWithin(t) {
			if err := sd.Feed(); err != nil {
				log.Warn().Err(err).Msg("systemd service watchdog")
			}
		}
	}
}
