package heartbeat

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/internal/safeclock"
	"github.com/rs/zerolog"
)

// Storage is what a member needs of the heartbeat area: *area.Area on a
// real file or device, *area.MemHandle in simulations.
type Storage interface {
	Header() ondisk.Header
	// ReadSlots reads the whole slot region in one I/O.
	ReadSlots(dst []byte) error
	// WriteSlot writes one encoded record into slot index.
	WriteSlot(index int, rec []byte) error
}

// Config configures a member.
type Config struct {
	Self join.Identity
	Log  zerolog.Logger
	// Observer, if set, receives every liveness event (after it is
	// logged). It runs on the member's goroutine and must not block.
	Observer func(liveness.Event)
	// OnMessage, if set, is told of each new message to this host.
	OnMessage Handler
	// OnRenewal, if set, is told of every successful renewal of this
	// host's slot: the write was issued at issued and returned at done
	// (the master lease's freshness counts from it). It runs on the
	// member's goroutine and must not block.
	OnRenewal func(issued, done time.Time)
	// OnRead, if set, is given the liveness view after every successful
	// read of the slots (issued and returned at those times). It runs on
	// the member's goroutine and must not block; peers is its own copy.
	OnRead func(issued, done time.Time, peers []liveness.Peer)
	// BeforeLeave, if set, runs when Run is stopped, before "left" is
	// written: whatever this incarnation wrote elsewhere in the area (the
	// master lease) must have landed before the pool may treat it as
	// gone.
	BeforeLeave func()
	// Clock is the safety clock every instant of the member is read on
	// (issue and return of each I/O, deadlines, rounds); nil means
	// safeclock.Raw (CLOCK_MONOTONIC_RAW). Tests inject a fake.
	Clock safeclock.Clock
}

// Member is one host's heartbeat: it joins the pool, renews its slot every
// interval, reads every slot and judges every host's liveness, and leaves
// cleanly when stopped. It is the thin I/O driver around the pure join and
// liveness state machines.
type Member struct {
	st     Storage
	header ondisk.Header
	cfg    Config
	log    zerolog.Logger
	clk    safeclock.Clock

	raw     []byte
	decoded []ondisk.Decoded

	mu          sync.Mutex // guards what Status reads
	started     time.Time
	joined      bool
	joinedAt    time.Time
	record      ondisk.Slot // our slot as we last wrote it
	slot        int
	tracker     *liveness.Tracker
	lastRenewal time.Time // issue time of the last successful write
	// firstRenewalBy is the join's deadline for the first renewal.
	firstRenewalBy time.Time
	latencies      latencyRing
	gaps           gapWindow // between the issues of two renewals
	sinceClaim     bool      // the last renewal was the join's claim
	lastErr        string

	abort chan error // Abort's error, for Run
	// kick asks Run for a round now: a message was queued.
	kick chan struct{}

	// justJoined makes the first round skip its read: the join's
	// read-back just checked the slot.
	justJoined bool

	// activity is when the member last finished an I/O, successful or
	// not: proof that its loop runs (for systemd's service watchdog).
	activity time.Time

	box     mailbox
	outArgs map[uint64][24]byte
}

// SlotLostError: our own slot no longer holds our record.
type SlotLostError struct {
	Slot  int
	Want  ondisk.Slot
	Found ondisk.Slot
}

func (e *SlotLostError) Error() string {
	return fmt.Sprintf("slot %d is no longer ours: it holds host %q generation %d (machine %s), we are %q generation %d; another host took it",
		e.Slot, e.Found.HostName, e.Found.Generation, e.Found.MachineID, e.Want.HostName, e.Want.Generation)
}

// New checks the storage's header and the identity and returns a member
// that has not joined yet.
func New(st Storage, cfg Config) (*Member, error) {
	h := st.Header()
	if err := h.Timing.Validate(); err != nil {
		return nil, fmt.Errorf("pool timing in the header: %w", err)
	}
	if err := ondisk.ValidHostName(cfg.Self.Name); err != nil {
		return nil, fmt.Errorf("[host] name: %w", err)
	}
	clk := cfg.Clock
	if clk == nil {
		clk = safeclock.Raw
	}
	return &Member{
		st:      st,
		header:  h,
		cfg:     cfg,
		log:     cfg.Log.With().Str("host", cfg.Self.Name).Logger(),
		clk:     clk,
		raw:     make([]byte, h.SlotsLen()),
		tracker: liveness.New(h.Timing),
		slot:    -1,
		abort:   make(chan error, 1),
		kick:    make(chan struct{}, 1),
		box:     mailbox{handled: map[msgID]handled{}},
		outArgs: map[uint64][24]byte{},
	}, nil
}

// Header is the pool's header.
func (m *Member) Header() ondisk.Header { return m.header }

// Join runs the join protocol until this host owns a slot. It returns a
// *join.NameInUseError or *join.NoFreeSlotError when it cannot, and the
// context's error when cancelled.
func (m *Member) Join(ctx context.Context) error {
	m.mu.Lock()
	m.started = time.Now() // Go time: log and Activity only
	m.mu.Unlock()
	j := join.New(join.Config{
		Self:   m.cfg.Self,
		Pool:   m.header.PoolUUID,
		Timing: m.header.Timing,
		Nonce:  rand.Uint64,
		Jitter: func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		},
	}, m.clk.Now())
	var claimIssued time.Time
	for {
		a := j.Next()
		switch a.Kind {
		case join.Read:
			if err := safeclock.SleepUntil(ctx, m.clk, a.NotBefore); err != nil {
				return err
			}
			issued := m.clk.Now()
			err := m.st.ReadSlots(m.raw)
			done := m.clk.Now()
			m.touch()
			if err == nil {
				m.decoded = ondisk.DecodeSlotsInto(m.decoded, m.raw, m.header)
				m.observe(issued, done)
			} else {
				m.log.Warn().Err(err).Msg("reading the heartbeat area while joining")
			}
			j.ReadDone(issued, done, m.decoded, err)
		case join.Write:
			rec := a.Record
			claimIssued = m.clk.Now()
			rec.Wall = time.Now() // wall clock, for humans
			issued := claimIssued
			var err error
			if issued.After(a.Deadline) {
				err = join.ErrDeadline
			} else {
				err = m.st.WriteSlot(a.Slot, rec.Encode())
			}
			done := m.clk.Now()
			m.log.Info().Int("slot", a.Slot).Uint64("generation", rec.Generation).Err(err).Msg("claim written")
			j.WriteDone(issued, done, err)
		case join.Joined:
			if now := m.clk.Now(); !a.Deadline.IsZero() && now.After(a.Deadline) {
				// Too late for the first renewal: a watcher of our
				// name may already judge the claim dead.
				return fmt.Errorf("join of slot %d proven %v after the latest moment for its first renewal; start again",
					a.Slot, now.Sub(a.Deadline).Round(time.Millisecond))
			}
			rec := a.Record
			rec.State = ondisk.StateLive
			m.mu.Lock()
			m.joined, m.joinedAt, m.slot, m.record = true, m.clk.Now(), a.Slot, rec
			m.firstRenewalBy = a.Deadline
			// The read that proved the claim stands for the first
			// round's read: its write, the first renewal, goes out
			// at once, before the deadline.
			m.justJoined = true
			// The proven claim was a successful write of this
			// incarnation: the fencer's deadlines start from it.
			m.lastRenewal = claimIssued
			m.sinceClaim = true
			m.mu.Unlock()
			m.log.Info().Int("slot", a.Slot).Uint64("generation", rec.Generation).
				Int("attempts", j.Attempts()).Dur("took_ms", time.Since(m.started)).Msg("joined the pool") // Go time: log
			return nil
		case join.Failed:
			return a.Err
		}
	}
}

// ResumeState is what one image of a daemon hands the next one when it
// re-executes itself in place (an upgrade): the slot it holds, the record
// it last wrote there (encoded, as on storage), and when its last
// successful renewal was issued. The new image resumes the slot with the
// same generation and join nonce: it does not join again.
type ResumeState struct {
	Slot   int    `json:"slot"`
	Record []byte `json:"record"`
	// LastRenewal is the issue time of the last successful renewal, on
	// this process's clock. It does not survive an exec as it is (Go's
	// monotonic reading is relative to the process): the daemon carries
	// it as an absolute clock reading.
	LastRenewal time.Time `json:"-"`
}

// Suspend returns the state a Resume needs. Call it only once Run has
// returned (Abort between two rounds): no write of this member is under
// way, and none follows.
func (m *Member) Suspend() (ResumeState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.joined {
		return ResumeState{}, errors.New("suspend: not joined")
	}
	return ResumeState{Slot: m.slot, Record: m.record.Encode(), LastRenewal: m.lastRenewal}, nil
}

// Resume makes a member that has not joined hold the slot of s, as the
// previous image of this process held it: same generation, join nonce and
// sequence, and this member's agent version, flags and boot. Its first
// round reads every slot and checks that the slot still holds that record
// (generation and join nonce) before it writes: a slot taken meanwhile is
// a *SlotLostError, as for any round. The fencer's and the lease's
// deadlines count from s.LastRenewal, so a re-exec that took too long
// fences as a stalled renewal would.
func (m *Member) Resume(s ResumeState) error {
	if s.Slot < 0 || s.Slot >= int(m.header.SlotCount) {
		return fmt.Errorf("resume: slot %d: the area has %d slots", s.Slot, m.header.SlotCount)
	}
	rec, st, reason := ondisk.DecodeSlot(s.Record, m.header.PoolUUID, s.Slot)
	if st != ondisk.SlotOK {
		return fmt.Errorf("resume: the record handed over for slot %d is %s (%s)", s.Slot, st, reason)
	}
	if rec.HostName != m.cfg.Self.Name || rec.MachineID != m.cfg.Self.MachineID {
		return fmt.Errorf("resume: slot %d holds host %q (machine %s), this is %q (machine %s)", s.Slot, rec.HostName, rec.MachineID, m.cfg.Self.Name, m.cfg.Self.MachineID)
	}
	if rec.State != ondisk.StateLive {
		return fmt.Errorf("resume: slot %d was %s, not live", s.Slot, rec.State)
	}
	if s.LastRenewal.IsZero() {
		return errors.New("resume: no last renewal")
	}
	rec.Agent = m.cfg.Self.Agent
	rec.BootID = m.cfg.Self.BootID
	rec.Flags = m.cfg.Self.Flags
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.joined {
		return errors.New("resume: already joined")
	}
	m.started = time.Now() // Go time: log and Activity only
	now := m.clk.Now()
	m.joined, m.joinedAt, m.slot, m.record = true, now, s.Slot, rec
	m.lastRenewal = s.LastRenewal
	m.firstRenewalBy = s.LastRenewal.Add(m.header.Timing.RenewalFail - m.header.Timing.IOTimeout)
	m.justJoined = false
	m.log.Info().Int("slot", s.Slot).Uint64("generation", rec.Generation).Uint64("sequence", rec.Sequence).
		Dur("since_last_renewal_ms", now.Sub(s.LastRenewal)).Msg("resumed the slot of the previous image (no join)")
	return nil
}

// Run renews the slot every interval until ctx is cancelled, then writes
// "left" and returns nil. It returns an error, without leaving, when the
// slot is lost (a *SlotLostError) or when Abort is called. It does not
// judge its own renewals: the fencer does, from LastRenewal.
func (m *Member) Run(ctx context.Context) error {
	if !m.isJoined() {
		return errors.New("Run before Join")
	}
	interval := m.header.Timing.Interval
	next := m.clk.Now() // the next full round
	// earlyIssued is when the last read at a deadline was issued: a
	// deadline at or before it has had its read (if that read failed,
	// the next round reads again).
	var earlyIssued time.Time
	for {
		if !m.clk.Now().Before(next) {
			start := m.clk.Now()
			if err := m.Round(); err != nil {
				return err
			}
			// While a message of ours waits for its acknowledgement,
			// rounds come four times as often: a hand-over or a
			// poison pill need not wait whole intervals each way.
			next = start.Add(interval)
			if m.awaitingAck(start) {
				next = start.Add(interval / 4)
			}
		}
		// Wake for the next round, or earlier when a silent host's
		// host_dead runs out: a read issued at that deadline declares
		// it dead up to one interval sooner than the next round would.
		// A deadline that passed during the round just done is read at
		// once (the round's read was issued before it and could not
		// decide it), unless the next round is already due: its read
		// decides the deadline too, and the renewal must not wait.
		wake := next
		m.mu.Lock()
		deadline, ok := m.tracker.NextDeadline(earlyIssued)
		m.mu.Unlock()
		early := ok && deadline.Before(next) && m.clk.Now().Before(next)
		if early {
			wake = deadline
		}
		timer := time.NewTimer(safeclock.TimerFor(m.clk, wake)) // re-checked on the raw clock: the loop goes round
		select {
		case <-ctx.Done():
			timer.Stop()
			if m.cfg.BeforeLeave != nil {
				m.cfg.BeforeLeave()
			}
			return m.Leave()
		case err := <-m.abort:
			timer.Stop()
			return err
		case <-m.kick:
			timer.Stop()
			next = m.clk.Now()
			continue
		case <-timer.C:
		}
		// The timer may fire before the deadline on the raw clock
		// (safeclock.TimerFor): then the loop goes round and waits again.
		if now := m.clk.Now(); early && !now.Before(deadline) {
			earlyIssued = now
			m.Observe() // a failure is logged; the next round goes on
		}
	}
}

// Observe reads all slots and judges liveness, without renewing. When the
// read fails, it still re-judges liveness on the clock, so that a silent
// host turns suspect on time.
func (m *Member) Observe() error {
	issued := m.clk.Now()
	err := m.st.ReadSlots(m.raw)
	done := m.clk.Now()
	m.touch()
	if err != nil {
		m.log.Warn().Err(err).Msg("reading the slots failed")
		m.mu.Lock()
		events := m.tracker.Evaluate(done)
		m.mu.Unlock()
		m.report(events)
		return err
	}
	m.decoded = ondisk.DecodeSlotsInto(m.decoded, m.raw, m.header)
	m.observe(issued, done)
	return nil
}

// Round is one heartbeat round: read all slots, judge liveness and check
// that our slot still holds what we last wrote, then write our slot.
// Reading first means a foreign write into our slot at any time since our
// last write is seen before we overwrite it; only one landing between this
// read and this write would go unseen.
func (m *Member) Round() error {
	m.mu.Lock()
	mine, slot := m.record, m.slot
	m.mu.Unlock()
	var after []func()
	m.mu.Lock()
	first := m.justJoined
	m.justJoined = false
	m.mu.Unlock()
	// After a join, the join's read-back was this round's read.
	var readErr error
	if !first {
		if err := m.Observe(); err != nil {
			readErr = err
			m.mu.Lock()
			m.lastErr = err.Error()
			m.mu.Unlock()
		} else if err := m.checkOwn(m.decoded[slot], mine); err != nil {
			return err
		} else {
			after = m.exchange(m.clk.Now())
		}
	}
	defer func() {
		for _, fn := range after {
			fn()
		}
	}()

	m.mu.Lock()
	m.record.Sequence++
	m.record.Wall = time.Now() // wall clock, for humans
	rec := m.record
	m.mu.Unlock()
	issued := m.clk.Now()
	err := m.st.WriteSlot(slot, rec.Encode())
	done := m.clk.Now()
	m.touch()
	if took := done.Sub(issued); err == nil && took > m.header.Timing.IOTimeout {
		// The storage layer bounds every I/O by io_timeout; a write
		// reported later than that cannot count as a renewal, whose
		// deadlines assume it.
		err = fmt.Errorf("write took %v, more than io_timeout %v", took.Round(time.Millisecond), m.header.Timing.IOTimeout)
	}
	if err == nil && readErr != nil {
		// A renewal is a read and a write. The write still goes (other
		// hosts see this one alive while it may still be fencing), but
		// it does not count: unread, the slot may hold a claim of
		// another host that this write just overwrote, and a host that
		// cannot read sees no peer, no message and no lease. One that
		// cannot read for renewal_fail fences as one that cannot write.
		err = fmt.Errorf("written, but not counted as a renewal: this round's read of the slots failed (%w)", readErr)
	}
	m.mu.Lock()
	if err == nil {
		if !m.lastRenewal.IsZero() && !m.sinceClaim {
			// Not the claim's wait for its read-back (JoinWait): the
			// join bounds that one by its own rule (renewBy).
			m.gaps.add(issued, issued.Sub(m.lastRenewal))
		}
		m.sinceClaim = false
		m.lastRenewal = issued
		m.latencies.add(done.Sub(issued))
	} else {
		m.lastErr = err.Error()
	}
	lastRenewal := m.lastRenewal
	m.mu.Unlock()
	if err != nil {
		m.log.Warn().Err(err).Int("slot", slot).Dur("since_last_renewal_ms", done.Sub(lastRenewal)).Msg("renewal failed")
	} else if m.cfg.OnRenewal != nil {
		m.cfg.OnRenewal(issued, done)
	}
	return nil
}

// Abort makes Run return err at its next wake-up, without leaving: the
// host is fencing, and a fenced incarnation writes nothing more.
func (m *Member) Abort(err error) {
	select {
	case m.abort <- err:
	default:
	}
}

// Activity is when the member last finished an I/O (a read or a write,
// successful or not), or started, whichever is later: its loop runs.
func (m *Member) Activity() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.activity.After(m.started) {
		return m.activity
	}
	return m.started
}

func (m *Member) touch() {
	m.mu.Lock()
	m.activity = time.Now() // Go time, with started: the service watchdog's proof of life
	m.mu.Unlock()
}

// Self is this incarnation as the master lease names it: its slot,
// generation and name (the zero Owner before it joined).
func (m *Member) Self() ondisk.Owner {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.joined {
		return ondisk.Owner{}
	}
	return ondisk.Owner{Slot: uint32(m.slot), Generation: m.record.Generation, Name: m.record.HostName}
}

// FirstRenewalBy is the latest issue time of this incarnation's first
// renewal, as its join set it (zero before it joined).
func (m *Member) FirstRenewalBy() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.firstRenewalBy
}

// LastRenewal is when the last successful renewal began (zero before the
// first): the fencer's deadlines count from it.
func (m *Member) LastRenewal() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastRenewal
}

// checkOwn verifies, after each read, that our slot still holds our
// record. A valid record of anyone else (or of another incarnation of us)
// of our generation or newer means the slot was taken: stop at once. An
// older generation is a late write, logged and ignored. An unreadable record is no
// evidence either way; it is logged and the renewal goes on.
func (m *Member) checkOwn(d ondisk.Decoded, rec ondisk.Slot) error {
	if d.Status != ondisk.SlotOK {
		m.log.Warn().Int("slot", d.Index).Str("status", d.Status.String()).Str("reason", d.Reason).Msg("own slot reads back invalid")
		return nil
	}
	s := d.Slot
	if s.Generation < rec.Generation {
		// An older generation than ours: a write issued before our claim
		// (an earlier incarnation's, killed with the request in flight)
		// landing late. Not a taking of the slot — a claim takes the
		// slot's generation + 1 — and our next renewal replaces it;
		// other hosts ignore it (liveness, "Older generations").
		m.log.Warn().Int("slot", d.Index).Str("found_host", s.HostName).Uint64("found_generation", s.Generation).
			Uint64("found_sequence", s.Sequence).Str("found_state", s.State.String()).Uint64("generation", rec.Generation).
			Msg("own slot shows a late write of an older generation: ignored, the next renewal replaces it")
		return nil
	}
	if s.HostName != rec.HostName || s.Generation != rec.Generation || s.JoinNonce != rec.JoinNonce {
		return &SlotLostError{Slot: d.Index, Want: rec, Found: s}
	}
	return nil
}

// MarkUnsafe writes the slot once more, after Run ended, with
// ondisk.FlagNoWatchdog: the host fenced, its guests are not confirmed
// gone and its watchdog cannot be trusted to reset it (it could not be
// armed or fed, or there is none), so no observer may take its death for
// a fence. It reads the slots first and writes only if the slot still
// holds this incarnation's last record (one writer per sector).
func (m *Member) MarkUnsafe() error {
	if !m.isJoined() {
		return errors.New("MarkUnsafe before Join")
	}
	m.mu.Lock()
	mine, slot := m.record, m.slot
	m.mu.Unlock()
	if err := m.st.ReadSlots(m.raw); err != nil {
		return fmt.Errorf("marking slot %d unsafe: reading the slots: %w", slot, err)
	}
	m.decoded = ondisk.DecodeSlotsInto(m.decoded, m.raw, m.header)
	if err := m.checkOwn(m.decoded[slot], mine); err != nil {
		return fmt.Errorf("marking slot %d unsafe: %w", slot, err)
	}
	m.mu.Lock()
	m.record.Flags |= ondisk.FlagNoWatchdog
	m.record.Sequence++
	m.record.Wall = time.Now() // wall clock, for humans
	rec := m.record
	m.mu.Unlock()
	if err := m.st.WriteSlot(slot, rec.Encode()); err != nil {
		return fmt.Errorf("marking slot %d unsafe: %w", slot, err)
	}
	return nil
}

// Leave writes "left" into our slot: other hosts see at once that this
// host stopped cleanly and need not wait host_dead.
func (m *Member) Leave() error {
	m.mu.Lock()
	m.record.Sequence++
	m.record.State = ondisk.StateLeft
	m.record.Wall = time.Now() // wall clock, for humans
	m.record.Messages = [ondisk.MessageCells]ondisk.Message{}
	rec, slot := m.record, m.slot
	m.mu.Unlock()
	if err := m.st.WriteSlot(slot, rec.Encode()); err != nil {
		return fmt.Errorf("writing \"left\" into slot %d: %w (other hosts will declare this host dead after host_dead instead)", slot, err)
	}
	m.log.Info().Int("slot", slot).Uint64("generation", rec.Generation).Msg("left the pool")
	return nil
}

func (m *Member) observe(issued, done time.Time) {
	m.mu.Lock()
	events := m.tracker.Observe(issued, done, m.decoded)
	var peers []liveness.Peer
	if m.cfg.OnRead != nil {
		peers = m.tracker.Peers()
	}
	m.mu.Unlock()
	m.report(events)
	if m.cfg.OnRead != nil {
		m.cfg.OnRead(issued, done, peers)
	}
}

func (m *Member) report(events []liveness.Event) {
	for _, e := range events {
		var ev *zerolog.Event
		switch {
		case e.Kind == liveness.Revenant || e.Kind == liveness.Corrupt || e.Kind == liveness.Stale:
			ev = m.log.Warn()
		case e.Kind == liveness.Transition && (e.To == liveness.Suspect || e.To == liveness.Dead):
			ev = m.log.Warn()
		default:
			ev = m.log.Info()
		}
		ev = ev.Str("peer", e.Name).Int("peer_slot", e.Slot).Uint64("generation", e.Generation)
		if m.slot >= 0 {
			ev = ev.Int("slot", m.slot)
		}
		switch e.Kind {
		case liveness.Transition:
			ev = ev.Str("from", e.From.String()).Str("to", e.To.String())
			if e.Silence > 0 {
				ev = ev.Dur("silence_ms", e.Silence)
			}
			ev.Msgf("host %s is %s", e.Name, e.To)
		default:
			ev.Str("event", e.Kind.String()).Msg(e.Detail)
		}
		if m.cfg.Observer != nil {
			m.cfg.Observer(e)
		}
	}
}

func (m *Member) isJoined() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.joined
}

// latencyRing keeps the last renewal latencies.
// GapWindow is how far back the largest gap between two renewals is kept
// (hbfence status: the live budget).
const GapWindow = 5 * time.Minute

// gapWindow keeps the largest gap between two successful renewals in each
// of the last gapBuckets spans of GapWindow/gapBuckets, whatever the rate
// of the renewals, to tell the largest of the last GapWindow.
type gapWindow struct {
	start [gapBuckets]time.Time // the span each bucket is of (zero: empty)
	gap   [gapBuckets]time.Duration
}

const gapBuckets = 60

func gapSpan() time.Duration { return GapWindow / gapBuckets }

func (w *gapWindow) add(at time.Time, gap time.Duration) {
	span := at.Truncate(gapSpan())
	i := int(span.UnixNano()/int64(gapSpan())) % gapBuckets
	if !w.start[i].Equal(span) {
		w.start[i], w.gap[i] = span, 0
	}
	w.gap[i] = max(w.gap[i], gap)
}

// max is the largest gap whose renewal was issued within GapWindow of now
// (to the span: up to GapWindow/gapBuckets more).
func (w *gapWindow) max(now time.Time) time.Duration {
	var hi time.Duration
	for i := range w.start {
		if !w.start[i].IsZero() && now.Sub(w.start[i]) <= GapWindow {
			hi = max(hi, w.gap[i])
		}
	}
	return hi
}

type latencyRing struct {
	buf  [32]time.Duration
	n    int
	next int
}

func (r *latencyRing) add(d time.Duration) {
	r.buf[r.next] = d
	r.next = (r.next + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

// summary returns min, median and max of the kept samples.
func (r *latencyRing) summary() (lo, med, hi time.Duration, n int) {
	if r.n == 0 {
		return 0, 0, 0, 0
	}
	s := slices.Clone(r.buf[:r.n])
	slices.Sort(s)
	return s[0], s[len(s)/2], s[len(s)-1], r.n
}
