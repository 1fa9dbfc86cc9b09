// Package daemon wires the heartbeat member to its edges: the
// configuration, the heartbeat area on storage, the local lock, the control
// socket, signals and logging. It holds no protocol logic of its own.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/fence/watchdog"
	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Status is what the "status" command returns: the member's view of the
// pool plus where the daemon runs.
type Status struct {
	heartbeat.Status
	Version  string        `json:"version"`
	PID      int           `json:"pid"`
	Area     AreaInfo      `json:"area"`
	Watchdog WatchdogInfo  `json:"watchdog"`
	Fence    *fence.Status `json:"fence,omitempty"`
	// Master is the master role as this host sees it (once joined).
	Master *master.Status `json:"master,omitempty"`
	// Guests are the pool's guests as the last plan read here shows
	// them; GuestsOff says why this host has no guest side.
	Guests    []agent.GuestStatus `json:"guests"`
	GuestsOff string              `json:"guests_off,omitempty"`
	// Warnings are pool-wide conditions the operator should fix.
	Warnings []string `json:"warnings,omitempty"`
}

// AreaInfo says where the heartbeat area is.
type AreaInfo struct {
	Path       string `json:"path"`
	Offset     int64  `json:"offset"`
	SectorSize uint32 `json:"sector_size"`
	Slots      uint32 `json:"slots"`
}

// Logger builds the daemon's logger from the configuration.
func Logger(c *config.Config, w io.Writer) zerolog.Logger {
	lvl, _ := zerolog.ParseLevel(c.Log.Level)
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	zerolog.DurationFieldUnit = time.Millisecond
	zerolog.DurationFieldInteger = true
	if c.Log.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}

// Run runs the daemon until SIGTERM or SIGINT (a clean leave) or a fatal
// error.
func Run(ctx context.Context, c *config.Config, version string, log zerolog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	self, err := identity(c, version)
	if err != nil {
		return err
	}
	unlock, err := lockInstance(c.Control.Socket + ".lock")
	if err != nil {
		return err
	}
	defer unlock()

	a, err := area.Open(c.Heartbeat.Path, c.Heartbeat.Offset, directio.ReadWrite)
	if err != nil {
		return err
	}
	defer a.Close()
	h := a.Header()
	// One daemon per host and pool on this machine, whatever its paths
	// (hostlock.go): the join's fast path relies on it.
	hl, err := LockHost(h.PoolUUID, self.MachineID, self.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Path, err)
	}
	defer hl.Close()
	// The master lease does its I/O on an open of its own: the
	// heartbeat's rounds never wait behind a ballot, and a stuck lease
	// I/O blocks only the lease.
	la, err := area.Open(c.Heartbeat.Path, c.Heartbeat.Offset, directio.ReadWrite)
	if err != nil {
		return err
	}
	defer la.Close()
	leaseStore := lease.NewAreaStorage(la)
	// The member adds the host field to its own lines; the daemon's
	// lines get it here.
	memberLog := log
	log = log.With().Str("host", self.Name).Logger()
	log.Info().Str("path", c.Heartbeat.Path).Int64("offset", c.Heartbeat.Offset).
		Str("pool", h.PoolUUID.String()).Uint32("slots", h.SlotCount).Uint32("sector_size", h.SectorSize).
		Str("profile", h.Profile).Str("timing", h.Timing.String()).Str("version", version).
		Msg("starting")

	wd, err := openWatchdog(c, h.Timing)
	if err != nil {
		return err
	}
	if err := fence.CheckWatchdog(h.Timing, wd.Effective()); err != nil {
		return fmt.Errorf("%s: refusing to join the pool: %w", c.Path, err)
	}
	wi := wd.Info()
	if wi.Unsafe {
		log.Warn().Str("watchdog", wi.Backend).Msg(wi.Note)
	}
	gstore, guestsOff, err := openGuestStore(c, h.Timing)
	if err != nil {
		return err
	}
	if gstore != nil {
		defer gstore.Close()
		log.Info().Str("root", gstore.Root()).Strs("drivers", c.Guests.Drivers).Msg("guest records on the cluster root")
	} else {
		log.Warn().Msg("guest side off: " + guestsOff)
	}
	drv := drivers(c, self.Name)
	killer := guestKiller(c, h.Timing.Watchdog)
	if len(drv) > 0 {
		// The drivers' guests are killed first, then the hook runs too
		// (if any): a fence must leave nothing of the pool running here.
		killer = bothKillers{driverKiller{drivers: drv}, killer}
	}
	if wi.Unsafe {
		self.Flags |= ondisk.FlagNoWatchdog
	}

	var mu sync.Mutex
	var cur *fencing          // the current incarnation
	var curMaster *masterSide // and its part in the master role
	var curAgent *agentRun    // and its guest side
	current := func() *fencing {
		mu.Lock()
		defer mu.Unlock()
		return cur
	}
	currentMaster := func() *masterSide {
		mu.Lock()
		defer mu.Unlock()
		return curMaster
	}
	currentAgent := func() *agent.Agent {
		mu.Lock()
		defer mu.Unlock()
		if curAgent == nil {
			return nil
		}
		return curAgent.ag
	}
	srv, err := control.Listen(c.Control.Socket, map[string]control.Handler{
		"fence": func(ctx context.Context, args json.RawMessage) (any, error) {
			return fenceHost(ctx, current(), currentMaster(), h.Timing, args)
		},
		"master.move": func(ctx context.Context, args json.RawMessage) (any, error) {
			return moveMaster(ctx, current(), currentMaster(), h.Timing, args)
		},
		"guest": func(_ context.Context, args json.RawMessage) (any, error) {
			return guestCommand(currentAgent(), currentMaster(), args)
		},
		"pool": func(_ context.Context, args json.RawMessage) (any, error) {
			return poolCommand(currentAgent(), currentMaster(), args)
		},
		"host.evacuate": func(_ context.Context, args json.RawMessage) (any, error) {
			return evacuate(currentAgent(), currentMaster(), current(), args)
		},
		"status": func(context.Context, json.RawMessage) (any, error) {
			mu.Lock()
			fc, ms := cur, curMaster
			mu.Unlock()
			st := Status{
				Version:  version,
				PID:      os.Getpid(),
				Area:     AreaInfo{Path: c.Heartbeat.Path, Offset: c.Heartbeat.Offset, SectorSize: h.SectorSize, Slots: h.SlotCount},
				Watchdog: wd.Info(),
			}
			if fc != nil {
				st.Status = fc.m.Status(time.Now())
				fs := fc.status()
				st.Fence = &fs
			}
			if ms != nil {
				if r := ms.runner(); r != nil {
					m := r.Status(time.Now())
					st.Master = &m
				}
			}
			st.Guests, st.GuestsOff = []agent.GuestStatus{}, guestsOff
			if ag := currentAgent(); ag != nil {
				st.Guests = ag.Guests()
				st.Warnings = poolWarnings(ag.Pool(), st.Status)
			}
			return st, nil
		},
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	srvCtx, srvStop := context.WithCancel(context.Background())
	defer srvStop()
	go srv.Serve(srvCtx)

	if sd, err := watchdog.NewSystemd(); err == nil {
		go feedSystemd(ctx, sd, current, h.Timing, log)
	} else if !errors.Is(err, watchdog.ErrNoSystemdWatchdog) {
		log.Warn().Err(err).Msg("systemd service watchdog")
	}

	for incarnation := 1; ; incarnation++ {
		poison := make(chan poisonPill, 1)
		ms := &masterSide{t: h.Timing, log: log}
		var kick atomic.Pointer[agent.Agent] // this incarnation's guest side, once started
		m, err := heartbeat.New(a, heartbeat.Config{Self: self, Log: memberLog,
			OnRenewal: ms.onRenewal,
			OnRead:    ms.onRead,
			Observer: func(e liveness.Event) {
				// A host that turned dead or left, or came back, may
				// move guests: the master reconciles at once.
				if ag := kick.Load(); ag != nil && (e.Kind != liveness.Transition || e.To == liveness.Dead || e.To == liveness.Left || e.To == liveness.Live) {
					ag.Kick()
				}
			},
			OnMessage: func(in heartbeat.Incoming) heartbeat.Reply {
				switch in.Message.Kind {
				case heartbeat.KindHandOver:
					return ms.onHandOver(in)
				case heartbeat.KindFence:
					if err := ms.fromMaster(in); errors.Is(err, lease.ErrAheadEpoch) {
						ms.deferOrder(in, err)
						return heartbeat.Reply{Defer: true}
					} else if err != nil {
						log.Warn().Err(err).Str("peer", in.FromName).Msg("poison pill refused: not from the master this host knows")
						return heartbeat.Reply{Ack: true, Answer: heartbeat.AnswerNotMaster}
					}
				default:
					return heartbeat.Reply{} // a kind this build does not know: no ack
				}
				action := heartbeat.FenceAction(in.Message.Arg[0])
				if action != heartbeat.FenceOff {
					action = heartbeat.FenceReset
				}
				log.Error().Str("peer", in.FromName).Int("peer_slot", in.FromSlot).Str("action", action.String()).
					Msg("poison pill received: acknowledging, then fencing")
				return heartbeat.Reply{Ack: true, After: func() {
					select {
					case poison <- poisonPill{from: in.FromName, action: action}:
					default:
					}
				}}
			}})
		if err != nil {
			return fmt.Errorf("%s: %w", c.Path, err)
		}
		f, err := fence.New(h.Timing, wd.Effective())
		if err != nil {
			return err
		}
		fc := &fencing{m: m, wd: wd, killer: killer, log: log, f: f, poison: poison,
			orders: make(chan string, 1), onFence: ms.halt}
		mu.Lock()
		cur, curMaster = fc, ms
		mu.Unlock()
		if err := m.Join(ctx); err != nil {
			if errors.Is(err, context.Canceled) {
				log.Info().Msg("stopped while joining")
				return nil
			}
			if incarnation > 1 {
				// Fenced earlier, guests gone, watchdog disarmed:
				// nothing is at risk; keep trying until the storage
				// comes back.
				log.Warn().Err(err).Dur("retry_in_ms", h.Timing.HostDead).Msg("joining again after a fence failed; retrying")
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(h.Timing.HostDead):
				}
				continue
			}
			return fmt.Errorf("joining the pool at %s: %w", c.Heartbeat.Path, err)
		}
		// The lease starts before the member's first round, so that it
		// sees every renewal of this incarnation.
		r, err := master.Start(master.Config{Self: m.Self(), Header: h, FirstRenewalBy: m.FirstRenewalBy(),
			Storage: leaseStore, Log: log,
			OnEvent: func(e lease.Event) {
				if ag := kick.Load(); ag != nil && (e.Kind == lease.HolderChanged || e.Kind == lease.Acquired) {
					ag.Kick() // report on the new epoch at once; a new master reconciles
				}
				if e.Kind == lease.FencedEvent {
					// Renewals lapsed by the lease's count: the
					// fencer's rule says the same; never carry on
					// with a lease that may not act.
					fc.order("master lease fenced: " + e.Detail)
				}
			}})
		if err != nil {
			return fmt.Errorf("starting the master lease: %w", err)
		}
		ms.r.Store(r)
		var ar *agentRun
		if gstore != nil {
			ar = startAgent(agent.New(agent.Config{Cluster: cluster{m: m, r: r, t: h.Timing, fc: fc}, Store: gstore, Drivers: drv,
				Timing: h.Timing, Log: log, OpTimeout: c.Guests.OpTimeout.Duration}))
			kick.Store(ar.ag)
			// Fencing stops the agent before the guests are killed.
			fc.killer = haltingKiller{ar: ar, inner: killer}
		}
		mu.Lock()
		curAgent = ar
		mu.Unlock()
		dutiesCtx, dutiesStop := context.WithCancel(ctx)
		go ms.duties(dutiesCtx, r)
		// On SIGTERM, give the master role up and let the lease's last
		// writes land while the heartbeat still renews (a slow release
		// must not lapse the renewals), then stop the member, which
		// writes "left".
		memberCtx, memberStop := context.WithCancel(context.Background())
		runEnded := make(chan struct{})
		go func() {
			select {
			case <-ctx.Done():
				if ar != nil {
					// Stop the guests and report them stopped; the
					// master restarts the HA ones once it reads
					// "left". If that cannot be done, "left" would be
					// a lie: fence instead (the guests are killed, or
					// the watchdog resets the machine).
					lctx, cancel := context.WithTimeout(context.Background(), c.Guests.OpTimeout.Duration+h.Timing.HostDead)
					err := ar.halt(lctx)
					if err == nil {
						err = ar.ag.Leave(lctx, r.Holder().Epoch)
					}
					cancel()
					if err != nil {
						log.Error().Err(err).Msg("the guests could not all be stopped before leaving: fencing instead of writing \"left\"")
						fc.order("stopping, but the guests could not all be stopped: " + err.Error())
						return
					}
				}
				ms.beforeLeave()
				memberStop()
			case <-runEnded:
			}
		}()
		o, runErr := fc.run(memberCtx)
		close(runEnded)
		memberStop()
		dutiesStop()
		if ar != nil {
			hctx, cancel := context.WithTimeout(context.Background(), h.Timing.HostDead)
			if err := ar.halt(hctx); err != nil {
				log.Error().Err(err).Msg("stopping the guest agent")
			}
			cancel()
		}
		// No lease write of this incarnation may land after it left or
		// after the next incarnation joined.
		ms.stop()
		switch o {
		case leftCleanly:
			return nil
		case fenced:
			if fc.off {
				log.Warn().Msg("fenced off by a poison pill: HA guests gone, watchdog disarmed; staying out of the pool until restarted")
				return nil
			}
			if fc.armErr != nil {
				return fmt.Errorf("%s: fenced because %w; fix the [watchdog] configuration", c.Path, fc.armErr)
			}
			if ctx.Err() != nil {
				return nil
			}
			// Join again when the storage allows, as a new incarnation.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(h.Timing.Interval):
			}
		case resetting:
			if fc.armErr != nil {
				return fmt.Errorf("fenced because %v, and the HA guests are not confirmed gone: the watchdog is no longer fed but may fire later than the pool's rule allows, or not at all: this host is UNSAFE, stop its guests by hand", fc.armErr)
			}
			if wi.Unsafe {
				return fmt.Errorf("fenced (%v) but the HA guests are not confirmed gone and there is no watchdog to reset this machine: this host is UNSAFE, stop its guests by hand", runErr)
			}
			// Wait for the watchdog. Exiting would change nothing: it
			// is armed and no longer fed.
			<-ctx.Done()
			return fmt.Errorf("stopped while waiting for the watchdog to reset this machine (%v)", runErr)
		}
	}
}

func guestKiller(c *config.Config, watchdog time.Duration) fence.GuestKiller {
	if len(c.Fence.KillGuests) == 0 {
		return fence.NoGuests{}
	}
	timeout := c.Fence.KillTimeout.Duration
	if timeout == 0 {
		timeout = watchdog / 2
	}
	return &fence.ExecKiller{Argv: c.Fence.KillGuests, Timeout: timeout}
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
// a dead incarnation of this very daemon.
func lockInstance(path string) (func(), error) {
	if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another hbfence daemon on this machine holds %s (it uses the same control socket); stop it first", path)
	}
	return func() { f.Close() }, nil
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
		if time.Since(last) < t.Interval+2*t.IOTimeout {
			if err := sd.Feed(); err != nil {
				log.Warn().Err(err).Msg("systemd service watchdog")
			}
		}
	}
}
