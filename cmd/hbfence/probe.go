package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hbfence/hbfence/heartbeat/probe"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("probe", "PATH", stderr)
	offset := fs.Int64("offset", 0, "byte offset in a file or block device: of its area (an unused slot is used) or of a zeroed region of "+fmt.Sprint(probe.RegionSectors)+" sectors")
	duration := fs.Duration("duration", probe.DefaultDuration, "how long to probe (Ctrl-C stops earlier and reports what was measured)")
	rate := fs.Duration("rate", probe.DefaultPeriod, "time between two write+read pairs")
	timeout := fs.Duration("timeout", probe.DefaultTimeout, "bound on one I/O; an I/O that times out counts at this figure")
	factor := fs.Float64("factor", probe.DefaultFactor, "safety factor on every observation in the advice")
	def, _ := timing.Profile("default")
	watchdog := fs.Duration("watchdog", def.Watchdog, "the watchdog's effective firing time on this host (what the advice's host_dead must cover)")
	force := fs.Bool("force", false, "probe a region that is not zeroes (what it held is written back at the end)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	path, err := oneArg(pos, "PATH")
	if err != nil {
		return err
	}
	if *rate <= 0 || *duration <= 0 || *timeout <= 0 {
		return fmt.Errorf("%w: --rate, --duration and --timeout must be positive", errUsage)
	}
	if *factor < 1 || math.IsNaN(*factor) || math.IsInf(*factor, 0) {
		return fmt.Errorf("%w: --factor %v: it must be at least 1", errUsage, *factor)
	}
	if *watchdog < timing.MinDuration || *watchdog > timing.MaxDuration {
		return fmt.Errorf("%w: --watchdog %v: give the watchdog's effective firing time, between %v and %v", errUsage, *watchdog, timing.MinDuration, timing.MaxDuration)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	tg, err := probe.Open(path, *offset, *force)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "hbfence probe: %s, a write+read every %v for %v (Ctrl-C to stop early)\n", tg.Describe(), *rate, *duration)
	res, runErr := tg.Run(ctx, probe.Options{Period: *rate, Duration: *duration, Timeout: *timeout,
		Progress: func(p probe.Progress) { fmt.Fprintln(stderr, probeProgressLine(p)) }})
	stop() // a second Ctrl-C from here on kills the process
	closeErr := tg.Close()
	if res.Interrupted {
		fmt.Fprintf(stderr, "hbfence probe: interrupted after %v\n", res.Stats.Elapsed.Round(time.Millisecond))
	}
	adv, advErr := probe.Advise(probe.ObservedOf(res.Stats), *factor, *watchdog)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false) // the rules' ">" stay readable
		if err := enc.Encode(probeJSON(tg, res, adv, advErr)); err != nil {
			return err
		}
	} else {
		printProbe(stdout, tg, res, adv, advErr)
	}
	switch {
	case runErr != nil:
		return runErr
	case closeErr != nil:
		return closeErr
	case advErr != nil:
		return fmt.Errorf("no advice: %w", advErr)
	}
	return nil
}

func probeProgressLine(p probe.Progress) string {
	s := fmt.Sprintf("hbfence probe: %3.0fs: %d I/Os, p99 %v, max %v", p.Elapsed.Seconds(), p.Samples, msText(p.P99), msText(p.Max))
	if p.Errors > 0 || p.Timeouts > 0 {
		s += fmt.Sprintf(", %d errors, %d timeouts", p.Errors, p.Timeouts)
	}
	if p.Pending > time.Second {
		s += fmt.Sprintf(" (an I/O under way for %v)", p.Pending.Round(100*time.Millisecond))
	}
	return s
}

// msText renders a latency in milliseconds with three decimals.
func msText(d time.Duration) string { return fmt.Sprintf("%.3fms", ms(d)) }

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

type latencyOut struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func latencyJSON(l probe.Latency) latencyOut {
	return latencyOut{Count: l.Count, P50: ms(l.P50), P99: ms(l.P99), P999: ms(l.P999), Max: ms(l.Max)}
}

type bucketOut struct {
	FromMS float64  `json:"from_ms"`
	ToMS   *float64 `json:"to_ms"` // null: no upper bound
	Count  int      `json:"count"`
}

type adviceOut struct {
	Interval    string            `json:"interval"`
	IOTimeout   string            `json:"io_timeout"`
	RenewalFail string            `json:"renewal_fail"`
	Watchdog    string            `json:"watchdog"`
	HostDead    string            `json:"host_dead"`
	Factor      float64           `json:"factor"`
	Binding     string            `json:"binding_rule"`
	DeadWithin  string            `json:"dead_within"`
	InitFlags   string            `json:"init_flags"`
	Why         map[string]string `json:"why"`
}

type probeOut struct {
	Target         string      `json:"target"`
	Mode           probe.Mode  `json:"mode"`
	Slot           *int        `json:"slot,omitempty"`
	ElapsedMS      float64     `json:"elapsed_ms"`
	Interrupted    bool        `json:"interrupted"`
	Samples        int         `json:"samples"`
	Cycles         int         `json:"cycles"`
	Errors         int         `json:"errors"`
	Timeouts       int         `json:"timeouts"`
	Latency        latencyOut  `json:"latency_ms"`
	Write          latencyOut  `json:"write_ms"`
	Read           latencyOut  `json:"read_ms"`
	Pair           latencyOut  `json:"write_read_ms"`
	LongestStallMS float64     `json:"longest_stall_ms"`
	Histogram      []bucketOut `json:"histogram"`
	FirstErrors    []string    `json:"first_errors"`
	Advice         *adviceOut  `json:"advice"`
	AdviceError    string      `json:"advice_error,omitempty"`
}

func probeJSON(tg *probe.Target, res probe.Result, a probe.Advice, advErr error) probeOut {
	st := res.Stats
	out := probeOut{
		Target: tg.Describe(), Mode: tg.Mode, ElapsedMS: ms(st.Elapsed), Interrupted: res.Interrupted,
		Samples: st.Samples, Cycles: st.Cycles, Errors: st.Errors, Timeouts: st.Timeouts,
		Latency: latencyJSON(st.All), Write: latencyJSON(st.Write), Read: latencyJSON(st.Read), Pair: latencyJSON(st.Pair),
		LongestStallMS: ms(st.LongestStall), Histogram: []bucketOut{}, FirstErrors: firstErrors(res.Samples),
	}
	if tg.Mode == probe.ModeSlot {
		out.Slot = &tg.Slot
	}
	for _, b := range st.Histogram {
		o := bucketOut{FromMS: ms(b.From), Count: b.Count}
		if b.To != 0 {
			to := ms(b.To)
			o.ToMS = &to
		}
		out.Histogram = append(out.Histogram, o)
	}
	if advErr != nil {
		out.AdviceError = advErr.Error()
		return out
	}
	p := a.Params
	out.Advice = &adviceOut{Interval: p.Interval.String(), IOTimeout: p.IOTimeout.String(), RenewalFail: p.RenewalFail.String(),
		Watchdog: p.Watchdog.String(), HostDead: p.HostDead.String(), Factor: a.Factor, Binding: a.Binding,
		DeadWithin: a.DeadWithin().String(), InitFlags: a.InitFlags(), Why: map[string]string{}}
	for _, r := range a.Why {
		out.Advice.Why[r.Name] = r.Text
	}
	return out
}

func printProbe(w io.Writer, tg *probe.Target, res probe.Result, a probe.Advice, advErr error) {
	st := res.Stats
	fmt.Fprintf(w, "probed %s\nfor %v: %d write+read pairs, %d I/Os, %d errors, %d timeouts\n",
		tg.Describe(), st.Elapsed.Round(time.Millisecond), st.Cycles, st.Samples, st.Errors, st.Timeouts)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, e := range firstErrors(res.Samples) {
		fmt.Fprintf(w, "  %s\n", e)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(tw, "latency\tp50\tp99\tp99.9\tmax\t\n")
	for _, l := range []struct {
		name string
		l    probe.Latency
	}{{"write", st.Write}, {"read", st.Read}, {"write+read", st.Pair}, {"all I/Os", st.All}} {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", l.name, msText(l.l.P50), msText(l.l.P99), msText(l.l.P999), msText(l.l.Max))
	}
	tw.Flush()
	fmt.Fprintf(w, "longest stall (no write completed): %s, from %v into the run\n\n", msText(st.LongestStall), st.StallFrom.Round(time.Millisecond))
	fmt.Fprintf(w, "histogram of all I/Os:\n")
	most := 0
	for _, b := range st.Histogram {
		most = max(most, b.Count)
	}
	for _, b := range st.Histogram {
		bin := fmt.Sprintf("(%v, %v]", b.From, b.To)
		if b.To == 0 {
			bin = fmt.Sprintf("> %v", b.From)
		}
		bar := strings.Repeat("#", (b.Count*40+most-1)/max(most, 1))
		fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("  %-18s %6d %s", bin, b.Count, bar), " "))
	}
	fmt.Fprintln(w)
	if advErr != nil {
		fmt.Fprintf(w, "no advice: %v\n", advErr)
		return
	}
	fmt.Fprintf(w, "advice (safety factor %g, watchdog %v):\n", a.Factor, a.Params.Watchdog)
	for _, r := range a.Why {
		fmt.Fprintf(w, "  %-12s %-7v %s\n", r.Name, r.Value, r.Text)
	}
	fmt.Fprintf(w, "\nafter a power loss, the master declares the host dead within host_dead + interval = %v; its guests start after that (the master's plan, then each guest's boot)\n", a.DeadWithin())
	fmt.Fprintf(w, "\nformat a pool with it:\n  hbfence init %s PATH\n", a.InitFlags())
}

// firstErrors are the distinct errors and timeouts of a run, at most
// three, with their counts.
func firstErrors(samples []probe.Sample) []string {
	var order []string
	count := map[string]int{}
	for _, s := range samples {
		if s.Outcome != probe.Failed && s.Outcome != probe.TimedOut {
			continue
		}
		e := fmt.Sprintf("%s %v: %s", s.Op, s.Outcome, s.Err)
		if count[e] == 0 {
			order = append(order, e)
		}
		count[e]++
	}
	out := []string{}
	for i, e := range order {
		if i == 3 {
			out = append(out, fmt.Sprintf("(%d more kinds)", len(order)-3))
			break
		}
		out = append(out, fmt.Sprintf("%s (%d×)", e, count[e]))
	}
	return out
}
