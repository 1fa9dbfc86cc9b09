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
		st, errs := runLeaseSim(seed, trace)
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
		"%d decisions learnt, %d leader records landed; %d crashes, %d stalls, %d leaves, %d restarts; %d late write landings, %d torn reads; "+
		"takeover after killing the master (%d kills): min %.3f, median %.3f, max %.3f × host_dead",
		s.seeds, s.hosts, s.simTime.Round(time.Second), s.longest.Round(time.Second), s.longestSeed, s.events,
		s.acquired, s.released, s.handedOver, s.hoResumed, s.hoLost, s.lost, s.fenced, s.busy,
		s.decisions, s.leaderLandings, s.crashes, s.stalls, s.leaves, s.restarts, s.lateLandings, s.tornReads,
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
