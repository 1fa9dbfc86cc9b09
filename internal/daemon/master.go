package daemon

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/rs/zerolog"
)

// masterSide is one incarnation's part in the master role: its lease
// runner (set once the incarnation has joined, before its first round) and
// the hooks the member calls.
type masterSide struct {
	r   atomic.Pointer[master.Runner]
	t   timing.Params
	log zerolog.Logger
}

func (ms *masterSide) runner() *master.Runner { return ms.r.Load() }

func (ms *masterSide) onRenewal(issued, done time.Time) {
	if r := ms.runner(); r != nil {
		r.Renewed(issued, done)
	}
}

func (ms *masterSide) onRead(issued, done time.Time, peers []liveness.Peer) {
	if r := ms.runner(); r != nil {
		r.Observed(issued, done, peers)
	}
}

// beforeLeave gives the role up on a clean stop, so that another host
// takes over at once, and waits until no lease write can still land: only
// then may "left" be written. It runs while the member still renews.
func (ms *masterSide) beforeLeave(within time.Duration) {
	r := ms.runner()
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := r.Release(ctx); err != nil {
		ms.log.Warn().Err(err).Msg("releasing the master lease before leaving; the others take over once they read \"left\"")
	}
	r.Stop()
}

// stop ends the lease of this incarnation and waits for its writes.
func (ms *masterSide) stop() {
	if r := ms.runner(); r != nil {
		r.Stop()
	}
}

// halt stops acting as master at once (fencing has begun).
func (ms *masterSide) halt() {
	if r := ms.runner(); r != nil {
		r.Halt()
	}
}

// fromMaster checks an order (a poison pill) against this host's last
// read of the leader record: the sender must own the epoch in the order
// (Arg bytes 8..15), held. The epoch fences the orders of a master that has
// been replaced.
func (ms *masterSide) fromMaster(in heartbeat.Incoming) error {
	return ms.checkEpoch(in, binary.LittleEndian.Uint64(in.Message.Arg[8:16]))
}

func (ms *masterSide) checkEpoch(in heartbeat.Incoming, epoch uint64) error {
	r := ms.runner()
	if r == nil {
		return fmt.Errorf("%w: this host has no view of the leader record yet", lease.ErrAheadEpoch)
	}
	from := ondisk.Owner{Slot: uint32(in.FromSlot), Generation: in.FromGeneration, Name: in.FromName}
	return r.Holder().Check(epoch, from)
}

// deferOrder: the order names an epoch this host has not read yet; the
// master writes its record before it acts, so reading the record again
// shows it. Read it soon, and judge the order at the next round.
func (ms *masterSide) deferOrder(in heartbeat.Incoming, err error) {
	ms.log.Info().Str("peer", in.FromName).Uint16("kind", uint16(in.Message.Kind)).Err(err).Msg("order of a newer epoch: reading the leader record before answering")
	if r := ms.runner(); r != nil {
		r.ReadOften(clk.Now().Add(2 * ms.t.Interval))
	}
}

// whereMaster says where to run a command that only the master runs.
func (ms *masterSide) whereMaster() string {
	if ms != nil {
		if r := ms.runner(); r != nil {
			if st := r.Status(clk.Now()); st.Name != "" {
				return fmt.Sprintf("%s is (epoch %d): run the command there", st.Name, st.Epoch)
			}
		}
	}
	return "no host holds the master role now; retry once one does (hbfence master)"
}

// findHost is the host named name in a member's status, or the error the
// command cmd reports.
func findHost(st heartbeat.Status, cmd, name string) (*heartbeat.HostStatus, error) {
	for i := range st.Hosts {
		if st.Hosts[i].Name == name {
			return &st.Hosts[i], nil
		}
	}
	return nil, fmt.Errorf("%s: no host %q in the pool (see hbfence status)", cmd, name)
}

// onHandOver answers a hand-over request from the master: accept only if
// this host can take the lease and its own last read of the leader record
// shows the sender as the owner of the epoch it claims (the epoch fences a
// request from a master that has been replaced).
func (ms *masterSide) onHandOver(in heartbeat.Incoming) heartbeat.Reply {
	epoch := binary.LittleEndian.Uint64(in.Message.Arg[0:8])
	log := ms.log.With().Str("peer", in.FromName).Uint64("epoch", epoch).Logger()
	r := ms.runner()
	if r == nil || !r.CanTake() {
		log.Warn().Msg("hand-over request refused: this host cannot take the master lease now")
		return heartbeat.Reply{Ack: true, Answer: heartbeat.AnswerCannotTake}
	}
	if err := ms.checkEpoch(in, epoch); errors.Is(err, lease.ErrAheadEpoch) {
		ms.deferOrder(in, err)
		return heartbeat.Reply{Defer: true}
	} else if err != nil {
		log.Warn().Err(err).Msg("hand-over request refused: the sender is not the master this host knows")
		return heartbeat.Reply{Ack: true, Answer: heartbeat.AnswerNotMaster}
	}
	log.Info().Msgf("hand-over request from %s (epoch %d) accepted: taking the master lease once it is released", in.FromName, epoch)
	r.ReadOften(clk.Now().Add(3 * ms.t.Interval))
	return heartbeat.Reply{Ack: true}
}

// duties runs the master's duties while this host acts as master: it asks
// the lease right before each round of them. The duties themselves (guest
// placement and restarts) come with the restart engine; for now a round
// records that the host acted, with the epoch and the machine's
// CLOCK_MONOTONIC time, so that tests can check that no two hosts ever act
// in overlapping periods.
func (ms *masterSide) duties(ctx context.Context, r *master.Runner) {
	tick := time.NewTicker(ms.t.Interval / 2)
	defer tick.Stop()
	var acting uint64
	for {
		now := clk.Now()
		m, ok := r.Master(now)
		switch {
		case ok && m.Epoch != acting:
			ms.log.Info().Uint64("epoch", m.Epoch).Int64("mono_ns", monoNow()).Msgf("acting as master, epoch %d", m.Epoch)
			acting = m.Epoch
		case !ok && acting != 0:
			ms.log.Info().Uint64("epoch", acting).Int64("mono_ns", monoNow()).Msgf("no longer acting as master of epoch %d", acting)
			acting = 0
		}
		if ok {
			ms.log.Debug().Uint64("epoch", m.Epoch).Int64("mono_ns", monoNow()).Msg("master duty")
		}
		select {
		case <-ctx.Done():
			return
		case <-r.Done():
			if acting != 0 {
				ms.log.Info().Uint64("epoch", acting).Int64("mono_ns", monoNow()).Msgf("no longer acting as master of epoch %d", acting)
			}
			return
		case <-tick.C:
		}
	}
}

// MoveRequest is the argument of the control command "master.move".
type MoveRequest struct {
	Host string `json:"host"`
}

// MoveResult is its answer.
type MoveResult struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Epoch    uint64 `json:"epoch"`     // the epoch handed over
	NewEpoch uint64 `json:"new_epoch"` // the epoch the new master took
	// Seconds from the start of the command until the target's
	// acknowledgement, the released record on storage, and the new
	// master's record read here.
	AckSeconds        float64 `json:"ack_seconds"`
	HandedOverSeconds float64 `json:"handed_over_seconds"`
	TakenSeconds      float64 `json:"taken_seconds"`
	// Intervals is TakenSeconds in heartbeat intervals.
	Intervals float64 `json:"intervals"`
	Message   string  `json:"message"`
}

// moveMaster hands the master role to another live host: a hand-over
// request through this host's slot, its acknowledgement, the lease's
// hand-over ballot, and the target's own ballot for the next epoch.
func moveMaster(ctx context.Context, fc *fencing, ms *masterSide, t timing.Params, raw json.RawMessage) (MoveResult, error) {
	var req MoveRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return MoveResult{}, fmt.Errorf("master move: bad arguments: %v", err)
	}
	if fc == nil || ms == nil || ms.runner() == nil {
		return MoveResult{}, errors.New("master move: this host has not joined the pool yet")
	}
	// Every step below is bounded by the pool's timing; so is the whole.
	ctx, cancel := context.WithTimeout(ctx, 6*t.Interval+6*t.IOTimeout+time.Second)
	defer cancel()
	r := ms.runner()
	st := fc.m.Status(clk.Now())
	res := MoveResult{From: st.Self, To: req.Host}
	mine, ok := r.Master(clk.Now())
	if !ok {
		return res, notMaster{fmt.Errorf("master move: this host (%s) is not the master; %s", st.Self, ms.whereMaster())}
	}
	res.Epoch = mine.Epoch
	if req.Host == st.Self {
		return res, fmt.Errorf("master move: %s is already the master (epoch %d)", req.Host, mine.Epoch)
	}
	target, err := findHost(st, "master move", req.Host)
	if err != nil {
		return res, err
	}
	if target.State != liveness.Live {
		return res, fmt.Errorf("master move: %s is %s: only a live host can take the master role; %s stays master (epoch %d)", req.Host, target.State, st.Self, mine.Epoch)
	}
	to := ondisk.Owner{Slot: uint32(target.Slot), Generation: target.Generation, Name: target.Name}

	start := clk.Now()
	var arg [24]byte
	binary.LittleEndian.PutUint64(arg[0:8], mine.Epoch)
	seq, err := fc.m.Send(target.Slot, target.Generation, heartbeat.KindHandOver, arg)
	if err != nil {
		return res, fmt.Errorf("master move: %w", err)
	}
	// The request goes out with this host's next write, the target reads
	// it and answers with its next, and this host reads the answer at
	// its next round: three intervals, plus an I/O's worth.
	ackBy := start.Add(3*t.Interval + t.IOTimeout)
	var answer byte
	for {
		at, a, known := fc.m.Answered(seq)
		if known && !at.IsZero() {
			res.AckSeconds, answer = at.Sub(start).Seconds(), a
			break
		}
		if !known || clk.Now().After(ackBy) {
			return res, fmt.Errorf("master move: %s did not acknowledge the hand-over request within %v; %s stays master (epoch %d)",
				req.Host, ackBy.Sub(start).Round(time.Millisecond), st.Self, mine.Epoch)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(t.Interval / 8):
		}
	}
	switch answer {
	case heartbeat.AnswerAccepted:
	case heartbeat.AnswerCannotTake:
		return res, fmt.Errorf("master move: %s refused: it cannot take the master lease now (it is fencing, stopping, or its lease is fenced: see its log); %s stays master (epoch %d)", req.Host, st.Self, mine.Epoch)
	case heartbeat.AnswerNotMaster:
		return res, fmt.Errorf("master move: %s refused: its last read of the leader record does not show %s as the owner of epoch %d; try again in an interval", req.Host, st.Self, mine.Epoch)
	default:
		return res, fmt.Errorf("master move: %s refused with answer %d (a newer hbfence?)", req.Host, answer)
	}
	if now, ok := r.Master(clk.Now()); !ok || now.Epoch != mine.Epoch {
		return res, fmt.Errorf("master move: this host stopped being master of epoch %d while %s answered; see hbfence master", mine.Epoch, req.Host)
	}
	// Read the leader record often from now on, to see the new master.
	r.ReadOften(clk.Now().Add(4 * t.Interval))
	e, err := r.HandOver(ctx, to, clk.Now().Add(3*t.IOTimeout))
	if err != nil {
		return res, fmt.Errorf("master move: %w", err)
	}
	if e.Kind == lease.Acquired {
		return res, fmt.Errorf("master move: an earlier hand-over proposal naming this host had been chosen for epoch %d: %s is master of epoch %d; run the move again", e.Epoch, st.Self, e.Epoch)
	}
	if e.Kind == lease.HandOverFailed {
		if e.Resumed {
			return res, fmt.Errorf("master move: the hand-over ballot did not complete in time (%s); %s is master again (epoch %d)", e.Detail, st.Self, mine.Epoch)
		}
		return res, fmt.Errorf("master move: the hand-over failed and this host's epoch %d is over (%s); see hbfence master", mine.Epoch, e.Detail)
	}
	res.HandedOverSeconds = clk.Now().Sub(start).Seconds()
	if e.Owner.Name != req.Host {
		res.To = e.Owner.Name
	}
	takeBy := clk.Now().Add(2*t.Interval + 2*t.IOTimeout)
	for {
		hd := r.Holder()
		if hd.Epoch > mine.Epoch && !hd.Released {
			res.NewEpoch = hd.Epoch
			res.TakenSeconds = clk.Now().Sub(start).Seconds()
			res.Intervals = res.TakenSeconds / t.Interval.Seconds()
			if hd.Owner.Name != res.To {
				return res, fmt.Errorf("master move: epoch %d was taken by %s, not %s", hd.Epoch, hd.Owner.Name, res.To)
			}
			res.Message = fmt.Sprintf("%s is master (epoch %d, was %s with epoch %d) after %.2fs = %.1f intervals: acknowledged after %.2fs, released after %.2fs",
				res.To, hd.Epoch, st.Self, mine.Epoch, res.TakenSeconds, res.Intervals, res.AckSeconds, res.HandedOverSeconds)
			if e.Detail != "" {
				res.Message += " (" + e.Detail + ")"
			}
			return res, nil
		}
		if clk.Now().After(takeBy) {
			return res, fmt.Errorf("master move: epoch %d is released for %s, which has not taken epoch %d within %v; no host acts as master until it does, or until it is declared dead or leaves and another host takes over",
				mine.Epoch, res.To, mine.Epoch+1, takeBy.Sub(start).Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(t.Interval / 8):
		}
	}
}
