package lease

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/textenum"
)

// Kind is the I/O the driver must do next.
type Kind int

const (
	// None: nothing to do (the lease is stopped or fenced).
	None Kind = iota
	// ReadLeader: read the leader sector, not before NotBefore, and report
	// with ReadLeaderDone.
	ReadLeader
	// ReadBallots: read the whole ballot region in one I/O, not before
	// NotBefore, and report with ReadBallotsDone.
	ReadBallots
	// WriteBallot: write Ballot into this host's ballot block, not before
	// NotBefore, and report with WriteDone.
	WriteBallot
	// WriteLeader: write Leader into the leader sector, not before
	// NotBefore and no later than Deadline (report ErrDeadline instead of
	// writing past it), and report with WriteDone.
	WriteLeader
)

func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case ReadLeader:
		return "read-leader"
	case ReadBallots:
		return "read-ballots"
	case WriteBallot:
		return "write-ballot"
	case WriteLeader:
		return "write-leader"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Action is the next I/O of the lease. The driver sets the records' Wall
// field (for humans) before encoding them.
type Action struct {
	Kind      Kind
	NotBefore time.Time
	Deadline  time.Time // WriteLeader only
	Ballot    ondisk.Ballot
	Leader    ondisk.Leader
}

// Errors of the lease's commands and of a driver.
var (
	// ErrDeadline is what the driver reports when it could not issue a
	// WriteLeader before the action's Deadline.
	ErrDeadline = errors.New("leader record write not issued before its deadline")
	// ErrNotMaster: the command needs this host to be acting as master.
	ErrNotMaster = errors.New("this host is not acting as master")
	// ErrHandOver: a hand-over is under way; wait for its outcome.
	ErrHandOver = errors.New("a hand-over of the master lease is under way")
	// ErrFenced: renewals of this incarnation lapsed; it may never be
	// master again. Rejoin as a new generation.
	ErrFenced = errors.New("renewals lapsed: this incarnation may not take the master lease")
	// ErrStopped: Stop was called.
	ErrStopped = errors.New("the lease is stopped")
)

// Config describes this host and the pool.
type Config struct {
	// Self is this incarnation: its slot, its generation, its name.
	Self ondisk.Owner
	// Pool is the pool's UUID (ballots and leader records carry it).
	Pool ondisk.UUID
	// Slots is the area's slot count; ballot numbers are
	// round × Slots + Self.Slot + 1, unique per slot.
	Slots  int
	Timing timing.Params
	// FirstRenewalBy is the latest issue time of this incarnation's first
	// successful renewal after its join claim: the Deadline of the
	// join.Joined action (the claim's issue + host_dead − io_timeout −
	// margin). A renewal issued by then lands before any observer can
	// judge the claim dead; the lease fences if the first renewal comes
	// later, since a write that failed but landed may have started an
	// observer's count with no renewal of ours to measure a gap from.
	FirstRenewalBy time.Time
	// QuietUntil is the earliest moment, on the safety clock, at which
	// this incarnation may write a ballot block or the leader record, or
	// read the ballot region to learn its own block: a new incarnation
	// that started while an earlier one's writes may still be in flight
	// (a crashed daemon restarted at once) sets it to its start plus
	// Quarantine, so that every such write has landed, or never will,
	// before this one writes or learns what is on storage (doc.go, "Late
	// writes of an earlier incarnation"). Leader reads go on; the zero
	// time imposes no wait (a re-executed daemon keeps its incarnation
	// and passes its predecessor's writes through QuiescentAt).
	QuietUntil time.Time
	// Jitter returns a random duration in [0, max); nil uses math/rand/v2.
	// It spreads the retries of hosts whose ballots aborted one another.
	Jitter func(max time.Duration) time.Duration
}

func (c Config) validate() error {
	if c.Slots < ondisk.MinSlots || c.Slots > ondisk.MaxSlots {
		return fmt.Errorf("lease: slot count %d out of range %d..%d", c.Slots, ondisk.MinSlots, ondisk.MaxSlots)
	}
	if int64(c.Self.Slot) >= int64(c.Slots) {
		return fmt.Errorf("lease: own slot %d outside the area's %d slots", c.Self.Slot, c.Slots)
	}
	if c.Self.Generation == 0 {
		return fmt.Errorf("lease: own generation is 0; a joined slot has generation 1 or more")
	}
	if err := ondisk.ValidHostName(c.Self.Name); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if c.Pool.IsZero() {
		return fmt.Errorf("lease: pool UUID is zero")
	}
	if err := c.Timing.Validate(); err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if c.FirstRenewalBy.IsZero() {
		return fmt.Errorf("lease: FirstRenewalBy is not set (pass the Deadline of the join's Joined action)")
	}
	return nil
}

// Role is what the lease is doing.
type Role int

const (
	// Follower: not master and not trying; reads the leader record every
	// interval so that Holder stays current.
	Follower Role = iota
	// Acquiring: waiting until the lease may be taken, or running a
	// ballot.
	Acquiring
	// Master: holds an epoch. Acting as master is allowed only while
	// Master(now) says so.
	Master
	// HandingOver: proposing a successor for the next epoch; not acting.
	HandingOver
	// Releasing: writing the released record; not acting.
	Releasing
	// Stopped: Stop was called.
	Stopped
	// Fenced: renewals lapsed; terminal for this incarnation.
	Fenced
)

var roleNames = []string{"follower", "acquiring", "master", "handing-over", "releasing", "stopped", "fenced"}

func (r Role) String() string { return textenum.Name(roleNames, int(r), "role") }

// MarshalText renders the role for JSON.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a role rendered by MarshalText.
func (r *Role) UnmarshalText(b []byte) error {
	i, err := textenum.Parse(roleNames, b, "lease role")
	if err != nil {
		return err
	}
	*r = Role(i)
	return nil
}

type want int

const (
	wantNone want = iota
	wantTry
	wantKeep
)

type step int

const (
	stepLeader      step = iota // read the leader record, then decide
	stepBlocks                  // read the ballots before phase 1
	stepP1Write                 // phase 1: write (lver, mbal)
	stepP1Read                  // phase 1: read all blocks
	stepP2Write                 // phase 2: write (lver, mbal, bal = mbal, value)
	stepP2Read                  // phase 2: read all blocks
	stepLeaderWrite             // write our leader record
	stepLeaderCheck             // read the leader record back after a failed write
	stepResume                  // hand-over failed: read the leader record before resuming
)

// decision is the outcome of one instance, as learnt by a completed ballot.
type decision struct {
	lver  uint64
	value ondisk.Owner
	flags uint16
}

// Lease is the master lease of one host as a pure state machine: it takes
// the results of reads and writes of the leader and ballot sectors with
// the times, on the caller's monotonic clock, at which they were issued and
// returned, the caller's liveness view and its successful renewals, and
// says what I/O to do next. It does no I/O and reads no clock. See doc.go
// for the protocol and why it is safe.
type Lease struct {
	cfg       Config
	lateWrite time.Duration

	role Role
	want want
	step step
	next Action
	now  time.Time

	// Freshness: issue time of the last successful renewal of our slot.
	renewed    time.Time
	fencedWhy  string
	stoppedWhy string

	view View

	// What the last usable leader read showed.
	haveLeader   bool
	leader       ondisk.LeaderDecoded
	leaderIssued time.Time
	holder       Holder

	// Our ballot block as it is on storage (ownKnown), the highest lver
	// and, per instance, the highest mbal the last ballot read showed.
	own      ondisk.Ballot
	ownKnown bool
	hint     uint64    // highest lver in the last ballot read
	hintDone time.Time // when that read returned
	seenInst uint64
	seenMbal uint64

	learned decision // the highest instance whose outcome we learnt

	// The instance we run a ballot in.
	inst          uint64
	mbal          uint64
	proposal      ondisk.Owner
	proposalFlags uint16
	value         ondisk.Owner // what phase 2 writes
	valueFlags    uint16
	written       ondisk.Ballot // what the last ballot write wrote
	mayBeChosen   bool          // we wrote phase 2 with our own value in inst
	attempts      int           // ballots started in inst
	aborts        int           // consecutive aborts
	readFails     int           // consecutive failed I/Os
	lastAbort     string
	waiting       string // why an acquisition waits
	lastErr       string

	// Our epoch (Master, HandingOver, Releasing) and since when we act.
	epoch       uint64
	masterSince time.Time

	// Hand-over.
	hoTarget   ondisk.Owner
	hoDeadline time.Time

	// The leader record being written, and the latest moment a write of
	// ours that timed out may still land.
	writing   ondisk.Leader
	lateUntil time.Time
	// No ballot or leader write, no ballot read, before this: an earlier
	// incarnation's writes may still land until then (Config.QuietUntil).
	quietUntil time.Time
	// How long a later generation of an owner's slot must have been seen
	// before the owner counts as gone (gone): Quarantine.
	generationWait time.Duration

	rtt    time.Duration // smoothed I/O latency
	events []Event
}

// New returns the lease of one incarnation, as a Follower. It does nothing
// that matters before the first Renewed.
func New(cfg Config) (*Lease, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Jitter == nil {
		cfg.Jitter = func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		}
	}
	l := &Lease{cfg: cfg, lateWrite: LateWrite(cfg.Timing), quietUntil: cfg.QuietUntil,
		generationWait: Quarantine(cfg.Timing)}
	l.next = Action{Kind: ReadLeader}
	return l, nil
}

// Quarantine is how long a new incarnation of a slot waits, from its
// start, before it writes a ballot block or the leader record or reads the
// ballot region (Config.QuietUntil): LateWrite, within which a write of the
// earlier incarnation lands or never does, plus the timing margin for the
// difference in clock rate between the host that bounded the write and the
// one that waits, and for scheduling.
func Quarantine(p timing.Params) time.Duration { return LateWrite(p) + p.Margin() }

// LateWrite is how long after its issue a write that timed out may still
// land, as the lease assumes: the watchdog period. A host's write lands
// before the host is reset or never, and a host issues lease writes only
// while its renewals are fresh (docs/master.md). After a write of its own
// that timed out, the lease issues no I/O for this long from the write's
// issue, so that its own writes never land out of order even on storage
// that does not serialise them.
func LateWrite(p timing.Params) time.Duration { return p.Watchdog }

// Next is the I/O the driver must perform, not before its NotBefore.
// After any call that changes the lease (a result, a command, SetView,
// Renewed), ask again.
func (l *Lease) Next() Action { return l.next }

// Role is what the lease is doing.
func (l *Lease) Role() Role { return l.role }

// Events returns what happened since the last call, oldest first.
func (l *Lease) Events() []Event {
	e := l.events
	l.events = nil
	return e
}

// ---------------------------------------------------------------- time

func (l *Lease) clock(t time.Time) {
	if t.After(l.now) {
		l.now = t
	}
	switch {
	case !l.renewed.IsZero() && l.now.Sub(l.renewed) >= l.cfg.Timing.RenewalFail:
		l.fence(l.now, fmt.Sprintf("no successful renewal for %v (renewal_fail %v)",
			l.now.Sub(l.renewed).Round(time.Millisecond), l.cfg.Timing.RenewalFail))
	case l.renewed.IsZero() && l.now.After(l.cfg.FirstRenewalBy.Add(l.cfg.Timing.IOTimeout)):
		l.fence(l.now, fmt.Sprintf("no successful renewal since joining, %v past the first renewal's deadline",
			l.now.Sub(l.cfg.FirstRenewalBy).Round(time.Millisecond)))
	}
}

func (l *Lease) fresh(t time.Time) bool {
	return !l.renewed.IsZero() && t.Sub(l.renewed) < l.cfg.Timing.RenewalFail
}

// until is when acting as master must end unless a renewal succeeds.
func (l *Lease) until() time.Time { return l.renewed.Add(l.cfg.Timing.RenewalFail) }

func (l *Lease) fence(at time.Time, why string) {
	if l.dead() {
		return
	}
	if l.role == Master || l.role == HandingOver || l.role == Releasing {
		l.emit(Event{Kind: Lost, At: at, Epoch: l.epoch, Owner: l.cfg.Self, Detail: "fenced: " + why})
	}
	l.role = Fenced
	l.fencedWhy = why
	l.next = Action{Kind: None}
	l.emit(Event{Kind: FencedEvent, At: at, Detail: why})
}

func (l *Lease) dead() bool { return l.role == Fenced || l.role == Stopped }

// Renewed reports a successful renewal of this host's slot: the write was
// issued at issued and returned at done. The lease acts as master only
// while the last renewal was issued less than renewal_fail ago, and latches
// (Fenced) as soon as renewals lapse, even if a later one succeeds: a host
// whose renewals lapsed has fenced itself and may already be judged dead.
func (l *Lease) Renewed(issued, done time.Time) {
	if l.dead() {
		return
	}
	if !l.renewed.IsZero() && done.Sub(l.renewed) >= l.cfg.Timing.RenewalFail {
		l.clock(done)
		l.fence(done, fmt.Sprintf("renewal gap of %v: the renewal issued after the last one returned only %v after it (renewal_fail %v)",
			issued.Sub(l.renewed).Round(time.Millisecond), done.Sub(l.renewed).Round(time.Millisecond), l.cfg.Timing.RenewalFail))
		return
	}
	first := l.renewed.IsZero()
	if first && (issued.After(l.cfg.FirstRenewalBy) || done.Sub(issued) > l.cfg.Timing.IOTimeout) {
		l.clock(done)
		l.fence(done, fmt.Sprintf("first renewal since joining issued %v after its deadline, returned after %v",
			issued.Sub(l.cfg.FirstRenewalBy).Round(time.Millisecond), done.Sub(issued).Round(time.Millisecond)))
		return
	}
	if issued.After(l.renewed) {
		l.renewed = issued
	}
	l.clock(done)
	if first && !l.dead() && l.role == Acquiring && l.step == stepLeader {
		// An acquisition waited for the first renewal.
		l.read(ReadLeader, stepLeader, done)
	}
}

// SetView gives the lease the caller's current liveness view. An
// acquisition waiting for the owner to die re-reads the leader record at
// once when the view says it may now be taken.
func (l *Lease) SetView(now time.Time, v View) {
	l.view = v
	l.clock(now)
	if l.dead() || l.role != Acquiring || l.step != stepLeader || !l.haveLeader || !l.next.NotBefore.After(now) {
		return
	}
	if l.eligibleNow() {
		l.read(ReadLeader, stepLeader, now)
	}
}

// ReadSoon makes an acquisition that waits for the leader record to
// change read it again no later than at: a host that acknowledged a
// hand-over request expects the master's released record within an
// interval and need not wait a whole interval more to see it. Reads are
// always safe; this changes nothing but when the next one is issued.
func (l *Lease) ReadSoon(now, at time.Time) {
	l.clock(now)
	if l.dead() || l.role != Acquiring || l.step != stepLeader || l.next.Kind != ReadLeader || !l.next.NotBefore.After(at) {
		return
	}
	l.read(ReadLeader, stepLeader, at)
}

// ------------------------------------------------------------ commands

// Acquire asks for the lease and keeps trying until this host holds it:
// whenever the lease may be taken (free, released, or its owner gone), it
// runs a ballot; when it loses, it waits for the next chance.
func (l *Lease) Acquire(now time.Time) error { return l.ask(now, wantKeep) }

// TryAcquire asks for the lease once: if it may not be taken now (its
// owner is live, suspect or unknown here) the lease reports Busy at once;
// otherwise it runs ballots until the outcome of the instance is known
// (Acquired, or Busy naming the winner). It does not give up in between:
// its own value may have been chosen.
func (l *Lease) TryAcquire(now time.Time) error { return l.ask(now, wantTry) }

func (l *Lease) ask(now time.Time, w want) error {
	l.clock(now)
	switch l.role {
	case Fenced:
		return fmt.Errorf("%w (%s)", ErrFenced, l.fencedWhy)
	case Stopped:
		return ErrStopped
	}
	if w > l.want {
		l.want = w
	}
	if l.role == Follower {
		l.role = Acquiring
		l.waiting = ""
		l.read(ReadLeader, stepLeader, now)
	}
	return nil
}

// Release gives the lease up. A master stops acting at once and writes
// its leader record again, released. An acquisition under way stops, unless
// its own value may already have been chosen in the instance it runs: it
// then finishes the instance, and if it won, writes the record released.
func (l *Lease) Release(now time.Time) error {
	l.clock(now)
	switch l.role {
	case Fenced:
		return fmt.Errorf("%w (%s)", ErrFenced, l.fencedWhy)
	case Stopped:
		return ErrStopped
	case HandingOver:
		return ErrHandOver
	}
	l.want = wantNone
	switch l.role {
	case Master:
		l.emit(Event{Kind: Stepped, At: now, Epoch: l.epoch, Owner: l.cfg.Self, Detail: "releasing"})
		l.role = Releasing
		l.writeLeader(ondisk.Leader{Epoch: l.epoch, Owner: l.cfg.Self, Flags: ondisk.LeaderReleased}, now)
	case Acquiring:
		switch l.step {
		case stepLeaderWrite, stepLeaderCheck:
			// The instance is won; the record is written released
			// once the held one is on storage.
		case stepLeader:
			l.toFollower(now)
		default:
			if !l.ownValueMayBeChosen() {
				l.toFollower(now)
			}
		}
	}
	return nil
}

// ProposeSuccessor hands the lease over to target, another live host that
// has acknowledged a hand-over request (the message is the driver's). The
// master stops acting at once, before its first write, and proposes target
// as the owner of the next epoch in a ballot of its own. If the ballot
// completes, it writes its leader record released for the successor
// (HandedOver), and target takes the next epoch with a ballot of its own,
// which must choose it. If the ballot has not completed by deadline, the
// lease reads the leader record and resumes acting as master only if that
// still shows this host's epoch, held (HandOverFailed with Resumed).
func (l *Lease) ProposeSuccessor(now time.Time, target ondisk.Owner, deadline time.Time) error {
	l.clock(now)
	switch {
	case l.role == HandingOver:
		return ErrHandOver
	case l.role != Master || !l.fresh(now):
		return ErrNotMaster
	case target.Slot == l.cfg.Self.Slot:
		return fmt.Errorf("hand-over to slot %d: that is this host", target.Slot)
	case int64(target.Slot) >= int64(l.cfg.Slots):
		return fmt.Errorf("hand-over to slot %d: outside the area's %d slots", target.Slot, l.cfg.Slots)
	case target.Generation == 0 || ondisk.ValidHostName(target.Name) != nil:
		return fmt.Errorf("hand-over target %v: needs a generation and a valid host name", target)
	}
	l.emit(Event{Kind: Stepped, At: now, Epoch: l.epoch, Owner: l.cfg.Self, Detail: "handing over to " + target.String()})
	l.role = HandingOver
	l.hoTarget, l.hoDeadline = target, deadline
	l.begin(l.epoch+1, target, ondisk.ValueHandOver)
	l.startBallot(now, now)
	return nil
}

// Stop ends the lease: a master stops acting, and no further I/O is asked
// for. Before the caller writes "left" into its slot, the I/O under way
// must have returned and QuiescentAt must have passed.
func (l *Lease) Stop(now time.Time) {
	l.clock(now)
	if l.dead() {
		return
	}
	if l.role == Master || l.role == HandingOver || l.role == Releasing {
		l.emit(Event{Kind: Stepped, At: now, Epoch: l.epoch, Owner: l.cfg.Self, Detail: "stopped"})
	}
	l.role = Stopped
	l.stoppedWhy = "stopped"
	l.next = Action{Kind: None}
}

// QuiescentAt is the moment after which no write this lease asked for can
// still land, once the I/O under way (if any) has returned.
func (l *Lease) QuiescentAt() time.Time { return l.lateUntil }

// Master reports whether this host may act as master at now, and until
// when at the latest without asking again: while it holds an epoch and its
// last renewal was issued less than renewal_fail ago.
func (l *Lease) Master(now time.Time) (Mastership, bool) {
	l.clock(now)
	if l.role != Master || !l.fresh(now) {
		return Mastership{}, false
	}
	return Mastership{Epoch: l.epoch, Since: l.masterSince, Until: l.until()}, true
}

// Mastership is this host's tenure as master.
type Mastership struct {
	Epoch uint64    // the fencing token: stamp every record the master writes with it
	Since time.Time // when it began to act, on this host's clock
	Until time.Time // act no later than this without asking Master again
}

// ------------------------------------------------------------- results

// ReadLeaderDone reports the read of the leader sector that Next asked
// for: issued and done are the times the read was issued and returned; d
// is the decoded sector.
func (l *Lease) ReadLeaderDone(issued, done time.Time, d ondisk.LeaderDecoded, err error) {
	if l.next.Kind != ReadLeader || l.dead() {
		return
	}
	l.clock(done)
	if l.dead() {
		return
	}
	if err != nil {
		l.lastErr = err.Error()
		l.readFailed(done)
		return
	}
	l.sample(issued, done)
	if d.Usable() {
		l.setLeader(issued, done, d)
	} else if l.lastErr != d.Status.String()+": "+d.Reason {
		l.lastErr = d.Status.String() + ": " + d.Reason
		l.emit(Event{Kind: Unreadable, At: done, Detail: "leader record " + l.lastErr})
	}
	switch l.role {
	case Follower:
		l.follow(done)
	case Acquiring:
		switch l.step {
		case stepLeader:
			if !d.Usable() {
				l.waiting = "the leader record is unreadable: " + describeDecoded(d)
				l.read(ReadLeader, stepLeader, done.Add(l.backoffOr(l.cfg.Timing.Interval)))
				return
			}
			l.decide(done)
		case stepLeaderCheck:
			l.checkWritten(done, d)
		}
	case Master:
		l.masterCheck(done, d)
	case HandingOver:
		switch l.step {
		case stepResume:
			l.resume(done, d)
		case stepLeaderCheck:
			l.checkWritten(done, d)
		}
	case Releasing:
		l.checkWritten(done, d)
	}
}

// ReadBallotsDone reports the read of the ballot region: blocks are the
// decoded blocks, by slot (the lease copies what it keeps).
func (l *Lease) ReadBallotsDone(issued, done time.Time, blocks []ondisk.BallotDecoded, err error) {
	if l.next.Kind != ReadBallots || l.dead() {
		return
	}
	l.clock(done)
	if l.dead() {
		return
	}
	if err != nil {
		l.lastErr = err.Error()
		l.readFailed(done)
		return
	}
	l.sample(issued, done)
	s := l.scan(blocks)
	l.hintDone = done
	if l.hoOverdue(done) {
		return
	}
	if s.maxLver > l.inst {
		l.higher(done, s.maxLver)
		return
	}
	switch l.step {
	case stepBlocks:
		switch {
		case s.bad != "":
			l.abort(done, s.bad)
		case !l.ownKnown:
			l.abort(done, "own ballot block unreadable")
		default:
			l.phase1(done)
		}
	case stepP1Read, stepP2Read:
		w := l.written
		switch {
		case s.bad != "":
			l.abort(done, s.bad)
		case !l.ownKnown || l.own.Lver != w.Lver || l.own.Mbal != w.Mbal || l.own.Bal != w.Bal || l.own.Value != w.Value:
			l.abort(done, fmt.Sprintf("own ballot block reads back lver %d mbal %d, wrote lver %d mbal %d", l.own.Lver, l.own.Mbal, w.Lver, w.Mbal))
		case s.higherMbal != 0:
			l.abort(done, fmt.Sprintf("slot %d started ballot %d in instance %d, above ours (%d)", s.higherSlot, s.higherMbal, l.inst, l.mbal))
		case l.step == stepP1Read:
			l.value, l.valueFlags = l.proposal, l.proposalFlags
			if s.best.Bal > 0 {
				l.value, l.valueFlags = s.best.Value, s.best.ValueFlags
			}
			l.phase2(done)
		default:
			l.decided(done, decision{lver: l.inst, value: l.value, flags: l.valueFlags})
		}
	}
}

// WriteDone reports the write that Next asked for. A write that failed
// may or may not have landed; one that timed out may still land later.
func (l *Lease) WriteDone(issued, done time.Time, err error) {
	// A write that timed out may land up to LateWrite after its issue,
	// even when the lease stopped or fenced while it was under way:
	// QuiescentAt must cover it.
	if errors.Is(err, directio.ErrTimeout) {
		if t := issued.Add(l.lateWrite); t.After(l.lateUntil) {
			l.lateUntil = t
		}
	}
	if (l.next.Kind != WriteBallot && l.next.Kind != WriteLeader) || l.dead() {
		return
	}
	wrote := l.next
	if err != nil && !errors.Is(err, ErrDeadline) {
		l.ownKnownAfterFailure(wrote)
	}
	l.clock(done)
	if l.dead() {
		return
	}
	if err != nil {
		l.lastErr = err.Error()
	} else {
		l.sample(issued, done)
	}
	if wrote.Kind == WriteBallot {
		if l.step == stepP2Write && wrote.Ballot.Value.Same(l.cfg.Self) {
			l.mayBeChosen = true
		}
		if err != nil {
			l.abort(done, "ballot write failed: "+err.Error())
			return
		}
		l.own, l.ownKnown, l.written = wrote.Ballot, true, wrote.Ballot
		if l.hoOverdue(done) {
			return
		}
		if l.step == stepP1Write {
			l.read(ReadBallots, stepP1Read, done)
		} else {
			l.read(ReadBallots, stepP2Read, done)
		}
		return
	}
	if err != nil {
		if issued.After(wrote.Deadline) && !errors.Is(err, ErrDeadline) {
			l.lastErr = fmt.Sprintf("leader write issued %v after its deadline", issued.Sub(wrote.Deadline))
		}
		l.read(ReadLeader, stepLeaderCheck, done)
		return
	}
	if issued.After(wrote.Deadline) {
		// The driver wrote past the deadline: the renewals had lapsed
		// and the clock call above has fenced us already.
		l.fence(done, "leader record written after its deadline")
		return
	}
	l.written0(done)
}

// ownValueMayBeChosen reports whether a value naming this incarnation may
// have been chosen in an instance not yet known to be decided: then the
// instance must be finished, or the lease would wait for us for ever.
func (l *Lease) ownValueMayBeChosen() bool {
	if l.mayBeChosen {
		return true
	}
	return l.ownKnown && l.own.Bal > 0 && l.own.Value.Same(l.cfg.Self) && l.own.Lver > l.current().epoch
}

func (l *Lease) ownKnownAfterFailure(a Action) {
	if a.Kind == WriteBallot {
		l.ownKnown = false
	}
}

// ----------------------------------------------------------- internals

func (l *Lease) emit(e Event) { l.events = append(l.events, e) }

func (l *Lease) sample(issued, done time.Time) {
	l.readFails = 0
	d := done.Sub(issued)
	if d < 0 {
		return
	}
	if l.rtt == 0 {
		l.rtt = d
	} else {
		l.rtt = (7*l.rtt + d) / 8
	}
}

// read asks for a read at the earliest at notBefore.
func (l *Lease) read(k Kind, s step, notBefore time.Time) {
	if l.lateUntil.After(notBefore) {
		notBefore = l.lateUntil
	}
	if k == ReadBallots {
		notBefore = l.afterQuiet(notBefore)
	}
	l.step = s
	l.next = Action{Kind: k, NotBefore: notBefore}
}

// gone reports whether incarnation o can no longer act nor write, at the
// lease's latest instant.
func (l *Lease) gone(o ondisk.Owner) (bool, string) {
	return gone(l.view, l.cfg.Self, l.cfg.Slots, o, l.now, l.generationWait)
}

// afterQuiet moves t to the end of the quarantine of a new incarnation.
func (l *Lease) afterQuiet(t time.Time) time.Time {
	if l.quietUntil.After(t) {
		return l.quietUntil
	}
	return t
}

func (l *Lease) readFailed(done time.Time) {
	l.readFails++
	wait := l.cfg.Timing.Interval
	switch l.step {
	case stepBlocks, stepP1Read, stepP2Read, stepResume, stepLeaderCheck:
		// Storage that fails every I/O at once (a stuck earlier I/O, a
		// bad sector) must not make the lease spin: the wait doubles
		// with each failure in a row, from a sixteenth of an interval
		// up to an interval.
		base := max(l.cfg.Timing.Interval/16, 4*l.rtt, time.Millisecond)
		wait = l.cfg.Jitter(min(l.cfg.Timing.Interval, base<<min(l.readFails-1, 4))) + base/2
	}
	if l.role == HandingOver && l.hoOverdue(done) {
		return
	}
	l.read(l.next.Kind, l.step, done.Add(wait))
}

func (l *Lease) backoff() time.Duration {
	base := max(4*l.rtt, time.Millisecond)
	k := min(l.aborts, 6)
	return l.cfg.Jitter(min(l.cfg.Timing.Interval, base<<k)) + time.Microsecond
}

// backoffOr is a short random wait, at most d.
func (l *Lease) backoffOr(d time.Duration) time.Duration { return min(d, l.backoff()) }

func (l *Lease) toFollower(now time.Time) {
	l.role = Follower
	l.want = wantNone
	l.mayBeChosen = false
	l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
}

// setLeader records a usable leader read, and reports a change of holder.
func (l *Lease) setLeader(issued, done time.Time, d ondisk.LeaderDecoded) {
	h := Holder{Known: true, Epoch: d.Epoch(), Since: done}
	if d.Status == ondisk.RecordOK {
		h.Owner, h.Released, h.Wall = d.Leader.Owner, d.Leader.Released(), d.Leader.Wall
		if d.Leader.HasSuccessor() {
			h.Successor = d.Leader.Successor
		}
	}
	old := l.holder
	if old.Known && old.Epoch == h.Epoch && old.Owner == h.Owner && old.Released == h.Released && old.Successor == h.Successor {
		h.Since = old.Since
	} else {
		l.emit(Event{Kind: HolderChanged, At: done, Epoch: h.Epoch, Prev: old.Epoch, Owner: h.Owner,
			Detail: h.describe()})
	}
	l.holder = h
	l.haveLeader, l.leader, l.leaderIssued = true, d, issued
}

// current is what is known of the latest decided epoch: the leader record,
// or a later decision learnt by our own ballot.
type current struct {
	epoch     uint64
	owner     ondisk.Owner
	released  bool
	successor ondisk.Owner
	learnt    bool
}

func (l *Lease) current() current {
	c := current{}
	if l.haveLeader && l.leader.Status == ondisk.RecordOK {
		r := l.leader.Leader
		c = current{epoch: r.Epoch, owner: r.Owner, released: r.Released()}
		if r.HasSuccessor() {
			c.successor = r.Successor
		}
	}
	if l.learned.lver > c.epoch {
		c = current{epoch: l.learned.lver, owner: l.learned.value, learnt: true}
	}
	return c
}

// choose says which instance this host may run, if any. It is the safety
// core of acquisition: see doc.go, "Which instance".
func (l *Lease) choose(c current) (uint64, bool, string) {
	if l.hint >= c.epoch+2 && !l.leaderIssued.Before(l.hintDone) {
		// A ballot block of a later instance, seen before the leader
		// read that shows c: its writer learnt every epoch before it
		// and found its owner gone.
		return l.hint, true, fmt.Sprintf("instance %d is under way", l.hint)
	}
	n := c.epoch + 1
	switch {
	case c.epoch == 0:
		return n, true, "the lease was never held"
	case c.owner.Same(l.cfg.Self):
		return n, true, "the record is this incarnation's own"
	case c.released && !c.successor.IsZero() && !c.successor.Same(l.cfg.Self):
		if g, why := l.gone(c.successor); !g {
			return n, false, fmt.Sprintf("epoch %d was handed over to %v and %s", c.epoch, c.successor, why)
		}
		return n, true, fmt.Sprintf("epoch %d was handed over to %v, which is gone", c.epoch, c.successor)
	case c.released:
		return n, true, fmt.Sprintf("epoch %d was released", c.epoch)
	}
	if g, why := l.gone(c.owner); !g {
		src := "held"
		if c.learnt {
			src = "decided (no leader record yet)"
		}
		return n, false, fmt.Sprintf("epoch %d is %s by %v and %s", c.epoch, src, c.owner, why)
	} else {
		return n, true, fmt.Sprintf("the owner of epoch %d, %v: %s", c.epoch, c.owner, why)
	}
}

// eligibleNow is choose without the reasons (SetView calls it at every
// read of a waiting host).
func (l *Lease) eligibleNow() bool {
	c := l.current()
	if l.hint >= c.epoch+2 || c.epoch == 0 || c.owner.Same(l.cfg.Self) {
		return true
	}
	if c.released {
		if c.successor.IsZero() || c.successor.Same(l.cfg.Self) {
			return true
		}
		g, _ := l.gone(c.successor)
		return g
	}
	g, _ := l.gone(c.owner)
	return g
}

// decide runs after a leader read in an acquisition: wait, give up, or
// start a ballot.
func (l *Lease) decide(now time.Time) {
	if !l.haveLeader {
		l.waiting = "the leader record is unreadable"
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
		return
	}
	c := l.current()
	inst, ok, why := l.choose(c)
	if !ok {
		if l.want == wantTry {
			l.emit(Event{Kind: Busy, At: now, Epoch: c.epoch, Owner: c.owner, Detail: why})
			l.toFollower(now)
			return
		}
		if l.want == wantNone {
			l.toFollower(now)
			return
		}
		l.waiting = why
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
		return
	}
	if !l.fresh(now) {
		l.waiting = "no renewal of this host's slot yet"
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
		return
	}
	l.waiting = ""
	l.begin(inst, l.cfg.Self, 0)
	l.startBallot(now, now)
}

// begin sets up instance inst with a proposal (kept if already running it).
func (l *Lease) begin(inst uint64, proposal ondisk.Owner, flags uint16) {
	if l.ownKnown && l.own.Lver > inst {
		// Our own block is already in a later instance, which we
		// had reason to run then.
		inst = l.own.Lver
	}
	if inst != l.inst {
		l.inst, l.attempts, l.mayBeChosen = inst, 0, false
	}
	l.proposal, l.proposalFlags = proposal, flags
}

func (l *Lease) startBallot(now, notBefore time.Time) {
	if !l.ownKnown {
		l.read(ReadBallots, stepBlocks, notBefore)
		return
	}
	l.phase1(notBefore)
}

// ballotNumber is the smallest ballot of ours above floor.
func (l *Lease) ballotNumber(floor uint64) uint64 {
	n := uint64(l.cfg.Slots)
	r := floor / n
	for {
		if m := r*n + uint64(l.cfg.Self.Slot) + 1; m > floor {
			return m
		}
		r++
	}
}

func (l *Lease) phase1(notBefore time.Time) {
	floor := uint64(0)
	if l.seenInst == l.inst {
		floor = l.seenMbal
	}
	b := ondisk.Ballot{Lver: l.inst}
	if l.own.Lver == l.inst {
		// Keep what we accepted in this instance: phase 1 raises
		// mbal only.
		floor = max(floor, l.own.Mbal)
		b.Bal, b.Value, b.ValueFlags = l.own.Bal, l.own.Value, l.own.ValueFlags
	}
	l.mbal = l.ballotNumber(floor)
	b.Mbal = l.mbal
	l.attempts++
	l.writeBallot(b, stepP1Write, notBefore)
}

func (l *Lease) phase2(now time.Time) {
	b := ondisk.Ballot{Lver: l.inst, Mbal: l.mbal, Bal: l.mbal, Value: l.value, ValueFlags: l.valueFlags}
	l.writeBallot(b, stepP2Write, now)
}

func (l *Lease) writeBallot(b ondisk.Ballot, s step, notBefore time.Time) {
	b.Version = ondisk.LeaseVersion
	b.Index = l.cfg.Self.Slot
	b.PoolUUID = l.cfg.Pool
	b.Generation = l.cfg.Self.Generation
	if l.lateUntil.After(notBefore) {
		notBefore = l.lateUntil
	}
	notBefore = l.afterQuiet(notBefore)
	l.step = s
	l.next = Action{Kind: WriteBallot, NotBefore: notBefore, Ballot: b}
}

func (l *Lease) writeLeader(r ondisk.Leader, now time.Time) {
	r.Version = ondisk.LeaseVersion
	r.PoolUUID = l.cfg.Pool
	l.writing = r
	nb := now
	if l.lateUntil.After(nb) {
		nb = l.lateUntil
	}
	nb = l.afterQuiet(nb)
	l.step = stepLeaderWrite
	l.next = Action{Kind: WriteLeader, NotBefore: nb, Deadline: l.until(), Leader: r}
}

type scanned struct {
	maxLver    uint64
	higherMbal uint64 // a block of another slot in our instance with mbal above ours
	higherSlot int
	best       ondisk.Ballot // highest bal in our instance
	bad        string
}

// scan reads a ballot region: our own block, the highest lver, and, for
// our instance, the highest mbal of the others and the value accepted in
// the highest ballot. Blocks of an earlier instance are empty for ours.
func (l *Lease) scan(blocks []ondisk.BallotDecoded) scanned {
	var s scanned
	self := int(l.cfg.Self.Slot)
	l.seenInst, l.seenMbal = l.inst, 0
	for i := range blocks {
		d := &blocks[i]
		if d.Index == self {
			switch d.Status {
			case ondisk.RecordOK:
				l.own, l.ownKnown = d.Ballot, true
			case ondisk.RecordUnused:
				l.own, l.ownKnown = ondisk.Ballot{}, true
			default:
				l.ownKnown = false
			}
		}
		switch d.Status {
		case ondisk.RecordUnused:
			continue
		case ondisk.RecordOK:
		default:
			// A torn read of a block being written, or a block we
			// cannot interpret: it may hide a higher ballot.
			if s.bad == "" {
				s.bad = fmt.Sprintf("ballot block of slot %d is %v: %s", d.Index, d.Status, d.Reason)
			}
			continue
		}
		b := d.Ballot
		s.maxLver = max(s.maxLver, b.Lver)
		if b.Lver != l.inst {
			continue
		}
		if b.Bal > s.best.Bal {
			s.best = b
		}
		if d.Index != self {
			l.seenMbal = max(l.seenMbal, b.Mbal)
			if b.Mbal > l.mbal && b.Mbal > s.higherMbal {
				s.higherMbal, s.higherSlot = b.Mbal, d.Index
			}
		}
	}
	l.hint = s.maxLver
	return s
}

// higher: a ballot block is in an instance beyond ours.
func (l *Lease) higher(now time.Time, lver uint64) {
	l.lastAbort = fmt.Sprintf("a ballot block is in instance %d, beyond ours (%d)", lver, l.inst)
	if l.role == HandingOver {
		// Our instance is epoch + 1: a block beyond it means that
		// someone learnt epoch + 1 and went on, so epoch is over.
		l.handOverLost(now, fmt.Sprintf("instance %d is under way: epoch %d is over", lver, l.epoch))
		return
	}
	l.mayBeChosen = false
	l.read(ReadLeader, stepLeader, now)
}

func (l *Lease) abort(now time.Time, why string) {
	l.aborts++
	l.lastAbort = why
	nb := now.Add(l.backoff())
	if l.role == HandingOver && !nb.Before(l.hoDeadline) {
		l.read(ReadLeader, stepResume, l.hoDeadline)
		return
	}
	if l.role == Acquiring && l.want == wantNone && !l.ownValueMayBeChosen() {
		l.toFollower(now)
		return
	}
	if l.role == Acquiring {
		// Someone else is running a ballot: read the leader record
		// first; if the other has won and written it, the outcome is
		// known without another ballot.
		l.read(ReadLeader, stepLeader, nb)
		return
	}
	if l.ownKnown && l.seenInst == l.inst {
		l.phase1(nb)
		return
	}
	l.read(ReadBallots, stepBlocks, nb)
}

// decided: our ballot completed; the instance's value is d.value.
func (l *Lease) decided(now time.Time, d decision) {
	l.aborts = 0
	if d.lver > l.learned.lver {
		l.learned = d
	}
	l.emit(Event{Kind: Decided, At: now, Epoch: d.lver, Owner: d.value})
	if l.role == HandingOver {
		if d.value.Same(l.cfg.Self) {
			l.writeLeader(ondisk.Leader{Epoch: d.lver, Owner: l.cfg.Self}, now)
			return
		}
		l.writeLeader(ondisk.Leader{Epoch: l.epoch, Owner: l.cfg.Self,
			Flags: ondisk.LeaderReleased | ondisk.LeaderSuccessor, Successor: d.value}, now)
		return
	}
	if d.value.Same(l.cfg.Self) {
		r := ondisk.Leader{Epoch: d.lver, Owner: l.cfg.Self}
		if l.want == wantNone {
			r.Flags = ondisk.LeaderReleased
		}
		l.writeLeader(r, now)
		return
	}
	l.mayBeChosen = false
	if l.want == wantNone {
		l.toFollower(now)
		return
	}
	if g, why := l.gone(d.value); g {
		// Its owner will never write the record: go on to the next
		// instance without it.
		l.lastAbort = fmt.Sprintf("instance %d was decided for %v, but %s", d.lver, d.value, why)
		l.begin(d.lver+1, l.cfg.Self, 0)
		l.startBallot(now, now)
		return
	}
	if l.want == wantTry {
		l.emit(Event{Kind: Busy, At: now, Epoch: d.lver, Owner: d.value, Detail: fmt.Sprintf("instance %d was decided for %v", d.lver, d.value)})
		l.toFollower(now)
		return
	}
	l.waiting = fmt.Sprintf("instance %d was decided for %v; waiting for its leader record", d.lver, d.value)
	l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
}

// written0: the leader record l.writing is on storage.
func (l *Lease) written0(now time.Time) {
	r := l.writing
	switch {
	case l.role == Master:
		// A repair of our own record.
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
	case l.role == Releasing || (l.role == Acquiring && r.Released()):
		l.emit(Event{Kind: Released, At: now, Epoch: r.Epoch, Owner: l.cfg.Self})
		if l.want != wantNone {
			// Acquire was called while the release was written.
			l.role = Acquiring
			l.mayBeChosen = false
			l.read(ReadLeader, stepLeader, now)
			return
		}
		l.toFollower(now)
	case l.role == HandingOver && r.HasSuccessor():
		l.emit(Event{Kind: HandedOver, At: now, Epoch: r.Epoch, Owner: r.Successor,
			Detail: handOverDetail(l.hoTarget, r.Successor)})
		l.afterTenure(now)
	default:
		// Acquired (HandingOver: our hand-over ballot chose us).
		prev := l.holder.Epoch
		l.role = Master
		l.epoch = r.Epoch
		l.masterSince = now
		l.emit(Event{Kind: Acquired, At: now, Epoch: r.Epoch, Prev: prev, Owner: l.cfg.Self, Detail: l.lastAbortDetail()})
		if l.want == wantNone {
			l.Release(now)
			return
		}
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
	}
}

func handOverDetail(target, got ondisk.Owner) string {
	if target.Same(got) {
		return ""
	}
	return fmt.Sprintf("requested %v, but an earlier proposal for %v had been accepted and must stand", target, got)
}

func (l *Lease) lastAbortDetail() string {
	if l.attempts <= 1 {
		return ""
	}
	return fmt.Sprintf("%d ballots", l.attempts)
}

// afterTenure: our epoch is over (handed over, or lost).
func (l *Lease) afterTenure(now time.Time) {
	l.mayBeChosen = false
	if l.want == wantNone {
		l.toFollower(now)
		return
	}
	l.role = Acquiring
	l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
}

// checkWritten: a leader write failed; the read shows whether it landed.
//
// A record of ours that is held (acquired, or repaired) may be written
// again whenever the read does not show it: while we hold the epoch nobody
// else writes the record. A released record may not: once it is on
// storage, the next owner may be writing its own, and a torn read of that
// write must not be answered by writing ours over it. A released record is
// written again only when a valid read shows that it did not land (and,
// LateWrite having passed, never will): our record still held, or an
// older epoch (records never go back, so ours is not there).
func (l *Lease) checkWritten(now time.Time, d ondisk.LeaderDecoded) {
	r := l.writing
	ok := d.Status == ondisk.RecordOK
	switch {
	case ok && d.Leader.Epoch == r.Epoch && d.Leader.Owner == r.Owner &&
		d.Leader.Flags == r.Flags && d.Leader.Successor == r.Successor:
		l.written0(now)
	case ok && d.Leader.Epoch > r.Epoch && r.Released():
		// Our release landed, and another host took the next epoch.
		l.written0(now)
	case ok && (d.Leader.Epoch > r.Epoch || d.Leader.Epoch == r.Epoch && !d.Leader.Owner.Same(l.cfg.Self)):
		// Someone else holds a later epoch: ours is over.
		l.lostRecord(now, fmt.Sprintf("the leader record shows epoch %d of %v", d.Leader.Epoch, d.Leader.Owner))
	case d.Status == ondisk.RecordNewer:
		l.lostRecord(now, "the leader record was written by a newer hbfence")
	case !r.Released():
		// Our held record did not land (an older record, a torn or
		// scribbled sector): write it again.
		l.writeLeader(r, now)
	case ok && d.Leader.Epoch == r.Epoch && d.Leader.Owner == r.Owner && !d.Leader.Released(),
		d.Usable() && d.Epoch() < r.Epoch:
		// The release did not land.
		l.writeLeader(r, now)
	default:
		// Torn, scribbled, zeroed, or not our record: read again.
		l.read(ReadLeader, stepLeaderCheck, now.Add(l.backoffOr(l.cfg.Timing.Interval)))
	}
}

// masterCheck: the periodic read of a master.
func (l *Lease) masterCheck(now time.Time, d ondisk.LeaderDecoded) {
	switch {
	case d.Status == ondisk.RecordOK && d.Leader.Epoch == l.epoch && d.Leader.Owner == l.cfg.Self && !d.Leader.Released():
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
	case d.Status == ondisk.RecordOK && (d.Leader.Epoch > l.epoch || d.Leader.Epoch == l.epoch):
		l.lostRecord(now, fmt.Sprintf("the leader record shows epoch %d of %v%s", d.Leader.Epoch, d.Leader.Owner, releasedNote(d.Leader)))
	case d.Status == ondisk.RecordNewer:
		l.lostRecord(now, "the leader record was written by a newer hbfence")
	default:
		// Torn, scribbled, zeroed, or an older epoch: only we may
		// write the record while we hold the epoch. Repair it.
		l.emit(Event{Kind: Unreadable, At: now, Epoch: l.epoch, Detail: "leader record " + describeDecoded(d) + "; rewriting ours"})
		l.writeLeader(ondisk.Leader{Epoch: l.epoch, Owner: l.cfg.Self}, now)
	}
}

func releasedNote(r ondisk.Leader) string {
	if r.Released() {
		return ", released"
	}
	return ""
}

func describeDecoded(d ondisk.LeaderDecoded) string {
	switch d.Status {
	case ondisk.RecordOK:
		return fmt.Sprintf("shows epoch %d of %v", d.Leader.Epoch, d.Leader.Owner)
	case ondisk.RecordUnused:
		return "is zeroed"
	}
	return d.Status.String() + " (" + d.Reason + ")"
}

// lostRecord: the leader record shows that our epoch is over.
func (l *Lease) lostRecord(now time.Time, why string) {
	switch l.role {
	case Master, Releasing, HandingOver:
		l.emit(Event{Kind: Lost, At: now, Epoch: l.epoch, Owner: l.cfg.Self, Detail: why})
	case Acquiring:
		l.emit(Event{Kind: Lost, At: now, Epoch: l.writing.Epoch, Owner: l.cfg.Self, Detail: why})
	}
	if l.role == Releasing {
		l.toFollower(now)
		return
	}
	l.afterTenure(now)
	if l.role == Acquiring {
		l.decide(now)
	}
}

func (l *Lease) hoOverdue(now time.Time) bool {
	if l.role != HandingOver || l.step == stepLeaderWrite || l.step == stepLeaderCheck || l.step == stepResume {
		return false
	}
	if now.Before(l.hoDeadline) {
		return false
	}
	l.read(ReadLeader, stepResume, now)
	return true
}

// resume: the hand-over ballot did not complete in time.
func (l *Lease) resume(now time.Time, d ondisk.LeaderDecoded) {
	ours := d.Status == ondisk.RecordOK && d.Leader.Epoch == l.epoch && d.Leader.Owner == l.cfg.Self && !d.Leader.Released()
	switch {
	case ours && l.hint < l.epoch+2 && l.fresh(now):
		l.role = Master
		l.masterSince = now
		l.emit(Event{Kind: HandOverFailed, At: now, Epoch: l.epoch, Owner: l.hoTarget, Resumed: true,
			Detail: fmt.Sprintf("no ballot of instance %d completed by the deadline (%d started; last abort: %s)", l.inst, l.attempts, l.lastAbort)})
		l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
	case !d.Usable() && d.Status != ondisk.RecordNewer:
		// Cannot tell: try again; not acting meanwhile.
		l.read(ReadLeader, stepResume, now.Add(l.backoff()))
	default:
		l.handOverLost(now, "the leader record "+describeDecoded(d))
	}
}

func (l *Lease) handOverLost(now time.Time, why string) {
	l.emit(Event{Kind: HandOverFailed, At: now, Epoch: l.epoch, Owner: l.hoTarget, Detail: why})
	l.emit(Event{Kind: Lost, At: now, Epoch: l.epoch, Owner: l.cfg.Self, Detail: why})
	l.afterTenure(now)
}

// follow: a follower's periodic read.
func (l *Lease) follow(now time.Time) {
	c := l.current()
	if c.released && c.successor.Same(l.cfg.Self) && c.successor.Generation == l.cfg.Self.Generation {
		// We are the named successor: take the next epoch.
		l.want = max(l.want, wantTry)
		l.role = Acquiring
		l.decide(now)
		return
	}
	l.read(ReadLeader, stepLeader, now.Add(l.cfg.Timing.Interval))
}
