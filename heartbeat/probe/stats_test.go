package probe

import (
	"testing"
	"time"
)

const ms1 = time.Millisecond

// cycles builds n write+read cycles, one every period, with the latencies
// lat(i) for the write and the read of cycle i.
func cycles(n int, period time.Duration, lat func(i int) (time.Duration, time.Duration)) []Sample {
	var s []Sample
	for i := range n {
		w, r := lat(i)
		start := time.Duration(i) * period
		s = append(s, Sample{Op: OpWrite, Cycle: i, Start: start, Latency: w},
			Sample{Op: OpRead, Cycle: i, Start: start + w, Latency: r})
	}
	return s
}

func TestPercentilesNearestRank(t *testing.T) {
	// 1000 cycles: write i+1 µs... make writes 1..1000 ms, reads 0.
	s := cycles(1000, 2*time.Second, func(i int) (time.Duration, time.Duration) {
		return time.Duration(i+1) * ms1, 0
	})
	st := Summarize(s, 2000*time.Second)
	w := st.Write
	if w.Count != 1000 || w.P50 != 500*ms1 || w.P99 != 990*ms1 || w.P999 != 999*ms1 || w.Max != 1000*ms1 {
		t.Errorf("write latency %+v, want count 1000, p50 500ms, p99 990ms, p999 999ms, max 1s", w)
	}
	if st.Pair.Max != 1000*ms1 || st.Pair.P999 != 999*ms1 {
		t.Errorf("pair %+v", st.Pair)
	}
	if st.All.Count != 2000 || st.All.P50 != 0 || st.All.Max != 1000*ms1 {
		t.Errorf("all %+v", st.All)
	}
	if st.Samples != 2000 || st.Cycles != 1000 || st.Errors != 0 {
		t.Errorf("counts: samples %d cycles %d errors %d", st.Samples, st.Cycles, st.Errors)
	}
}

func TestP999IsMaxBelowAThousand(t *testing.T) {
	s := cycles(10, 100*ms1, func(i int) (time.Duration, time.Duration) {
		if i == 3 {
			return 50 * ms1, ms1
		}
		return ms1, ms1
	})
	st := Summarize(s, time.Second)
	if st.Pair.P999 != 51*ms1 || st.Pair.Max != 51*ms1 || st.Pair.P50 != 2*ms1 {
		t.Errorf("pair %+v, want p50 2ms, p999 = max = 51ms", st.Pair)
	}
	if st.All.P99 != 50*ms1 {
		t.Errorf("all p99 %v, want 50ms (the largest of 20)", st.All.P99)
	}
}

func TestErrorsAndTimeouts(t *testing.T) {
	s := cycles(4, 100*ms1, func(int) (time.Duration, time.Duration) { return ms1, ms1 })
	s[2].Outcome = Failed // cycle 1's write
	s[2].Latency = 0
	s[4].Outcome = TimedOut // cycle 2's write
	s[4].Latency = 5 * time.Second
	st := Summarize(s, 6*time.Second)
	if st.Errors != 1 || st.Timeouts != 1 || st.Samples != 7 {
		t.Errorf("errors %d timeouts %d samples %d, want 1, 1, 7", st.Errors, st.Timeouts, st.Samples)
	}
	if st.All.Max != 5*time.Second || st.Write.Max != 5*time.Second {
		t.Errorf("a timeout counts at the timeout: all max %v write max %v", st.All.Max, st.Write.Max)
	}
	if st.Pair.Count != 2 || st.Pair.Max != 2*ms1 {
		t.Errorf("pairs %+v, want 2 of 2ms (cycle 1's write failed, cycle 2's timed out)", st.Pair)
	}
	// Completed writes returned at 1ms and 301ms; the run ended at 6s.
	if st.LongestStall != 6*time.Second-301*ms1 || st.StallFrom != 301*ms1 {
		t.Errorf("longest stall %v from %v, want %v from 301ms", st.LongestStall, st.StallFrom, 6*time.Second-301*ms1)
	}
}

func TestLongestStallBetweenWrites(t *testing.T) {
	// Writes every 100 ms; cycle 5's write, issued at 500 ms, takes 2 s,
	// and the cycles after it start once it has returned, as in a run.
	var s []Sample
	start := time.Duration(0)
	for i := range 10 {
		w := ms1
		if i == 5 {
			w = 2 * time.Second
		}
		s = append(s, Sample{Op: OpWrite, Cycle: i, Start: start, Latency: w},
			Sample{Op: OpRead, Cycle: i, Start: start + w, Latency: ms1})
		start = max(start+100*ms1, start+w+ms1)
	}
	st := Summarize(s, start)
	// Cycle 4's write returned at 401ms, cycle 5's at 2.5 s.
	if want := 2500*ms1 - 401*ms1; st.LongestStall != want || st.StallFrom != 401*ms1 {
		t.Errorf("longest stall %v from %v, want %v from 401ms", st.LongestStall, st.StallFrom, want)
	}
	// A run with no completed write stalls for its whole length.
	if st := Summarize(nil, 3*time.Second); st.LongestStall != 3*time.Second || st.Samples != 0 || st.Histogram != nil {
		t.Errorf("empty run: %+v", st)
	}
}

func TestHistogram(t *testing.T) {
	var s []Sample
	for i, d := range []time.Duration{15 * time.Microsecond, 20 * time.Microsecond, 3 * ms1, 4 * ms1, 2 * time.Hour} {
		s = append(s, Sample{Op: OpRead, Cycle: i, Latency: d})
	}
	h := Summarize(s, time.Second).Histogram
	if h[0] != (Bucket{From: 10 * time.Microsecond, To: 20 * time.Microsecond, Count: 2}) {
		t.Errorf("first bin %+v, want (10µs, 20µs]: 2", h[0])
	}
	total := 0
	for i, b := range h {
		total += b.Count
		if i > 0 && b.From != h[i-1].To {
			t.Errorf("bins %d and %d do not meet: %+v %+v", i-1, i, h[i-1], b)
		}
		if b.To != 0 && b.To < b.From {
			t.Errorf("bin %+v", b)
		}
	}
	if total != 5 {
		t.Errorf("histogram holds %d samples, want 5", total)
	}
	last := h[len(h)-1]
	if last.To != 0 || last.From != 5000*time.Second || last.Count != 1 {
		t.Errorf("last bin %+v, want the open bin above 5000s with one sample", last)
	}
	var three Bucket
	for _, b := range h {
		if b.From == 2*ms1 {
			three = b
		}
	}
	if three != (Bucket{From: 2 * ms1, To: 5 * ms1, Count: 2}) {
		t.Errorf("bin (2ms, 5ms] is %+v, want 2 samples", three)
	}
}
