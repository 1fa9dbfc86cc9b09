package liveness_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// slots2000 returns two reads of 2000 used slots in which every record
// differs between the first and the second.
func slots2000() (a, b []ondisk.Decoded) {
	a = make([]ondisk.Decoded, 2000)
	b = make([]ondisk.Decoded, 2000)
	for i := range a {
		name := fmt.Sprintf("host%04d", i)
		a[i] = rec(i, name, 1, 1)
		b[i] = rec(i, name, 1, 2)
	}
	return a, b
}

// One Observe of 2000 slots that all changed since the previous read, all
// hosts live already (no transition).
func BenchmarkTrackerObserve2000(b *testing.B) {
	ra, rb := slots2000()
	tk := liveness.New(params)
	now := t0
	tk.Observe(now, now.Add(time.Millisecond), ra)
	now = now.Add(params.Interval)
	tk.Observe(now, now.Add(time.Millisecond), rb) // all turn live
	reads := [2][]ondisk.Decoded{ra, rb}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now = now.Add(params.Interval)
		tk.Observe(now, now.Add(time.Millisecond), reads[i%2])
	}
	if p, _ := tk.Peer(1999); p.State != liveness.Live {
		b.Fatalf("slot 1999 is %v", p.State)
	}
}

// One Evaluate of 2000 live slots, no transition.
func BenchmarkTrackerEvaluate2000(b *testing.B) {
	ra, rb := slots2000()
	tk := liveness.New(params)
	tk.Observe(t0, t0.Add(time.Millisecond), ra)
	tk.Observe(t0.Add(time.Second), t0.Add(time.Second+time.Millisecond), rb)
	now := t0.Add(2 * time.Second)
	b.ReportAllocs()
	for b.Loop() {
		if evs := tk.Evaluate(now); len(evs) != 0 {
			b.Fatalf("%d events", len(evs))
		}
	}
}
