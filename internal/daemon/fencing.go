package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat"
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
)

// errFencing is what the member's Run returns once the fencer has begun.
var errFencing = errors.New("fencing")

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
			actions = fc.f.Tick(time.Now())
			fc.mu.Unlock()
		case <-ticker.C:
			fc.mu.Lock()
			fc.f.Renewed(fc.m.LastRenewal())
			actions = fc.f.Tick(time.Now())
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
			runErr = err
			fc.mu.Lock()
			actions = fc.f.Order(time.Now(), err.Error())
			fc.mu.Unlock()
		case err := <-killDone:
			fc.mu.Lock()
			actions = fc.f.GuestsKilled(time.Now(), err)
			fc.mu.Unlock()
			if err != nil {
				fc.log.Error().Err(err).Msg("HA guests not confirmed gone")
			}
		}
		for _, a := range actions {
			fc.do(ctx, a, killDone, running)
		}
		switch st := fc.status(); st.State {
		case fence.Fenced:
			if fc.armErr != nil {
				return fenced, fc.armErr
			}
			fc.log.Warn().Str("reason", st.Reason).Msg("fenced: HA guests confirmed gone, watchdog disarmed; joining again as a new incarnation")
			return fenced, runErr
		case fence.Resetting:
			fc.log.Error().Str("reason", st.Reason).Str("kill_error", st.KillError).
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
			fc.armErr = fmt.Errorf("watchdog: %w", err)
			fc.mu.Lock()
			more := fc.f.ArmFailed(time.Now(), fc.armErr.Error())
			fc.mu.Unlock()
			for _, a := range more {
				fc.do(ctx, a, killDone, running)
			}
			return
		}
		fc.log.Info().Str("backend", fc.wd.Info().Backend).Dur("effective_ms", fc.wd.Effective()).Msg("watchdog armed")
	case fence.Feed:
		err = fc.wd.Feed()
	case fence.KillGuests:
		st := fc.status()
		fc.log.Error().Str("reason", st.Reason).Msg("FENCING: stopped feeding the watchdog, killing HA guests")
		if running {
			fc.m.Abort(errFencing)
		}
		if k, ok := fc.killer.(*fence.ExecKiller); ok {
			k.Reason = st.Reason
		}
		go func() { killDone <- fc.killer.KillHAGuests(context.WithoutCancel(ctx)) }()
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
