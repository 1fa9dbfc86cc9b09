package probe

import (
	"fmt"
	"slices"
	"time"
)

// Op is what an I/O of the probe did.
type Op uint8

const (
	OpWrite Op = iota // a one-sector write, as a renewal
	OpRead            // a read of the region, as a heartbeat round
)

func (o Op) String() string {
	if o == OpWrite {
		return "write"
	}
	return "read"
}

// Outcome is how an I/O ended.
type Outcome uint8

const (
	OK       Outcome = iota // returned in time, correct
	TimedOut                // had not returned after the probe's timeout
	Failed                  // returned an error, or a read showed other data than the last write
	// Cut: the probe was stopped (Ctrl-C) with the I/O under way. Its
	// latency is a lower bound, like a timeout's.
	Cut
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case TimedOut:
		return "timed out"
	case Failed:
		return "failed"
	case Cut:
		return "cut short"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Sample is one I/O. Times are offsets from the start of the run on the
// raw monotonic clock (CLOCK_MONOTONIC_RAW).
type Sample struct {
	Op      Op
	Cycle   int           // the write+read pair it belongs to, from 0
	Start   time.Duration // issue
	Latency time.Duration // issue to return; for TimedOut the timeout, for Cut the time waited
	Outcome Outcome
	Err     string // what went wrong, for Failed and TimedOut
}

// Latency is a summary of a set of latencies. Percentiles are nearest-rank:
// the smallest observed value that at least that share of the samples do
// not exceed, so P999 is Max below 1000 samples.
type Latency struct {
	Count int
	P50   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

// Bucket is one bin of a histogram: the I/Os whose latency L has From < L
// ≤ To (From = 0 for the first bin; To = 0 means no upper bound).
type Bucket struct {
	From, To time.Duration
	Count    int
}

// Stats summarise a run.
type Stats struct {
	// Samples counts the I/Os with a latency: OK, TimedOut and Cut
	// (the last two at their lower bound). Failed I/Os are counted in
	// Errors only.
	Samples  int
	Cycles   int // write+read pairs started
	Errors   int // Failed I/Os
	Timeouts int // TimedOut I/Os
	// All is every I/O with a latency; Write and Read each kind; Pair
	// the sum of a cycle's write and read, over the cycles in which
	// both returned OK (a timeout is a stall, not a latency of a pair).
	All, Write, Read, Pair Latency
	// LongestStall is the longest span of the run without a completed
	// write: between the start and the first write to return OK,
	// between two that did, or from the last to the end. It includes
	// the probe's own period between writes.
	LongestStall time.Duration
	// StallFrom is where that span began (offset from the run's start).
	StallFrom time.Duration
	// Histogram of All, log-spaced (1-2-5 steps), from the first bin
	// holding a sample to the last.
	Histogram []Bucket
	// Elapsed is the length of the run.
	Elapsed time.Duration
}

// bounds are the histogram's upper bin edges: 1-2-5 steps from 10 µs to
// 5000 s; a last, open bin takes what is above.
var bounds = func() []time.Duration {
	var b []time.Duration
	for d := 10 * time.Microsecond; d <= time.Hour; d *= 10 {
		b = append(b, d, 2*d, 5*d)
	}
	return b
}()

// Summarize computes the statistics of the samples of a run that lasted
// elapsed. The samples may come in any order.
func Summarize(samples []Sample, elapsed time.Duration) Stats {
	var st Stats
	st.Elapsed = elapsed
	var all, w, r []time.Duration
	type pair struct {
		w, r       time.Duration
		hasW, hasR bool
	}
	pairs := map[int]*pair{}
	var cycles []int
	var completions []time.Duration // return instants of OK writes
	for _, s := range samples {
		if _, ok := pairs[s.Cycle]; !ok {
			pairs[s.Cycle] = &pair{}
			cycles = append(cycles, s.Cycle)
		}
		switch s.Outcome {
		case Failed:
			st.Errors++
			continue
		case TimedOut:
			st.Timeouts++
		}
		st.Samples++
		all = append(all, s.Latency)
		p := pairs[s.Cycle]
		ok := s.Outcome == OK
		if s.Op == OpWrite {
			w = append(w, s.Latency)
			p.w, p.hasW = s.Latency, ok
			if ok {
				completions = append(completions, s.Start+s.Latency)
			}
		} else {
			r = append(r, s.Latency)
			p.r, p.hasR = s.Latency, ok
		}
	}
	st.Cycles = len(pairs)
	var pl []time.Duration
	slices.Sort(cycles)
	for _, c := range cycles {
		if p := pairs[c]; p.hasW && p.hasR {
			pl = append(pl, p.w+p.r)
		}
	}
	st.All, st.Write, st.Read, st.Pair = summary(all), summary(w), summary(r), summary(pl)
	st.Histogram = histogram(all)
	st.LongestStall, st.StallFrom = longestStall(completions, elapsed)
	return st
}

// summary sorts ds (in place) and takes its percentiles.
func summary(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	return Latency{
		Count: len(ds),
		P50:   rank(ds, 500),
		P99:   rank(ds, 990),
		P999:  rank(ds, 999),
		Max:   ds[len(ds)-1],
	}
}

// rank is the nearest-rank per-mille percentile of sorted ds: the value
// at 1-based position ceil(n × pm / 1000).
func rank(sorted []time.Duration, pm int) time.Duration {
	n := len(sorted)
	i := (n*pm + 999) / 1000
	return sorted[max(i, 1)-1]
}

func histogram(ds []time.Duration) []Bucket {
	if len(ds) == 0 {
		return nil
	}
	counts := make([]int, len(bounds)+1)
	for _, d := range ds {
		i, _ := slices.BinarySearch(bounds, d) // first bound >= d
		counts[i]++
	}
	first, last := -1, -1
	for i, c := range counts {
		if c > 0 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	var out []Bucket
	for i := first; i <= last; i++ {
		b := Bucket{Count: counts[i]}
		if i > 0 {
			b.From = bounds[i-1]
		}
		if i < len(bounds) {
			b.To = bounds[i]
		}
		out = append(out, b)
	}
	return out
}

// longestStall is the longest gap in [0, elapsed] between the instants
// writes completed, and where it began.
func longestStall(completions []time.Duration, elapsed time.Duration) (time.Duration, time.Duration) {
	slices.Sort(completions)
	var longest, from, prev time.Duration
	for _, c := range completions {
		if c-prev > longest {
			longest, from = c-prev, prev
		}
		prev = c
	}
	if elapsed-prev > longest {
		longest, from = elapsed-prev, prev
	}
	return longest, from
}
