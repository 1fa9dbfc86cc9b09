// Command hbfence-lab runs the demonstration pool: real hbfence daemons,
// one process per host, on one heartbeat file in a temporary directory. It
// narrates what happens, with timings, and exits 0 only if what it
// narrated is what happened.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/hbfence/hbfence/internal/lab"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hbfence-lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("hbfence", "", "the hbfence binary (default: next to hbfence-lab, else on PATH)")
	dir := fs.String("dir", "", "working directory (default: a new temporary directory, removed at the end)")
	keep := fs.Bool("keep", false, "keep the working directory")
	profile := fs.String("profile", "fast", "timing profile of the pool")
	jsonOut := fs.String("json", "", "also write the measured figures as JSON to this file")
	detectRuns := fs.Int("bench-detect", 0, "instead of the story, measure kill -9 detection over this many runs")
	fenceRuns := fs.Int("bench-fence", 0, "instead of the story, measure the fencing margins (watchdog reset → first \"dead\") over this many runs of a frozen host and, as root with /dev/fuse, of a host cut off from its storage; and the largest storage stall survived")
	guestDisk := fs.String("guest-disk", "", "run as a demonstration guest writing to this disk image (used by the story's guests)")
	guestPeriod := fs.Duration("guest-period", 50*time.Millisecond, "with -guest-disk: how often the guest writes a record")
	guestRuns := fs.Int("bench-guests", 0, "instead of the story, measure guest failover over this many runs (kill → the guests of the killed host writing again elsewhere, as a ratio to host_dead)")
	loadFor := fs.Duration("bench-load", 0, "instead of the story, measure node2's renewals for this long in each of three phases: calm, its control socket flooded, and the flood with both cores busy and most memory taken")
	twoPools := fs.Bool("two-pools", false, "instead of the whole story, only its two-pool scene: two pools of three hosts, each running the other's manager as an HA guest")
	poolHosts := fs.Int("bench-pool", 0, "instead of the story, run this many hosts (e.g. 32) for -bench-for with the default profile (unless -profile is given), both cores busy for its middle third: false suspect/dead and fences, I/O, CPU and RSS per daemon, then one host's failover")
	poolFor := fs.Duration("bench-for", 10*time.Minute, "how long -bench-pool runs before its kill")
	massGuests := fs.Int("bench-mass", 0, "instead of the story, measure mass failover: one host running this many HA process guests (e.g. 100) is killed; the last guest running elsewhere as a ratio to host_dead, for each of -bench-mass-bounds, -bench-mass-runs times (default profile unless -profile is given)")
	massRuns := fs.Int("bench-mass-runs", 3, "runs of -bench-mass for each bound")
	massBounds := fs.String("bench-mass-bounds", "1,8", "the [guests] max_concurrent_starts values -bench-mass compares, comma-separated")
	compare := fs.Bool("bench-compare", false, "instead of the story, measure side by side on this storage, for the same kill -9: sanlock's lease takeover (when sanlock is installed) at each -sanlock-io, and hbfence's guest failover at its default profile and at the profile of equal stall tolerance to each sanlock setting; -runs times each")
	runs := fs.Int("runs", 3, "runs of each measurement of -bench-compare")
	sanlockIO := fs.String("sanlock-io", "10,2", "sanlock io_timeouts (seconds) of -bench-compare: its default 10 and its fastest practical 2")
	soakFor := fs.Duration("bench-soak", 0, "instead of the story, the fast-failover soak for this long (e.g. 1h): hbfence probe through storage that stalls up to -soak-stall-max, a pool formatted with its advice (init --profile advised --from), kept under the same stalls with a power loss every -soak-kill-every; every loss must have its guests back within -soak-target, and no host may be fenced or seen dead that was not killed")
	soakKill := fs.Duration("soak-kill-every", 5*time.Minute, "with -bench-soak: a power loss (kill -9 of the host running the most guests) this often")
	soakStall := fs.Duration("soak-stall-max", 500*time.Millisecond, "with -bench-soak: the longest storage stall injected")
	soakProbe := fs.Duration("soak-probe", 2*time.Minute, "with -bench-soak: how long hbfence probe measures the stalling storage before the pool is formatted with its advice")
	soakWatchdog := fs.Duration("soak-watchdog", 3*time.Second, "with -bench-soak: the watchdog's effective firing time given to the probe (the lab's watchdog stand-in fires at the pool's watchdog figure)")
	soakTarget := fs.Duration("soak-target", 10*time.Second, "with -bench-soak: each power loss must have the last of its guests writing again elsewhere within this")
	masterRuns := fs.Int("bench-master", 0, "instead of the story, measure over this many runs the planned master move (in intervals) and the master takeover after kill -9 (as a ratio to host_dead)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: hbfence-lab [flags]\n\nRuns the demonstration pool: three hosts as real processes on one heartbeat file.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ios, err := parseSeconds(*sanlockIO)
	if err != nil || (*compare && *runs < 1) {
		fmt.Fprintf(stderr, "hbfence-lab: -sanlock-io %q, -runs %d: give whole seconds separated by commas, and at least one run (%v)\n", *sanlockIO, *runs, err)
		return 2
	}
	if *guestDisk != "" {
		return lab.RunGuestDiskEvery(*guestDisk, *guestPeriod)
	}
	binary, err := findBinary(*bin)
	if err != nil {
		fmt.Fprintln(stderr, "hbfence-lab:", err)
		return 2
	}
	workDir := *dir
	if workDir == "" {
		if workDir, err = os.MkdirTemp("", "hbfence-lab-"); err != nil {
			fmt.Fprintln(stderr, "hbfence-lab:", err)
			return 1
		}
		if !*keep {
			defer os.RemoveAll(workDir)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	d := newDemo(stdout, binary, workDir, *profile)
	defer d.close()
	story := scenes
	if *twoPools {
		story = []scene{{twoPoolsTitle, sceneTwoPools}}
	}
	if *detectRuns > 0 {
		story = []scene{{fmt.Sprintf("Benchmark: kill -9 detection over %d runs", *detectRuns), func(ctx context.Context, d *demo) error {
			return benchDetect(ctx, d, *detectRuns)
		}}}
	}
	if *fenceRuns > 0 {
		story = []scene{{fmt.Sprintf("Benchmark: fencing margins over %d runs", *fenceRuns), func(ctx context.Context, d *demo) error {
			return benchFence(ctx, d, *fenceRuns)
		}}}
	}
	if *masterRuns > 0 {
		story = []scene{{fmt.Sprintf("Benchmark: master move and takeover over %d runs", *masterRuns), func(ctx context.Context, d *demo) error {
			return benchMaster(ctx, d, *masterRuns)
		}}}
	}
	if *loadFor > 0 {
		story = []scene{{fmt.Sprintf("Benchmark: renewals under a control-socket flood and machine pressure, %v per phase", *loadFor), func(ctx context.Context, d *demo) error {
			return benchLoad(ctx, d, *loadFor)
		}}}
	}
	if *poolHosts > 0 {
		if !profileSet(fs) {
			d.profile = "default"
		}
		story = []scene{{fmt.Sprintf("Benchmark: %d hosts for %v", *poolHosts, *poolFor), func(ctx context.Context, d *demo) error {
			return benchPool(ctx, d, *poolHosts, *poolFor)
		}}}
	}
	if *massGuests > 0 {
		bounds, err := parseBounds(*massBounds)
		if err != nil {
			fmt.Fprintln(stderr, "hbfence-lab:", err)
			return 2
		}
		if !profileSet(fs) {
			d.profile = "default"
		}
		story = []scene{{fmt.Sprintf("Benchmark: mass failover of %d guests, max_concurrent_starts %v, %d runs each", *massGuests, bounds, *massRuns), func(ctx context.Context, d *demo) error {
			return benchMass(ctx, d, *massGuests, *massRuns, bounds)
		}}}
	}
	if *guestRuns > 0 {
		story = []scene{{fmt.Sprintf("Benchmark: guest failover over %d runs", *guestRuns), func(ctx context.Context, d *demo) error {
			return benchGuests(ctx, d, *guestRuns)
		}}}
	}
	if *soakFor > 0 {
		plan := soakPlan{duration: *soakFor, killEvery: *soakKill, maxStall: *soakStall, probeFor: *soakProbe, watchdog: *soakWatchdog, target: *soakTarget}
		story = []scene{{fmt.Sprintf("Benchmark: fast-failover soak for %v, storage stalls up to %v, a power loss every %v", plan.duration, plan.maxStall, plan.killEvery), func(ctx context.Context, d *demo) error {
			return benchSoak(ctx, d, plan)
		}}}
	}
	if *compare {
		story = []scene{{fmt.Sprintf("Benchmark: side by side with sanlock, %d runs each", *runs), func(ctx context.Context, d *demo) error {
			return benchCompare(ctx, d, *runs, ios)
		}}}
	}
	ok := d.play(ctx, story)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(d.figures, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(stderr, "hbfence-lab:", err)
			ok = false
		}
	}
	if *keep || *dir != "" {
		fmt.Fprintf(stdout, "\nworking directory kept: %s\n", workDir)
	}
	if !ok {
		return 1
	}
	return 0
}

// profileSet says whether -profile was given: the benchmarks at a real
// pool's size use the default profile otherwise.
func profileSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "profile" })
	return set
}

func findBinary(flagValue string) (string, error) {
	if flagValue != "" {
		return filepath.Abs(flagValue)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "hbfence")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath("hbfence")
	if err != nil {
		return "", fmt.Errorf("no hbfence binary next to hbfence-lab or on PATH; build it (make build) or give --hbfence")
	}
	return filepath.Abs(p)
}

// parseSeconds parses "10,2" into whole seconds, each at least 1.
func parseSeconds(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a whole number of seconds of at least 1", f)
		}
		out = append(out, n)
	}
	return out, nil
}
