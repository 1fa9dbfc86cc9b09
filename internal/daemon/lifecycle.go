package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/journal"
	"github.com/hbfence/hbfence/restart/agent"
)

// ending is how one incarnation ended, as the lifecycle decides on it.
type ending struct {
	// fatal: the incarnation could not be built or started.
	fatal error
	// joinErr: the join failed (the incarnation never ran).
	joinErr error
	// stopped: the daemon was told to stop (SIGTERM) before or while
	// the incarnation ran.
	stopped bool
	// outcome and runErr: how the fencing loop ended, once joined.
	outcome outcome
	runErr  error
	// off: a poison pill asked this host to stay out of the pool.
	off bool
	// armErr: the watchdog could not be armed; feedErr: a feed failed.
	armErr, feedErr error
	// markUnsafe writes the no-watchdog flag into the incarnation's slot
	// (heartbeat.Member.MarkUnsafe).
	markUnsafe func() error
	// first: this was the process's first incarnation.
	first bool
	// unsafe: there is no watchdog.
	unsafe bool
	// resume is the suspended slot of an incarnation stopped for an
	// upgrade (outcome suspended).
	resume *heartbeat.ResumeState
	// replaced: the heartbeat area was found replaced (areawatch.go);
	// the daemon never joins the area it opened again.
	replaced error
}

// stepKind is what the lifecycle does next.
type stepKind int

const (
	stepExit       stepKind = iota // return err from Run
	stepJoin                       // wait, then join again as a new incarnation
	stepAwaitReset                 // wait for the watchdog (or the stop), then return err
	stepReexec                     // exec the installed binary; if that fails, resume here
	stepResume                     // resume the suspended slot in this image (no join)
	stepStayUnsafe                 // mark the slot unsafe, stay alive until stopped, then return err
)

type step struct {
	kind stepKind
	wait time.Duration
	err  error
	// note is logged before the step.
	note string
}

// next is the lifecycle's decision: pure, from how the incarnation ended.
func next(e ending, d durations, cfgPath, areaPath string) step {
	if e.fatal != nil {
		return step{kind: stepExit, err: e.fatal}
	}
	if e.joinErr != nil {
		if errors.Is(e.joinErr, context.Canceled) {
			return step{kind: stepExit, note: "stopped while joining"}
		}
		if !e.first {
			// Fenced earlier, guests gone, watchdog disarmed: nothing
			// is at risk; keep trying until the storage comes back.
			return step{kind: stepJoin, wait: d.joinRetry, note: "joining again after a fence failed; retrying"}
		}
		return step{kind: stepExit, err: fmt.Errorf("joining the pool at %s: %w", areaPath, e.joinErr)}
	}
	switch e.outcome {
	case leftCleanly:
		return step{kind: stepExit}
	case suspended:
		if e.stopped {
			// Stopped while suspending: resume here, and the resumed
			// incarnation leaves cleanly at once.
			return step{kind: stepResume}
		}
		return step{kind: stepReexec}
	case fenced:
		if e.replaced != nil {
			return step{kind: stepExit, err: fmt.Errorf("fenced: %w; restart the daemon to join the area at %s anew", e.replaced, areaPath)}
		}
		if e.off {
			return step{kind: stepExit, note: "fenced off by a poison pill: HA guests gone, watchdog disarmed; staying out of the pool until restarted"}
		}
		if e.armErr != nil {
			return step{kind: stepExit, err: config.Invalid(fmt.Errorf("%s: fenced because %w; fix the [watchdog] configuration", cfgPath, e.armErr))}
		}
		if e.stopped {
			return step{kind: stepExit}
		}
		// Join again when the storage allows, as a new incarnation.
		return step{kind: stepJoin, wait: d.rejoinAfter}
	default: // resetting
		// The guests are not confirmed gone. If the watchdog cannot be
		// trusted to reset the machine, exiting would leave a slot
		// that reads as fenced once it is dead, and the pool would
		// restart guests that still run: mark the slot unsafe and stay.
		if e.armErr != nil {
			return step{kind: stepStayUnsafe, err: fmt.Errorf("fenced because %v, and the HA guests are not confirmed gone: the watchdog is no longer fed but may fire later than the pool's rule allows, or not at all: this host is UNSAFE, stop its guests by hand", e.armErr)}
		}
		if e.feedErr != nil {
			return step{kind: stepStayUnsafe, err: fmt.Errorf("fenced because %v, and the HA guests are not confirmed gone: the watchdog may not reset this machine: this host is UNSAFE, stop its guests by hand", e.feedErr)}
		}
		if e.unsafe {
			return step{kind: stepStayUnsafe, err: fmt.Errorf("fenced (%v) but the HA guests are not confirmed gone and there is no watchdog to reset this machine: this host is UNSAFE, stop its guests by hand", e.runErr)}
		}
		// Wait for the watchdog. Exiting would change nothing: it is
		// armed and no longer fed.
		return step{kind: stepAwaitReset, err: fmt.Errorf("stopped while waiting for the watchdog to reset this machine (%v)", e.runErr)}
	}
}

// lifecycle runs incarnations one after the other until the daemon stops
// or cannot go on.
func (d *Daemon) lifecycle(ctx context.Context) error {
	for n := 1; ; n++ {
		e := d.incarnate(ctx)
		e.first = n == 1
		e.stopped = e.stopped || ctx.Err() != nil
		e.unsafe = d.wi.Unsafe
		s := next(e, d.dur, d.c.Path, d.c.Heartbeat.Path)
		if s.note != "" {
			ev := d.log.Info()
			if s.kind != stepExit {
				ev = d.log.Warn().Err(e.joinErr)
				if s.wait > 0 && e.joinErr != nil {
					ev = ev.Dur("retry_in_ms", s.wait)
				}
			} else if e.off {
				ev = d.log.Warn()
			}
			ev.Msg(s.note)
		}
		switch s.kind {
		case stepExit:
			return s.err
		case stepAwaitReset:
			<-ctx.Done()
			return s.err
		case stepStayUnsafe:
			d.stayUnsafe(e, s.err)
			<-ctx.Done()
			return s.err
		case stepReexec:
			if ctx.Err() != nil {
				// Stopped after the suspend: resume here and leave.
				d.resume = e.resume
				continue
			}
			// Returns only if the exec failed: the old image resumes
			// its slot (no join), as the new one would have.
			d.reexecBegins()
			err := d.reexec(*e.resume)
			d.log.Error().Err(err).Msg("upgrade: the re-exec failed; this image resumes its slot and guests")
			d.resume = e.resume
			continue
		case stepResume:
			d.resume = e.resume
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(s.wait):
		}
	}
}

// newIncarnation builds an incarnation's member, fencer and master side,
// not yet joined, and makes it the current one.
func (d *Daemon) newIncarnation() (*incarnation, error) {
	in := &incarnation{}
	poison := make(chan poisonPill, 1)
	ms := &masterSide{t: d.t, log: d.log}
	in.ms = ms
	log := d.log
	m, err := heartbeat.New(d.a, heartbeat.Config{Self: d.self, Log: d.memberLog, Clock: clk,
		OnRenewal: ms.onRenewal,
		OnRead:    ms.onRead,
		Observer: func(e liveness.Event) {
			// A host that turned dead or left, or came back, may move
			// guests: the master reconciles at once.
			if ag := in.kick.Load(); ag != nil && (e.Kind != liveness.Transition || e.To == liveness.Dead || e.To == liveness.Left || e.To == liveness.Live) {
				ag.Kick()
			}
		},
		OnMessage: func(msg heartbeat.Incoming) heartbeat.Reply {
			switch msg.Message.Kind {
			case heartbeat.KindHandOver:
				return ms.onHandOver(msg)
			case heartbeat.KindRequest:
				return d.onRequest(in, msg)
			case heartbeat.KindFence:
				if err := ms.fromMaster(msg); errors.Is(err, lease.ErrAheadEpoch) {
					ms.deferOrder(msg, err)
					return heartbeat.Reply{Defer: true}
				} else if err != nil {
					log.Warn().Err(err).Str("peer", msg.FromName).Msg("poison pill refused: not from the master this host knows")
					return heartbeat.Reply{Ack: true, Answer: heartbeat.AnswerNotMaster}
				}
			default:
				return heartbeat.Reply{} // a kind this build does not know: no ack
			}
			action := heartbeat.FenceAction(msg.Message.Arg[0])
			if action != heartbeat.FenceOff {
				action = heartbeat.FenceReset
			}
			journal.Crit(log.Error(), journal.MsgFence).Str("peer", msg.FromName).Int("peer_slot", msg.FromSlot).Str("action", action.String()).
				Msg("poison pill received: acknowledging, then fencing")
			return heartbeat.Reply{Ack: true, After: func() {
				select {
				case poison <- poisonPill{from: msg.FromName, action: action}:
				default:
				}
			}}
		}})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.c.Path, err)
	}
	f, err := fence.New(d.t, d.wd.Effective())
	if err != nil {
		return nil, err
	}
	in.fc = &fencing{m: m, wd: d.wd, killer: d.killer, log: d.log, f: f, poison: poison,
		orders: make(chan string, 1), onFence: ms.halt, suspend: make(chan struct{}, 1)}
	in.fc.record = func(reason string) { d.recordFence(in.fc, reason) }
	d.setCurrent(in)
	return in, nil
}

// onLeaseEvent is what an incarnation does on the master lease's events:
// report at once on a new epoch; on the loss of the role, take back the
// poison pills not yet acknowledged (orders of an epoch that is over,
// issue 10 item 6); on a fenced lease, fence.
func (d *Daemon) onLeaseEvent(in *incarnation, m *heartbeat.Member, fc *fencing) func(lease.Event) {
	return func(e lease.Event) {
		if ag := in.kick.Load(); ag != nil && (e.Kind == lease.HolderChanged || e.Kind == lease.Acquired) {
			ag.Kick() // report on the new epoch at once; a new master reconciles
		}
		if e.Kind == lease.Lost || e.Kind == lease.Stepped || e.Kind == lease.FencedEvent {
			if gone := m.Withdraw(heartbeat.KindFence); len(gone) > 0 {
				d.log.Warn().Uints64("seqs", gone).Str("why", e.Kind.String()).Msg("poison pills withdrawn: this host is no longer the master")
			}
		}
		if e.Kind == lease.FencedEvent {
			// Renewals lapsed by the lease's count: the fencer's rule
			// says the same; never carry on with a lease that may not
			// act.
			fc.order("master lease fenced: " + e.Detail)
		}
	}
}

// start starts what runs beside a joined member: the master lease (before
// the member's first round, so that it sees every renewal of this
// incarnation), the master's duties and the guest agent.
func (d *Daemon) start(in *incarnation, firstRenewalBy time.Time) (dutiesStop context.CancelFunc, err error) {
	m, fc := in.fc.m, in.fc
	r, err := master.Start(master.Config{Self: m.Self(), Header: d.h, FirstRenewalBy: firstRenewalBy,
		QuietUntil: d.leaseQuietUntil, Storage: d.leaseStore, Log: d.log, Clock: clk,
		OnEvent: d.onLeaseEvent(in, m, fc)})
	if err != nil {
		return nil, fmt.Errorf("starting the master lease: %w", err)
	}
	in.r = r
	in.ms.r.Store(r)
	if d.gstore != nil {
		ar := startAgent(agent.New(agent.Config{Cluster: cluster{m: m, r: r, t: d.t, fc: fc}, Store: d.gstore, Drivers: d.drv,
			Timing: d.t, Log: d.log, OpTimeout: d.c.Guests.OpTimeout.Duration,
			MaxConcurrentStarts: d.c.Guests.MaxConcurrentStarts, RunState: d.runState, MountBase: d.c.Storage.MountBase}))
		in.kick.Store(ar.ag)
		// Fencing stops the agent before the guests are killed.
		fc.killer = haltingKiller{ar: ar, inner: d.killer}
		d.mu.Lock()
		in.ar = ar
		d.mu.Unlock()
	}
	dutiesCtx, dutiesStop := context.WithCancel(context.Background())
	go in.ms.duties(dutiesCtx, r)
	if d.gstore != nil {
		go d.storageLoop(dutiesCtx, in)
	}
	if d.aw == nil {
		aw, werr := d.a.Watcher()
		if werr != nil {
			d.log.Error().Err(werr).Msg("the heartbeat area cannot be watched for a replacement (area-replaced will not be noticed)")
		}
		d.aw = aw
	}
	if d.aw != nil {
		go d.watchArea(dutiesCtx, in, d.aw, d.t.Interval)
	}
	return dutiesStop, nil
}

// incarnate runs one incarnation: join, run under the fencer, and end by
// a leave (ctx done) or a fence.
func (d *Daemon) incarnate(ctx context.Context) ending {
	in, err := d.newIncarnation()
	if err != nil {
		return ending{fatal: err}
	}
	m, fc := in.fc.m, in.fc
	if rs := d.resume; rs != nil {
		// After an upgrade (or a re-exec that failed): the slot is
		// still ours, with its generation; no join.
		d.resume = nil
		if err := m.Resume(*rs); err != nil {
			return ending{fatal: d.refuse(err)}
		}
		if age := clk.Now().Sub(rs.LastRenewal); age >= d.t.RenewalFail {
			// The fencer's rule, as for any renewal that lapsed.
			fc.order(fmt.Sprintf("resumed after a re-exec whose last renewal is %v old, past renewal_fail (%v)", age.Round(time.Millisecond), d.t.RenewalFail))
		}
	} else if err := m.Join(ctx); err != nil {
		return ending{joinErr: err}
	}
	select {
	case <-d.upgrade:
		d.log.Warn().Msg("upgrade requested while joining: ignored; send SIGUSR1 again now that this host has joined")
	default:
	}
	dutiesStop, err := d.start(in, m.FirstRenewalBy())
	if err != nil {
		return ending{fatal: err}
	}
	// On SIGTERM, give the master role up and let the lease's last
	// writes land while the heartbeat still renews (a slow release must
	// not lapse the renewals), then stop the member, which writes
	// "left".
	memberCtx, memberStop := context.WithCancel(context.Background())
	runEnded := make(chan struct{})
	go func() {
		for {
			select {
			case <-ctx.Done():
				d.leave(in, memberStop)
				return
			case <-d.upgrade:
				if d.prepareUpgrade(in, dutiesStop) {
					return
				}
			case <-runEnded:
				return
			}
		}
	}()
	o, runErr := fc.run(memberCtx)
	close(runEnded)
	memberStop()
	d.end(in, dutiesStop)
	e := ending{outcome: o, runErr: runErr, off: fc.off, armErr: fc.armErr, feedErr: fc.feedErr, stopped: ctx.Err() != nil,
		markUnsafe: m.MarkUnsafe}
	if re := d.replacedArea(); re != nil {
		e.replaced = re
	}
	if o == suspended {
		rs, err := m.Suspend()
		if err != nil {
			return ending{fatal: err}
		}
		e.resume = &rs
	}
	return e
}

// prepareUpgrade readies a running incarnation for a re-exec: the guest
// agent halts (no guest touched: they run on, and the new image adopts
// them), the master role is released (the next master takes over; the new
// image may win it again) and the lease stops and becomes quiescent (no
// lease write of this image may land after the new image writes), then
// the member stops between two rounds. It returns false, and changes
// nothing, when the upgrade cannot be tried.
func (d *Daemon) prepareUpgrade(in *incarnation, dutiesStop context.CancelFunc) bool {
	if re := d.replacedArea(); re != nil {
		// The new image would resume on the open, replaced area.
		d.log.Error().Err(re).Msg("upgrade refused, nothing changed: the heartbeat area was replaced; restart the daemon instead")
		return false
	}
	if err := checkExecutable(d.exe); err != nil {
		d.log.Error().Err(err).Msg("upgrade refused, nothing changed")
		return false
	}
	if err := d.checkUpgradeConfig(); err != nil {
		d.log.Error().Err(err).Msg("upgrade refused, nothing changed")
		return false
	}
	if st := in.fc.status(); st.State != fence.Healthy {
		d.log.Error().Str("fence", st.State.String()).Msg("upgrade refused: this host is not healthy; nothing changed")
		return false
	}
	if in.ar != nil {
		hctx, cancel := context.WithTimeout(context.Background(), d.dur.agentStop)
		err := in.ar.halt(hctx)
		cancel()
		if err != nil {
			// The agent's round is stuck: go on, it is halted for good
			// either way and the new image adopts the guests.
			d.log.Error().Err(err).Msg("upgrade: the guest agent did not stop in time")
		}
	}
	dutiesStop()
	in.ms.beforeLeave(d.dur.releaseWithin)
	in.fc.suspend <- struct{}{}
	return true
}

// checkUpgradeConfig refuses an upgrade whose new image would read a
// configuration it cannot resume with: another host, another area, another
// control socket or another watchdog than the open ones it is handed.
func (d *Daemon) checkUpgradeConfig() error {
	nc, err := config.Load(d.c.Path)
	if err != nil {
		return fmt.Errorf("the new image would read %s, which is not valid: %w", d.c.Path, err)
	}
	var bad []string
	d.mu.Lock()
	changed := changedKeys(d.c, nc)
	d.mu.Unlock()
	for _, k := range changed {
		for _, sec := range []string{"[host] ", "[heartbeat] ", "[control] ", "[watchdog] "} {
			if strings.HasPrefix(k, sec) {
				bad = append(bad, k)
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s changes %s since this daemon started: an upgrade hands over the open area, socket and watchdog and keeps the slot, so these need a restart (systemctl restart hbfence), or undo them", d.c.Path, strings.Join(bad, ", "))
	}
	return nil
}

// requestUpgrade asks the lifecycle to re-execute the binary (SIGUSR1).
func (d *Daemon) requestUpgrade() {
	select {
	case d.upgrade <- struct{}{}:
	default:
	}
}

// refuse is the new image's answer to a pool whose rules no longer hold
// after an upgrade's exec (or a hand-over it cannot take): it fences as a
// lapsed renewal does. The guests of the pool on this host are killed; if
// they are confirmed gone, the watchdog is disarmed; if not, it is left
// unfed and resets the machine.
func (d *Daemon) refuse(cause error) error {
	journal.Crit(d.log.Error(), journal.MsgFence).Err(cause).Msg("upgrade: the new image cannot go on; FENCING: killing this host's guests")
	d.recordFence(nil, "upgrade refused: "+cause.Error())
	killer := d.killer
	if killer == nil {
		killer = guestKiller(d.c, d.t.Watchdog, drivers(d.c, d.c.Host.Name), d.runState, d.log)
	}
	bound := d.t.Watchdog
	if bound <= 0 {
		bound = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	err := killer.KillHAGuests(ctx, "upgrade refused: "+cause.Error())
	cancel()
	switch {
	case err != nil && d.hv != nil && d.hv.Watchdog != nil && !d.adopted:
		// The watchdog handed over was not taken over here (its adoption
		// failed, or the new image stopped before it): nothing says it
		// still resets the machine, and the guests may run. A slot that
		// then reads dead would read fenced, and the pool would restart
		// them (issue 10): mark it unsafe, as stayUnsafe does.
		why := fmt.Errorf("upgrade refused (%v) and the HA guests are not confirmed gone (%v), with a watchdog this image could not take over: this host is UNSAFE, stop its guests by hand", cause, err)
		if merr := d.markHandedSlotUnsafe(); merr != nil {
			journal.Crit(d.log.Error(), journal.MsgUnsafe).Err(merr).AnErr("why", why).Msg("UNSAFE: the slot could not be marked unsafe")
		} else {
			journal.Crit(d.log.Error(), journal.MsgUnsafe).Err(why).Msg("UNSAFE: slot marked unsafe, so that nothing takes this host for fenced")
		}
	case err != nil:
		journal.Crit(d.log.Error(), journal.MsgFence).Err(err).Msg("the guests are not confirmed gone: the watchdog, no longer fed, resets this machine")
	case d.adopted:
		d.log.Warn().Err(d.wd.Disarm()).Msg("the guests are confirmed gone: watchdog disarmed")
	}
	return fmt.Errorf("upgrade refused (%w): this host fenced", cause)
}

// markHandedSlotUnsafe writes the slot handed over by the previous image
// with the no-watchdog flag (heartbeat.Member.MarkUnsafe's record, without
// a member): its death is then never taken for a fence.
func (d *Daemon) markHandedSlotUnsafe() error {
	a := d.a
	if a == nil {
		opened, err := area.FromFile(os.NewFile(uintptr(d.hv.AreaFD), d.c.Heartbeat.Path), d.c.Heartbeat.Path, d.c.Heartbeat.Offset)
		if err != nil {
			return fmt.Errorf("opening the handed-over area: %w", err)
		}
		a = opened
	}
	h := a.Header()
	rec, st, why := ondisk.DecodeSlot(d.hv.Member.Record, h.PoolUUID, d.hv.Member.Slot)
	if st != ondisk.SlotOK {
		return fmt.Errorf("the handed-over slot record (slot %d) does not decode: %s", d.hv.Member.Slot, why)
	}
	rec.Flags |= ondisk.FlagNoWatchdog
	rec.Sequence++
	rec.Wall = time.Now() // wall clock, for humans
	if err := a.WriteSlot(d.hv.Member.Slot, rec.Encode()); err != nil {
		return fmt.Errorf("writing slot %d: %w", d.hv.Member.Slot, err)
	}
	return nil
}

// leave is the clean stop of a running incarnation: stop the guests and
// report them stopped (the master restarts the HA ones once it reads
// "left"), release the master role, then stop the member, which writes
// "left". If the guests cannot all be stopped, "left" would be a lie:
// fence instead (the guests are killed, or the watchdog resets the
// machine).
func (d *Daemon) leave(in *incarnation, memberStop context.CancelFunc) {
	if ar := in.ar; ar != nil {
		lctx, cancel := context.WithTimeout(context.Background(), d.dur.leaveStop)
		err := ar.halt(lctx)
		if err == nil {
			err = ar.ag.Leave(lctx, in.r.Holder().Epoch)
		}
		cancel()
		if err != nil {
			journal.Crit(d.log.Error(), journal.MsgFence).Err(err).Msg("the guests could not all be stopped before leaving: fencing instead of writing \"left\"")
			in.fc.order("stopping, but the guests could not all be stopped: " + err.Error())
			return
		}
	}
	in.ms.beforeLeave(d.dur.releaseWithin)
	memberStop()
}

// end stops what ran beside the member once its run is over: the duties,
// the guest agent, and the lease, whose writes must all have landed: no
// lease write of this incarnation may land after it left or after the
// next incarnation joined.
func (d *Daemon) end(in *incarnation, dutiesStop context.CancelFunc) {
	dutiesStop()
	if in.ar != nil {
		hctx, cancel := context.WithTimeout(context.Background(), d.dur.agentStop)
		if err := in.ar.halt(hctx); err != nil {
			d.log.Error().Err(err).Msg("stopping the guest agent")
		}
		cancel()
	}
	in.ms.stop()
}

// stayUnsafe is the end of an incarnation whose guests are not confirmed
// gone and whose watchdog cannot be trusted to reset the machine: its
// slot is marked unsafe (the pool then never takes its death for a fence
// nor restarts its guests), status says so, and the daemon stays alive
// until it is stopped.
func (d *Daemon) stayUnsafe(e ending, why error) {
	d.mu.Lock()
	d.unsafeWhy = "UNSAFE: " + why.Error()
	d.mu.Unlock()
	if e.markUnsafe == nil {
		journal.Crit(d.log.Error(), journal.MsgUnsafe).Err(why).Msg("UNSAFE: staying alive")
		return
	}
	if err := e.markUnsafe(); err != nil {
		journal.Crit(d.log.Error(), journal.MsgUnsafe).Err(err).AnErr("why", why).Msg("UNSAFE: the slot could not be marked unsafe; staying alive")
		return
	}
	journal.Crit(d.log.Error(), journal.MsgUnsafe).Err(why).Msg("UNSAFE: slot marked unsafe (no watchdog to trust); staying alive so that nothing takes this host for fenced")
}
