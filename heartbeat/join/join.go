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
	// Flags are written into every record (ondisk.FlagNoWatchdog).
	Flags uint32
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
	// The member must issue its first renewal no later than Deadline:
	// past it, a host of the same name watching the slot may judge the
	// claim dead (silent for host_dead) and claim the slot.
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

// NameInUseError: another host with this name is alive on the storage, or
// is claiming a slot with it at the same moment (Claiming).
type NameInUseError struct {
	Name       string
	Slot       int
	Generation uint64
	MachineID  ondisk.UUID
	Silence    time.Duration // how long ago its slot last changed, as seen here
	// Claiming: the record in Slot appeared while this host's own claim
	// was being proven: two hosts configured with the same name are
	// joining at once. Neither joins.
	Claiming bool
}

func (e *NameInUseError) Error() string {
	if e.Claiming {
		return fmt.Sprintf("host name %q is being claimed at the same moment by another machine: slot %d (generation %d, machine %s); "+
			"two hosts are configured with the same name: give one of them another [host] name",
			e.Name, e.Slot, e.Generation, e.MachineID)
	}
	return fmt.Sprintf("host name %q is in use by a live host: slot %d (generation %d, machine %s) changed %v ago; "+
		"stop hbfence on that host, or give this host another [host] name",
		e.Name, e.Slot, e.Generation, e.MachineID, e.Silence.Round(time.Millisecond))
}

// NoFreeSlotError: every slot is used by another host, or unreadable.
type NoFreeSlotError struct {
	Slots int
	// Unreadable is how many of them do not read as a valid record of
	// this pool (corrupt, foreign, misplaced or of a newer version).
	Unreadable int
}

func (e *NoFreeSlotError) Error() string {
	return fmt.Sprintf("no free slot: of %d slots, %d hold other hosts that have not left and %d are unreadable (see hbfence dump); "+
		"re-format the area with more slots (hbfence init --slots) when the pool is stopped", e.Slots, e.Slots-e.Unreadable, e.Unreadable)
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
	// fast is true when the slot is this machine's own, joined by an
	// earlier incarnation of this daemon in this boot (a restart of the
	// daemon): no other host may take it as free, so no wait is needed.
	fast bool
	// claimed is the claim last written; readBackAt is the earliest issue
	// time of a read that can prove it (JoinWait after the write
	// returned).
	claimed    ondisk.Slot
	readBackAt time.Time
	// renewBy is when the member must renew the claim, if it joins:
	// host_dead after the claim write was issued, less io_timeout for the
	// renewal to land and the margin.
	renewBy time.Time
	// sameName holds the records bearing our name in other slots, as the
	// read the claim is based on showed them; nonces are the join nonces
	// of every claim this Joiner wrote.
	sameName []ondisk.Slot
	nonces   []uint64
	// watch judges the liveness of a slot that bears our name; watchBad
	// is when it began to read invalid, zero while it reads valid.
	watch     *liveness.Tracker
	watchSlot int
	watchBad  time.Time
	// failingSince is when reads began to fail, zero while they succeed.
	failingSince time.Time
	// corruptRun is, per slot, how many reads in a row have shown it
	// corrupt.
	corruptRun []int
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
			j.fail(fmt.Errorf("cannot read the heartbeat area for %v, longer than renewal_fail %v: %w; "+
				"check that the shared storage is reachable from this host ([heartbeat] path)",
				done.Sub(j.failingSince).Round(time.Millisecond), j.cfg.Timing.RenewalFail, err))
			return
		}
		j.next = Action{Kind: Read, NotBefore: done.Add(j.cfg.Timing.Interval)}
		return
	}
	j.failingSince = time.Time{}
	for len(j.corruptRun) < len(slots) {
		j.corruptRun = append(j.corruptRun, 0)
	}
	for _, d := range slots {
		if d.Status == ondisk.SlotCorrupt {
			j.corruptRun[d.Index]++
		} else {
			j.corruptRun[d.Index] = 0
		}
	}
	switch j.phase {
	case scanning:
		j.scan(issued, done, slots)
	case watching:
		j.watchRead(issued, done, slots)
	case waiting:
		j.verify(issued, done, slots)
	}
}

// WriteDone reports the claim write that Next asked for.
func (j *Joiner) WriteDone(issued, done time.Time, err error) {
	if j.next.Kind != Write {
		return
	}
	// A write issued after its deadline, or slower than io_timeout, may
	// have landed after a competitor's read-back: it proves nothing,
	// whatever the driver says.
	if err == nil && issued.After(j.next.Deadline) {
		err = fmt.Errorf("issued %v after its deadline", issued.Sub(j.next.Deadline).Round(time.Millisecond))
	}
	if err == nil && done.Sub(issued) > j.cfg.Timing.IOTimeout {
		err = fmt.Errorf("took %v, more than io_timeout %v", done.Sub(issued).Round(time.Millisecond), j.cfg.Timing.IOTimeout)
	}
	if err != nil {
		// The claim may still land later; whoever wins the slot sees it
		// and the loser's own-slot check stops it. Start over.
		j.retry(done, fmt.Errorf("the claim write to slot %d failed: %w", j.claimed.Index, err))
		return
	}
	j.phase = waiting
	t := j.cfg.Timing
	j.renewBy = issued.Add(t.HostDead - t.IOTimeout - t.Margin())
	j.readBackAt = done
	if !j.fast {
		j.readBackAt = done.Add(j.cfg.Timing.JoinWait())
	}
	j.next = Action{Kind: Read, NotBefore: j.readBackAt}
}

func (j *Joiner) scan(issued, done time.Time, slots []ondisk.Decoded) {
	// The records bearing our name: this machine's own (not left), the
	// others' not left, and those left.
	own, other, left := -1, -1, -1
	for _, d := range slots {
		if d.Status != ondisk.SlotOK || d.Slot.HostName != j.cfg.Self.Name {
			continue
		}
		s := d.Slot
		switch {
		case s.State == ondisk.StateLeft:
			if left < 0 || better(s, slots[left].Slot, j.cfg.Self.MachineID) {
				left = d.Index
			}
		case j.ownMachine(s):
			if own < 0 || s.Generation > slots[own].Slot.Generation {
				own = d.Index
			}
		default:
			if other < 0 || s.Generation > slots[other].Slot.Generation {
				other = d.Index
			}
		}
	}
	switch {
	case own >= 0 && j.fastPath(slots[own].Slot):
		// A restart of this daemon in this boot, over the slot its
		// earlier incarnation joined: back at once, before the
		// watchdog fires. A record of our name from another machine
		// cannot be a host that joined while our incarnation held the
		// name (it would have found the name in use); and no slot
		// that reads corrupt can hide one.
		j.claim(issued, slots, own, true)
	case other >= 0:
		// Another machine's record of our name may be live: it is
		// watched before anything of ours is claimed.
		j.phase = watching
		j.watchSlot = other
		j.watchBad = time.Time{}
		j.watch = liveness.New(j.cfg.Timing)
		j.watch.Observe(issued, done, slots[other:other+1])
		j.next = Action{Kind: Read, NotBefore: issued.Add(j.cfg.Timing.Interval)}
	case j.mayBeTorn(slots, -1):
		j.next = Action{Kind: Read, NotBefore: issued.Add(j.cfg.Timing.Interval)}
	case own >= 0:
		j.claim(issued, slots, own, false)
	case left >= 0:
		j.claim(issued, slots, left, false)
	default:
		for _, d := range slots {
			if d.Status == ondisk.SlotUnused || (d.Status == ondisk.SlotOK && d.Slot.State == ondisk.StateLeft) {
				j.claim(issued, slots, d.Index, false)
				return
			}
		}
		unreadable := 0
		for _, d := range slots {
			if d.Status != ondisk.SlotOK {
				unreadable++
			}
		}
		j.fail(&NoFreeSlotError{Slots: len(slots), Unreadable: unreadable})
	}
}

// ownMachine reports whether s was written by this machine.
func (j *Joiner) ownMachine(s ondisk.Slot) bool {
	return !j.cfg.Self.MachineID.IsZero() && s.MachineID == j.cfg.Self.MachineID
}

// fastPath reports whether s, a record of our name, may be claimed without
// JoinWait: it was written by an earlier incarnation of this daemon, on this
// machine in this boot, after that incarnation had joined (state live or
// leaving). A record in state "joining" may be a claim never proven (our
// own failed write that landed all the same), which a competitor that read
// the slot free before it landed may be claiming too. A record of an
// earlier boot may have been silent for host_dead (the machine was reset),
// and a host of the same name on another machine may be claiming it as
// dead; a rebooted host has no guests to adopt in a hurry anyway.
func (j *Joiner) fastPath(s ondisk.Slot) bool {
	return j.ownMachine(s) && (s.State == ondisk.StateLive || s.State == ondisk.StateLeaving) &&
		!j.cfg.Self.BootID.IsZero() && s.BootID == j.cfg.Self.BootID
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
	switch {
	case p.State == liveness.Live || p.State == liveness.Suspect:
		j.fail(&NameInUseError{Name: j.cfg.Self.Name, Slot: j.watchSlot, Generation: p.Record.Generation,
			MachineID: p.Record.MachineID, Silence: p.Age(done)})
		return
	case d.Status != ondisk.SlotOK:
		// Unreadable: no evidence either way. Keep watching, for a
		// while.
		if j.watchBad.IsZero() {
			j.watchBad = issued
		}
		if bad := done.Sub(j.watchBad); bad > j.cfg.Timing.HostDead {
			j.fail(fmt.Errorf("slot %d, which bore host name %q (generation %d, machine %s), has read %s (%s) for %v: "+
				"cannot tell whether that host is alive; inspect the slot with hbfence dump, or give this host another [host] name",
				j.watchSlot, j.cfg.Self.Name, p.Record.Generation, p.Record.MachineID, d.Status, d.Reason, bad.Round(time.Millisecond)))
			return
		}
	case p.State == liveness.Dead || p.State == liveness.Left:
		j.claim(issued, slots, j.watchSlot, false)
		return
	default:
		j.watchBad = time.Time{}
	}
	j.next = Action{Kind: Read, NotBefore: issued.Add(j.cfg.Timing.Interval)}
}

// claim writes a claim on slot i, chosen from slots, the read issued at
// readIssued.
func (j *Joiner) claim(readIssued time.Time, slots []ondisk.Decoded, i int, fast bool) {
	d := slots[i]
	j.sameName = j.sameName[:0]
	for _, o := range slots {
		if o.Index != i && o.Status == ondisk.SlotOK && o.Slot.HostName == j.cfg.Self.Name {
			j.sameName = append(j.sameName, o.Slot)
		}
	}
	gen := uint64(1)
	if d.Status == ondisk.SlotOK {
		gen = d.Slot.Generation + 1
	}
	rec := ondisk.Slot{
		Version:    ondisk.SlotVersion,
		State:      ondisk.StateJoining,
		Index:      uint32(d.Index),
		Flags:      j.cfg.Self.Flags,
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
	j.nonces = append(j.nonces, rec.JoinNonce)
	j.phase = claiming
	j.fast = fast
	j.readIssued = readIssued
	j.claimed = rec
	j.next = Action{Kind: Write, Slot: d.Index, Record: rec, Deadline: readIssued.Add(j.cfg.Timing.IOTimeout)}
}

func (j *Joiner) verify(issued, done time.Time, slots []ondisk.Decoded) {
	if issued.Before(j.readBackAt) {
		// Issued before JoinWait was over: competing claims may not
		// have landed yet. Not a read-back.
		j.next = Action{Kind: Read, NotBefore: j.readBackAt}
		return
	}
	want := j.claimed
	if done.After(j.renewBy) {
		// Too late to renew the claim before a host of our name that
		// watches the slot may judge it dead.
		j.retry(done, fmt.Errorf("the read-back of the claim of slot %d completed %v after the claim was written, too late to renew it within host_dead %v",
			want.Index, done.Sub(j.renewBy.Add(-j.cfg.Timing.HostDead+j.cfg.Timing.IOTimeout+j.cfg.Timing.Margin())).Round(time.Millisecond), j.cfg.Timing.HostDead))
		return
	}
	d := slots[want.Index]
	if d.Status != ondisk.SlotOK || d.Slot.HostName != want.HostName ||
		d.Slot.Generation != want.Generation || d.Slot.JoinNonce != want.JoinNonce {
		j.retry(done, fmt.Errorf("slot %d holds %s instead of our claim", want.Index, describe(d)))
		return
	}
	if !j.fast && j.mayBeTorn(slots, int(want.Index)) {
		j.next = Action{Kind: Read, NotBefore: issued.Add(j.cfg.Timing.Interval)}
		return
	}
	// Our name in another slot, in a record that the read our claim was
	// based on did not show: a host of the same name is joining at the
	// same moment (it read before our claim landed, so its claim landed
	// before this read-back; and it sees ours in its own read-back), or
	// is live and the read our claim was based on missed it.
	for _, o := range slots {
		if o.Index == int(want.Index) || o.Status != ondisk.SlotOK || o.Slot.HostName != want.HostName || j.ours(o.Slot) {
			continue
		}
		known := false
		for _, s := range j.sameName {
			if s.Index == o.Slot.Index && !ondisk.Changed(s, o.Slot) {
				known = true
			}
		}
		if !known {
			j.fail(&NameInUseError{Name: want.HostName, Slot: o.Index, Generation: o.Slot.Generation,
				MachineID: o.Slot.MachineID, Claiming: o.Slot.State == ondisk.StateJoining})
			return
		}
	}
	j.phase = finished
	j.next = Action{Kind: Joined, Slot: int(want.Index), Record: d.Slot, Deadline: j.renewBy}
}

// mayBeTorn reports whether a slot other than skip reads corrupt but has
// not read corrupt at every one of renewal_fail / interval + 1 reads in a
// row. Such a slot may be a torn read of a live host of our name, written
// while we read it: a host writes its slot every interval, so a few reads
// later it reads valid, unless the slot is scribbled (or its host has
// stopped, mid-write).
func (j *Joiner) mayBeTorn(slots []ondisk.Decoded, skip int) bool {
	n := int(j.cfg.Timing.RenewalFail/j.cfg.Timing.Interval) + 1
	for _, o := range slots {
		if o.Index != skip && o.Status == ondisk.SlotCorrupt && j.corruptRun[o.Index] < n {
			return true
		}
	}
	return false
}

// ours reports whether s is one of the claims this Joiner wrote.
func (j *Joiner) ours(s ondisk.Slot) bool {
	for _, n := range j.nonces {
		if s.JoinNonce == n && s.MachineID == j.cfg.Self.MachineID {
			return true
		}
	}
	return false
}

func describe(d ondisk.Decoded) string {
	if d.Status != ondisk.SlotOK {
		return fmt.Sprintf("a record that reads %s (%s)", d.Status, d.Reason)
	}
	return fmt.Sprintf("host %q generation %d (machine %s, state %s)", d.Slot.HostName, d.Slot.Generation, d.Slot.MachineID, d.Slot.State)
}

func (j *Joiner) retry(now time.Time, why error) {
	if j.attempts >= j.cfg.MaxAttempts {
		j.fail(fmt.Errorf("gave up joining after %d claims; the last: %w. Other hosts are joining at the same moment, "+
			"or the storage is failing: start hbfence again once they have joined, or check the storage", j.attempts, why))
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
