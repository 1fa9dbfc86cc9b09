package probe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/internal/safeclock"
)

// Defaults of Options.
const (
	DefaultPeriod   = 100 * time.Millisecond
	DefaultDuration = time.Minute
	DefaultTimeout  = 30 * time.Second
	ProgressEvery   = time.Second
)

// Options say how to run the probe.
type Options struct {
	// Period is the time between the starts of two write+read cycles
	// (DefaultPeriod); a cycle that takes longer is followed at once.
	Period time.Duration
	// Duration is how long to run (DefaultDuration); the run also ends
	// when ctx is done.
	Duration time.Duration
	// Timeout bounds each I/O (DefaultTimeout). An I/O that times out
	// counts at the timeout, a lower bound of its latency.
	Timeout time.Duration
	// Progress, if set, is called about every ProgressEvery from another
	// goroutine while the run lasts, also while an I/O hangs.
	Progress func(Progress)
}

// Progress is a snapshot of a run under way.
type Progress struct {
	Elapsed  time.Duration
	Samples  int
	Errors   int
	Timeouts int
	P99, Max time.Duration
	// Pending is how long the I/O under way has been, 0 if none.
	Pending time.Duration
}

// Result is the outcome of a run.
type Result struct {
	Stats   Stats
	Samples []Sample
	// Interrupted: ctx ended the run before Duration.
	Interrupted bool
}

type runner struct {
	t    *Target
	opt  Options
	t0   time.Time
	buf  []byte // reads
	wbuf []byte // writes

	mu      sync.Mutex
	samples []Sample
	pending time.Time // issue of the I/O under way, zero if none
}

// Run does write+read cycles on the target until opt.Duration has passed or
// ctx is done, and summarises them. In ModeSlot each cycle reads the slot
// region first and writes the slot only if it is still unused; if it is
// not, Run stops at once and returns the result so far with a
// *SlotTakenError. Other errors of single I/Os are counted, not returned.
func (t *Target) Run(ctx context.Context, opt Options) (Result, error) {
	if opt.Period <= 0 {
		opt.Period = DefaultPeriod
	}
	if opt.Duration <= 0 {
		opt.Duration = DefaultDuration
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	r := &runner{t: t, opt: opt, t0: safeclock.Now(),
		buf: make([]byte, t.ReadLen), wbuf: make([]byte, t.Sector)}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if opt.Progress != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(ProgressEvery)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					opt.Progress(r.progress())
				}
			}
		}()
	}
	err := r.loop(ctx)
	elapsed := safeclock.Since(r.t0)
	close(stop)
	wg.Wait()
	r.mu.Lock()
	samples := slices.Clone(r.samples)
	r.mu.Unlock()
	res := Result{Stats: Summarize(samples, elapsed), Samples: samples, Interrupted: ctx.Err() != nil && elapsed < opt.Duration}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = nil
	}
	return res, err
}

func (r *runner) loop(ctx context.Context) error {
	var seq uint64
	var lastOK uint64      // the sequence of the last write that returned OK
	var unsure []uint64    // writes since then that may or may not have landed
	var next time.Duration // when the next cycle starts, from the run's start
	for cycle := 0; ; cycle, next = cycle+1, next+r.opt.Period {
		now := safeclock.Since(r.t0)
		// A cycle that overran its period is followed at once.
		next = max(next, now)
		if next >= r.opt.Duration {
			// No cycle fits: wait out the run, so that its length
			// is the duration asked.
			next = r.opt.Duration
		}
		if wait := next - now; wait > 0 {
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
		if next >= r.opt.Duration {
			return nil
		}
		if r.t.Mode == ModeSlot {
			// Check, then write at once: never a write without a
			// fresh read showing the slot unused.
			out, err := r.do(ctx, cycle, OpRead, func() error { return r.t.dev.ReadAt(r.buf, r.t.readOff, r.opt.Timeout) })
			if err != nil {
				return err
			}
			if out != OK {
				continue
			}
			if why := unused(r.buf, r.t.header, r.t.Slot); why != "" {
				return &SlotTakenError{Path: r.t.Path, Slot: r.t.Slot, Reason: why}
			}
			clear(r.wbuf)
			if _, err := r.do(ctx, cycle, OpWrite, func() error { return r.t.dev.WriteAt(r.wbuf, r.t.writeOff, r.opt.Timeout) }); err != nil {
				return err
			}
			continue
		}
		seq++
		r.t.pattern(r.wbuf, seq)
		out, err := r.do(ctx, cycle, OpWrite, func() error { return r.t.dev.WriteAt(r.wbuf, r.t.writeOff, r.opt.Timeout) })
		if err != nil {
			return err
		}
		switch out {
		case OK:
			lastOK, unsure = seq, unsure[:0]
		case busy:
			seq-- // not issued
		default:
			unsure = append(unsure, seq)
		}
		_, err = r.do(ctx, cycle, OpRead, func() error {
			if err := r.t.dev.ReadAt(r.buf, r.t.readOff, r.opt.Timeout); err != nil {
				return err
			}
			// A read after a completed write must show it, or a
			// write issued after it.
			got, ok := seqOf(r.buf)
			if lastOK == 0 && !ok {
				return nil // no write has completed yet
			}
			if ok && (got == lastOK || slices.Contains(unsure, got)) {
				return nil
			}
			return fmt.Errorf("%w: the read shows write %d, the last write to complete was %d", errStale, got, lastOK)
		})
		if err != nil {
			return err
		}
	}
}

var errStale = errors.New("stale read")

// busy is an outcome of do for an I/O that was not issued: an earlier one
// that timed out has not returned yet.
const busy Outcome = 255

// do runs one I/O and records it. It returns ctx's error if ctx ended
// while the I/O was under way (recorded as Cut).
func (r *runner) do(ctx context.Context, cycle int, op Op, io func() error) (Outcome, error) {
	start := safeclock.Now()
	r.mu.Lock()
	r.pending = start
	r.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- io() }()
	var err error
	var out Outcome
	select {
	case err = <-done:
	case <-ctx.Done():
		r.record(Sample{Op: op, Cycle: cycle, Start: start.Sub(r.t0), Latency: safeclock.Since(start), Outcome: Cut})
		return Cut, ctx.Err()
	}
	lat := safeclock.Since(start)
	switch {
	case err == nil:
		out = OK
	case errors.Is(err, directio.ErrBusy):
		r.mu.Lock()
		r.pending = time.Time{}
		r.mu.Unlock()
		return busy, nil
	case errors.Is(err, directio.ErrTimeout):
		out = TimedOut
		lat = max(lat, r.opt.Timeout)
	case errors.Is(err, directio.ErrClosed):
		return Failed, err
	default:
		out = Failed
	}
	smp := Sample{Op: op, Cycle: cycle, Start: start.Sub(r.t0), Latency: lat, Outcome: out}
	if err != nil {
		smp.Err = err.Error()
	}
	r.record(smp)
	return out, nil
}

func (r *runner) record(s Sample) {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.pending = time.Time{}
	r.mu.Unlock()
}

func (r *runner) progress() Progress {
	r.mu.Lock()
	var p Progress
	lat := make([]time.Duration, 0, len(r.samples))
	for _, s := range r.samples {
		switch s.Outcome {
		case Failed:
			p.Errors++
			continue
		case TimedOut:
			p.Timeouts++
		}
		lat = append(lat, s.Latency)
	}
	if !r.pending.IsZero() {
		p.Pending = safeclock.Since(r.pending)
	}
	r.mu.Unlock()
	p.Elapsed = safeclock.Since(r.t0)
	p.Samples = len(lat)
	if len(lat) > 0 {
		slices.Sort(lat)
		p.P99, p.Max = rank(lat, 990), lat[len(lat)-1]
	}
	return p
}
