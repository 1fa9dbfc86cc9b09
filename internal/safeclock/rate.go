package safeclock

import (
	"fmt"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// AssumedPPM is the bound this package and heartbeat/timing assume on the
// rate error of one host's CLOCK_MONOTONIC_RAW (its oscillator): ±500 ppm,
// the most the kernel's NTP frequency correction may ever have to
// compensate (MAXFREQ, 500 000 ns/s, include/linux/timex.h). Two hosts'
// raw clocks then differ in rate by at most 2 × AssumedPPM.
const AssumedPPM = 500

// Sample is one reading of the three clocks, taken back to back.
type Sample struct {
	Raw, Monotonic, Realtime int64 // nanoseconds
}

// TakeSample reads CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC and CLOCK_REALTIME.
func TakeSample() (Sample, error) {
	var s Sample
	for _, c := range []struct {
		id  int32
		dst *int64
		nm  string
	}{
		{unix.CLOCK_MONOTONIC_RAW, &s.Raw, "CLOCK_MONOTONIC_RAW"},
		{unix.CLOCK_MONOTONIC, &s.Monotonic, "CLOCK_MONOTONIC"},
		{unix.CLOCK_REALTIME, &s.Realtime, "CLOCK_REALTIME"},
	} {
		var ts unix.Timespec
		if err := unix.ClockGettime(c.id, &ts); err != nil {
			return Sample{}, fmt.Errorf("clock_gettime(%s): %w", c.nm, err)
		}
		*c.dst = ts.Nano()
	}
	return s, nil
}

// Rate is how fast CLOCK_MONOTONIC_RAW ran against the NTP-disciplined
// clocks between two samples, in parts per million: positive when the raw
// clock ran fast. Over a long window (hours) NTP has steered CLOCK_MONOTONIC
// and CLOCK_REALTIME to true time, so these figures are the oscillator's
// error, the figure AssumedPPM bounds. Over a short window they include
// NTP's current slew (up to ±100 000 ppm), so a check needs hours.
type Rate struct {
	Window         time.Duration // raw time between the samples
	VsMonotonicPPM float64
	VsRealtimePPM  float64 // meaningless if the wall clock was stepped in the window
}

// RateBetween computes the Rate from sample a to a later sample b.
func RateBetween(a, b Sample) Rate {
	raw := float64(b.Raw - a.Raw)
	ppm := func(other int64) float64 {
		if other <= 0 {
			return math.NaN()
		}
		return (raw - float64(other)) / float64(other) * 1e6
	}
	return Rate{
		Window:         time.Duration(b.Raw - a.Raw),
		VsMonotonicPPM: ppm(b.Monotonic - a.Monotonic),
		VsRealtimePPM:  ppm(b.Realtime - a.Realtime),
	}
}

// MinCheckWindow is the shortest window CheckRate judges. When a window
// ends NTP may still owe a correction of up to about a second (chrony slews
// an offset away rather than stepping the clock), which over an hour is
// 280 ppm; CheckRate allows AssumedPPM plus 1 s/window.
const MinCheckWindow = time.Hour

// CheckRate returns an error naming the figures when the raw clock's rate
// against CLOCK_MONOTONIC, over r.Window, is outside ±(AssumedPPM + the slew
// NTP may still owe: 1 s over the window). A window shorter than
// MinCheckWindow is not judged (nil). The daemon raises an alarm on the
// error: the timing margin no longer covers this host's clock.
func CheckRate(r Rate) error {
	if r.Window < MinCheckWindow {
		return nil
	}
	allowed := AssumedPPM + float64(time.Second)/float64(r.Window)*1e6
	if math.IsNaN(r.VsMonotonicPPM) || math.Abs(r.VsMonotonicPPM) > allowed {
		return fmt.Errorf("CLOCK_MONOTONIC_RAW ran %+.0f ppm against CLOCK_MONOTONIC over %v, beyond the ±%.0f ppm the timing margin assumes (heartbeat/timing, safeclock.AssumedPPM): fix or replace this host's clock source (see /sys/devices/system/clocksource/clocksource0/current_clocksource)",
			r.VsMonotonicPPM, r.Window.Round(time.Second), allowed)
	}
	return nil
}

// KernelPPM reads, with adjtimex(2) in read-only mode, the rate correction
// the kernel currently applies to CLOCK_MONOTONIC relative to
// CLOCK_MONOTONIC_RAW: the frequency offset (at most ±500 ppm) plus the tick
// adjustment ((tick − 10 000 µs)/10 000 µs at USER_HZ 100, at most ±10 %).
// It excludes the PLL's offset slew. A figure beyond AssumedPPM in the
// frequency part alone means NTP found the oscillator that far off.
func KernelPPM() (freqPPM, tickPPM float64, err error) {
	var tx unix.Timex // Modes 0: read only
	if _, err := unix.Adjtimex(&tx); err != nil {
		return 0, 0, fmt.Errorf("adjtimex (read only): %w", err)
	}
	freqPPM = float64(tx.Freq) / 65536
	tickPPM = float64(tx.Tick-10000) / 10000 * 1e6
	return freqPPM, tickPPM, nil
}
