package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/internal/journal"
	"github.com/hbfence/hbfence/internal/sdnotify"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/rs/zerolog"
)

// The daemon as a systemd service (Type=notify, internal/sdnotify) and the
// events it derives from its own status (docs/operations.md):
//
//   - READY=1 once the host has joined the pool, its watchdog is armed
//     (or it has none to arm) and its guest agent has made its first
//     round (it has adopted the guests that run here); again, with
//     MAINPID=, after a re-exec and after a reload;
//   - STATUS= one line, sent when it changes (at most once a second):
//     "live in pool 1a2b3c4d, slot 3, master node2 epoch 7, 5 guests here",
//     or what is wrong (joining, FENCING, storage slow, UNSAFE, ...);
//   - EXTEND_TIMEOUT_USEC= while joining (a join waits for host_dead at
//     most) and when a stop begins (the hand-over may take [guests]
//     op_timeout + host_dead, then the release and "left");
//   - STOPPING=1 when a stop begins; RELOADING=1 at a reload or a re-exec.
//
// The loop also logs, with their MESSAGE_ID, the storage growing slow
// (MsgStorageLatency) and, on the master, the guests that turned pending,
// failed or were started on a host (MsgGuestPending, MsgGuestError,
// MsgGuestRestarted): what the plan says, in the journal.
type service struct {
	n *sdnotify.Notifier

	mu       sync.Mutex
	ready    bool
	stopping bool
	mainPID  int // sent with the next READY=1 (after a re-exec)

	slow   bool                         // storage latency near its budget, logged
	guests map[string]agent.GuestStatus // by uuid, last seen on the master
}

func newService() *service { return &service{n: sdnotify.New()} }

// serviceTick is how often the service loop looks at the daemon.
func serviceTick(interval time.Duration) time.Duration {
	return min(max(interval, 100*time.Millisecond), time.Second)
}

// serviceLoop keeps systemd and the journal told until ctx ends.
func (d *Daemon) serviceLoop(ctx context.Context) {
	tick := time.NewTicker(serviceTick(d.t.Interval))
	defer tick.Stop()
	lastExtend := time.Time{}
	for {
		v := d.serviceView()
		s := d.svc
		s.mu.Lock()
		ready, stopping := s.ready, s.stopping
		s.mu.Unlock()
		line := statusLine(v)
		switch {
		case stopping:
			s.n.Status(line)
		case !ready && v.ready():
			s.mu.Lock()
			s.ready, ready = true, true
			pid := s.mainPID
			s.mainPID = 0
			s.mu.Unlock()
			if err := s.n.Ready(line, pid); err != nil {
				d.log.Warn().Err(err).Msg("systemd notify: READY=1")
			}
			if s.n.Enabled() {
				d.log.Info().Str("status", line).Msg("systemd notified: ready")
			}
		default:
			s.n.Status(line)
		}
		if !ready && !stopping && time.Since(lastExtend) >= time.Second {
			// A join waits up to host_dead (and the quarantine) with
			// nothing wrong: keep systemd's start timeout from firing.
			s.n.Extend(2*d.t.HostDead + 3*time.Second)
			lastExtend = time.Now()
		}
		d.serviceEvents(v)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// stopBegins tells systemd that a stop began, and how long it may take.
func (d *Daemon) stopBegins() {
	s := d.svc
	if s == nil {
		return
	}
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	bound := d.dur.leaveStop + d.dur.releaseWithin + d.t.RenewalFail + d.t.Watchdog + 5*time.Second
	s.n.Stopping("stopping: handing the guests over, then leaving the pool", bound)
}

// reloadBegins and reloadEnds wrap a reload (SIGHUP).
func (d *Daemon) reloadBegins() {
	if d.svc == nil {
		return
	}
	d.svc.n.Reloading("reloading " + d.c.Path)
}

func (d *Daemon) reloadEnds() {
	s := d.svc
	if s == nil {
		return
	}
	s.mu.Lock()
	ready := s.ready
	s.mu.Unlock()
	if ready {
		s.n.Ready(statusLine(d.serviceView()), 0)
	}
}

// reexecBegins tells systemd that the process re-executes itself (an
// upgrade): RELOADING=1, and READY=1 again once the image that runs then
// (the new one, or this one if the exec failed) is ready.
func (d *Daemon) reexecBegins() {
	s := d.svc
	if s == nil {
		return
	}
	s.mu.Lock()
	s.ready = false
	s.mu.Unlock()
	s.n.Reloading("upgrading: re-executing " + d.exe + " in place")
}

// svcView is what the status line and the events are made of.
type svcView struct {
	host, pool string
	joined     bool
	slot       int
	generation uint64
	fence      fence.State
	fenceWhy   string
	// armed: the watchdog is fed (or there is none to arm); adopted:
	// the guest agent made its first round (or there is none).
	armed, adopted bool
	unsafe         string
	master         string
	epoch          uint64
	isMaster       bool
	guestsHere     int
	guestsOff      string
	renewalAge     time.Duration
	maxLatency     time.Duration
	lastError      string
	ioTimeout      time.Duration
	renewalFail    time.Duration
	interval       time.Duration
	guests         []agent.GuestStatus
}

func (v svcView) ready() bool {
	return v.joined && v.fence == fence.Healthy && v.armed && v.adopted
}

func (d *Daemon) serviceView() svcView {
	v := svcView{host: d.self.Name, pool: d.h.PoolUUID.String(), slot: -1, ioTimeout: d.t.IOTimeout,
		renewalFail: d.t.RenewalFail, interval: d.t.Interval, guestsOff: d.guestsOff}
	if len(v.pool) > 8 {
		v.pool = v.pool[:8]
	}
	d.mu.Lock()
	v.unsafe = d.unsafeWhy
	in := d.cur
	var ar *agentRun
	if in != nil {
		ar = in.ar
	}
	d.mu.Unlock()
	if v.unsafe == "" && d.wi.Unsafe {
		v.unsafe = "UNSAFE: " + d.wi.Note
	}
	if in == nil {
		return v
	}
	now := clk.Now()
	st := in.fc.m.Status(now)
	v.joined, v.slot, v.generation = st.Joined, st.Slot, st.Generation
	v.renewalAge = time.Duration(st.LastRenewalAgeSeconds * float64(time.Second))
	v.maxLatency = time.Duration(st.RenewalLatency.MaxMS * float64(time.Millisecond))
	v.lastError = st.LastError
	fs := in.fc.status()
	v.fence, v.fenceWhy = fs.State, fs.Reason
	v.armed = d.wd.Info().Armed || d.wi.Backend == "none"
	if r := in.ms.runner(); r != nil {
		m := r.Status(now)
		if m.Known {
			v.master, v.epoch = m.Name, m.Epoch
		}
		v.isMaster = m.Self.Acting
	}
	switch {
	case d.gstore == nil:
		v.adopted = true
	case ar != nil:
		select {
		case <-ar.adopted:
			v.adopted = true
		default:
		}
		v.guests = ar.ag.Guests()
		for _, g := range v.guests {
			if g.Host == v.host && (g.State == restart.Running || g.State == restart.Starting) {
				v.guestsHere++
			}
		}
	}
	return v
}

// statusLine is the one line of STATUS=.
func statusLine(v svcView) string {
	var s string
	switch {
	case v.fence == fence.Fencing:
		s = "FENCING: " + v.fenceWhy
	case v.fence == fence.Resetting:
		s = "FENCING, guests not confirmed gone: the watchdog resets this machine: " + v.fenceWhy
	case v.fence == fence.Fenced:
		s = "fenced (guests gone), joining again: " + v.fenceWhy
	case !v.joined:
		s = fmt.Sprintf("joining pool %s as %s", v.pool, v.host)
	case !v.armed:
		s = fmt.Sprintf("joined pool %s, slot %d: arming the watchdog", v.pool, v.slot)
	default:
		s = fmt.Sprintf("live in pool %s, slot %d", v.pool, v.slot)
		switch {
		case v.isMaster:
			s += fmt.Sprintf(", master (this host) epoch %d", v.epoch)
		case v.master != "":
			s += fmt.Sprintf(", master %s epoch %d", v.master, v.epoch)
		default:
			s += ", no master"
		}
		switch {
		case v.guestsOff != "":
			s += ", guest side off"
		case !v.adopted:
			s += ", adopting guests"
		case v.guestsHere == 1:
			s += ", 1 guest here"
		default:
			s += fmt.Sprintf(", %d guests here", v.guestsHere)
		}
	}
	if v.joined && v.fence == fence.Healthy {
		if why := storageSlow(v); why != "" {
			s += "; storage slow: " + why
		}
	}
	if v.unsafe != "" {
		s += "; " + v.unsafe
	}
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return sdnotify.OneLine(s)
}

// storageSlow says how the heartbeat's storage is near its budget: the
// last renewal is older than half of renewal_fail (the fence comes at
// renewal_fail), or a recent renewal took more than half of io_timeout.
func storageSlow(v svcView) string {
	var out []string
	if v.renewalFail > 0 && v.renewalAge > v.renewalFail/2 && v.renewalAge > v.interval+v.ioTimeout/2 {
		w := fmt.Sprintf("last renewal %v ago (renewal_fail %v)", v.renewalAge.Round(100*time.Millisecond), v.renewalFail)
		if v.lastError != "" {
			w += ", last error: " + v.lastError // the storage unreachable, most likely
		}
		out = append(out, w)
	}
	if v.ioTimeout > 0 && v.maxLatency > v.ioTimeout/2 {
		out = append(out, fmt.Sprintf("a renewal took %v (io_timeout %v)", v.maxLatency.Round(time.Millisecond), v.ioTimeout))
	}
	return strings.Join(out, ", ")
}

// serviceEvents logs what changed: the storage's latency, and on the
// master the guests' states.
func (d *Daemon) serviceEvents(v svcView) {
	s := d.svc
	slow := ""
	if v.joined && v.fence == fence.Healthy {
		slow = storageSlow(v)
	}
	if (slow != "") != s.slow {
		s.slow = slow != ""
		if s.slow {
			journal.Tag(d.log.Warn(), journal.MsgStorageLatency).Int("slot", v.slot).Dur("renewal_age_ms", v.renewalAge).
				Dur("max_latency_ms", v.maxLatency).Msg("storage latency near its budget: " + slow)
		} else {
			d.log.Info().Int("slot", v.slot).Msg("storage latency back within its budget")
		}
	}
	if !v.isMaster || v.guests == nil {
		s.guests = nil // a new master starts from what it sees then
		return
	}
	prev := s.guests
	s.guests = make(map[string]agent.GuestStatus, len(v.guests))
	for _, g := range v.guests {
		s.guests[g.UUID] = g
	}
	if prev == nil {
		return
	}
	for _, g := range v.guests {
		logGuestChange(d.log, prev[g.UUID], g, v.epoch)
	}
}

// logGuestChange logs a guest's change of state in the plan.
func logGuestChange(log zerolog.Logger, was, now agent.GuestStatus, epoch uint64) {
	if was.State == now.State && was.Host == now.Host {
		return
	}
	var ev *zerolog.Event
	switch {
	case now.State == restart.Pending:
		ev = journal.Tag(log.Warn(), journal.MsgGuestPending)
	case now.State == restart.Error:
		ev = journal.Tag(log.Error(), journal.MsgGuestError)
	case (now.State == restart.Starting || now.State == restart.Running) && now.Host != "" && now.Host != was.Host && was.State != restart.Migrating,
		now.State == restart.Starting && was.State != restart.Running:
		// Placed on a host: after its host failed or left, after it
		// waited, or for the first time.
		ev = journal.Tag(log.Info(), journal.MsgGuestRestarted)
	default:
		return
	}
	ev = ev.Str("guest", now.Name).Str("uuid", now.UUID).Str("state", string(now.State)).Str("was", string(was.State)).
		Uint64("epoch", epoch).Bool("ha", now.HA)
	if now.Host != "" {
		ev = ev.Str("on", now.Host)
	}
	if was.Host != "" {
		ev = ev.Str("was_on", was.Host)
	}
	msg := fmt.Sprintf("guest %s %s", now.Name, now.State)
	if now.Host != "" {
		msg += " on " + now.Host
	}
	if now.Message != "" {
		msg += ": " + now.Message
	}
	ev.Msg(msg)
}
