package lease_test

import (
	"flag"
	"fmt"
	"sort"
	"testing"
	"time"
)

var (
	simSeeds = flag.Int("lease.seeds", defaultSeeds, "schedules the lease simulation runs (default: 2000, or 250 under the race detector)")
	simFirst = flag.Uint64("lease.first", 1, "first seed of the lease simulation")
	simTrace = flag.Uint64("lease.trace", 0, "print every step of the lease simulation of this seed")
	// simNaiveSearch: TestLeaseSimulationNeedsLateWriteRules searches
	// seeds 1..20000 for schedules that fail with a rule switched off.
	simNaiveSearch = flag.Bool("lease.naive-search", false, "search the seeds that fail with a late-write rule switched off")
)

// TestLeaseSimulation runs the randomized simulation (see sim) over
// -lease.seeds schedules and fails on the first seed that breaks an
// invariant; -lease.trace=SEED prints that seed's every step.
func TestLeaseSimulation(t *testing.T) {
	start := time.Now()
	var total simStats
	var slowest time.Duration
	var slowSeed uint64
	var worstRatio, worstAfter float64
	var worstRatioSeed, worstAfterSeed uint64
	for seed := *simFirst; seed < *simFirst+uint64(*simSeeds); seed++ {
		var trace func(string)
		if seed == *simTrace {
			trace = func(l string) { t.Log(l) }
		}
		t1 := time.Now()
		st, errs := runLeaseSim(seed, trace, simOptions{})
		if d := time.Since(t1); d > slowest {
			slowest, slowSeed = d, seed
		}
		if st.simTime > total.longest {
			total.longest, total.longestSeed = st.simTime, seed
		}
		for _, x := range st.ratios {
			if x > worstRatio {
				worstRatio, worstRatioSeed = x, seed
			}
		}
		for _, x := range st.afterDead {
			if x > worstAfter {
				worstAfter, worstAfterSeed = x, seed
			}
		}
		total.add(st)
		for _, e := range errs {
			t.Errorf("seed %d: %s", seed, e)
		}
		if t.Failed() {
			t.Fatalf("seed %d failed; rerun with -lease.trace=%d -lease.first=%d -lease.seeds=1", seed, seed, seed)
		}
	}
	t.Logf("%v", total)
	t.Logf("%d schedules in %v; slowest seed %d took %v; slowest takeover %.3f × host_dead (seed %d), %.3f intervals after the first dead judgment (seed %d)",
		*simSeeds, time.Since(start).Round(time.Millisecond), slowSeed, slowest.Round(time.Millisecond),
		worstRatio, worstRatioSeed, worstAfter, worstAfterSeed)
	if *simSeeds >= 100 && (total.acquired == 0 || total.handedOver == 0 || total.hoResumed+total.hoLost == 0 || total.released == 0 ||
		total.lost == 0 || total.fenced == 0 || total.busy == 0 || total.lateLandings == 0 || total.tornReads == 0) {
		t.Errorf("the schedules do not exercise the protocol: %v", total)
	}
}

func (s simStats) String() string {
	rs := append([]float64(nil), s.ratios...)
	sort.Float64s(rs)
	lo, med, hi := 0.0, 0.0, 0.0
	if n := len(rs); n > 0 {
		lo, med, hi = rs[0], rs[n/2], rs[n-1]
	}
	return fmt.Sprintf("%d schedules, %d hosts, %v simulated (longest run %v, seed %d), %d events: "+
		"%d acquisitions, %d releases, %d hand-overs (%d failed and resumed, %d failed and lost), %d losses, %d fences, %d busy, "+
		"%d decisions learnt, %d leader records landed; %d crashes, %d stalls, %d leaves, %d restarts; %d late write landings, %d torn reads, %d ballot blocks scribbled, %d decisions superseded (learnt only by gone incarnations); "+
		"takeover after killing the master (%d kills): min %.3f, median %.3f, max %.3f × host_dead",
		s.seeds, s.hosts, s.simTime.Round(time.Second), s.longest.Round(time.Second), s.longestSeed, s.events,
		s.acquired, s.released, s.handedOver, s.hoResumed, s.hoLost, s.lost, s.fenced, s.busy,
		s.decisions, s.leaderLandings, s.crashes, s.stalls, s.leaves, s.restarts, s.lateLandings, s.tornReads, s.scribbled, s.superseded,
		len(rs), lo, med, hi) + fmt.Sprintf("; from the first host judging it dead to a new master: median %.3f, max %.3f intervals", q(s.afterDead, 0.5), q(s.afterDead, 1))
}

// q is the quantile f of xs (0 for none).
func q(xs []float64, f float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	c := append([]float64(nil), xs...)
	sort.Float64s(c)
	return c[min(len(c)-1, int(f*float64(len(c))))]
}

// TestLeaseSimulationNeedsLateWriteRules runs schedules in which crashed
// hosts restart at once, with each of the two rules against their late
// writes switched off (doc.go, "Late writes of an earlier incarnation"):
//
//   - no quarantine (Config.QuietUntil): the predecessor's writes still in
//     flight land over the new incarnation's ballot block, and two hosts
//     learn different masters for one epoch;
//   - a later generation taken as proof at once: another host takes the
//     next epoch while the crashed master's leader write is in flight, and
//     the record goes back when it lands.
//
// The seeds are among those of 1..20000 where each variant fails (found
// with -lease.naive-search, which skips the schedules that scribble over
// a live host's block: seed 4681 without the quarantine, where two
// learners of epoch 1 disagree; seeds 3127 and 4542 with a later
// generation taken as proof at once, where the leader record goes back an
// epoch (found again once observers read at once a deadline that passed
// during a round; 17954 no longer fails); seed 4684 of the issue failed
// before either rule existed). The protocol with both rules passes them.
func TestLeaseSimulationNeedsLateWriteRules(t *testing.T) {
	variants := []struct {
		name  string
		opt   simOptions
		seeds []uint64
	}{
		{"no quarantine", simOptions{noQuarantine: true}, []uint64{4681}},
		{"later generation gone at once", simOptions{goneAtOnce: true}, []uint64{3127, 4542}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			seeds := v.seeds
			if *simNaiveSearch {
				seeds = nil
				for seed := uint64(1); seed <= 20000 && len(seeds) < 5; seed++ {
					if seed%5 == 3 {
						// A live host's block is scribbled: without the
						// quarantine, a fresh incarnation cannot count its
						// own block empty, and the pool waits (liveness,
						// not the late writes searched for here).
						continue
					}
					if _, errs := runLeaseSim(seed, nil, v.opt); len(errs) > 0 {
						seeds = append(seeds, seed)
					}
				}
				t.Logf("seeds that fail (%s): %v", v.name, seeds)
			}
			failed := 0
			for _, seed := range seeds {
				_, errs := runLeaseSim(seed, nil, v.opt)
				if len(errs) == 0 {
					t.Logf("seed %d passes (%s)", seed, v.name)
					continue
				}
				failed++
				t.Logf("seed %d (%s): %s", seed, v.name, errs[0])
				if _, errs := runLeaseSim(seed, nil, simOptions{}); len(errs) > 0 {
					t.Errorf("seed %d fails with both rules too: %s", seed, errs[0])
				}
			}
			if failed == 0 {
				t.Fatalf("none of seeds %v fails (%s): the simulation no longer exercises it there; find new seeds with -lease.naive-search", seeds, v.name)
			}
		})
	}
}
