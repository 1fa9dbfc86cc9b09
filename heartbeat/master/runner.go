package master

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/internal/safeclock"
	"github.com/rs/zerolog"
)

// Config configures the runner of one incarnation.
type Config struct {
	// Self is this incarnation (heartbeat.Member.Self).
	Self ondisk.Owner
	// Header is the pool's header (timing, slots, pool UUID).
	Header ondisk.Header
	// FirstRenewalBy is the join's deadline for the first renewal
	// (heartbeat.Member.FirstRenewalBy).
	FirstRenewalBy time.Time
	// QuietUntil is the end of the lease's quarantine on Clock
	// (lease.Config.QuietUntil): a daemon started afresh sets its start
	// plus lease.Quarantine; zero after a re-exec in place.
	QuietUntil time.Time
	// Storage holds the leader sector and ballot region. On a real area,
	// lease.NewAreaStorage over an area opened for the lease alone: its
	// device does one I/O at a time, and the heartbeat's rounds must not
	// wait behind a ballot.
	Storage lease.Storage
	Log     zerolog.Logger
	// OnEvent, if set, is told of every lease event after it is logged.
	// It runs on the runner's goroutine, without the runner's lock, and
	// must not block.
	OnEvent func(lease.Event)
	// Clock is the safety clock of every lease instant and wait; nil
	// means safeclock.Raw (CLOCK_MONOTONIC_RAW). It must be the member's
	// clock: Renewed, Observed and Master take the member's instants.
	Clock safeclock.Clock
}

// Runner drives the master lease of one incarnation: it owns the pure
// lease.Lease on a goroutine of its own, performs its I/O, feeds it the
// member's renewals and liveness view, keeps it acquiring for as long as
// it runs, and answers the questions of the daemon: is this host master
// now, who is, what happened. Commands that change what the lease does
// (hand over, release, stop) are applied between two of its I/Os.
type Runner struct {
	cfg Config
	log zerolog.Logger

	mu     sync.Mutex // guards the lease, the history and soonTo
	l      *lease.Lease
	drv    *lease.Driver
	hist   history
	soonTo time.Time // read the leader record often until then (ReadOften)

	subsMu sync.Mutex
	subs   map[int]chan lease.Event
	nsub   int

	// Failed lease I/O, for logIO (the runner's goroutine only).
	ioFails  int
	ioErr    string
	ioLogged time.Time

	wake  chan struct{}
	cmds  chan command
	stop  chan struct{}
	done  chan struct{}
	quiet time.Time // QuiescentAt when the loop ended
}

type command struct {
	apply func(l *lease.Lease, now time.Time) error
	reply chan error
}

// ErrStopped: the runner has been stopped.
var ErrStopped = errors.New("the master lease runner is stopped")

// Start creates the lease of this incarnation and starts acquiring: the
// lease is taken as soon as it is free, released, or its owner is gone in
// the liveness view, and kept until this incarnation stops, fences or
// hands it over (it then acquires again: every member keeps trying).
func Start(cfg Config) (*Runner, error) {
	h := cfg.Header
	l, err := lease.New(lease.Config{
		Self: cfg.Self, Pool: h.PoolUUID, Slots: int(h.SlotCount), Timing: h.Timing,
		FirstRenewalBy: cfg.FirstRenewalBy, QuietUntil: cfg.QuietUntil,
	})
	if err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = safeclock.Raw
	}
	r := &Runner{
		cfg:  cfg,
		log:  cfg.Log.With().Str("component", "master").Logger(),
		l:    l,
		drv:  lease.NewDriver(l, cfg.Storage, cfg.Clock.Now),
		subs: map[int]chan lease.Event{},
		wake: make(chan struct{}, 1),
		cmds: make(chan command),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if err := l.Acquire(cfg.Clock.Now()); err != nil {
		return nil, err
	}
	go r.loop()
	return r, nil
}

// Renewed reports a successful renewal of this host's slot
// (heartbeat.Config.OnRenewal). Safe to call while an I/O of the lease is
// under way: it only refreshes the acting window or latches the fence.
func (r *Runner) Renewed(issued, done time.Time) {
	r.mu.Lock()
	r.l.Renewed(issued, done)
	r.mu.Unlock()
	r.poke()
}

// Observed gives the lease the liveness view after a read of the slots
// (heartbeat.Config.OnRead). An acquisition that waits for a dead owner
// reads the leader record at once when the view allows it.
func (r *Runner) Observed(issued, done time.Time, peers []liveness.Peer) {
	v := lease.ViewRead(issued, peers)
	r.mu.Lock()
	r.l.SetView(done, v)
	r.mu.Unlock()
	r.poke()
}

// Master reports whether this host may act as master now, and until when
// without asking again. Every duty of the master asks it right before
// acting and stamps what it writes with the epoch.
func (r *Runner) Master(now time.Time) (lease.Mastership, bool) {
	r.mu.Lock()
	ms, ok := r.l.Master(now)
	r.mu.Unlock()
	r.poke() // asking may have latched the fence: publish it
	return ms, ok
}

// Holder is the leader record as this host knows it: as last read, or this
// host's own record of a later epoch once it acquired (before it reads it
// back). Orders stamped with an epoch are judged against it.
func (r *Runner) Holder() lease.Holder {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.holder()
}

func (r *Runner) holder() lease.Holder {
	hd := r.l.Holder()
	if ls := r.l.Status(); ls.Role == lease.Master && ls.Epoch > hd.Epoch {
		hd = lease.Holder{Known: true, Epoch: ls.Epoch, Owner: r.cfg.Self, Since: ls.Since}
	}
	return hd
}

// CanTake reports whether this incarnation could take the lease if it
// were handed over now: it is acquiring (not fenced, stopped, or master).
func (r *Runner) CanTake() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.l.Role() == lease.Acquiring
}

// ReadOften makes the lease read the leader record every quarter interval
// until until, instead of every interval, while it waits for the record to
// change: this host accepted a hand-over, or was handed an order of an
// epoch it has not read yet.
func (r *Runner) ReadOften(until time.Time) {
	r.mu.Lock()
	if until.After(r.soonTo) {
		r.soonTo = until
	}
	r.mu.Unlock()
	r.poke()
}

// HandOver asks the lease to hand the master role to target (which has
// acknowledged the request) and waits for the outcome: the HandedOver
// event, or HandOverFailed (Resumed tells whether this host is master
// again), or Acquired (an earlier proposal naming this host had been
// chosen for the next epoch: it is master of that epoch), or Lost. The
// ballot gives up at deadline.
func (r *Runner) HandOver(ctx context.Context, target ondisk.Owner, deadline time.Time) (lease.Event, error) {
	events, cancel := r.watch()
	defer cancel()
	if err := r.do(ctx, func(l *lease.Lease, now time.Time) error {
		return l.ProposeSuccessor(now, target, deadline)
	}); err != nil {
		return lease.Event{}, err
	}
	for {
		select {
		case <-ctx.Done():
			return lease.Event{}, ctx.Err()
		case <-r.done:
			return lease.Event{}, ErrStopped
		case e := <-events:
			switch e.Kind {
			case lease.HandedOver, lease.HandOverFailed, lease.Acquired:
				return e, nil
			case lease.Lost:
				return e, fmt.Errorf("the lease was lost during the hand-over: %s", e.Detail)
			}
		}
	}
}

// Release gives the role up, if this host holds it, and waits until the
// released record is on storage (or the lease is lost, or ctx ends).
func (r *Runner) Release(ctx context.Context) error {
	events, cancel := r.watch()
	defer cancel()
	var held bool
	if err := r.do(ctx, func(l *lease.Lease, now time.Time) error {
		err := l.Release(now)
		// Releasing: the released record is being written. Acquiring
		// after Release: an instance that may have chosen this host is
		// being finished, and its record will be written released.
		held = l.Role() == lease.Releasing || l.Role() == lease.Acquiring
		return err
	}); err != nil {
		return err
	}
	if !held {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return ErrStopped
		case e := <-events:
			switch e.Kind {
			case lease.Released:
				return nil
			case lease.Lost, lease.FencedEvent:
				return fmt.Errorf("lease %s: %s", e.Kind, e.Detail)
			case lease.Decided, lease.Busy:
				if !e.Owner.Same(r.cfg.Self) {
					return nil // the instance went to another host
				}
			}
		}
	}
}

// Stop ends the lease (a master stops acting at once), waits for the I/O
// under way to return, then until no write of the lease that timed out
// can still land (QuiescentAt). Only then may the incarnation write
// "left" or a new incarnation join. Stop is idempotent.
func (r *Runner) Stop() {
	r.Halt()
	<-r.done
	if d := r.quiet.Sub(r.cfg.Clock.Now()); d > 0 {
		r.log.Info().Dur("wait_ms", d).Msg("waiting until a lease write that timed out can no longer land")
		// Not before QuiescentAt on the raw clock, however Go's
		// timers are slewed.
		_ = safeclock.SleepUntil(context.Background(), r.cfg.Clock, r.quiet)
	}
}

// Halt stops the lease at once — Master is false from now on, and the
// result of the I/O under way is ignored — and asks the runner's goroutine
// to end, without waiting for it. The daemon halts the lease as soon as
// the host begins to fence, whatever its renewals say. Idempotent.
func (r *Runner) Halt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.stop:
		return
	default:
	}
	r.l.Stop(r.cfg.Clock.Now())
	close(r.stop)
}

// Done is closed when the runner's goroutine has ended (after Halt or
// Stop).
func (r *Runner) Done() <-chan struct{} { return r.done }

// do applies a command between two I/Os of the lease.
func (r *Runner) do(ctx context.Context, f func(l *lease.Lease, now time.Time) error) error {
	c := command{apply: f, reply: make(chan error, 1)}
	select {
	case r.cmds <- c:
	case <-r.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Runner) watch() (<-chan lease.Event, func()) {
	ch := make(chan lease.Event, 64)
	r.subsMu.Lock()
	id := r.nsub
	r.nsub++
	r.subs[id] = ch
	r.subsMu.Unlock()
	return ch, func() {
		r.subsMu.Lock()
		delete(r.subs, id)
		r.subsMu.Unlock()
	}
}

// loop is the lease's goroutine: wait for the next action's time (or a
// command, or a change from the member), perform the I/O without the
// lock, report it with the lock.
func (r *Runner) loop() {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.mu.Lock()
		evs := r.takeEvents()
		r.mu.Unlock()
		r.publish(evs)
		r.mu.Lock()
		now := r.cfg.Clock.Now()
		if !r.soonTo.IsZero() {
			if now.Before(r.soonTo) {
				r.l.ReadSoon(now, now.Add(r.cfg.Header.Timing.Interval/4))
			} else {
				r.soonTo = time.Time{}
			}
		}
		a := r.l.Next()
		r.mu.Unlock()

		var due <-chan time.Time
		if a.Kind != lease.None {
			if wait := a.NotBefore.Sub(now); wait > 0 {
				// Go's timer may fire early on the raw clock
				// (CLOCK_MONOTONIC slewed): re-checked below.
				timer.Reset(safeclock.TimerFor(r.cfg.Clock, a.NotBefore))
				due = timer.C
			} else {
				due = closed
			}
		}
		select {
		case <-r.stop:
			r.mu.Lock()
			evs := r.takeEvents()
			r.quiet = r.l.QuiescentAt()
			r.mu.Unlock()
			r.publish(evs)
			return
		case c := <-r.cmds:
			r.mu.Lock()
			err := c.apply(r.l, r.cfg.Clock.Now())
			r.mu.Unlock()
			c.reply <- err
			stopTimer(timer, due)
			continue
		case <-r.wake:
			stopTimer(timer, due)
			continue
		case <-due:
		}
		// The action may have changed since (a renewal fenced the
		// lease, the view allowed an earlier read): perform only what
		// is asked now.
		r.mu.Lock()
		cur := r.l.Next()
		r.mu.Unlock()
		if cur.Kind != a.Kind || !cur.NotBefore.Equal(a.NotBefore) {
			continue
		}
		if r.cfg.Clock.Now().Before(a.NotBefore) {
			continue // a slewed timer fired early: wait on
		}
		res := r.drv.Perform(a)
		r.mu.Lock()
		r.drv.Report(res)
		r.mu.Unlock()
		r.logIO(a, res.Err)
	}
}

// logIO logs a failed lease I/O: the first of a run of failures, a change
// of error, and then once a minute; and the recovery.
func (r *Runner) logIO(a lease.Action, err error) {
	now := r.cfg.Clock.Now()
	switch {
	case err == nil:
		if r.ioFails > 0 {
			r.log.Info().Int("failures", r.ioFails).Msg("lease I/O works again")
		}
		r.ioFails, r.ioErr = 0, ""
	default:
		r.ioFails++
		if err.Error() != r.ioErr || now.Sub(r.ioLogged) >= time.Minute {
			r.log.Warn().Err(err).Str("io", a.Kind.String()).Int("failures", r.ioFails).Msg("lease I/O failed")
			r.ioErr, r.ioLogged = err.Error(), now
		}
	}
}

var closed = func() <-chan time.Time {
	c := make(chan time.Time)
	close(c)
	return c
}()

func stopTimer(t *time.Timer, due <-chan time.Time) {
	if due != nil && due != closed {
		t.Stop()
	}
}

// noted is an event with what the history made of it: for a
// HolderChanged, the record read and the one known before, and whether
// that is news here (our own acquisition is known before we read it).
type noted struct {
	lease.Event
	rec, prev lease.Holder
	news      bool
}

// takeEvents takes the lease's new events into the history. Called with
// r.mu held. Each loop reports at most one read, so a HolderChanged is
// about the record Holder shows now.
func (r *Runner) takeEvents() []noted {
	evs := r.l.Events()
	if len(evs) == 0 {
		return nil
	}
	out := make([]noted, len(evs))
	for i, e := range evs {
		out[i] = noted{Event: e}
		if e.Kind == lease.HolderChanged {
			rec := r.l.Holder()
			out[i].rec = rec
			out[i].news, out[i].prev = r.hist.record(rec, e.At)
			continue
		}
		r.hist.add(e, r.cfg.Self)
	}
	return out
}

// publish logs events and tells watchers. Called without r.mu.
func (r *Runner) publish(evs []noted) {
	for _, n := range evs {
		e := n.Event
		r.logEvent(n)
		r.subsMu.Lock()
		for _, ch := range r.subs {
			select {
			case ch <- e:
			default:
			}
		}
		r.subsMu.Unlock()
		if r.cfg.OnEvent != nil {
			r.cfg.OnEvent(e)
		}
	}
}
