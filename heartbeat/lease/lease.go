package lease

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

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
	stepOwnCheck                // waiting: read the ballots to check this host's own block
	stepOwnRepair               // waiting: write back this host's own block, read corrupt
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
	// intended is the last ballot this incarnation set out to write into
	// its own block (intendedAny: there was one): what the block holds,
	// or an earlier write of ours, once no write of ours can still land.
	intended    ondisk.Ballot
	intendedAny bool
	// waits counts the leader reads of an acquisition that waits: every
	// ownCheckEvery-th is a ballot read that checks this host's own block.
	waits       int
	mayBeChosen bool // we wrote phase 2 with our own value in inst
	attempts    int  // ballots started in inst
	aborts      int  // consecutive aborts
	readFails   int  // consecutive failed I/Os
	lastAbort   string
	waiting     string // why an acquisition waits
	lastErr     string

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
	// The unreadable ballot blocks last reported (Unreadable).
	lastBadBlock string

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
