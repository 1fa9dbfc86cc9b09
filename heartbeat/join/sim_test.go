package join_test

import (
	"container/heap"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// A discrete-event simulation of hosts joining one slot region, on the
// simulation's own clock (a time.Duration from its origin).
//
// The storage model is the one the protocol assumes: every I/O that
// succeeds completes within io_timeout of its issue; a write takes effect
// (lands) at one instant between its issue and its return, or not at all;
// a read samples each slot at its own instant between its issue and its
// return, and a sector being written during the read may read torn
// (corrupt). A write that fails may have landed (before it returned) or
// not.
//
// A host that has joined becomes a member: it renews its slot every
// interval (state live, sequence + 1) and, after each renewal, reads its
// slot back, as package heartbeat does. Pre-existing members renew from
// the start.
//
// Each joiner has its own clocks (simHost.origin, rawPPM, slewPPM): the
// protocol's instants come from its raw clock, drifting up to ±500 ppm, and
// its waits end when its raw clock reaches the deadline, though its timers
// run on a clock slewed up to ±100 000 ppm.
//
// Invariants checked:
//   - no joiner issues a read before its Action's NotBefore on its own raw
//     clock;
//   - no write of any host other than the member owning a slot ever lands
//     in that slot while the member owns it (one writer per sector), and a
//     member's read of its own slot always shows its own record;
//   - no two members (joined, or there from the start) own the same slot
//     or bear the same name;
//   - every joiner ends Joined or Failed.
type sim struct {
	p      timing.Params
	r      *rand.Rand
	now    time.Duration
	q      eventQueue
	seq    int
	slots  [][]version // per slot, in landing order
	hosts  []*simHost
	owner  []*simHost // member owning each slot
	errs   []string
	st     simStats
	end    time.Duration // members stop renewing after this, once every joiner is done
	tear   int           // percent of reads of a sector being written that read torn
	ioFail int           // percent of joiner I/O that fails
	slowIO int           // percent of joiner I/O that takes up to io_timeout
	late   int           // percent of claim writes the driver issues late (up to 1.5 × io_timeout)
	trace  func(string)  // if set, receives a line per step
	// naiveTimers makes joiners wait on their slewed clock alone, as a
	// driver on Go's timers without re-reading the raw clock would (the
	// code before safeclock): a test shows the simulation catches it.
	naiveTimers bool
}

type version struct {
	at time.Duration
	d  ondisk.Decoded
}

type simHost struct {
	id   int
	name string
	cfg  join.Config
	j    *join.Joiner // nil for a pre-existing member, and before start
	// joiner is false for a pre-existing member.
	joiner bool

	// the I/O in flight
	busy   bool
	op     join.Kind
	issued time.Duration
	fail   bool

	start    time.Duration
	done     bool
	reset    bool // reset by its watchdog before it joined
	joined   bool
	member   bool
	slot     int
	rec      ondisk.Slot
	err      error
	ownSince time.Duration

	// The host's clocks. The protocol sees its raw clock
	// (CLOCK_MONOTONIC_RAW): origin + true time × (1 + rawPPM/1e6), with
	// rawPPM within ±500 (the oscillator). Its timers run on
	// CLOCK_MONOTONIC, slewed by NTP by slewPPM (within ±100 000, the
	// kernel's maximum) relative to the raw clock; the driver re-reads the
	// raw clock when one fires (safeclock.SleepUntil).
	origin          time.Time
	rawPPM, slewPPM float64
}

// clock is the host's raw clock at true time t.
func (h *simHost) clock(t time.Duration) time.Time {
	return h.origin.Add(time.Duration(float64(t) * (1 + h.rawPPM/1e6)))
}

// wakeAt is the true time at which a wait from now until nb on the host's
// raw clock ends: safeclock.SleepUntil's loop (timers of nine tenths of
// what is left, down to 1 ms, on the slewed clock, then a re-read), or with
// naive timers one timer for all of it.
func (s *sim) wakeAt(h *simHost, nb time.Time) time.Duration {
	monoRate := (1 + h.rawPPM/1e6) * (1 + h.slewPPM/1e6) // CLOCK_MONOTONIC per true second
	t := s.now
	for i := 0; ; i++ {
		if i == 10_000 {
			// Nine tenths at a time, a wait ends in well under 100 steps; a
			// host whose clock has no origin near the protocol's instants
			// would loop here for ever.
			panic(fmt.Sprintf("%s: a wait until %v from %v on its raw clock does not end (origin %v)", h.name, nb, h.clock(s.now), h.origin))
		}
		left := nb.Sub(h.clock(t))
		if left <= 0 {
			return t
		}
		c := left
		if !s.naiveTimers && left > time.Millisecond {
			c = max(left-left/10, time.Millisecond)
		}
		t += max(time.Duration(float64(c)/monoRate), 1)
		if s.naiveTimers {
			return t
		}
	}
}

type simStats struct {
	seeds, joiners, joined, fastJoins, nameInUse, claimingInUse, noFree, maxAttempts, readErrs, watchBad, other int
	claims, deadlines, writeErrs, readFails, torn, resets                                                       int
	joinTime                                                                                                    []time.Duration
}

func (s *simStats) add(o simStats) {
	s.seeds += o.seeds
	s.joiners += o.joiners
	s.joined += o.joined
	s.fastJoins += o.fastJoins
	s.nameInUse += o.nameInUse
	s.claimingInUse += o.claimingInUse
	s.noFree += o.noFree
	s.maxAttempts += o.maxAttempts
	s.readErrs += o.readErrs
	s.watchBad += o.watchBad
	s.other += o.other
	s.deadlines += o.deadlines
	s.writeErrs += o.writeErrs
	s.readFails += o.readFails
	s.torn += o.torn
	s.claims += o.claims
	s.resets += o.resets
	s.joinTime = append(s.joinTime, o.joinTime...)
}

func (s simStats) String() string {
	sort.Slice(s.joinTime, func(a, b int) bool { return s.joinTime[a] < s.joinTime[b] })
	med, hi := time.Duration(0), time.Duration(0)
	if n := len(s.joinTime); n > 0 {
		med, hi = s.joinTime[n/2], s.joinTime[n-1]
	}
	return fmt.Sprintf("%d seeds, %d joiners: %d joined (%d by the fast path; join time median %v, max %v); failed: "+
		"%d name in use (%d claimed at the same moment), %d no free slot, %d out of attempts, %d read errors, %d unreadable same-name slot, %d other, %d reset by their watchdog; "+
		"%d claims written, %d claim deadlines missed, %d claim writes failed, %d reads failed, %d torn sectors read",
		s.seeds, s.joiners, s.joined, s.fastJoins, med.Round(time.Millisecond), hi.Round(time.Millisecond),
		s.nameInUse, s.claimingInUse, s.noFree, s.maxAttempts, s.readErrs, s.watchBad, s.other, s.resets,
		s.claims, s.deadlines, s.writeErrs, s.readFails, s.torn)
}

type event struct {
	at  time.Duration
	seq int
	fn  func()
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(a, b int) bool {
	if q[a].at != q[b].at {
		return q[a].at < q[b].at
	}
	return q[a].seq < q[b].seq
}
func (q eventQueue) Swap(a, b int) { q[a], q[b] = q[b], q[a] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func newSim(p timing.Params, r *rand.Rand, nslots int) *sim {
	s := &sim{p: p, r: r, slots: make([][]version, nslots), owner: make([]*simHost, nslots),
		end: 1 << 62, tear: 20, ioFail: 5, slowIO: 15, late: 3}
	for i := range s.slots {
		s.slots[i] = []version{{at: -1 << 62, d: ondisk.Decoded{Index: i, Status: ondisk.SlotUnused}}}
	}
	return s
}

func (s *sim) tracef(format string, a ...any) {
	if s.trace != nil {
		s.trace(fmt.Sprintf("%12v ", s.now) + fmt.Sprintf(format, a...))
	}
}

func (s *sim) fail(format string, a ...any) {
	s.errs = append(s.errs, fmt.Sprintf("at %v: ", s.now)+fmt.Sprintf(format, a...))
}

func (s *sim) at(t time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.q, event{at: t, seq: s.seq, fn: fn})
}

func (s *sim) run(limit time.Duration) {
	for s.q.Len() > 0 && s.q[0].at <= limit {
		e := heap.Pop(&s.q).(event)
		if e.at > s.now {
			s.now = e.at
		}
		e.fn()
	}
}

func (s *sim) dur(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.r.Int64N(int64(hi-lo)+1))
}

// ppm draws a clock rate error within ±bound, at either extreme a third of
// the time each.
func (s *sim) ppm(bound float64) float64 {
	switch s.r.IntN(3) {
	case 0:
		return -bound
	case 1:
		return bound
	}
	return (s.r.Float64()*2 - 1) * bound
}

// latency of one joiner I/O: at most io_timeout.
func (s *sim) latency() time.Duration {
	iot := s.p.IOTimeout
	if s.r.IntN(100) < s.slowIO {
		return s.dur(iot/5, iot)
	}
	return s.dur(0, iot/5)
}

// preset writes a record (or a decode status) into slot i before the
// simulation starts, at time at (<= 0).
func (s *sim) preset(i int, at time.Duration, d ondisk.Decoded) {
	d.Index = i
	s.slots[i] = append(s.slots[i], version{at: at, d: d})
}

// land makes a write of host w take effect in slot i now.
func (s *sim) land(w *simHost, i int, rec ondisk.Slot) {
	if s.trace != nil {
		s.tracef("%s: lands in slot %d: %s", w.name, i, brief(ondisk.Decoded{Slot: rec, Status: ondisk.SlotOK}))
	}
	if o := s.owner[i]; o != nil && o != w {
		s.fail("%s's write (generation %d, state %v) landed in slot %d, owned by member %s since %v",
			w.name, rec.Generation, rec.State, i, o.name, o.ownSince)
	}
	s.slots[i] = append(s.slots[i], version{at: s.now, d: ondisk.Decoded{Index: i, Slot: rec, Status: ondisk.SlotOK}})
}

// content is what slot i holds at time t.
func (s *sim) content(i int, t time.Duration) ondisk.Decoded {
	vs := s.slots[i]
	k := sort.Search(len(vs), func(k int) bool { return vs[k].at > t }) - 1
	return vs[k].d
}

// sample is what a read issued at issued and returning now shows.
func (s *sim) sample(issued time.Duration) []ondisk.Decoded {
	view := make([]ondisk.Decoded, len(s.slots))
	for i := range s.slots {
		view[i] = s.content(i, s.dur(issued, s.now))
		vs := s.slots[i]
		if n := len(vs); vs[n-1].at >= issued && s.r.IntN(100) < s.tear {
			view[i] = ondisk.Decoded{Index: i, Status: ondisk.SlotCorrupt, Reason: "torn"}
			s.st.torn++
		}
	}
	return view
}

var errSimIO = errors.New("simulated I/O error")

// addJoiner starts a joiner at start. If resetAt is not zero, its watchdog
// resets its machine then, unless it has joined: a daemon restarted in the
// same boot has until the watchdog fires, renewal_fail + watchdog after
// the last renewal of its earlier incarnation, to join and renew; past
// that, the machine is reset (and comes back with another boot id).
func (s *sim) addJoiner(cfg join.Config, start, resetAt time.Duration) *simHost {
	h := &simHost{id: len(s.hosts), name: cfg.Self.Name, cfg: cfg, start: start, slot: -1, joiner: true,
		origin: t0.Add(time.Duration(s.r.Int64N(int64(time.Hour)))), rawPPM: s.ppm(500), slewPPM: s.ppm(100_000)}
	s.hosts = append(s.hosts, h)
	s.at(start, func() {
		h.j = join.New(cfg, h.clock(s.now))
		s.schedule(h)
	})
	if resetAt != 0 {
		s.at(resetAt, func() {
			if !h.done {
				h.done, h.reset = true, true
				s.st.resets++
				s.tracef("%s: reset by its watchdog", h.name)
				s.finished()
			}
		})
	}
	return h
}

// addMember makes a member that owns slot i from the start and renews it.
func (s *sim) addMember(i int, rec ondisk.Slot, first time.Duration) *simHost {
	h := &simHost{id: len(s.hosts), name: rec.HostName, joined: true, done: true, slot: i, rec: rec}
	s.hosts = append(s.hosts, h)
	s.preset(i, first-s.p.Interval, ondisk.Decoded{Slot: rec, Status: ondisk.SlotOK})
	s.becomeMember(h, first)
	return h
}

// schedule performs the joiner's next action when it is due.
func (s *sim) schedule(h *simHost) {
	if h.reset {
		return
	}
	a := h.j.Next()
	switch a.Kind {
	case join.Read:
		t := s.wakeAt(h, a.NotBefore) + s.dur(0, 20*time.Millisecond)
		s.at(t, func() {
			// The Action's contract: no read before NotBefore on the
			// joiner's own (raw) clock, whatever its timers' slew.
			if now := h.clock(s.now); now.Before(a.NotBefore) {
				s.fail("%s reads %v before its NotBefore on its raw clock (timers slewed %+.0f ppm)",
					h.name, a.NotBefore.Sub(now), h.slewPPM)
			}
			s.issue(h)
			s.at(s.now+s.latency(), func() { s.complete(h) })
		})
	case join.Write:
		t := s.now + s.dur(0, 20*time.Millisecond)
		if s.r.IntN(100) < s.late {
			t = s.now + s.dur(0, s.p.IOTimeout*3/2)
		}
		s.at(t, func() {
			if !s.issue(h) {
				return
			}
			lat := s.latency()
			if !h.fail || s.r.IntN(2) == 0 {
				landAt, slot, rec := s.now+s.dur(0, lat), a.Slot, a.Record
				s.at(landAt, func() { s.land(h, slot, rec) })
			}
			s.at(s.now+lat, func() { s.complete(h) })
		})
	case join.Joined:
		s.joined(h, a)
	case join.Failed:
		s.failed(h, a.Err)
	}
}

// issue starts the joiner's next I/O now. It returns false if the write
// is past its deadline (the driver then reports ErrDeadline).
func (s *sim) issue(h *simHost) bool {
	if h.reset {
		return false
	}
	a := h.j.Next()
	h.busy, h.op, h.issued, h.fail = true, a.Kind, s.now, s.r.IntN(100) < s.ioFail
	if a.Kind == join.Write && h.clock(s.now).After(a.Deadline) {
		h.busy = false
		s.st.deadlines++
		h.j.WriteDone(h.clock(s.now), h.clock(s.now), join.ErrDeadline)
		s.schedule(h)
		return false
	}
	return true
}

// complete reports the joiner's I/O in flight, returning now.
func (s *sim) complete(h *simHost) {
	if h.reset {
		return
	}
	h.busy = false
	issued, done := h.clock(h.issued), h.clock(s.now)
	switch h.op {
	case join.Read:
		if h.fail {
			s.st.readFails++
			s.tracef("%s: read issued %v fails", h.name, h.issued)
			h.j.ReadDone(issued, done, nil, errSimIO)
		} else {
			view := s.sample(h.issued)
			if s.trace != nil {
				var b []string
				for _, d := range view {
					b = append(b, brief(d))
				}
				s.tracef("%s: read issued %v: %s", h.name, h.issued, strings.Join(b, " | "))
			}
			h.j.ReadDone(issued, done, view, nil)
		}
	case join.Write:
		var err error
		if h.fail {
			s.st.writeErrs++
			err = errSimIO
		}
		s.tracef("%s: write issued %v returns err=%v", h.name, h.issued, err)
		h.j.WriteDone(issued, done, err)
	}
	if s.trace != nil {
		s.tracef("%s: next %s", h.name, briefAction(h, h.j.Next()))
	}
	s.schedule(h)
}

func (s *sim) joined(h *simHost, a join.Action) {
	h.done, h.joined, h.slot, h.rec = true, true, a.Slot, a.Record
	s.st.joined++
	s.st.joinTime = append(s.st.joinTime, s.now-h.start)
	if h.j.Attempts() == 1 && s.now-h.start < s.p.JoinWait() {
		s.st.fastJoins++
	}
	if c := s.content(a.Slot, s.now); c.Status != ondisk.SlotOK || c.Slot.JoinNonce != a.Record.JoinNonce {
		s.fail("%s joined slot %d, which now holds %+v", h.name, a.Slot, c)
	}
	h.rec.State = ondisk.StateLive
	s.becomeMember(h, s.now)
	s.finished()
}

func (s *sim) becomeMember(h *simHost, first time.Duration) {
	for _, o := range s.hosts {
		if o != h && o.member && o.slot == h.slot {
			s.fail("%s and %s both own slot %d", o.name, h.name, h.slot)
		}
		if o != h && o.member && o.name == h.name {
			s.fail("%s is a member twice: slots %d and %d", h.name, o.slot, h.slot)
		}
	}
	h.member, h.ownSince = true, s.now
	s.owner[h.slot] = h
	s.at(first, func() { s.renew(h) })
}

// renew is one round of a member: write its slot, read it back.
func (s *sim) renew(h *simHost) {
	if s.now > s.end {
		return
	}
	start := s.now
	h.rec.Sequence++
	rec := h.rec
	lat := s.dur(0, s.p.IOTimeout/2)
	s.at(s.now+s.dur(0, lat), func() { s.land(h, h.slot, rec) })
	s.at(s.now+lat, func() {
		issued := s.now
		s.at(s.now+s.dur(0, s.p.IOTimeout/2), func() {
			c := s.content(h.slot, s.dur(issued, s.now))
			if c.Status != ondisk.SlotOK || c.Slot.HostName != h.rec.HostName || c.Slot.Generation != h.rec.Generation ||
				c.Slot.JoinNonce != h.rec.JoinNonce {
				s.fail("member %s reads its slot %d back and finds %+v", h.name, h.slot, c)
			}
			s.at(max(s.now, start+s.p.Interval), func() { s.renew(h) })
		})
	})
}

func (s *sim) failed(h *simHost, err error) {
	h.done, h.err = true, err
	var inUse *join.NameInUseError
	var noFree *join.NoFreeSlotError
	switch msg := err.Error(); {
	case errors.As(err, &inUse):
		s.st.nameInUse++
		if inUse.Claiming {
			s.st.claimingInUse++
		}
	case errors.As(err, &noFree):
		s.st.noFree++
	case strings.Contains(msg, "gave up joining after"):
		s.st.maxAttempts++
	case strings.Contains(msg, "cannot read the heartbeat area"):
		s.st.readErrs++
	case strings.Contains(msg, "hbfence dump"):
		s.st.watchBad++
	default:
		s.st.other++
	}
	s.finished()
}

// finished ends the members' renewals 2 × host_dead after the last joiner
// is done: long enough for any late write to land.
func (s *sim) finished() {
	for _, h := range s.hosts {
		if !h.done {
			return
		}
	}
	s.end = s.now + 2*s.p.HostDead
}

func (s *sim) check() {
	for _, h := range s.hosts {
		if !h.joiner {
			continue
		}
		s.st.joiners++
		if h.j == nil {
			s.fail("joiner %s never started", h.name)
			continue
		}
		s.st.claims += h.j.Attempts()
		if !h.done {
			s.fail("joiner %s (machine %v) never finished; next action %+v", h.name, h.cfg.Self.MachineID, h.j.Next())
		}
	}
}

func brief(d ondisk.Decoded) string {
	if d.Status != ondisk.SlotOK {
		return d.Status.String()
	}
	return fmt.Sprintf("%s/m%d/b%d g%d s%d %v n%x", d.Slot.HostName, d.Slot.MachineID[1], d.Slot.BootID[1],
		d.Slot.Generation, d.Slot.Sequence, d.Slot.State, d.Slot.JoinNonce%0x10000)
}

func briefAction(h *simHost, a join.Action) string { // times on h's raw clock, from its origin
	switch a.Kind {
	case join.Read:
		return fmt.Sprintf("read not before %v", a.NotBefore.Sub(h.origin))
	case join.Write:
		return fmt.Sprintf("write slot %d %s deadline %v", a.Slot, brief(ondisk.Decoded{Slot: a.Record, Status: ondisk.SlotOK}), a.Deadline.Sub(h.origin))
	case join.Joined:
		return fmt.Sprintf("joined slot %d", a.Slot)
	}
	return fmt.Sprintf("failed: %v", a.Err)
}
