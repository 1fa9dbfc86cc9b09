package join_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

var (
	joinSeeds = flag.Int("join.seeds", 3000, "schedules the join simulation runs")
	joinTrace = flag.Uint64("join.trace", 0, "print every step of the simulation of this seed")
)

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

// TestJoinSimulation runs N joiners (2 to 16) over one slot region with
// random I/O delays (each at most io_timeout), failed and torn I/O, claim
// writes issued late (half the schedules on harsh storage), staggered starts, and a region that already holds
// free, left, live, dead, corrupt and own (restarted-daemon) slots, with
// host names drawn so that some are shared by several machines. See sim for
// the invariants.
func TestJoinSimulation(t *testing.T) {
	start := time.Now()
	var total simStats
	for seed := uint64(1); seed <= uint64(*joinSeeds); seed++ {
		var trace func(string)
		if seed == *joinTrace {
			trace = func(l string) { t.Log(l) }
		}
		st, errs := runJoinSim(seed, trace)
		total.add(st)
		for _, e := range errs {
			t.Errorf("seed %d: %s", seed, e)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%v in %v", total, time.Since(start).Round(time.Millisecond))
	if total.joined == 0 || total.fastJoins == 0 || total.nameInUse == 0 || total.claimingInUse == 0 ||
		total.noFree == 0 || total.deadlines == 0 || total.writeErrs == 0 || total.torn == 0 {
		t.Errorf("the schedules do not exercise the protocol: %v", total)
	}
}

func runJoinSim(seed uint64, trace func(string)) (simStats, []string) {
	return runJoinSimTimers(seed, trace, false)
}

func runJoinSimTimers(seed uint64, trace func(string), naiveTimers bool) (simStats, []string) {
	r := rand.New(rand.NewPCG(seed, 0x501))
	p := simProfiles[seed%uint64(len(simProfiles))]
	n := 2 + r.IntN(15)
	nslots := max(1, n/2) + r.IntN(n+4)
	s := newSim(p, r, nslots)
	s.naiveTimers = naiveTimers
	s.st.seeds = 1
	if seed/3%2 == 1 {
		// Harsh storage: a fifth of the joiners' I/O fails, half is
		// slow, a tenth of the claim writes are issued late.
		s.ioFail, s.slowIO, s.late = 20, 50, 10
	}
	s.trace = trace

	// Names are drawn from fewer names than joiners: some machines share
	// a name (a misconfiguration the join must refuse, not duplicate).
	names := make([]string, max(2, n*3/4))
	for i := range names {
		names[i] = fmt.Sprintf("h%d", i)
	}
	type joinerSpec struct {
		name    string
		m, b    byte
		start   time.Duration
		resetAt time.Duration
	}
	specs := make([]joinerSpec, n)
	for i := range specs {
		specs[i] = joinerSpec{name: names[r.IntN(len(names))], m: byte(i + 1), b: byte(i + 1)}
		if r.IntN(3) == 0 {
			specs[i].start = time.Duration(r.Int64N(int64(3 * p.HostDead)))
		} else {
			specs[i].start = time.Duration(r.Int64N(int64(3 * p.Interval)))
		}
	}
	liveNames := map[string]bool{}    // names of the members there from the start
	restartNames := map[string]bool{} // names of joiners restarting in the same boot
	for i := range nslots {
		switch k := r.IntN(100); {
		case k < 45: // unused
		case k < 55: // left, by anyone
			s.preset(i, -time.Duration(r.Int64N(int64(time.Hour))), ok(slot(i, names[r.IntN(len(names))], byte(100+r.IntN(50)), 1,
				uint64(1+r.IntN(9)), 9, ondisk.StateLeft)))
		case k < 65: // a live member, from a machine that is not joining
			name := fmt.Sprintf("m%d", i)
			if r.IntN(2) == 0 {
				name = names[r.IntN(len(names))]
			}
			if liveNames[name] || restartNames[name] {
				break // two live hosts of one name: not a state a pool reaches
			}
			liveNames[name] = true
			rec := slot(i, name, byte(150+i%100), 1, uint64(1+r.IntN(9)), 100, ondisk.StateLive)
			s.addMember(i, rec, time.Duration(r.Int64N(int64(p.Interval))))
		case k < 75: // a dead host: silent for a while already
			st := []ondisk.SlotState{ondisk.StateLive, ondisk.StateJoining, ondisk.StateLeaving}[r.IntN(3)]
			s.preset(i, -time.Duration(r.Int64N(int64(2*p.HostDead))), ok(slot(i, names[r.IntN(len(names))], byte(100+r.IntN(50)), 1,
				uint64(1+r.IntN(9)), 50, st)))
		case k < 90: // a joiner's own earlier slot: a restart
			js := &specs[r.IntN(n)]
			st := []ondisk.SlotState{ondisk.StateLive, ondisk.StateJoining, ondisk.StateLeaving, ondisk.StateLeft}[r.IntN(4)]
			bootID := js.b
			age := -time.Duration(r.Int64N(int64(2 * p.HostDead)))
			switch {
			case r.IntN(2) == 0:
				bootID = js.b + 100 // an earlier boot
			case (st == ondisk.StateLive || st == ondisk.StateLeaving) && js.resetAt == 0 && !liveNames[js.name] && !restartNames[js.name]:
				// A member's daemon restarted in the same boot: its
				// slot was renewed less than renewal_fail ago (or
				// its watchdog would have reset the machine), and
				// the watchdog resets the machine renewal_fail +
				// watchdog after that renewal unless it has joined
				// again.
				js.start = time.Duration(r.Int64N(int64(p.RenewalFail / 2)))
				age = js.start - p.RenewalFail/2
				js.resetAt = age + p.RenewalFail + p.Watchdog
				restartNames[js.name] = true
			case st == ondisk.StateLive || st == ondisk.StateLeaving:
				bootID = js.b + 100 // one same-boot member slot per joiner
			}
			s.preset(i, age, ok(slot(i, js.name, js.m, bootID, uint64(1+r.IntN(9)), 70, st)))
		default:
			s.preset(i, -time.Second, ondisk.Decoded{Status: ondisk.SlotCorrupt, Reason: "scribbled"})
		}
	}
	for _, js := range specs {
		c := config(js.name, js.m, js.b)
		c.Jitter = func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return time.Duration(r.Int64N(int64(max)))
		}
		c.Nonce = r.Uint64
		c.MaxAttempts = 8
		c.Timing = p
		s.addJoiner(c, js.start, js.resetAt)
	}
	s.run(200 * p.HostDead)
	s.check()
	return s.st, s.errs
}

// The drift model has teeth: with the same schedules, joiners that wait on
// their slewed CLOCK_MONOTONIC alone (a Go timer, no re-read of the raw
// clock: the drivers before safeclock) break the join's invariants.
func TestJoinSimulationNaiveTimersFail(t *testing.T) {
	for seed := uint64(1); seed <= uint64(*joinSeeds); seed++ {
		if _, errs := runJoinSimTimers(seed, nil, true); len(errs) > 0 {
			t.Logf("seed %d with naive timers: %s", seed, errs[0])
			return
		}
	}
	t.Errorf("%d schedules with joiners on naive (slewed) timers all passed: the simulation does not model the slew", *joinSeeds)
}

func ok(s ondisk.Slot) ondisk.Decoded { return ondisk.Decoded{Slot: s, Status: ondisk.SlotOK} }

// A whole pool powers on at once: 2 to 16 hosts with distinct names, an
// empty region with a slot for each (and up to 4 spare), starting within
// one interval of each other, on storage with the usual failures. Every
// host must join, within MaxAttempts claims.
func TestJoinSimulationPowerOn(t *testing.T) {
	start := time.Now()
	var total simStats
	seeds := max(*joinSeeds/3, 1)
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		r := rand.New(rand.NewPCG(seed, 0x90))
		p := simProfiles[seed%uint64(len(simProfiles))]
		n := 2 + r.IntN(15)
		s := newSim(p, r, n+r.IntN(5))
		s.st.seeds = 1
		for i := range n {
			c := config(fmt.Sprintf("h%d", i), byte(i+1), byte(i+1))
			c.Timing, c.Nonce, c.MaxAttempts = p, r.Uint64, 8
			c.Jitter = func(max time.Duration) time.Duration { return time.Duration(r.Int64N(int64(max))) }
			s.addJoiner(c, time.Duration(r.Int64N(int64(p.Interval))), 0)
		}
		s.run(200 * p.HostDead)
		s.check()
		for _, h := range s.hosts {
			if !h.joined {
				s.fail("%s did not join: %v", h.name, h.err)
			}
		}
		total.add(s.st)
		for _, e := range s.errs {
			t.Errorf("seed %d (%d hosts): %s", seed, n, e)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	t.Logf("%v in %v", total, time.Since(start).Round(time.Millisecond))
}
