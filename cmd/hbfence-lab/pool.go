package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// benchPool runs a pool at a real pool's size (issue 13): n hosts as real
// daemons under the watchdog stand-in on one heartbeat file, formatted
// with the lab's profile (the default profile unless -profile was given)
// and 64 slots (hbfence init's default, or n if more), three HA process
// guests, for dur in three thirds: calm, both cores kept busy by spinning
// goroutines of this process (the daemons keep their own scheduling:
// SCHED_RR when they may), calm again. Then it kills (SIGKILL, the whole
// machine) a host that runs a guest and is not master, and measures its
// failover.
//
// Counted from the daemons themselves: every "host X is suspect" or
// "dead" line in any host's log while nobody was killed (a false
// observation), and fences (a fence state other than healthy, a new
// generation, a reset by the watchdog stand-in, an exited daemon). Per
// daemon, from /proc over the run: read_bytes and write_bytes (every byte
// the daemon made the storage read or write: the heartbeat area, and the
// guest records and log beside it), rchar and wchar (every read and write
// call, the control socket's included), CPU seconds, VmRSS (largest of
// samples every two seconds) and VmHWM. With strace on PATH, one daemon's
// pread64/pwrite64 calls are traced for five intervals and summed by file:
// the heartbeat area's own bytes per round.
func benchPool(ctx context.Context, d *demo, n int, dur time.Duration) error {
	initArgs := []string{"--profile", d.profile}
	if n > 64 {
		initArgs = append(initArgs, "--slots", strconv.Itoa(n))
	}
	p, err := lab.NewPool(ctx, lab.Options{Binary: d.binary, Dir: d.dir, Watchdog: true, Guests: true, InitArgs: initArgs})
	if err != nil {
		return err
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node%d", i+1)
	}
	all, err := d.startHosts(ctx, p, names, 3*time.Minute)
	if err != nil {
		return err
	}
	tm := p.Timing
	d.timing = timingSeconds{Interval: tm.Interval.Seconds(), RenewalFail: tm.RenewalFail.Seconds(), HostDead: tm.HostDead.Seconds(), Watchdog: tm.Watchdog.Seconds()}
	st, err := all[0].Status(ctx)
	if err != nil {
		return err
	}
	d.say("pool %s: %d hosts under hbfence-wdsim on %s (%d slots of %d bytes); interval %v, io_timeout %v, renewal_fail %v, watchdog %v, host_dead %v; scheduler %s",
		d.profile, n, p.Area, st.Area.Slots, st.Area.SectorSize, tm.Interval, tm.IOTimeout, tm.RenewalFail, tm.Watchdog, tm.HostDead, st.Protection.Scheduler)
	master, _, _, err := lab.WaitActing(ctx, all, 0, 3*tm.HostDead)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	specs := []lab.GuestSpec{{Name: "g1", HA: true}, {Name: "g2", HA: true}, {Name: "g3", HA: true}}
	if err := p.AddGuests(ctx, master, self, specs...); err != nil {
		return err
	}
	if _, err := master.WaitGuests(ctx, 3*tm.HostDead, "every guest running", func(gs map[string]agent.GuestStatus) bool {
		return len(guestsIn(gs, restart.Running)) == len(specs)
	}); err != nil {
		return err
	}
	d.say("%s is master; three HA process guests run", master.Name)

	// The run: everything from here to the kill is measured.
	base := map[string]daemonSample{}
	gens := map[string]uint64{}
	logFrom := map[string]int64{}
	for _, h := range all {
		s, err := sampleDaemon(h.DaemonPID())
		if err != nil {
			return fmt.Errorf("%s: %v", h.Name, err)
		}
		base[h.Name] = s
		st, err := h.Status(ctx)
		if err != nil {
			return err
		}
		gens[h.Name] = st.Generation
		logFrom[h.Name] = fileSize(h.LogPath)
	}
	began := time.Now()
	rss := map[string]int{}
	var trace *hbTrace
	for i, phase := range []string{"calm", "both cores busy", "calm"} {
		pctx, cancel := context.WithTimeout(ctx, dur/3)
		var wg sync.WaitGroup
		if i == 1 {
			spin(pctx, &wg)
		}
		d.say("phase %d/3 (%v): %s", i+1, dur/3, phase)
		if i == 0 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				trace = traceHeartbeat(pctx, all[len(all)-1], p.Area, tm.Interval)
			}()
		}
		for pctx.Err() == nil {
			for _, h := range all {
				rss[h.Name] = max(rss[h.Name], vmRSS(h.DaemonPID()))
			}
			select {
			case <-pctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	window := time.Since(began)
	rounds := window.Seconds() / tm.Interval.Seconds()

	// What the daemons saw and did.
	var falseSeen []string
	fences := 0
	var rd, wr, rc, wc, cpu, hwm, rssMB []float64
	for _, h := range all {
		for _, e := range transitions(h.LogPath, logFrom[h.Name]) {
			if e.to == "suspect" || e.to == "dead" {
				falseSeen = append(falseSeen, fmt.Sprintf("%s saw %s %s", h.Name, e.peer, e.to))
			}
		}
		st, err := h.Status(ctx)
		fenced := err != nil || st.Fence == nil || st.Fence.State != fence.Healthy || st.Generation != gens[h.Name] || len(h.Resets()) > 0 || h.Exited()
		if fenced {
			fences++
			d.fail("%s fenced or restarted during the run (fence %s, generation %d → %d, %d resets, status error %v)", h.Name, fenceState(st.Fence), gens[h.Name], st.Generation, len(h.Resets()), err)
		}
		s, err := sampleDaemon(h.DaemonPID())
		if err != nil {
			return fmt.Errorf("%s: %v", h.Name, err)
		}
		b := base[h.Name]
		rd = append(rd, float64(s.readBytes-b.readBytes)/rounds)
		wr = append(wr, float64(s.writeBytes-b.writeBytes)/rounds)
		rc = append(rc, float64(s.rchar-b.rchar)/rounds)
		wc = append(wc, float64(s.wchar-b.wchar)/rounds)
		cpu = append(cpu, s.cpu-b.cpu)
		hwm = append(hwm, float64(s.hwm)/(1<<20))
		rssMB = append(rssMB, float64(rss[h.Name])/(1<<20))
	}
	d.check(len(falseSeen) == 0, "no false suspect or dead over %v on %d hosts (from every host's log): %d seen %v", window.Round(time.Second), n, len(falseSeen), falseSeen)
	d.check(fences == 0, "no fence, reset or new generation among %d hosts", n)
	fig := map[string]any{"hosts": n, "seconds": window.Seconds(), "rounds": rounds, "profile": d.profile,
		"slots": st.Area.Slots, "sector_size": st.Area.SectorSize, "scheduler": st.Protection.Scheduler,
		"false_suspect_or_dead": len(falseSeen), "fences": fences}
	for _, m := range []struct {
		key, what, unit string
		v               []float64
	}{
		{"read_bytes_per_round", "storage read (read_bytes) per host per round", "B", rd},
		{"write_bytes_per_round", "storage written (write_bytes) per host per round", "B", wr},
		{"rchar_per_round", "read calls (rchar, the control socket's included) per host per round", "B", rc},
		{"wchar_per_round", "write calls (wchar) per host per round", "B", wc},
		{"cpu_seconds", fmt.Sprintf("CPU per daemon over %v", window.Round(time.Second)), "s", cpu},
		{"vmrss_mib", "VmRSS per daemon (largest sample)", "MiB", rssMB},
		{"vmhwm_mib", "VmHWM per daemon", "MiB", hwm},
	} {
		lo, med, hi := stats(m.v)
		d.say("%s: min %.1f, median %.1f, max %.1f %s", m.what, lo, med, hi, m.unit)
		fig[m.key] = map[string]float64{"min": lo, "median": med, "max": hi}
	}
	_, _, hiHWM := stats(hwm)
	d.check(hiHWM < 30, "every daemon's VmHWM under 30 MiB (largest %.1f MiB)", hiHWM)
	if trace != nil {
		d.say("strace of %s for %v, its calls spanning %v = %.1f rounds: the heartbeat area %.0f B read and %.0f B written per round (%d and %d calls); other files %.0f B read, %.0f B written per round",
			trace.host, trace.took.Round(time.Millisecond), trace.span.Round(time.Millisecond), trace.rounds, trace.areaRead/trace.rounds, trace.areaWritten/trace.rounds, trace.areaReads, trace.areaWrites,
			trace.otherRead/trace.rounds, trace.otherWritten/trace.rounds)
		fig["heartbeat_area_traced"] = map[string]any{"host": trace.host, "seconds": trace.took.Seconds(), "span_seconds": trace.span.Seconds(), "rounds": trace.rounds,
			"read_bytes_per_round": trace.areaRead / trace.rounds, "written_bytes_per_round": trace.areaWritten / trace.rounds,
			"other_read_bytes_per_round": trace.otherRead / trace.rounds, "other_written_bytes_per_round": trace.otherWritten / trace.rounds}
	} else {
		d.say("no strace of a daemon's heartbeat I/O (strace not on PATH, or it failed)")
	}
	d.figure("pool", fig)
	return poolFailover(ctx, d, all, master, specs)
}

// poolFailover kills a host that runs a guest and is not the master, and
// measures kill → the master's "dead" and kill → the first record of each
// of its guests' new copies, as ratios to host_dead.
func poolFailover(ctx context.Context, d *demo, all []*lab.Host, master *lab.Host, specs []lab.GuestSpec) error {
	t := d.timing
	gs, err := master.Guests(ctx)
	if err != nil {
		return err
	}
	var victim *lab.Host
	for _, h := range all {
		if h != master && len(guestsOn(gs, h.Name)) > 0 {
			victim = h
			break
		}
	}
	if victim == nil {
		return fmt.Errorf("no host but the master runs a guest: %+v", gs)
	}
	lost := guestsOn(gs, victim.Name)
	killedMono := time.Duration(lab.MonoNow())
	killed := time.Now()
	if err := victim.Kill(); err != nil {
		return err
	}
	d.say("kill -9 %s, running %d guest(s)", victim.Name, len(lost))
	seen, err := d.watch(ctx, victim.Name, []*lab.Host{master}, []liveness.State{liveness.Dead}, 3*secs(t.HostDead))
	if err != nil {
		return err
	}
	dead := seen[liveness.Dead][0].at.Sub(killed).Seconds()
	if _, err := master.WaitGuests(ctx, 3*secs(t.HostDead), "the victim's guests running elsewhere", func(gs map[string]agent.GuestStatus) bool {
		return runningElsewhere(gs, lost, victim.Name)
	}); err != nil {
		return err
	}
	last, err := lastNewCopy(ctx, d.pool, lost, victim.Name, killedMono)
	if err != nil {
		return err
	}
	d.say("the master (%s) declared %s dead %.2fs after the kill = %.3f × host_dead; its last guest wrote again elsewhere %.2fs after the kill = %.3f × host_dead",
		master.Name, victim.Name, dead, dead/t.HostDead, last, last/t.HostDead)
	d.check(dead >= t.HostDead-t.Interval-0.05, "not declared dead before host_dead − interval")
	d.check(dead <= deadWithin(t), "declared dead within host_dead + interval (+ %gs for the I/O and the kill)", deadSlack)
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	bad, _, err := d.pool.CheckDisks(names...)
	if err != nil {
		return err
	}
	d.check(len(bad) == 0, "no disk had two writers at once %v", bad)
	d.figure("pool_failover", map[string]float64{"dead_seconds": dead, "dead_ratio": dead / t.HostDead, "last_guest_seconds": last, "last_guest_ratio": last / t.HostDead})
	return nil
}

// lastNewCopy waits until every one of guests has a copy on a host other
// than victim that began after killed (CLOCK_MONOTONIC), and returns the
// seconds from killed to the latest of their first records.
func lastNewCopy(ctx context.Context, p *lab.Pool, guests []agent.GuestStatus, victim string, killed time.Duration) (float64, error) {
	var last float64
	err := lab.WaitUntil(ctx, 20*time.Second, 20*time.Millisecond, "the first record of every moved guest's new copy", func() (bool, error) {
		last = 0
		for _, g := range guests {
			ws, err := lab.ReadDisk(p.Disk(g.Name))
			if err != nil {
				return false, err
			}
			i := slices.IndexFunc(ws, func(w lab.Writer) bool { return w.Host != victim && time.Duration(w.First) > killed })
			if i < 0 {
				return false, nil
			}
			last = max(last, (time.Duration(ws[i].First) - killed).Seconds())
		}
		return true, nil
	})
	return last, err
}

// spin keeps every core busy until ctx ends.
func spin(ctx context.Context, wg *sync.WaitGroup) {
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 0
			for ctx.Err() == nil {
				for i := range 1 << 20 {
					x += i
				}
			}
			_ = x
		}()
	}
}

// daemonSample is what /proc says of a daemon.
type daemonSample struct {
	readBytes, writeBytes, rchar, wchar int64
	cpu                                 float64 // utime + stime, seconds
	hwm                                 int     // VmHWM, bytes
}

func sampleDaemon(pid int) (daemonSample, error) {
	var s daemonSample
	if pid == 0 {
		return s, fmt.Errorf("no daemon process")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "read_bytes":
			s.readBytes = n
		case "write_bytes":
			s.writeBytes = n
		case "rchar":
			s.rchar = n
		case "wchar":
			s.wchar = n
		}
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64) // fields 14 and 15 of stat
	st, _ := strconv.ParseFloat(f[12], 64)
	s.cpu = (ut + st) / 100 // USER_HZ
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if fs := strings.Fields(l); len(fs) >= 2 && fs[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(fs[1])
			s.hwm = kb << 10
		}
	}
	return s, nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTransition is a "host X is STATE" line of a daemon's log.
// logTransition is one "host X is suspect/dead/live" line: the peer, its
// generation (the incarnation seen) and the new state.
type logTransition struct {
	peer, to   string
	generation uint64
}

// transitions reads a daemon's JSON log from offset on and returns its
// liveness transitions.
func transitions(path string, from int64) []logTransition {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	f.Seek(from, 0)
	var out []logTransition
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Peer       string `json:"peer"`
			From       string `json:"from"`
			To         string `json:"to"`
			Generation uint64 `json:"generation"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Peer != "" && l.To != "" && l.From != "" {
			out = append(out, logTransition{l.Peer, l.To, l.Generation})
		}
	}
	return out
}

// hbTrace is one daemon's pread64/pwrite64 calls over a while, summed by
// file.
type hbTrace struct {
	host                                           string
	took                                           time.Duration // strace ran
	span                                           time.Duration // its first call to its last
	rounds                                         float64
	areaRead, areaWritten, otherRead, otherWritten float64
	areaReads, areaWrites                          int
}

var (
	// Each line: the thread, then (strace -ttt) the time in seconds.
	traceStamp      = regexp.MustCompile(`^\d+\s+(\d+\.\d+)\s`)
	traceDone       = regexp.MustCompile(`^(\d+)\s+(?:\d+\.\d+\s+)?(pread64|pwrite64)\(\d+<([^>]*)>.*\)\s*=\s*(\d+)`)
	traceUnfinished = regexp.MustCompile(`^(\d+)\s+(?:\d+\.\d+\s+)?(pread64|pwrite64)\(\d+<([^>]*)>.*<unfinished \.\.\.>`)
	traceResumed    = regexp.MustCompile(`^(\d+)\s+(?:\d+\.\d+\s+)?<\.\.\. (pread64|pwrite64) resumed>.*\)\s*=\s*(\d+)`)
)

// traceHeartbeat traces h's daemon with strace for ten intervals (nil
// when strace is missing or fails), resolving each descriptor to its
// file (strace -y). The rounds are counted over the span of the trace's
// own time stamps (strace -ttt), first call to last, not over the time
// strace ran: attaching to every thread of the daemon takes part of it,
// and a count over that time undercounts the calls per round.
func traceHeartbeat(ctx context.Context, h *lab.Host, area string, interval time.Duration) *hbTrace {
	bin, err := exec.LookPath("strace")
	if err != nil {
		return nil
	}
	out := filepath.Join(filepath.Dir(h.LogPath), "strace.out")
	tctx, cancel := context.WithTimeout(ctx, 10*interval)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(tctx, bin, "-f", "-ttt", "-y", "-s", "0", "-e", "trace=pread64,pwrite64", "-o", out, "-p", strconv.Itoa(h.DaemonPID()))
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) } // strace detaches on SIGINT
	cmd.Run()
	f, err := os.Open(out)
	if err != nil {
		return nil
	}
	defer f.Close()
	areaReal, _ := filepath.EvalSymlinks(area)
	t, lines := parseTrace(f, area, areaReal)
	if lines == 0 {
		return nil
	}
	t.host, t.took = h.Name, time.Since(start)
	if t.span <= 0 {
		return nil
	}
	t.rounds = t.span.Seconds() / interval.Seconds()
	return t
}

// parseTrace sums strace -f -y output's pread64 and pwrite64 calls: those
// on a file named by one of area's names, and the others.
func parseTrace(r io.Reader, area ...string) (t *hbTrace, lines int) {
	t = &hbTrace{}
	pending := map[string][2]string{} // thread → op, file
	add := func(op, file, bytes string) {
		n, _ := strconv.ParseFloat(bytes, 64)
		isArea := slices.Contains(area, file)
		switch {
		case op == "pread64" && isArea:
			t.areaRead += n
			t.areaReads++
		case op == "pwrite64" && isArea:
			t.areaWritten += n
			t.areaWrites++
		case op == "pread64":
			t.otherRead += n
		default:
			t.otherWritten += n
		}
	}
	var first, last float64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		l := sc.Text()
		lines++
		if m := traceStamp.FindStringSubmatch(l); m != nil {
			at, _ := strconv.ParseFloat(m[1], 64)
			if first == 0 {
				first = at
			}
			last = at
		}
		if m := traceUnfinished.FindStringSubmatch(l); m != nil {
			pending[m[1]] = [2]string{m[2], m[3]}
		} else if m := traceResumed.FindStringSubmatch(l); m != nil {
			if p, ok := pending[m[1]]; ok {
				add(p[0], p[1], m[3])
				delete(pending, m[1])
			}
		} else if m := traceDone.FindStringSubmatch(l); m != nil {
			add(m[2], m[3], m[4])
		}
	}
	t.span = time.Duration((last - first) * float64(time.Second))
	return t, lines
}
