package heartbeat

import (
	"testing"
	"time"
)

// The live budget: the largest gap between two renewals of the last
// GapWindow, forgotten after it.
func TestGapWindow(t *testing.T) {
	var w gapWindow
	t0 := time.Unix(1000, 0)
	at := t0
	for range 10 {
		at = at.Add(time.Second)
		w.add(at, time.Second)
	}
	at = at.Add(5 * time.Second)
	w.add(at, 5*time.Second) // a stall of 5 s
	for range 2000 {         // more than the ring holds: old samples go
		at = at.Add(100 * time.Millisecond)
		w.add(at, 100*time.Millisecond)
	}
	if got := w.max(at); got != 5*time.Second {
		t.Errorf("max = %v, want the 5 s stall", got)
	}
	if got := w.max(at.Add(GapWindow + gapSpan())); got != 0 {
		t.Errorf("after GapWindow: max = %v, want 0", got)
	}
	var v gapWindow
	v.add(t0, 3*time.Second)
	v.add(t0.Add(time.Minute), time.Second)
	if got := v.max(t0.Add(2 * time.Minute)); got != 3*time.Second {
		t.Errorf("max = %v, want 3s", got)
	}
	if got := v.max(t0.Add(GapWindow + 30*time.Second + gapSpan())); got != time.Second {
		t.Errorf("once the 3 s gap is older than GapWindow: max = %v, want 1s", got)
	}
}
