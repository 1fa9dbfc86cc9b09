package safeclock

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestNowIsRawAndAdvances(t *testing.T) {
	a := Now()
	if err := Check(a); err != nil {
		t.Fatal(err)
	}
	b := Now()
	if b.Before(a) {
		t.Fatalf("raw clock went back: %v then %v", a, b)
	}
	if got := FromNanos(Nanos(a)); !got.Equal(a) || got != a {
		t.Fatalf("Nanos/FromNanos round trip: %v became %v", a, got)
	}
}

func TestCheckCatchesTimeNow(t *testing.T) {
	if err := Check(time.Now()); err == nil {
		t.Fatal("Check(time.Now()) = nil, want an error (monotonic reading)")
	}
	if err := Check(time.Now().Round(0)); err == nil {
		t.Fatal("Check(wall time without monotonic reading) = nil, want an error")
	}
	if err := Check(time.Time{}); err != nil {
		t.Fatalf("Check(zero) = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Since(time.Now()) did not panic")
		}
	}()
	Since(time.Now())
}

// A Go timer on a CLOCK_MONOTONIC slewed 10 % fast (the kernel's maximum)
// ends before its duration on the raw clock; SleepUntil does not.
func TestSleepUntilNotEarlyOnFastSlew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewSlewed(FromNanos(1e12), +100_000)
		start := c.Now()
		time.Sleep(10 * time.Second) // what a driver on Go timers does
		if naive := c.Now().Sub(start); naive >= 10*time.Second {
			t.Fatalf("setup: naive wait lasted %v of raw time, want < 10s", naive)
		} else {
			t.Logf("a Go timer of 10s lasted %v on the raw clock", naive)
		}
		start = c.Now()
		deadline := start.Add(10 * time.Second)
		if err := SleepUntil(context.Background(), c, deadline); err != nil {
			t.Fatal(err)
		}
		if now := c.Now(); now.Before(deadline) {
			t.Fatalf("SleepUntil returned %v before its deadline", deadline.Sub(now))
		}
	})
}

// On a CLOCK_MONOTONIC slowed 10 %, SleepUntil ends at its deadline, not
// 10 % late.
func TestSleepUntilNotLateOnSlowSlew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewSlewed(FromNanos(1e12), -100_000)
		deadline := c.Now().Add(10 * time.Second)
		if err := SleepUntil(context.Background(), c, deadline); err != nil {
			t.Fatal(err)
		}
		late := c.Now().Sub(deadline)
		if late < 0 || late > 2*time.Millisecond {
			t.Fatalf("SleepUntil ended %v after its deadline, want within [0, 2ms]", late)
		}
	})
}

func TestSleepUntilCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewSlewed(FromNanos(1e12), 0)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := SleepUntil(ctx, c, c.Now().Add(time.Hour)); err != context.DeadlineExceeded {
			t.Fatalf("SleepUntil = %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestRateBetween(t *testing.T) {
	a := Sample{Raw: 1e12, Monotonic: 5e12, Realtime: 1.7e18}
	h := int64(time.Hour)
	b := Sample{Raw: a.Raw + h + h/1000, Monotonic: a.Monotonic + h, Realtime: a.Realtime + h - h/2000}
	r := RateBetween(a, b)
	if d := r.VsMonotonicPPM - 1000; d > 0.01 || d < -0.01 {
		t.Errorf("VsMonotonicPPM = %v, want 1000", r.VsMonotonicPPM)
	}
	if d := r.VsRealtimePPM - 1500.75; d > 0.1 || d < -0.1 {
		t.Errorf("VsRealtimePPM = %v, want ≈1500.75", r.VsRealtimePPM)
	}
	if err := CheckRate(r); err == nil {
		t.Error("CheckRate(1000 ppm over 1h) = nil, want an error")
	}
	ok := RateBetween(a, Sample{Raw: a.Raw + h + h/10000, Monotonic: a.Monotonic + h})
	if err := CheckRate(ok); err != nil {
		t.Errorf("CheckRate(100 ppm over 1h) = %v", err)
	}
	short := RateBetween(a, Sample{Raw: a.Raw + int64(time.Minute)*11/10, Monotonic: a.Monotonic + int64(time.Minute)})
	if err := CheckRate(short); err != nil {
		t.Errorf("CheckRate over a minute = %v, want nil (not judged)", err)
	}
}

// The real clocks: over a short window the raw clock and CLOCK_MONOTONIC
// agree within NTP's maximum slew, and adjtimex can be read.
func TestRealClocks(t *testing.T) {
	a, err := TakeSample()
	if err != nil {
		t.Fatal(err)
	}
	// A window of a few milliseconds of real time, without sleeping:
	// sample until the raw clock has moved on 5 ms.
	var b Sample
	for b.Raw-a.Raw < int64(5*time.Millisecond) {
		if b, err = TakeSample(); err != nil {
			t.Fatal(err)
		}
	}
	r := RateBetween(a, b)
	t.Logf("raw vs monotonic %+.1f ppm, vs realtime %+.1f ppm over %v", r.VsMonotonicPPM, r.VsRealtimePPM, r.Window)
	if r.VsMonotonicPPM > 110_000 || r.VsMonotonicPPM < -110_000 {
		t.Errorf("raw clock ran %+.0f ppm against CLOCK_MONOTONIC, beyond the kernel's ±100 000", r.VsMonotonicPPM)
	}
	freq, tick, err := KernelPPM()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel correction: freq %+.3f ppm, tick %+.0f ppm", freq, tick)
}
