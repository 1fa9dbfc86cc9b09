package lease_test

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// A discrete-event simulation of hosts sharing one heartbeat area, each
// running a heartbeat (renew the own slot every interval, read every slot,
// judge liveness with the real liveness.Tracker) and a master lease (the
// real lease.Lease), on the simulation's own clock: a time.Duration from
// its origin, shared by all hosts (clock rates are equal here; the margin
// of the timing rules covers real differences).
//
// Storage model (the model of docs/timing.md and docs/master.md):
//   - every I/O has a delay drawn per I/O; a host's I/Os of one loop are
//     sequential, I/Os of different hosts (and of a host's heartbeat and
//     lease loops) overlap and interleave arbitrarily;
//   - a write that succeeds lands at one instant between its issue and its
//     return; a write that fails may land before it returns, or not at all;
//     a write that times out (delay beyond io_timeout) returns
//     area.ErrTimeout after io_timeout and may still land later, within
//     lease.LateWrite (the watchdog period) of its issue, as area.Mem's stuck
//     writes do;
//   - a read samples each sector at its own instant between its issue and
//     its return, and may read a sector torn (corrupt) while a write to it
//     is in flight.
//
// Hosts crash (and rejoin later as a new generation of their slot, after
// their in-flight writes are resolved), stall (a SIGSTOP-like pause: nothing
// of theirs runs, their I/O in flight completes meanwhile and is reported
// when they continue), leave cleanly (stop the lease, wait until it is
// quiescent, write "left") and rejoin, and a lease that fences (renewals
// lapsed) makes its host restart as a new generation, as the daemon would.
// Masters release, hand over (to live or dead targets) and are asked to
// TryAcquire.
//
// Checked, online and at the end:
//   - every decision any host learnt (Decided, Acquired) agrees per epoch;
//   - the leader record on storage never goes back: (epoch, released) never
//     decreases, and one epoch keeps one owner;
//   - when a leader record of epoch E lands, no host may be acting as
//     master of an older epoch (the fencing token);
//   - no two hosts act as master for overlapping periods (a host acts from a
//     Master answer of yes until the Until it gave, or an answer of no);
//   - liveness: after a calm phase begins (no more faults, crashed and left
//     hosts rejoin, every host runs Acquire) the current master is killed,
//     and some host must act as master within host_dead + 2 × interval +
//     1 s of the kill.
type sim struct {
	p     timing.Params
	r     *rand.Rand
	now   time.Duration
	q     simQueue
	seq   int
	hdr   ondisk.Header
	late  time.Duration // lease.LateWrite
	trace func(string)
	opt   simOptions

	leader  sector[ondisk.LeaderDecoded]
	ballots []sector[ondisk.BallotDecoded]
	slots   []sector[ondisk.Decoded]
	hosts   []*simHost

	// faults (percent of I/O) while chaos is on
	chaos                   bool
	slowPct, failPct, toPct int
	tearPct                 int
	lastLeader              ondisk.LeaderDecoded
	decisions               map[uint64]ondisk.Owner
	decidedBy               map[uint64]string
	// learners of each epoch's decision (host and generation), whether a
	// leader record of the epoch landed, whether a host acted in it: a
	// decision whose every learner is gone, that no record published and
	// on which nobody acted, died with them (decided).
	learners                  map[uint64][]incarnationID
	landed                    map[uint64]bool
	actedIn                   map[uint64]bool
	intervals                 []actInterval
	errs                      []string
	st                        simStats
	killAt                    time.Duration
	victim                    *simHost
	victimGen                 uint64
	victimDeadAt              time.Duration
	takeover                  time.Duration
	end                       time.Duration
	leaderLandings, tornReads int
	lateLandings              int
}

type simStats struct {
	seeds, hosts, acquired, released, handedOver, hoResumed, hoLost, lost, fenced, busy int
	crashes, stalls, leaves, restarts, lateLandings, tornReads, leaderLandings          int
	scribbled, superseded                                                               int
	decisions                                                                           int
	takeovers                                                                           []time.Duration // after the kill
	ratios                                                                              []float64       // takeovers / host_dead
	afterDead                                                                           []float64       // from the first "dead" judgment of the killed master to a new master, in intervals
	simTime                                                                             time.Duration
	longest                                                                             time.Duration
	longestSeed                                                                         uint64
	events                                                                              int
	maxEvents                                                                           int
}

func (s *simStats) add(o simStats) {
	s.seeds += o.seeds
	s.hosts += o.hosts
	s.acquired += o.acquired
	s.released += o.released
	s.handedOver += o.handedOver
	s.hoResumed += o.hoResumed
	s.hoLost += o.hoLost
	s.lost += o.lost
	s.fenced += o.fenced
	s.busy += o.busy
	s.crashes += o.crashes
	s.stalls += o.stalls
	s.leaves += o.leaves
	s.restarts += o.restarts
	s.lateLandings += o.lateLandings
	s.scribbled += o.scribbled
	s.tornReads += o.tornReads
	s.leaderLandings += o.leaderLandings
	s.decisions += o.decisions
	s.superseded += o.superseded
	s.takeovers = append(s.takeovers, o.takeovers...)
	s.ratios = append(s.ratios, o.ratios...)
	s.afterDead = append(s.afterDead, o.afterDead...)
	s.simTime += o.simTime
	s.events += o.events
	s.maxEvents = max(s.maxEvents, o.maxEvents)
}

type actInterval struct {
	host       string
	epoch      uint64
	start, end time.Duration
}

// ------------------------------------------------------------ storage

type version[T any] struct {
	at time.Duration
	v  T
}

type span struct{ from, to time.Duration }

// sector is one sector's recent history: the value at any instant of the
// last io_timeout, and the writes in flight (which may tear a read).
type sector[T any] struct {
	vs   []version[T]
	busy []span
}

func (s *sector[T]) at(t time.Duration) T {
	for i := len(s.vs) - 1; i > 0; i-- {
		if s.vs[i].at <= t {
			return s.vs[i].v
		}
	}
	return s.vs[0].v
}

func (s *sector[T]) land(now, keep time.Duration, v T) {
	s.vs = append(s.vs, version[T]{now, v})
	for len(s.vs) >= 2 && s.vs[1].at < now-keep {
		s.vs = s.vs[1:]
	}
	b := s.busy[:0]
	for _, x := range s.busy {
		if x.to >= now-keep {
			b = append(b, x)
		}
	}
	s.busy = b
}

func (s *sector[T]) torn(t time.Duration) bool {
	for _, x := range s.busy {
		if x.from <= t && t < x.to {
			return true
		}
	}
	return false
}

func (s *sector[T]) current() T { return s.vs[len(s.vs)-1].v }

// ------------------------------------------------------------- events

type simEvent struct {
	at  time.Duration
	seq int
	fn  func()
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(a, b int) bool {
	if q[a].at != q[b].at {
		return q[a].at < q[b].at
	}
	return q[a].seq < q[b].seq
}
func (q simQueue) Swap(a, b int) { q[a], q[b] = q[b], q[a] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

func (s *sim) at(t time.Duration, fn func()) {
	if t < s.now {
		t = s.now
	}
	s.seq++
	heap.Push(&s.q, simEvent{t, s.seq, fn})
}

func (s *sim) logf(format string, a ...any) {
	if s.trace != nil {
		s.trace(fmt.Sprintf("%12v ", s.now) + fmt.Sprintf(format, a...))
	}
}

func (s *sim) errorf(format string, a ...any) {
	e := fmt.Sprintf("at %v: ", s.now) + fmt.Sprintf(format, a...)
	s.errs = append(s.errs, e)
	s.logf("VIOLATION %s", e)
}

// -------------------------------------------------------------- hosts

type simHost struct {
	s   *sim
	off time.Duration // the host's clock origin
	ppm float64       // the host's clock rate error
	// slew is the rate error of the host's timer clock
	// (CLOCK_MONOTONIC, which NTP slews by up to 100 000 ppm): its timers
	// fire up to 10% early or late; a timer that fires early finds the
	// raw clock short of its deadline and waits again (timer).
	slew   float64
	slot   int
	name   string
	gen    uint64
	inc    int // incarnation counter: events of an older one are dropped
	alive  bool
	paused time.Duration // paused until
	// renewed is the issue of this incarnation's last renewal.
	renewed time.Duration
	l       *lease.Lease
	tr      *liveness.Tracker
	view    lease.Static
	sbuf    []ondisk.Decoded
	bbuf    []ondisk.BallotDecoded
	seq     uint64
	leaving bool // stopping the lease, then writing "left"
	left    bool
	// lease loop
	lbusy  bool
	ltoken int
	// acting
	acting    bool
	actStart  time.Duration
	actUntil  time.Duration
	actEpoch  uint64
	pendLand  time.Duration // latest landing of a write in flight
	restartAt time.Duration
	// earlyIssued is the issue of the last read at a deadline
	// (heartbeat.Member.Run's).
	earlyIssued time.Duration
}

// tm is the host's monotonic clock at simulation time d: its own origin,
// and a rate off by ppm parts per million (within ±500: NTP's bound).
func (h *simHost) tm(d time.Duration) time.Time {
	return t0.Add(h.off + d + time.Duration(float64(d)*h.ppm/1e6))
}

// dur is the simulation time at which the host's clock shows t (rounded
// up, so that an action is never taken before the host's NotBefore).
func (h *simHost) dur(t time.Time) time.Duration {
	if t.IsZero() {
		return math.MinInt64 // "never" (QuiescentAt with no write pending)
	}
	return time.Duration(math.Ceil(float64(t.Sub(t0)-h.off)/(1+h.ppm/1e6))) + 1
}

func (h *simHost) owner() ondisk.Owner {
	return ondisk.Owner{Slot: uint32(h.slot), Generation: h.gen, Name: h.name}
}

// timer runs fn as this host's code once the host's raw clock reached sim
// time at, on a timer of the slewed clock: as the daemon's loops do
// (safeclock.TimerFor, then the raw clock read again).
func (h *simHost) timer(at time.Duration, fn func()) {
	s := h.s
	d := at - s.now
	if d <= 0 || h.slew == 0 {
		h.do(at, fn)
		return
	}
	fire := s.now + max(time.Duration(float64(d)*(1+h.slew)), time.Microsecond)
	h.do(fire, func() {
		if s.now < at {
			h.timer(at, fn) // early: wait for the rest
			return
		}
		fn()
	})
}

// do runs fn as this host's code: not while paused, never for an
// incarnation that has ended.
func (h *simHost) do(t time.Duration, fn func()) {
	inc := h.inc
	var run func()
	run = func() {
		if h.inc != inc || !h.alive {
			return
		}
		if h.s.now < h.paused {
			h.s.at(h.paused, run)
			return
		}
		fn()
	}
	h.s.at(t, run)
}

// fault draws one I/O's delay and outcome.
type outcome int

const (
	ioOK outcome = iota
	ioFail
	ioTimeout
)

func (s *sim) draw() (time.Duration, outcome) {
	small := time.Duration(100+s.r.IntN(4900)) * time.Microsecond // 0.1..5 ms
	if !s.chaos {
		return small, ioOK
	}
	x := s.r.IntN(100)
	switch {
	case x < s.toPct:
		return s.p.IOTimeout + time.Duration(s.r.Int64N(int64(s.late-s.p.IOTimeout))) + 1, ioTimeout
	case x < s.toPct+s.failPct:
		return time.Duration(s.r.Int64N(int64(s.p.IOTimeout))) + 1, ioFail
	case x < s.toPct+s.failPct+s.slowPct:
		return time.Duration(s.r.Int64N(int64(s.p.IOTimeout))) + 1, ioOK
	}
	return small, ioOK
}

var errSimIO = errors.New("simulated I/O error")

// write issues a write for h: apply runs when (if) it lands; done gets
// the result at its return, as h's code.
func (s *sim) write(h *simHost, busy func(span), apply func(), done func(issued, ret time.Duration, err error)) {
	issue := s.now
	d, o := s.draw()
	var land time.Duration = -1
	var err error
	ret := issue + d
	switch o {
	case ioOK:
		land = issue + time.Duration(s.r.Int64N(int64(d))) + 1
	case ioFail:
		err = errSimIO
		if s.r.IntN(2) == 0 {
			land = issue + time.Duration(s.r.Int64N(int64(d))) + 1
		}
	case ioTimeout:
		err = fmt.Errorf("simulated: %w", area.ErrTimeout)
		ret = issue + s.p.IOTimeout
		if s.r.IntN(2) == 0 {
			land = issue + d // within LateWrite of the issue
			s.lateLandings++
		}
	}
	if land >= 0 {
		busy(span{issue, land})
		s.at(land, apply)
		h.pendLand = max(h.pendLand, land)
	}
	h.do(ret, func() { done(issue, s.now, err) })
}

// read issues a read for h: sample(t) gives the value of the region at
// instant t (sector by sector, each at its own instant, chosen by sample).
func (s *sim) read(h *simHost, resolve func(issue, ret time.Duration), done func(issued, ret time.Duration, err error)) {
	issue := s.now
	d, o := s.draw()
	switch o {
	case ioOK:
		s.at(issue+d, func() { resolve(issue, issue+d) })
		h.do(issue+d, func() { done(issue, s.now, nil) })
	case ioFail:
		h.do(issue+d, func() { done(issue, s.now, errSimIO) })
	case ioTimeout:
		h.do(issue+s.p.IOTimeout, func() { done(issue, s.now, fmt.Errorf("simulated: %w", area.ErrTimeout)) })
	}
}

func (s *sim) instant(issue, ret time.Duration) time.Duration {
	if ret <= issue {
		return issue
	}
	return issue + time.Duration(s.r.Int64N(int64(ret-issue)+1))
}

// -------------------------------------------------------- heartbeat

func (h *simHost) record() ondisk.Slot {
	st := ondisk.StateLive
	if h.left {
		st = ondisk.StateLeft
	}
	return ondisk.Slot{Version: ondisk.SlotVersion, State: st, Index: uint32(h.slot), PoolUUID: testPool,
		Generation: h.gen, Sequence: h.seq, JoinNonce: uint64(h.gen)*7919 + 1, HostName: h.name}
}

func (h *simHost) round(start time.Duration) {
	s := h.s
	if h.leaving && !h.lbusy && (h.l.Role() == lease.Stopped || h.l.Role() == lease.Fenced) &&
		h.dur(h.l.QuiescentAt()) <= s.now && h.pendLand <= s.now {
		h.left = true
	}
	h.seq++
	rec := h.record()
	wasLeft := h.left
	slot := h.slot
	s.write(h, func(sp span) { s.slots[slot].busy = append(s.slots[slot].busy, sp) },
		func() {
			s.slots[slot].land(s.now, s.p.IOTimeout, ondisk.Decoded{Index: slot, Slot: rec, Status: ondisk.SlotOK})
		},
		func(issued, ret time.Duration, err error) {
			if err == nil {
				if wasLeft {
					s.logf("%s gen %d wrote left", h.name, h.gen)
					h.leaveDone()
					return
				}
				h.l.Renewed(h.tm(issued), h.tm(ret))
				h.renewed = issued
				h.after()
				h.kick()
			}
			h.observe(start)
		})
}

// observe reads every slot, judges liveness, and schedules the next round
// (and a read at the earliest host_dead deadline before it).
func (h *simHost) observe(start time.Duration) {
	s := h.s
	var got []ondisk.Decoded
	s.read(h, func(issue, ret time.Duration) {
		got = h.slotBuf(len(s.slots))
		for i := range s.slots {
			t := s.instant(issue, ret)
			got[i] = s.slots[i].at(t)
			if s.chaos && s.slots[i].torn(t) && s.r.IntN(100) < s.tearPct {
				got[i] = ondisk.Decoded{Index: i, Status: ondisk.SlotCorrupt, Reason: "torn"}
				s.tornReads++
			}
		}
	}, func(issued, ret time.Duration, err error) {
		if err == nil {
			evs := h.tr.Observe(h.tm(issued), h.tm(ret), got)
			h.logLiveness(evs)
			h.refreshView(evs, got)
			h.l.SetView(h.tm(ret), lease.Snapshot{Peers: h.view, Issued: h.tm(issued)})
		} else {
			// As the daemon: a failed read re-judges liveness on the
			// clock, but gives the lease no view (heartbeat.Config
			// OnRead: after every successful read). A view stamped with
			// a failed read's issue would pass for a recent read of
			// slots it never saw (seed 96572: a host whose only read
			// had timed out counted a live host's torn block empty, as
			// a slot that never held a record).
			h.logLiveness(h.tr.Evaluate(h.tm(ret)))
		}
		h.after()
		h.kick()
		next := start + s.p.Interval
		if next <= s.now {
			next = s.now
		}
		h.waitRound(next)
	})
}

// waitRound waits for the round at next, reading earlier at a deadline
// that falls before it, as heartbeat.Member.Run does: at once if it passed
// during the round, at most once per deadline, and never before an
// overdue round.
func (h *simHost) waitRound(next time.Duration) {
	if dl, ok := h.tr.NextDeadline(h.tm(h.earlyIssued)); ok && h.dur(dl) < next && h.s.now < next {
		h.timer(max(h.dur(dl), h.s.now), func() { h.observeOnly(next) })
		return
	}
	h.timer(next, func() { h.round(next) })
}

func (h *simHost) observeOnly(next time.Duration) {
	s := h.s
	var got []ondisk.Decoded
	s.read(h, func(issue, ret time.Duration) {
		got = h.slotBuf(len(s.slots))
		for i := range s.slots {
			got[i] = s.slots[i].at(s.instant(issue, ret))
		}
	}, func(issued, ret time.Duration, err error) {
		h.earlyIssued = issued
		if err == nil {
			evs := h.tr.Observe(h.tm(issued), h.tm(ret), got)
			h.logLiveness(evs)
			h.refreshView(evs, got)
			h.l.SetView(h.tm(ret), lease.Snapshot{Peers: h.view, Issued: h.tm(issued)})
			h.after()
			h.kick()
		}
		h.waitRound(next)
	})
}

func (h *simHost) slotBuf(n int) []ondisk.Decoded {
	if cap(h.sbuf) < n {
		h.sbuf = make([]ondisk.Decoded, n)
	}
	return h.sbuf[:n]
}

// refreshView rebuilds the host's liveness view from its tracker when the
// tracker reported something or a slot shows a record the view lacks (the
// tracker reports no event for a first sight). Peers copies every slot
// record, too slow to call at every read of thousands of schedules.
func (h *simHost) refreshView(evs []liveness.Event, got []ondisk.Decoded) {
	stale := len(evs) > 0
	for i := range got {
		if got[i].Status != ondisk.SlotOK {
			continue
		}
		if p, ok := h.view[i]; !ok || p.Generation != got[i].Slot.Generation {
			stale = true
			break
		}
	}
	if !stale {
		return
	}
	v := lease.Static{}
	for _, p := range h.tr.Peers() {
		if p.HaveRecord {
			v[p.Slot] = lease.Peer{State: p.State, Generation: p.Record.Generation, Name: p.Record.HostName,
				GenerationSince: p.GenerationSince, StateSince: p.StateSince, LastChange: p.LastChange}
		} else {
			v[p.Slot] = lease.Peer{NoRecord: true}
		}
	}
	h.view = v
}

func (h *simHost) logLiveness(evs []liveness.Event) {
	s := h.s
	if s.victim != nil && s.victimDeadAt == 0 {
		for _, e := range evs {
			if e.Kind == liveness.Transition && e.To == liveness.Dead && e.Slot == s.victim.slot && e.Generation == s.victimGen {
				s.victimDeadAt = s.now
			}
		}
	}
	if h.s.trace == nil {
		return
	}
	for _, e := range evs {
		if e.Kind == liveness.Transition {
			h.s.logf("%s gen %d sees %s gen %d %v -> %v", h.name, h.gen, e.Name, e.Generation, e.From, e.To)
		} else {
			h.s.logf("%s gen %d sees %s gen %d: %v %s", h.name, h.gen, e.Name, e.Generation, e.Kind, e.Detail)
		}
	}
}

// -------------------------------------------------------------- lease

func (h *simHost) kick() {
	h.ltoken++
	if h.lbusy {
		return
	}
	tok := h.ltoken
	h.do(h.s.now, func() { h.wake(tok) })
}

func (h *simHost) wake(tok int) {
	s := h.s
	if tok != h.ltoken || h.lbusy {
		return
	}
	a := h.l.Next()
	if a.Kind == lease.None {
		return
	}
	if nb := h.dur(a.NotBefore); nb > s.now {
		h.timer(nb, func() { h.wake(tok) })
		return
	}
	h.lbusy = true
	if s.trace != nil {
		s.logf("%s gen %d issues %v (lver %d mbal %d bal %d; leader epoch %d flags %d; deadline %v)", h.name, h.gen, a.Kind,
			a.Ballot.Lver, a.Ballot.Mbal, a.Ballot.Bal, a.Leader.Epoch, a.Leader.Flags, h.dur(a.Deadline))
	}
	switch a.Kind {
	case lease.ReadLeader:
		var got ondisk.LeaderDecoded
		s.read(h, func(issue, ret time.Duration) {
			t := s.instant(issue, ret)
			got = s.leader.at(t)
			if s.chaos && s.leader.torn(t) && s.r.IntN(100) < s.tearPct {
				got = ondisk.LeaderDecoded{Status: ondisk.RecordCorrupt, Reason: "torn"}
				s.tornReads++
			}
		}, func(issued, ret time.Duration, err error) {
			h.lbusy = false
			h.l.ReadLeaderDone(h.tm(issued), h.tm(ret), got, err)
			h.after()
			h.kick()
		})
	case lease.ReadBallots:
		var got []ondisk.BallotDecoded
		s.read(h, func(issue, ret time.Duration) {
			if cap(h.bbuf) < len(s.ballots) {
				h.bbuf = make([]ondisk.BallotDecoded, len(s.ballots))
			}
			got = h.bbuf[:len(s.ballots)]
			for i := range s.ballots {
				t := s.instant(issue, ret)
				got[i] = s.ballots[i].at(t)
				if s.chaos && s.ballots[i].torn(t) && s.r.IntN(100) < s.tearPct {
					got[i] = ondisk.BallotDecoded{Index: i, Status: ondisk.RecordCorrupt, Reason: "torn"}
					s.tornReads++
				}
			}
		}, func(issued, ret time.Duration, err error) {
			h.lbusy = false
			h.l.ReadBallotsDone(h.tm(issued), h.tm(ret), got, err)
			h.after()
			h.kick()
		})
	case lease.WriteBallot:
		b := a.Ballot
		i := int(b.Index)
		if i != h.slot {
			s.errorf("%s asked to write the ballot block of slot %d", h.name, i)
		}
		s.write(h, func(sp span) { s.ballots[i].busy = append(s.ballots[i].busy, sp) },
			func() {
				s.ballots[i].land(s.now, s.p.IOTimeout, ondisk.BallotDecoded{Index: i, Ballot: b, Status: ondisk.RecordOK})
			},
			func(issued, ret time.Duration, err error) {
				h.lbusy = false
				h.l.WriteDone(h.tm(issued), h.tm(ret), err)
				h.after()
				h.kick()
			})
	case lease.WriteLeader:
		r := a.Leader
		if h.tm(s.now).After(a.Deadline) {
			h.lbusy = false
			h.l.WriteDone(h.tm(s.now), h.tm(s.now), lease.ErrDeadline)
			h.after()
			h.kick()
			return
		}
		writer := h.name
		s.write(h, func(sp span) { s.leader.busy = append(s.leader.busy, sp) },
			func() { s.landLeader(writer, r) },
			func(issued, ret time.Duration, err error) {
				h.lbusy = false
				h.l.WriteDone(h.tm(issued), h.tm(ret), err)
				h.after()
				h.kick()
			})
	}
}

// after runs after every call into the lease: it checks the events, keeps
// the acting intervals, and restarts a host whose lease fenced.
func (h *simHost) after() {
	s := h.s
	for _, e := range h.l.Events() {
		s.logf("%s gen %d: %v", h.name, h.gen, e)
		switch e.Kind {
		case lease.Decided:
			s.decided(h, e.Epoch, e.Owner)
		case lease.Acquired:
			s.st.acquired++
			s.decided(h, e.Epoch, e.Owner)
			if !e.Owner.Same(h.owner()) {
				s.errorf("%s acquired epoch %d for %v", h.name, e.Epoch, e.Owner)
			}
		case lease.Released:
			s.st.released++
		case lease.HandedOver:
			s.st.handedOver++
		case lease.HandOverFailed:
			if e.Resumed {
				s.st.hoResumed++
			} else {
				s.st.hoLost++
			}
		case lease.Lost:
			s.st.lost++
		case lease.Busy:
			s.st.busy++
		case lease.FencedEvent:
			s.st.fenced++
		}
	}
	h.updateActing()
	if h.l.Role() == lease.Fenced && h.restartAt == 0 {
		// The daemon exits and systemd starts it again.
		h.crash(s.now + time.Duration(s.r.Int64N(int64(s.p.Interval))) + time.Millisecond)
	}
}

func (h *simHost) updateActing() {
	s := h.s
	m, ok := h.l.Master(h.tm(s.now))
	if ok {
		if !h.acting {
			h.acting, h.actStart, h.actEpoch = true, s.now, m.Epoch
			s.logf("%s gen %d acts as master of epoch %d until %v", h.name, h.gen, m.Epoch, h.dur(m.Until))
			s.checkActingStart(h)
		} else if m.Epoch != h.actEpoch {
			s.errorf("%s switched epochs while acting (%d to %d)", h.name, h.actEpoch, m.Epoch)
		}
		h.actUntil = h.dur(m.Until)
		return
	}
	h.stopActing(s.now)
}

func (h *simHost) stopActing(t time.Duration) {
	if !h.acting {
		return
	}
	end := min(t, h.actUntil)
	h.s.intervals = append(h.s.intervals, actInterval{fmt.Sprintf("%s gen %d", h.name, h.gen), h.actEpoch, h.actStart, end})
	h.s.logf("%s gen %d stops acting as master of epoch %d (acted until %v)", h.name, h.gen, h.actEpoch, end)
	h.acting = false
}

// ----------------------------------------------------------- lifecycle

func (s *sim) newIncarnation(h *simHost) {
	h.inc++
	h.alive = true
	h.gen++
	h.seq = 0
	h.left, h.leaving = false, false
	h.lbusy = false
	h.paused = 0
	h.restartAt = 0
	// The first write of an incarnation stands for its join claim: the
	// first renewal must be issued by the join's deadline.
	renewBy := h.tm(s.now).Add(s.p.HostDead - s.p.IOTimeout - s.p.Margin())
	// The quarantine: no ballot or leader write, no ballot read, until
	// every write of the crashed predecessor has landed or never will.
	quiet := h.tm(s.now).Add(lease.Quarantine(s.p))
	if s.opt.noQuarantine {
		quiet = time.Time{}
	}
	newLease := lease.New
	if s.opt.goneAtOnce {
		newLease = lease.NewGoneAtOnce
	}
	l, err := newLease(lease.Config{Self: h.owner(), Pool: testPool, Slots: len(s.slots), Timing: s.p,
		FirstRenewalBy: renewBy,
		QuietUntil:     quiet,
		Jitter: func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return time.Duration(s.r.Int64N(int64(d)))
		}})
	if err != nil {
		panic(err)
	}
	h.l = l
	h.tr = liveness.New(s.p)
	h.view = lease.Static{}
	// Fresh read buffers: a read of the old incarnation may still resolve.
	h.sbuf, h.bbuf = nil, nil
	s.logf("%s starts as generation %d", h.name, h.gen)
	start := s.now
	h.do(start, func() { h.round(start) })
	// Most daemons keep trying; during chaos some only TryAcquire, some
	// only follow. In the calm phase every host keeps trying.
	switch mode := s.r.IntN(10); {
	case !s.chaos || mode < 7:
		h.l.Acquire(h.tm(s.now))
	case mode < 9:
		h.l.TryAcquire(h.tm(s.now))
	}
	h.after()
	h.kick()
}

// crash kills the host now; it restarts (a new generation) at restart, or
// never if restart < 0, and not before its writes in flight are resolved.
func (h *simHost) crash(restart time.Duration) {
	s := h.s
	if !h.alive {
		return
	}
	h.stopActing(s.now)
	h.alive = false
	h.inc++
	s.logf("%s gen %d crashes", h.name, h.gen)
	if restart < 0 {
		return
	}
	// At once: the crashed process's writes may still land (on NFS a
	// killed process's O_DIRECT requests stay in flight), within LateWrite
	// of their issue; the new incarnation's quarantine covers them.
	h.restartAt = restart
	s.at(h.restartAt, func() {
		if !h.alive && h.restartAt > 0 {
			s.st.restarts++
			s.newIncarnation(h)
		}
	})
}

func (h *simHost) stall(d time.Duration) {
	s := h.s
	if !h.alive {
		return
	}
	h.paused = max(h.paused, s.now+d)
	s.logf("%s gen %d stalls until %v", h.name, h.gen, h.paused)
}

// leave: stop the lease; the next heartbeat round that finds it quiescent
// writes "left", then the daemon exits, to rejoin at rejoin.
func (h *simHost) leave(rejoin time.Duration) {
	s := h.s
	if !h.alive || h.leaving {
		return
	}
	h.leaving = true
	if s.r.IntN(2) == 0 {
		h.l.Release(h.tm(s.now))
	}
	h.l.Stop(h.tm(s.now))
	h.after()
	h.restartAt = rejoin
	s.logf("%s gen %d leaves", h.name, h.gen)
}

func (h *simHost) leaveDone() {
	s := h.s
	h.stopActing(s.now)
	h.alive = false
	h.inc++
	rejoin := max(h.restartAt, s.now+time.Millisecond, h.pendLand+time.Millisecond)
	h.restartAt = rejoin
	s.at(rejoin, func() {
		if !h.alive && h.restartAt > 0 {
			s.st.restarts++
			s.newIncarnation(h)
		}
	})
}

// -------------------------------------------------------------- checks

// incarnationID names one incarnation of a simulated host.
type incarnationID struct {
	h   *simHost
	gen uint64
}

// gone: the incarnation crashed, or it is stalled for longer than
// renewal_fail past its last renewal (on its own clock, whatever its rate
// error): it is judged dead by then, and when it resumes its lease finds
// its renewals lapsed and fences before it can act, so that what it learnt
// dies with it, as with a machine the watchdog reset.
func (i incarnationID) gone() bool {
	h := i.h
	if !h.alive || h.gen != i.gen {
		return true
	}
	stalled := h.s.now < h.paused
	return stalled && time.Duration(float64(h.paused-h.renewed)*(1-math.Abs(h.ppm)/1e6)) > h.s.p.RenewalFail
}

// decided checks that every decision learnt agrees per epoch. One case is
// not a disagreement: a decision whose every learner is gone, that no
// leader record published and on which no host acted, left nothing of
// itself but the ballot blocks of its learners; once such a block reads
// corrupt for good and is counted empty (doc.go, "A corrupt block of a
// host that is gone"), the epoch may be decided again. Nothing acts on
// the lost decision: an owner acts only on its own ballot, and a live
// learner's own block still carries the value. A learner stalled past
// renewal_fail counts as gone (incarnationID.gone): its own block may have
// been scribbled while it stalled (scribbleLive), the others then count it
// empty once they judge it dead, and it fences on resuming before it can
// act. Such a decision is counted as superseded.
func (s *sim) decided(h *simHost, epoch uint64, o ondisk.Owner) {
	s.st.decisions++
	me := incarnationID{h, h.gen}
	if prev, ok := s.decisions[epoch]; ok {
		if prev == o {
			s.learners[epoch] = append(s.learners[epoch], me)
			return
		}
		if !s.forgotten(epoch) {
			s.errorf("epoch %d: %s learnt %v, but %s learnt %v", epoch, h.name, o, s.decidedBy[epoch], prev)
			return
		}
		s.st.superseded++
		s.logf("epoch %d: the decision for %v that only gone incarnations learnt (%s) is superseded by %v", epoch, prev, s.decidedBy[epoch], o)
	}
	s.decisions[epoch] = o
	s.decidedBy[epoch] = fmt.Sprintf("%s gen %d", h.name, h.gen)
	s.learners[epoch] = []incarnationID{me}
}

// forgotten: every learner of epoch's decision is gone, no record of the
// epoch landed, and no host acted in it.
func (s *sim) forgotten(epoch uint64) bool {
	if s.landed[epoch] || s.actedIn[epoch] {
		return false
	}
	for _, l := range s.learners[epoch] {
		if !l.gone() {
			return false
		}
	}
	return true
}

func (s *sim) landLeader(writer string, r ondisk.Leader) {
	s.leaderLandings++
	d := ondisk.LeaderDecoded{Leader: r, Status: ondisk.RecordOK}
	prev := s.lastLeader
	s.logf("leader record lands (by %s): epoch %d %v flags %d successor %v", writer, r.Epoch, r.Owner, r.Flags, r.Successor)
	if prev.Status == ondisk.RecordOK {
		p := prev.Leader
		switch {
		case r.Epoch < p.Epoch:
			s.errorf("leader record goes back from epoch %d to %d (written by %s)", p.Epoch, r.Epoch, writer)
		case r.Epoch == p.Epoch && !r.Owner.Same(p.Owner):
			s.errorf("leader record of epoch %d changes owner from %v to %v", r.Epoch, p.Owner, r.Owner)
		case r.Epoch == p.Epoch && p.Released() && !r.Released():
			s.errorf("leader record of epoch %d goes back from released to held (written by %s)", r.Epoch, writer)
		}
	}
	if o, ok := s.decisions[r.Epoch]; !ok || !o.Same(r.Owner) {
		s.errorf("leader record of epoch %d names %v, but the decision known is %v (%v)", r.Epoch, r.Owner, o, ok)
	}
	for _, h := range s.hosts {
		if h.acting && h.actEpoch < r.Epoch && h.actUntil > s.now {
			s.errorf("leader record of epoch %d lands while %s still acts as master of epoch %d until %v", r.Epoch, h.name, h.actEpoch, h.actUntil)
		}
	}
	s.lastLeader = d
	s.landed[r.Epoch] = true
	s.leader.land(s.now, s.p.IOTimeout, d)
}

func (s *sim) checkActingStart(h *simHost) {
	s.actedIn[h.actEpoch] = true
	if o, ok := s.decisions[h.actEpoch]; !ok || !o.Same(h.owner()) {
		s.errorf("%s acts as master of epoch %d, decided for %v", h.name, h.actEpoch, o)
	}
}

func (s *sim) checkOverlaps() {
	iv := s.intervals
	sort.Slice(iv, func(a, b int) bool { return iv[a].start < iv[b].start })
	var cur actInterval
	for i, x := range iv {
		if x.end < x.start {
			s.errorf("interval of %s ends before it starts", x.host)
		}
		if i > 0 && x.start < cur.end && x.host != cur.host {
			s.errorf("%s acts as master of epoch %d from %v, while %s acts as master of epoch %d until %v",
				x.host, x.epoch, x.start, cur.host, cur.epoch, cur.end)
		}
		if x.end > cur.end || i == 0 {
			cur = x
		}
	}
}

// ------------------------------------------------------------- running

func (s *sim) alive() []*simHost {
	var out []*simHost
	for _, h := range s.hosts {
		if h.alive && !h.leaving {
			out = append(out, h)
		}
	}
	return out
}

func (s *sim) master() *simHost {
	for _, h := range s.hosts {
		if h.alive && h.acting && h.actUntil > s.now {
			return h
		}
	}
	return nil
}

func (s *sim) run(until time.Duration) {
	for s.q.Len() > 0 {
		e := heap.Pop(&s.q).(simEvent)
		if e.at > until {
			heap.Push(&s.q, e)
			break
		}
		s.now = e.at
		s.st.events++
		if s.st.events > maxSimEvents {
			s.errorf("more than %d events: a loop that does not advance time?", maxSimEvents)
			s.q = nil
			return
		}
		e.fn()
	}
	if until > s.now {
		s.now = until
	}
}

const maxSimEvents = 3_000_000

var simProfiles = []string{"default", "fast", "slow"}

// simOptions change the protocol the simulation runs, to show what a rule
// protects against (a variant without it must fail).
type simOptions struct {
	// noQuarantine: a new incarnation writes at once (Config.QuietUntil
	// zero), while its crashed predecessor's writes may still land.
	noQuarantine bool
	// goneAtOnce: a later generation of a slot proves its predecessor
	// gone as soon as it is seen (lease.NewGoneAtOnce), while the
	// predecessor's writes may still land.
	goneAtOnce bool
}

func runLeaseSim(seed uint64, trace func(string), opt simOptions) (simStats, []string) {
	r := rand.New(rand.NewPCG(seed, 0x1ea5e))
	p, err := timing.Profile(simProfiles[seed%uint64(len(simProfiles))])
	if err != nil {
		panic(err)
	}
	n := 2 + r.IntN(11)
	nslots := n + r.IntN(3)
	hdr, err := ondisk.NewHeader(testPool, 512, max(nslots, ondisk.MinSlots), p, "sim", t0)
	if err != nil {
		panic(err)
	}
	s := &sim{p: p, r: r, hdr: hdr, late: lease.LateWrite(p), trace: trace, opt: opt,
		decisions: map[uint64]ondisk.Owner{}, decidedBy: map[uint64]string{},
		learners: map[uint64][]incarnationID{}, landed: map[uint64]bool{}, actedIn: map[uint64]bool{}}
	s.leader.vs = []version[ondisk.LeaderDecoded]{{0, ondisk.LeaderDecoded{Status: ondisk.RecordUnused}}}
	s.ballots = make([]sector[ondisk.BallotDecoded], hdr.SlotCount)
	s.slots = make([]sector[ondisk.Decoded], hdr.SlotCount)
	for i := range s.ballots {
		s.ballots[i].vs = []version[ondisk.BallotDecoded]{{0, ondisk.BallotDecoded{Index: i, Status: ondisk.RecordUnused}}}
		s.slots[i].vs = []version[ondisk.Decoded]{{0, ondisk.Decoded{Index: i, Status: ondisk.SlotUnused}}}
	}
	// Harsh storage in two schedules of three.
	s.chaos = true
	if seed%3 != 0 {
		s.slowPct, s.failPct, s.toPct, s.tearPct = 10+r.IntN(30), r.IntN(8), r.IntN(6), r.IntN(40)
	}
	s.st.seeds, s.st.hosts = 1, n
	hd := p.HostDead
	// The timer clocks' slew, from a stream of its own so that the
	// schedule's other draws stay those of the seed: up to the kernel's
	// 100 000 ppm either way, in two schedules of three.
	slews := rand.New(rand.NewPCG(seed, 0x5e1f))
	for i := 0; i < n; i++ {
		h := &simHost{s: s, slot: i, name: hostName(i),
			off: time.Duration(r.Int64N(int64(1000 * time.Hour))), ppm: float64(r.IntN(1001) - 500)}
		if seed%3 != 2 {
			h.slew = (slews.Float64()*2 - 1) * 0.1
		}
		s.hosts = append(s.hosts, h)
		start := time.Duration(r.Int64N(int64(3 * p.Interval)))
		s.at(start, func() { s.newIncarnation(h) })
	}

	// Chaos: random operations at random times.
	calm := time.Duration(4+r.IntN(6)) * hd
	ops := 3 + r.IntN(4*n+8)
	for i := 0; i < ops; i++ {
		t := time.Duration(r.Int64N(int64(calm)))
		op := r.IntN(100)
		s.at(t, func() { s.chaosOp(op) })
	}

	// In one schedule of five, ballot blocks of slots no host ever holds
	// are scribbled for good (a bad sector): the lease must stay
	// available (doc.go, "A corrupt block of a host that is gone"). Its
	// own random source leaves the other schedules as they were.
	if seed%5 == 4 && len(s.ballots) > n {
		sr := rand.New(rand.NewPCG(seed, 0x5c71b))
		for k := 1 + sr.IntN(3); k > 0; k-- {
			t := time.Duration(sr.Int64N(int64(calm)))
			pick := n + sr.IntN(len(s.ballots)-n)
			s.at(t, func() { s.scribble(pick) })
		}
	}

	// In another schedule of five, the ballot block of a live host is
	// scribbled (a bad sector under a running daemon): the host counts
	// it as the last ballot it set out to write and puts it back with
	// its next ballot (doc.go, "A corrupt block of a live host").
	if seed%5 == 3 {
		sr := rand.New(rand.NewPCG(seed, 0x0b10c))
		for k := 1 + sr.IntN(2); k > 0; k-- {
			t := time.Duration(sr.Int64N(int64(calm)))
			pick := sr.IntN(n)
			s.at(t, func() { s.scribbleLive(pick) })
		}
	}

	s.run(calm)

	// Calm: no more faults; every host is back and keeps trying.
	s.chaos = false
	s.logf("calm")
	for _, h := range s.hosts {
		h := h
		if h.alive {
			if h.paused > s.now+hd/2 {
				h.paused = s.now + hd/2
			}
			h.do(s.now, func() {
				h.l.Acquire(h.tm(s.now))
				h.after()
				h.kick()
			})
			continue
		}
		h.restartAt = s.now + time.Millisecond // at once, as in crash
		at := h.restartAt
		s.at(at, func() {
			if !h.alive {
				s.st.restarts++
				s.newIncarnation(h)
			}
		})
	}
	// A host restarted later (a fenced revenant) must also keep trying.
	s.run(calm + hd/2 + 2*p.Interval)
	for _, h := range s.hosts {
		if h.alive {
			h.l.Acquire(h.tm(s.now))
			h.after()
			h.kick()
		}
	}
	s.run(calm + 2*hd)

	// Kill the master, and expect a new one within the bound, counted
	// from the later of the kill and the landing of the victim's last
	// write: a write in flight at the kill may land up to LateWrite later
	// (at-once restarts), and host_dead counts from the last change of
	// its slot that the others see (seed 95174: a slot write landed 9 s
	// after the kill).
	bound := hd + 2*p.Interval + time.Second
	s.killAt = s.now
	lastLanding := s.killAt
	victim := s.master()
	if victim != nil {
		s.victim, s.victimGen = victim, victim.gen
		lastLanding = max(lastLanding, victim.pendLand)
		victim.crash(-1)
	}
	deadline := lastLanding + bound
	for s.now < deadline && s.q.Len() > 0 {
		s.run(min(deadline, s.now+p.Interval/4))
		if m := s.master(); m != nil && m != victim {
			s.takeover = m.actStart - s.killAt
			if victim != nil && s.victimDeadAt != 0 {
				s.st.afterDead = append(s.st.afterDead, float64(m.actStart-s.victimDeadAt)/float64(p.Interval))
			}
			break
		}
	}
	if m := s.master(); m == nil || m == victim {
		s.errorf("no host acts as master %v after the master (%v) was killed and %v after its last write landed (bound host_dead + 2 × interval + 1 s = %v); roles: %s",
			s.now-s.killAt, victim != nil, s.now-lastLanding, bound, s.roles())
	} else {
		s.st.takeovers = append(s.st.takeovers, s.takeover)
		s.st.ratios = append(s.st.ratios, float64(s.takeover)/float64(hd))
	}
	s.run(s.now + 2*p.Interval)
	s.end = s.now
	for _, h := range s.hosts {
		if h.alive {
			h.updateActing()
			h.stopActing(s.now)
		}
	}
	s.checkOverlaps()
	s.st.simTime = s.end
	s.st.maxEvents = s.st.events
	s.st.lateLandings = s.lateLandings
	s.st.tornReads = s.tornReads
	s.st.leaderLandings = s.leaderLandings
	return s.st, s.errs
}

// scribble makes the ballot block of slot i read corrupt for good, if no
// live host holds the slot (a host down, or a slot never joined).
func (s *sim) scribble(i int) {
	for _, h := range s.hosts {
		if h.slot == i && h.alive {
			return
		}
	}
	s.logf("ballot block of slot %d scribbled", i)
	s.st.scribbled++
	s.ballots[i].land(s.now, s.p.IOTimeout, ondisk.BallotDecoded{Index: i, Status: ondisk.RecordCorrupt, Reason: "scribbled"})
}

// scribbleLive makes the ballot block of host i's slot read corrupt for
// good while the host is alive, until it writes the block again.
func (s *sim) scribbleLive(i int) {
	h := s.hosts[i]
	if !h.alive {
		return
	}
	s.logf("ballot block of live host %d's slot %d scribbled", i, h.slot)
	s.st.scribbled++
	s.ballots[h.slot].land(s.now, s.p.IOTimeout, ondisk.BallotDecoded{Index: h.slot, Status: ondisk.RecordCorrupt, Reason: "scribbled"})
}

func (s *sim) roles() string {
	var b strings.Builder
	for _, h := range s.hosts {
		if !h.alive {
			fmt.Fprintf(&b, "%s: down; ", h.name)
			continue
		}
		st := h.l.Status()
		nx := h.l.Next()
		fmt.Fprintf(&b, "%s gen %d: %v (waiting: %s; last abort: %s; last error: %s) holder %v; next %v at %v, busy %v; ",
			h.name, h.gen, st.Role, st.Waiting, st.LastAbort, st.LastError, st.Holder, nx.Kind, h.dur(nx.NotBefore), h.lbusy)
	}
	return b.String()
}

func (s *sim) chaosOp(op int) {
	hd := s.p.HostDead
	live := s.alive()
	if len(live) == 0 {
		return
	}
	h := live[s.r.IntN(len(live))]
	if m := s.master(); m != nil && op >= 55 {
		h = m
	}
	switch {
	case op < 12:
		s.st.crashes++
		restart := s.now + time.Duration(s.r.Int64N(int64(2*hd)))
		if s.r.IntN(5) == 0 {
			restart = -1
		}
		h.crash(restart)
	case op < 30:
		s.st.stalls++
		h.stall(time.Duration(s.r.Int64N(int64(5 * hd / 2))))
	case op < 38:
		s.st.leaves++
		h.leave(s.now + time.Duration(s.r.Int64N(int64(hd))))
	case op < 48:
		h.do(s.now, func() { h.l.TryAcquire(h.tm(s.now)); h.after(); h.kick() })
	case op < 55:
		// Storage turns bad or good for a while.
		s.slowPct, s.failPct, s.toPct = s.r.IntN(60), s.r.IntN(15), s.r.IntN(10)
	case op < 70:
		h.do(s.now, func() {
			h.l.Release(h.tm(s.now))
			h.after()
			h.kick()
		})
		later := s.now + time.Duration(s.r.Int64N(int64(hd)))
		h.do(later, func() { h.l.Acquire(h.tm(s.now)); h.after(); h.kick() })
	default:
		// Hand over to another host: usually a live one, sometimes
		// any (it may have crashed).
		var targets []*simHost
		for _, o := range s.hosts {
			if o != h && (o.alive || s.r.IntN(4) == 0) {
				targets = append(targets, o)
			}
		}
		if len(targets) == 0 {
			return
		}
		t := targets[s.r.IntN(len(targets))]
		to := t.owner()
		if to.Generation == 0 {
			return
		}
		dl := s.now + time.Duration(1+s.r.IntN(3))*s.p.IOTimeout
		h.do(s.now, func() {
			err := h.l.ProposeSuccessor(h.tm(s.now), to, h.tm(dl))
			s.logf("%s proposes %v as successor: %v", h.name, to, err)
			h.after()
			h.kick()
		})
	}
}
