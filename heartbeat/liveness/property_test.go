package liveness_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

var livenessSeeds = flag.Int("liveness.seeds", 3000, "schedules the liveness property test runs")

// The property test: hosts renew their slots with random I/O delays,
// failed and late writes, stalls, crashes and restarts as new
// incarnations; one observer reads every slot with random delays, failed
// reads and torn sectors, and feeds a Tracker. For every schedule:
//
//  1. Dead is declared exactly at the read the deadline rule names: the
//     first successful read issued at or after baseline + host_dead that
//     shows the slot's record valid and unchanged, where baseline is the
//     completion of the read that first showed that record. This is
//     computed here independently of the tracker.
//  2. A host declared dead has fenced itself: with L its fence latch
//     (the start of its last successful write + renewal_fail, or its
//     crash, whichever is first) the watchdog has reset it by
//     F = L + watchdog, and F is more than margin before the deciding read
//     was issued. (F <= s_R + renewal_fail + watchdog where s_R is the start
//     of the write of the record the deciding read showed, and that read
//     was issued at or after s_R + host_dead.)
//  3. Every write of the declared generation that landed before the
//     deciding read was issued started at least host_dead before that
//     read was issued, hence before the declaration. This is the "host
//     whose last write started less than host_dead - X before" bound with
//     X = 0 measured from the deciding read's issue, and X = the read's
//     latency (<= io_timeout) measured from the declaration. A write that
//     lands during or after the deciding read may have started later; it
//     started after the host's fence latch (see 2), so it is a revenant.
//  4. Evaluate never declares dead, and a dead generation stays dead
//     (later writes of it are Revenant events) until a new generation.
//
// Every host and the observer have their own clocks (simClock): the
// durations they measure (interval, io_timeout, renewal_fail on the host,
// host_dead on the observer) run on a raw clock within ±500 ppm of true
// time, the instants the tracker sees are the observer's raw clock, and
// their waits end when a timer on CLOCK_MONOTONIC, slewed up to
// ±100 000 ppm, has fired and the raw clock has been re-read
// (safeclock.SleepUntil). The properties are checked in true time, with
// the watchdog's figure taken as true time (package fence checks the
// device's effective firing time against it).
func TestLivenessProperty(t *testing.T) {
	start := time.Now()
	var total simStats
	for seed := uint64(1); seed <= uint64(*livenessSeeds); seed++ {
		p := simProfiles[seed%uint64(len(simProfiles))]
		st, errs := runLivenessSim(seed, p, p)
		total.add(st)
		for _, e := range errs {
			t.Errorf("seed %d (%v): %s", seed, p, e)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%d schedules in %v: %+v", *livenessSeeds, time.Since(start).Round(time.Millisecond), total)
	// The schedules must exercise what the properties are about.
	if total.dead < *livenessSeeds/2 || total.revenants == 0 || total.reincarnations == 0 || total.tornReads == 0 ||
		total.deadAfterTorn == 0 || total.failedReads == 0 {
		t.Errorf("the schedules do not exercise the rules: %+v", total)
	}
}

// The checker has teeth: an observer whose host_dead ignores the watchdog
// (host_dead = renewal_fail + io_timeout + 1 s, below renewal_fail +
// watchdog + margin) declares hosts dead before they are fenced, and the
// property test says so.
func TestLivenessPropertyCatchesUnsafeTiming(t *testing.T) {
	p := simProfiles[0]
	unsafe := p
	unsafe.HostDead = p.RenewalFail + p.IOTimeout + time.Second
	caught := 0
	for seed := uint64(1); seed <= 300; seed++ {
		_, errs := runLivenessSim(seed, p, unsafe)
		if len(errs) > 0 {
			caught++
		}
	}
	if caught == 0 {
		t.Fatal("300 schedules with host_dead below renewal_fail + watchdog: no violation found")
	}
	t.Logf("unsafe host_dead %v: violations in %d of 300 schedules", unsafe.HostDead, caught)
}

var simProfiles = func() []timing.Params {
	var ps []timing.Params
	for _, n := range []string{"default", "fast", "slow"} {
		p, err := timing.Profile(n)
		if err != nil {
			panic(err)
		}
		ps = append(ps, p)
	}
	return ps
}()

// simClock is one machine's clocks: a raw clock running (1 + raw/1e6) raw
// seconds per true second, and CLOCK_MONOTONIC slewed by slew ppm against
// it.
type simClock struct{ raw, slew float64 }

func drawClock(r *rand.Rand) simClock {
	ppm := func(bound float64) float64 {
		switch r.IntN(3) {
		case 0:
			return -bound
		case 1:
			return bound
		}
		return (r.Float64()*2 - 1) * bound
	}
	return simClock{raw: ppm(500), slew: ppm(100_000)}
}

// read is the raw clock at true time t (origin 0).
func (c simClock) read(t time.Duration) time.Duration {
	return time.Duration(float64(t) * (1 + c.raw/1e6))
}

// trueDur is how much true time d of this clock's raw time takes.
func (c simClock) trueDur(d time.Duration) time.Duration {
	return time.Duration(float64(d) / (1 + c.raw/1e6))
}

// wait is the true time a wait of d on the raw clock takes: SleepUntil's
// timers (nine tenths of what is left, at least 1 ms) on the slewed clock,
// each followed by a re-read of the raw clock.
func (c simClock) wait(d time.Duration) time.Duration {
	monoRate := (1 + c.raw/1e6) * (1 + c.slew/1e6)
	var t time.Duration
	for {
		left := d - c.read(t)
		if left <= 0 {
			return t
		}
		ch := left
		if left > time.Millisecond {
			ch = max(left-left/10, time.Millisecond)
		}
		t += max(time.Duration(float64(ch)/monoRate), 1)
	}
}

type simStats struct {
	dead, revenants, reincarnations, suspects, tornReads, failedReads, deadAfterTorn int
	minSlack                                                                         time.Duration
}

func (s *simStats) add(o simStats) {
	s.dead += o.dead
	s.revenants += o.revenants
	s.reincarnations += o.reincarnations
	s.suspects += o.suspects
	s.tornReads += o.tornReads
	s.failedReads += o.failedReads
	s.deadAfterTorn += o.deadAfterTorn
	if o.minSlack > 0 && (s.minSlack == 0 || o.minSlack < s.minSlack) {
		s.minSlack = o.minSlack
	}
}

// hwrite is one write of a host's slot.
type hwrite struct {
	gen, seq    uint64
	start, land time.Duration
	landed      bool
}

// incarnation is one join of a host: its writes, and when it fenced.
type incarnation struct {
	gen    uint64
	writes []hwrite
	// lastOK is the start of the last write that succeeded (completed
	// within io_timeout) and that the host saw succeed before it
	// latched its fence; latch is when it latched (killed its guests
	// and stopped feeding the watchdog) or crashed; fence = latch +
	// watchdog, by when the watchdog has reset it.
	lastOK, latch, fence time.Duration
}

// genHost builds the history of one host: incarnations until horizon.
func genHost(r *rand.Rand, p timing.Params, horizon time.Duration) []*incarnation {
	var incs []*incarnation
	clk := drawClock(r)
	begin := time.Duration(r.Int64N(int64(2*p.HostDead))) - p.HostDead // may predate the observer
	gen := uint64(1 + r.IntN(5))
	for begin < horizon {
		inc := genIncarnation(r, p, clk, gen, begin, horizon)
		incs = append(incs, inc)
		// The machine comes back some time after its reset, as a new
		// incarnation (or not).
		if r.IntN(2) == 0 {
			break
		}
		begin = inc.fence + time.Duration(r.Int64N(int64(p.HostDead)))
		gen++
	}
	return incs
}

func genIncarnation(r *rand.Rand, p timing.Params, clk simClock, gen uint64, begin, horizon time.Duration) *incarnation {
	// The host's durations, in true time: renewal_fail and io_timeout
	// measured on its raw clock, its rounds waited for on its timers.
	renewalFail, ioTimeout := clk.trueDur(p.RenewalFail), clk.trueDur(p.IOTimeout)
	inc := &incarnation{gen: gen}
	const never = time.Duration(1 << 62)
	crash := never
	if r.IntN(3) > 0 {
		crash = begin + time.Duration(r.Int64N(int64(4*p.HostDead)))
	}
	iot := p.IOTimeout
	frac := func(lo, hi float64) time.Duration {
		return time.Duration((lo + (hi-lo)*r.Float64()) * float64(iot))
	}
	// The join's claim write succeeded: that is what made it a member.
	inc.lastOK = begin
	inc.writes = append(inc.writes, hwrite{gen: gen, seq: 1, start: begin, land: begin + frac(0, 0.2), landed: true})
	latched := false
	latch := func(at time.Duration) {
		if !latched {
			latched, inc.latch = true, at
		}
	}
	tau := begin + clk.wait(p.Interval)
	revenant := false
	for seq := uint64(2); tau < horizon; seq++ {
		if !latched && tau > inc.lastOK+renewalFail {
			latch(inc.lastOK + renewalFail)
		}
		if tau >= crash {
			latch(crash)
			break
		}
		if latched && (tau >= inc.latch+p.Watchdog || revenant || r.IntN(2) == 0) {
			break // reset by the watchdog, or the daemon stopped
		}
		if r.IntN(40) == 0 { // the daemon stalls (SIGSTOP, swap storm)
			tau += time.Duration(r.Int64N(int64(2 * p.HostDead)))
			continue
		}
		revenant = latched
		w := hwrite{gen: gen, seq: seq, start: tau}
		var ret time.Duration // when the write returned to the daemon
		ok := false
		switch k := r.IntN(100); {
		case k < 80: // quick
			w.land, w.landed = tau+frac(0, 0.3), true
			ret, ok = w.land+frac(0, 0.05), true
		case k < 90: // slow but within io_timeout
			w.land, w.landed = tau+frac(0.3, 0.95), true
			ret, ok = w.land+frac(0, 0.05), true
		case k < 95: // timed out: may still land, late
			ret = tau + iot
			if r.IntN(2) == 0 {
				w.land, w.landed = tau+frac(0.9, 2.5), true
			}
		default: // an error: may have landed before it returned
			ret = tau + frac(0, 1)
			if r.IntN(2) == 0 {
				w.land, w.landed = tau+time.Duration(r.Int64N(int64(ret-tau)+1)), true
			}
		}
		if ok && ret-tau > ioTimeout {
			ok = false
		}
		inc.writes = append(inc.writes, w)
		if ret >= crash { // died before it saw the result
			latch(crash)
			break
		}
		if ok && !latched {
			if ret > inc.lastOK+renewalFail {
				latch(inc.lastOK + renewalFail)
			} else {
				inc.lastOK = tau
			}
		}
		// Then it reads all slots, and waits for the next tick.
		next := ret + frac(0, 0.3)
		tau = max(next, tau+clk.wait(p.Interval))
	}
	if !latched {
		latch(min(crash, inc.lastOK+renewalFail))
	}
	inc.fence = inc.latch + p.Watchdog
	return inc
}

type landing struct {
	at       time.Duration
	gen, seq uint64
}

// refSlot is the independent model of the deadline rule for one slot.
type refSlot struct {
	have     bool
	gen, seq uint64
	base     time.Duration
	deadGen  uint64
	dead     bool
	tornSeen bool
}

func runLivenessSim(seed uint64, host, observer timing.Params) (simStats, []string) {
	r := rand.New(rand.NewPCG(seed, 0x11fe))
	p := host
	horizon := 8 * p.HostDead
	nHosts := 1 + r.IntN(3)
	hosts := make([][]*incarnation, nHosts)
	lands := make([][]landing, nHosts)
	for h := range hosts {
		hosts[h] = genHost(r, p, horizon)
		for _, inc := range hosts[h] {
			for _, w := range inc.writes {
				if w.landed {
					lands[h] = append(lands[h], landing{w.land, w.gen, w.seq})
				}
			}
		}
		slices.SortStableFunc(lands[h], func(a, b landing) int { return int(a.at - b.at) })
	}
	incOf := func(h int, gen uint64) *incarnation {
		for _, inc := range hosts[h] {
			if inc.gen == gen {
				return inc
			}
		}
		return nil
	}

	var st simStats
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	tk := liveness.New(observer)
	// The observer's clocks: the tracker is given its raw clock (oat);
	// the reference rule measures host_dead on it too (oSince).
	oclk := drawClock(r)
	oat := func(t time.Duration) time.Time { return at(oclk.read(t)) }
	oSince := func(from, to time.Duration) time.Duration { return oclk.read(to) - oclk.read(from) }
	ref := make([]refSlot, nHosts)
	slots := make([]ondisk.Decoded, nHosts)
	iot := p.IOTimeout
	issue := time.Duration(0)
	for issue < horizon && len(errs) == 0 {
		lat := time.Duration(r.Float64() * 0.4 * float64(iot))
		if r.IntN(12) == 0 {
			lat = time.Duration((0.4 + r.Float64()) * float64(iot))
		}
		done := issue + lat
		var evs []liveness.Event
		if r.IntN(10) == 0 || lat > iot {
			// The read failed (or timed out): judge without it.
			st.failedReads++
			done = min(done, issue+iot)
			evs = tk.Evaluate(oat(done))
			for _, e := range evs {
				if e.Kind == liveness.Transition && e.To == liveness.Dead {
					fail("Evaluate at %v declared slot %d dead", done, e.Slot)
				}
			}
		} else {
			// Each slot's sector is sampled at its own instant
			// within the read; a write landing during the read may
			// tear it.
			wantDead := make([]bool, nHosts)
			for h := range slots {
				sample := issue + time.Duration(r.Int64N(int64(lat)+1))
				d := ondisk.Decoded{Index: h, Status: ondisk.SlotUnused}
				var cur *landing
				torn := false
				for i := range lands[h] {
					l := &lands[h][i]
					if l.at <= sample {
						cur = l
					}
					if l.at >= issue && l.at <= done && r.IntN(3) == 0 {
						torn = true
					}
				}
				rs := &ref[h]
				switch {
				case torn:
					d = corrupt(h)
					st.tornReads++
					rs.tornSeen = true
				case cur != nil:
					d = rec(h, fmt.Sprintf("h%d", h), cur.gen, cur.seq)
					switch {
					case !rs.have || rs.gen != cur.gen || rs.seq != cur.seq:
						rs.have, rs.gen, rs.seq, rs.base = true, cur.gen, cur.seq, done
					case oSince(rs.base, issue) >= observer.HostDead && !(rs.dead && rs.deadGen == cur.gen):
						wantDead[h] = true
					}
				}
				slots[h] = d
			}
			evs = tk.Observe(oat(issue), oat(done), slots)
			gotDead := make([]bool, nHosts)
			for _, e := range evs {
				if e.Kind == liveness.Transition && e.To == liveness.Dead {
					gotDead[e.Slot] = true
				}
			}
			for h := range slots {
				rs := &ref[h]
				if gotDead[h] != wantDead[h] {
					fail("read issued %v done %v: slot %d dead=%v, the deadline rule says %v (baseline %v, host_dead %v)",
						issue, done, h, gotDead[h], wantDead[h], rs.base, observer.HostDead)
					continue
				}
				if !gotDead[h] {
					continue
				}
				rs.dead, rs.deadGen = true, rs.gen
				st.dead++
				if rs.tornSeen {
					st.deadAfterTorn++
				}
				inc := incOf(h, rs.gen)
				if slack := issue - inc.fence; slack <= p.Margin() {
					fail("slot %d generation %d declared dead on a read issued at %v, but it is fenced only at %v (last good write began %v, latch %v)",
						h, rs.gen, issue, inc.fence, inc.lastOK, inc.latch)
				} else if st.minSlack == 0 || slack < st.minSlack {
					st.minSlack = slack
				}
				if oSince(inc.lastOK, done) < p.HostDead {
					fail("slot %d generation %d declared dead at %v: its last successful write began at %v, less than host_dead before",
						h, rs.gen, done, inc.lastOK)
				}
				for _, w := range inc.writes {
					if w.landed && w.land < issue && oSince(w.start, issue) < p.HostDead {
						fail("slot %d generation %d declared dead on a read issued at %v: its write %d began at %v and landed at %v",
							h, rs.gen, issue, w.seq, w.start, w.land)
					}
				}
			}
		}
		for _, e := range evs {
			switch {
			case e.Kind == liveness.Revenant:
				st.revenants++
				if rs := ref[e.Slot]; !rs.dead || rs.deadGen != e.Generation {
					fail("revenant event for slot %d generation %d, not declared dead", e.Slot, e.Generation)
				}
			case e.Kind == liveness.Transition && e.From == liveness.Dead:
				st.reincarnations++
				if rs := ref[e.Slot]; rs.gen == rs.deadGen {
					fail("slot %d left dead (%v) in the dead generation %d", e.Slot, e.To, rs.gen)
				}
			case e.Kind == liveness.Transition && e.To == liveness.Suspect:
				st.suspects++
				if e.Silence <= observer.RenewalFail {
					fail("slot %d suspect after %v of silence", e.Slot, e.Silence)
				}
			}
		}
		// The next read one interval later, or later still when the
		// observer itself stalls; sometimes an Evaluate in between.
		next := issue + oclk.wait(p.Interval) + time.Duration(r.Int64N(int64(p.Interval/10)+1))
		next = max(next, done)
		if r.IntN(50) == 0 {
			next += time.Duration(r.Int64N(int64(p.HostDead)))
		}
		if r.IntN(4) == 0 {
			for _, e := range tk.Evaluate(oat(done + (next-done)/2)) {
				if e.Kind == liveness.Transition && e.To == liveness.Dead {
					fail("Evaluate declared slot %d dead", e.Slot)
				}
			}
		}
		issue = next
	}
	return st, errs
}
