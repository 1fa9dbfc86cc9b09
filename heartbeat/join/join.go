package join

import (
	"errors"
	"fmt"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// Identity is who is joining.
type Identity struct {
	Name      string
	MachineID ondisk.UUID // /etc/machine-id, or the configured override
	BootID    ondisk.UUID
	Agent     string
}

// Config parameterises a join.
type Config struct {
	Self   Identity
	Pool   ondisk.UUID
	Timing timing.Params
	// Nonce returns a fresh random number for each claim.
	Nonce func() uint64
	// Jitter returns a random duration in [0, max), to spread the retries
	// of hosts that lost a race to one another.
	Jitter func(max time.Duration) time.Duration
	// MaxAttempts bounds the claims a join makes before it gives up.
	MaxAttempts int
}

// Kind is what the driver must do next.
type Kind int

const (
	// Read: read the whole slot region, not before NotBefore, and report
	// with ReadDone.
	Read Kind = iota
	// Write: write Record into Slot, and report with WriteDone. The write
	// must be issued no later than Deadline; if that has passed, the
	// driver reports ErrDeadline instead of writing.
	Write
	// Joined: the join is proven; Record is the claim that won, at Slot.
	Joined
	// Failed: the join gave up; Err says why.
	Failed
)

func (k Kind) String() string {
	return [...]string{"read", "write", "joined", "failed"}[k]
}

// Action is the next step of a join.
type Action struct {
	Kind      Kind
	NotBefore time.Time
	Deadline  time.Time
	Slot      int
	Record    ondisk.Slot
	Err       error
}

// ErrDeadline is what the driver reports when it could not issue a claim
// write before the action's Deadline.
var ErrDeadline = errors.New("claim write not issued before its deadline")

// NameInUseError: another host with this name is alive on the storage.
type NameInUseError struct {
	Name       string
	Slot       int
	Generation uint64
	MachineID  ondisk.UUID
	Silence    time.Duration // how long ago its slot last changed, as seen here
}

func (e *NameInUseError) Error() string {
	return fmt.Sprintf("host name %q is in use by a live host: slot %d (generation %d, machine %s) changed %v ago; "+
		"stop hbfence on that host, or give this host another [host] name",
		e.Name, e.Slot, e.Generation, e.MachineID, e.Silence.Round(time.Millisecond))
}

// NoFreeSlotError: every slot is used by another host.
type NoFreeSlotError struct{ Slots int }

func (e *NoFreeSlotError) Error() string {
	return fmt.Sprintf("no free slot: all %d slots hold other hosts that have not left; "+
		"re-format the area with more slots (hbfence init --slots) when the pool is stopped", e.Slots)
}

type phase int

const (
	scanning phase = iota // reading to choose a slot
	watching              // our name is in a slot of another machine: wait for it to die or change
	claiming              // a claim is to be written
	waiting               // claim written: wait JoinWait, then read it back
	finished
)

// Joiner is the join protocol as a pure state machine: it takes the
// results of reads and writes with the times they were issued and
// returned, and says what to do next. See doc.go for the protocol and why
// it is safe.
type Joiner struct {
	cfg      Config
	phase    phase
	attempts int
	next     Action

	// The read the current claim is based on was issued at readIssued:
	// the claim must be written within io_timeout of it.
	readIssued time.Time
	// fast is true when the slot is this machine's own (a restart of the
	// daemon): no other host may take it as free, so no wait is needed.
	fast bool
	// claimed is the claim last written.
	claimed ondisk.Slot
	// watch judges the liveness of a slot that bears our name.
	watch     *liveness.Tracker
	watchSlot int
	// failingSince is when reads began to fail, zero while they succeed.
	failingSince time.Time
}

// New starts a join at now.
func New(cfg Config, now time.Time) *Joiner {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	j := &Joiner{cfg: cfg}
	j.next = Action{Kind: Read, NotBefore: now}
	return j
}

// Next is the action the driver must perform now.
func (j *Joiner) Next() Action { return j.next }

// Attempts is the number of claims written so far.
func (j *Joiner) Attempts() int { return j.attempts }

// ReadDone reports the read that Next asked for.
func (j *Joiner) ReadDone(issued, done time.Time, slots []ondisk.Decoded, err error) {
	if j.next.Kind != Read {
		return
	}
	if err != nil {
		if j.failingSince.IsZero() {
			j.failingSince = issued
		}
		if done.Sub(j.failingSince) > j.cfg.Timing.RenewalFail {
			j.fail(fmt.Errorf("cannot read the heartbeat area for %v: %w", done.Sub(j.failingSince).Round(time.Millisecond), err))
			return
		}
		j.next = Action{Kind: Read, NotBefore: done.Add(j.cfg.Timing.Interval)}
		return
	}
	j.failingSince = time.Time{}
	switch j.phase {
	case scanning:
		j.scan(issued, done, slots)
	case watching:
		j.watchRead(issued, done, slots)
	case waiting:
		j.verify(done, slots)
	}
}

// WriteDone reports the claim write that Next asked for.
func (j *Joiner) WriteDone(issued, done time.Time, err error) {
	if j.next.Kind != Write {
		return
	}
	if err != nil {
		// The claim may still land later; whoever wins the slot sees it
		// and the loser's own-slot check stops it. Start over.
		j.retry(done)
		return
	}
	j.phase = waiting
	if j.fast {
		j.next = Action{Kind: Read, NotBefore: done}
		return
	}
	j.next = Action{Kind: Read, NotBefore: done.Add(j.cfg.Timing.JoinWait())}
}

func (j *Joiner) scan(issued, done time.Time, slots []ondisk.Decoded) {
	mine := -1
	for _, d := range slots {
		if d.Status != ondisk.SlotOK || d.Slot.HostName != j.cfg.Self.Name {
			continue
		}
		// Prefer this machine's own slot, then the newest generation.
		if mine < 0 || better(d.Slot, slots[mine].Slot, j.cfg.Self.MachineID) {
			mine = d.Index
		}
	}
	if mine >= 0 {
		s := slots[mine].Slot
		switch {
		case s.State == ondisk.StateLeft:
			j.claim(issued, slots[mine], false)
		case !j.cfg.Self.MachineID.IsZero() && s.MachineID == j.cfg.Self.MachineID:
			j.claim(issued, slots[mine], true)
		default:
			j.phase = watching
			j.watchSlot = mine
			j.watch = liveness.New(j.cfg.Timing)
			j.watch.Observe(issued, done, slots[mine:mine+1])
			j.next = Action{Kind: Read, NotBefore: issued.Add(j.cfg.Timing.Interval)}
		}
		return
	}
	for _, d := range slots {
		if d.Status == ondisk.SlotUnused || (d.Status == ondisk.SlotOK && d.Slot.State == ondisk.StateLeft) {
			j.claim(issued, d, false)
			return
		}
	}
	j.fail(&NoFreeSlotError{Slots: len(slots)})
}

func better(a, b ondisk.Slot, machine ondisk.UUID) bool {
	am, bm := a.MachineID == machine, b.MachineID == machine
	if am != bm {
		return am
	}
	return a.Generation > b.Generation
}

func (j *Joiner) watchRead(issued, done time.Time, slots []ondisk.Decoded) {
	d := slots[j.watchSlot]
	j.watch.Observe(issued, done, slots[j.watchSlot:j.watchSlot+1])
	p, _ := j.watch.Peer(j.watchSlot)
	if d.Status == ondisk.SlotOK && d.Slot.HostName != j.cfg.Self.Name {
		// Someone else took the slot: our name is free again.
		j.phase = scanning
		j.scan(issued, done, slots)
		return
	}
	switch p.State {
	case liveness.Live, liveness.Suspect:
		j.fail(&NameInUseError{Name: j.cfg.Self.Name, Slot: j.watchSlot, Generation: p.Record.Generation,
			MachineID: p.Record.MachineID, Silence: p.Age(done)})
	case liveness.Dead, liveness.Left:
		if d.Status != ondisk.SlotOK {
			j.fail(fmt.Errorf("slot %d, which bore host name %q, now reads %s (%s): refusing to claim it", j.watchSlot, j.cfg.Self.Name, d.Status, d.Reason))
			return
		}
		j.claim(issued, d, false)
	default:
		j.next = Action{Kind: Read, NotBefore: issued.Add(j.cfg.Timing.Interval)}
	}
}

func (j *Joiner) claim(readIssued time.Time, d ondisk.Decoded, fast bool) {
	gen := uint64(1)
	if d.Status == ondisk.SlotOK {
		gen = d.Slot.Generation + 1
	}
	rec := ondisk.Slot{
		Version:    ondisk.SlotVersion,
		State:      ondisk.StateJoining,
		Index:      uint32(d.Index),
		PoolUUID:   j.cfg.Pool,
		Generation: gen,
		Sequence:   1,
		JoinNonce:  j.cfg.Nonce(),
		MachineID:  j.cfg.Self.MachineID,
		BootID:     j.cfg.Self.BootID,
		Agent:      j.cfg.Self.Agent,
		HostName:   j.cfg.Self.Name,
	}
	j.attempts++
	j.phase = claiming
	j.fast = fast
	j.readIssued = readIssued
	j.claimed = rec
	j.next = Action{Kind: Write, Slot: d.Index, Record: rec, Deadline: readIssued.Add(j.cfg.Timing.IOTimeout)}
}

func (j *Joiner) verify(done time.Time, slots []ondisk.Decoded) {
	want := j.claimed
	d := slots[want.Index]
	if d.Status == ondisk.SlotOK && d.Slot.HostName == want.HostName &&
		d.Slot.Generation == want.Generation && d.Slot.JoinNonce == want.JoinNonce {
		j.phase = finished
		j.next = Action{Kind: Joined, Slot: int(want.Index), Record: d.Slot}
		return
	}
	j.retry(done)
}

func (j *Joiner) retry(now time.Time) {
	if j.attempts >= j.cfg.MaxAttempts {
		j.fail(fmt.Errorf("lost the race for a slot %d times in a row; other hosts are joining at the same moment, or a slot is being written by two hosts", j.attempts))
		return
	}
	j.phase = scanning
	iv := j.cfg.Timing.Interval
	j.next = Action{Kind: Read, NotBefore: now.Add(iv + j.cfg.Jitter(2*iv))}
}

func (j *Joiner) fail(err error) {
	j.phase = finished
	j.next = Action{Kind: Failed, Err: err}
}
