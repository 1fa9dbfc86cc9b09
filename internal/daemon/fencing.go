package daemon

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/journal"
	"github.com/hbfence/hbfence/internal/safeclock"
	"github.com/rs/zerolog"
)

// Watchdog is what the fencing loop needs of a watchdog backend.
type Watchdog interface {
	// Arm opens the watchdog, which starts its countdown.
	Arm() error
	// Feed restarts the countdown.
	Feed() error
	// Disarm stops it (magic close), on a clean stop or once the guests
	// are confirmed gone.
	Disarm() error
	// Effective is how long after the last feed it resets the machine.
	Effective() time.Duration
	// Info describes it for status.
	Info() WatchdogInfo
}

// WatchdogInfo is the watchdog as hbfence status shows it.
type WatchdogInfo struct {
	Backend          string  `json:"backend"` // "device", "fifo", "file", "none"
	Device           string  `json:"device,omitempty"`
	Identity         string  `json:"identity,omitempty"`
	EffectiveSeconds float64 `json:"effective_seconds"`
	// Armed is true while this daemon feeds it.
	Armed bool `json:"armed"`
	// Unsafe is true when nothing resets a stalled host.
	Unsafe bool   `json:"unsafe"`
	Note   string `json:"note,omitempty"`
}

// outcome is how an incarnation ended.
type outcome int

const (
	leftCleanly outcome = iota // stopped by SIGTERM: "left" written
	fenced                     // guests confirmed gone, watchdog disarmed: join again
	resetting                  // guests not confirmed gone: the watchdog resets the machine
	suspended                  // stopped between two rounds for a re-exec: slot, guests and watchdog kept
)

// errFencing is what the member's Run returns once the fencer has begun.
var errFencing = errors.New("fencing")

// errSuspend is what it returns once stopped between two rounds for a
// re-exec.
var errSuspend = errors.New("suspended for a re-exec")

// fencing runs one incarnation's member under its fencer: it feeds the
// watchdog while renewals are fresh and fences when they are not, or when
// the member's run fails (its slot was taken, an invariant broke).
type fencing struct {
	m      *heartbeat.Member
	wd     Watchdog
	killer fence.GuestKiller
	log    zerolog.Logger

	mu sync.Mutex
	f  *fence.Fencer

	// armErr is why the watchdog could not be armed: fatal.
	armErr error
	// feedErr is why a feed failed: the host fenced, and the watchdog
	// may not reset the machine.
	feedErr error
	// poison carries a poison pill, acknowledged, to the loop; off is
	// set when it asked the host to stay out of the pool.
	poison chan poisonPill
	off    bool
	// orders carries a reason to fence from elsewhere in the daemon (the
	// master lease fenced); onFence runs when fencing begins (the master
	// role stops at once).
	orders  chan string
	onFence func()
	// record writes why this host fences to local disk (lastfence.go),
	// while the guests are killed; nil: not recorded.
	record func(reason string)
	// suspend asks the loop to stop the member between two rounds, for
	// a re-exec: no fence, the watchdog stays armed.
	suspend chan struct{}
}

// order asks the loop to fence for reason (non-blocking; one is enough).
func (fc *fencing) order(reason string) {
	select {
	case fc.orders <- reason:
	default:
	}
}

type poisonPill struct {
	from   string
	action heartbeat.FenceAction
}

func (fc *fencing) status() fence.Status {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	return fc.f.Status()
}

func (fc *fencing) run(ctx context.Context) (outcome, error) {
	runDone := make(chan error, 1)
	go func() { runDone <- fc.m.Run(ctx) }()
	killDone := make(chan error, 1)
	ticker := time.NewTicker(fc.f.FeedPeriod())
	defer ticker.Stop()
	var runErr error
	running := true
	first := make(chan struct{}, 1)
	first <- struct{}{} // arm at once after the join, not a feed period later
	for {
		var actions []fence.Action
		select {
		case <-first:
			fc.mu.Lock()
			fc.f.Renewed(fc.m.LastRenewal())
			actions = fc.f.Tick(clk.Now())
			fc.mu.Unlock()
		case <-ticker.C:
			fc.mu.Lock()
			fc.f.Renewed(fc.m.LastRenewal())
			actions = fc.f.Tick(clk.Now())
			fc.mu.Unlock()
		case err := <-runDone:
			running = false
			if err == nil {
				// A clean leave: "left" is written. The guests were
				// handed over (the restart issue); disarm.
				if derr := fc.wd.Disarm(); derr != nil {
					fc.log.Error().Err(derr).Msg("disarming the watchdog")
				}
				return leftCleanly, nil
			}
			if errors.Is(err, errFencing) {
				continue
			}
			if errors.Is(err, errSuspend) {
				fc.mu.Lock()
				st := fc.f.Status().State
				fc.mu.Unlock()
				if st == fence.Healthy {
					return suspended, nil
				}
				// Fencing began meanwhile: the fence goes on.
				continue
			}
			runErr = err
			fc.mu.Lock()
			actions = fc.f.Order(clk.Now(), err.Error())
			fc.mu.Unlock()
		case <-fc.suspend:
			if running {
				fc.m.Abort(errSuspend)
			}
			continue
		case reason := <-fc.orders:
			fc.mu.Lock()
			actions = fc.f.Order(clk.Now(), reason)
			fc.mu.Unlock()
		case pp := <-fc.poison:
			reason := fmt.Sprintf("poison pill from %s (action %s)", pp.from, pp.action)
			fc.mu.Lock()
			if pp.action == heartbeat.FenceOff {
				fc.off = true
				actions = fc.f.Order(clk.Now(), reason)
			} else {
				actions = fc.f.OrderReset(clk.Now(), reason)
			}
			fc.mu.Unlock()
		case err := <-killDone:
			fc.mu.Lock()
			actions = fc.f.GuestsKilled(clk.Now(), err)
			fc.mu.Unlock()
			if err != nil {
				journal.Crit(fc.log.Error(), journal.MsgFence).Err(err).Msg("HA guests not confirmed gone")
			}
		}
		for _, a := range actions {
			fc.do(ctx, a, killDone, running)
		}
		st := fc.status()
		if running && (st.State == fence.Fenced || st.State == fence.Resetting) {
			// The member was told to stop when fencing began; wait for
			// its round to end, so that a new incarnation never shares
			// the area with it.
			fc.m.Abort(errFencing)
			wctx, wcancel := context.WithCancel(context.Background())
			select {
			case <-runDone:
				running = false
			case <-safeclock.After(wctx, clk, fc.f.StopWithin()): // not early on a slewed Go timer
				fc.log.Error().Msg("the heartbeat did not stop after fencing began")
			}
			wcancel()
		}
		switch st.State {
		case fence.Fenced:
			if fc.armErr != nil {
				return fenced, fc.armErr
			}
			journal.Crit(fc.log.Warn(), journal.MsgFence).Str("reason", st.Reason).Msg("fenced: HA guests confirmed gone, watchdog disarmed; joining again as a new incarnation")
			return fenced, runErr
		case fence.Resetting:
			if st.KillError == "" {
				// A reset ordered (a poison pill with action reset), not
				// a kill that failed: no error to report.
				journal.Crit(fc.log.Error(), journal.MsgFence).Str("reason", st.Reason).
					Msg("fencing: the watchdog resets this machine, as ordered")
				return resetting, runErr
			}
			journal.Crit(fc.log.Error(), journal.MsgFence).Str("reason", st.Reason).Str("kill_error", st.KillError).
				Msg("fencing: HA guests not confirmed gone; the watchdog resets this machine")
			return resetting, runErr
		}
	}
}

func (fc *fencing) do(ctx context.Context, a fence.Action, killDone chan<- error, running bool) {
	var err error
	switch a {
	case fence.Arm:
		if err := fc.wd.Arm(); err != nil {
			// Without a working watchdog this host cannot keep the
			// pool's promise: fence now, and do not join again.
			fc.armErr = err
			if !strings.HasPrefix(err.Error(), "watchdog") {
				fc.armErr = fmt.Errorf("watchdog: %w", err) // not "watchdog: watchdog ..."
			}
			fc.mu.Lock()
			more := fc.f.ArmFailed(clk.Now(), fc.armErr.Error())
			fc.mu.Unlock()
			for _, a := range more {
				fc.do(ctx, a, killDone, running)
			}
			return
		}
		fc.log.Info().Str("backend", fc.wd.Info().Backend).Dur("effective_ms", fc.wd.Effective()).Msg("watchdog armed")
	case fence.Feed:
		if err := fc.wd.Feed(); err != nil {
			// A feed that fails may mean that nothing will reset this
			// machine any more (a FIFO whose supervisor is gone: EPIPE):
			// fence now, while the daemon can still kill the guests.
			fc.feedErr = fmt.Errorf("watchdog feed failed: %w", err)
			journal.Crit(fc.log.Error(), journal.MsgFence).Err(err).Msg("watchdog feed failed: fencing")
			fc.mu.Lock()
			more := fc.f.Order(clk.Now(), fc.feedErr.Error())
			fc.mu.Unlock()
			for _, a := range more {
				fc.do(ctx, a, killDone, running)
			}
			return
		}
	case fence.KillGuests:
		st := fc.status()
		journal.Crit(fc.log.Error(), journal.MsgFence).Str("reason", st.Reason).Msg("FENCING: stopped feeding the watchdog, killing HA guests")
		if fc.onFence != nil {
			fc.onFence()
		}
		if running {
			fc.m.Abort(errFencing)
		}
		go func() { killDone <- fc.killer.KillHAGuests(context.WithoutCancel(ctx), st.Reason) }()
		// While the guests are killed, not before: a slow local disk
		// must not hold up the kill.
		if fc.record != nil {
			fc.record(st.Reason)
		}
	case fence.Disarm:
		err = fc.wd.Disarm()
		fc.log.Info().Err(err).Msg("watchdog disarmed")
	}
	if err != nil {
		// A feed that fails is a feed that did not happen: the
		// watchdog resets the machine in time. Nothing to undo.
		fc.log.Error().Err(err).Str("action", a.String()).Msg("watchdog")
	}
}

// FenceRequest is the argument of the control command "fence".
type FenceRequest struct {
	Host   string `json:"host"`
	Action string `json:"action"` // "reset" (default) or "off"
}

// FenceResult is its answer.
type FenceResult struct {
	Host       string `json:"host"`
	Slot       int    `json:"slot"`
	Generation uint64 `json:"generation"`
	Action     string `json:"action"`
	Acked      bool   `json:"acked"`
	// Refused: the target answered, but refused the pill (it does not see
	// the sender as the master).
	Refused    bool    `json:"refused,omitempty"`
	AckSeconds float64 `json:"ack_seconds,omitempty"`
	// WaitedSeconds is how long the command waited for the Ack.
	WaitedSeconds float64 `json:"waited_seconds"`
	Message       string  `json:"message"`
}

// fenceHost sends a poison pill to a host through this host's slot and
// waits, at most renewal_fail, for its acknowledgement. Only the master
// orders fences; the pill carries its epoch, and the target refuses a pill
// from a master that has been replaced.
func fenceHost(ctx context.Context, fc *fencing, ms *masterSide, t timing.Params, raw json.RawMessage) (FenceResult, error) {
	var req FenceRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return FenceResult{}, fmt.Errorf("fence: bad arguments: %v", err)
	}
	action := heartbeat.FenceReset
	switch req.Action {
	case "", "reset":
	case "off":
		action = heartbeat.FenceOff
	default:
		return FenceResult{}, fmt.Errorf("fence: --action %q: use reset or off", req.Action)
	}
	if fc == nil {
		return FenceResult{}, errors.New("fence: this host has not joined the pool yet")
	}
	st := fc.m.Status(clk.Now())
	if !st.Joined {
		return FenceResult{}, errors.New("fence: this host has not joined the pool yet")
	}
	if req.Host == st.Self {
		return FenceResult{}, fmt.Errorf("fence: %s is this host; to take it out of the pool, stop its daemon (systemctl stop hbfence)", req.Host)
	}
	var r *master.Runner
	if ms != nil {
		r = ms.runner()
	}
	if r == nil {
		return FenceResult{}, errors.New("fence: this host has not joined the pool yet")
	}
	mine, isMaster := r.Master(clk.Now())
	if !isMaster {
		return FenceResult{}, notMaster{fmt.Errorf("fence: only the pool master orders a fence, and this host (%s) is not the master; %s", st.Self, ms.whereMaster())}
	}
	target, err := findHost(st, "fence", req.Host)
	if err != nil {
		return FenceResult{}, err
	}
	res := FenceResult{Host: req.Host, Slot: target.Slot, Generation: target.Generation, Action: action.String()}
	switch target.State {
	case liveness.Dead:
		return res, fmt.Errorf("fence: %s is dead already: it fenced itself, or its watchdog reset it", req.Host)
	case liveness.Left:
		return res, fmt.Errorf("fence: %s has left the pool cleanly: it runs no HA guests", req.Host)
	}
	var arg [24]byte
	arg[0] = byte(action)
	binary.LittleEndian.PutUint64(arg[8:16], mine.Epoch)
	seq, err := fc.m.Send(target.Slot, target.Generation, heartbeat.KindFence, arg)
	if err != nil {
		return res, fmt.Errorf("fence: %w", err)
	}
	start := clk.Now()
	deadline := start.Add(t.RenewalFail)
	for clk.Now().Before(deadline) {
		at, answer, ok := fc.m.Answered(seq)
		if !ok {
			res.WaitedSeconds = clk.Now().Sub(start).Seconds()
			res.Message = fmt.Sprintf("the poison pill to %s left this host's slot unacknowledged: withdrawn because this host is no longer the master (see hbfence master, and fence from the master if still needed), or %s rejoined as a new generation", req.Host, req.Host)
			return res, nil
		}
		if !at.IsZero() {
			if answer != heartbeat.AnswerAccepted {
				res.Refused = true
				res.WaitedSeconds = clk.Now().Sub(start).Seconds()
				res.Message = fmt.Sprintf("%s refused the poison pill: its last read of the leader record does not show %s as the master of epoch %d (a master change under way?); see hbfence master, and retry", req.Host, st.Self, mine.Epoch)
				return res, nil
			}
			res.Acked, res.AckSeconds = true, at.Sub(start).Seconds()
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(t.Interval / 4):
		}
	}
	res.WaitedSeconds = clk.Now().Sub(start).Seconds()
	if res.Acked {
		res.Message = fmt.Sprintf("%s acknowledged the poison pill after %.2fs and is fencing itself (%s): its HA guests are killed now, and it will be declared dead after host_dead (%v) at the latest",
			req.Host, res.AckSeconds, action, t.HostDead)
	} else {
		res.Message = fmt.Sprintf("no acknowledgement from %s within %v: the pill stays in this host's slot; if %s is alive on the storage it fences itself when it reads it, and if not, it is treated as dead after host_dead (%v) of silence — never earlier",
			req.Host, t.RenewalFail, req.Host, t.HostDead)
	}
	return res, nil
}
