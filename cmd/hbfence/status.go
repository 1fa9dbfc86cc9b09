package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/internal/lastfence"
)

// socketFlags adds --config and --socket, through which every client
// command finds the daemon.
func socketFlags(fs *flag.FlagSet) func() (string, error) {
	return socketFlagsNamed(fs, "config")
}

// socketFlagsNamed is socketFlags with the configuration flag under
// another name (hbfence guest add has a --config of its own: the guest's).
func socketFlagsNamed(fs *flag.FlagSet, cfgFlag string) func() (string, error) {
	cfgPath := fs.String(cfgFlag, config.DefaultPath, "configuration file naming the control socket")
	socket := fs.String("socket", "", "control socket (overrides --"+cfgFlag+")")
	return func() (string, error) {
		if *socket != "" {
			return *socket, nil
		}
		c, err := config.Load(*cfgPath)
		if err != nil {
			return "", err
		}
		return c.Control.Socket, nil
	}
}

func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", "", stderr)
	sock := socketFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	check := fs.Bool("check", false, "print one line and exit 0 (ok), 1 (warning), 2 (critical) or 3 (unknown), as a monitoring plugin")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: status takes no arguments", errUsage)
	}
	socket, err := sock()
	if err != nil {
		if *check {
			fmt.Fprintf(stdout, "HBFENCE UNKNOWN - %v\n", err)
			return exitWith{int(daemon.CheckUnknown)}
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var raw json.RawMessage
	if err := control.Call(ctx, socket, "status", nil, &raw); err != nil {
		if *check {
			fmt.Fprintf(stdout, "HBFENCE CRITICAL - no daemon answers on %s: %v\n", socket, err)
			return exitWith{int(daemon.CheckCritical)}
		}
		return err
	}
	if *check {
		var st daemon.Status
		if err := json.Unmarshal(raw, &st); err != nil {
			fmt.Fprintf(stdout, "HBFENCE UNKNOWN - the daemon's status cannot be read: %v\n", err)
			return exitWith{int(daemon.CheckUnknown)}
		}
		level, line := daemon.Check(st)
		fmt.Fprintln(stdout, line)
		if level != daemon.CheckOK {
			return exitWith{int(level)}
		}
		return nil
	}
	if *asJSON {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	var st daemon.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return err
	}
	printStatus(stdout, st)
	return nil
}

func printStatus(w io.Writer, st daemon.Status) {
	t := st.Timing
	if st.Joined {
		fmt.Fprintf(w, "host     %s (slot %d, generation %d), hbfence %s, pid %d\n", st.Self, st.Slot, st.Generation, st.Version, st.PID)
	} else {
		fmt.Fprintf(w, "host     %s: joining the pool\n", st.Self)
	}
	fmt.Fprintf(w, "pool     %s on %s (offset %d, %d slots of %d bytes)\n", st.PoolUUID, st.Area.Path, st.Area.Offset, st.Area.Slots, st.Area.SectorSize)
	for _, a := range st.Alarms {
		fmt.Fprintf(w, "ALARM    %s: %s\n", a.Code, shown(a.Message))
	}
	if m := st.Mounts; m != nil {
		for _, l := range m.Lines() {
			fmt.Fprintf(w, "mount    %s\n", shown(l))
		}
	}
	fmt.Fprintf(w, "timing   profile %s: interval %gs, io_timeout %gs, renewal_fail %gs, watchdog %gs, host_dead %gs\n",
		t.Profile, t.Interval, t.IOTimeout, t.RenewalFail, t.Watchdog, t.HostDead)
	if st.LastRenewalAgeSeconds >= 0 {
		l := st.RenewalLatency
		fmt.Fprintf(w, "renewal  last %.1fs ago; storage latency min %.2f / median %.2f / max %.2f ms over %d renewals\n",
			st.LastRenewalAgeSeconds, l.MinMS, l.MedianMS, l.MaxMS, l.Samples)
		fmt.Fprintf(w, "budget   largest gap between two renewals %.2fs in the last %v: %.2fs left of renewal_fail (%gs) at the worst\n",
			st.RenewalGapMaxSeconds, heartbeat.GapWindow, st.RenewalMarginSeconds, t.RenewalFail)
	}
	w0 := st.Watchdog
	if w0.Unsafe {
		fmt.Fprintf(w, "watchdog %s — %s\n", w0.Backend, w0.Note)
	} else {
		line := fmt.Sprintf("watchdog %s %s", w0.Backend, w0.Device)
		if w0.Identity != "" {
			line += " (" + w0.Identity + ")"
		}
		fmt.Fprintf(w, "%s, fires %gs after the last feed\n", line, w0.EffectiveSeconds)
	}
	if st.GuestsUnknown != "" {
		fmt.Fprintf(w, "guests   %s\n", st.GuestsUnknown)
	}
	p := st.Protection
	line := fmt.Sprintf("protect  memory locked %v, %s", p.MemoryLocked, p.Scheduler)
	if p.RealtimePriority > 0 {
		line += fmt.Sprintf(" priority %d", p.RealtimePriority)
	}
	fmt.Fprintf(w, "%s, oom_score_adj %d\n", line, p.OOMScoreAdj)
	for _, pr := range p.Problems {
		fmt.Fprintf(w, "protect  NOT APPLIED: %s\n", pr)
	}
	if f := st.Fence; f != nil {
		line := f.State.String()
		if f.Reason != "" {
			line += ": " + f.Reason
		}
		if f.KillError != "" {
			line += " (guests not confirmed gone: " + f.KillError + ")"
		}
		fmt.Fprintf(w, "fence    %s\n", line)
	}
	label := "         "
	if st.Fence == nil {
		label = "fence    "
	}
	switch {
	case st.LastFence != nil:
		fmt.Fprintf(w, "%s%s\n", label, lastfence.Line(*st.LastFence, st.Started, st.BootID))
	case st.LastFenceError != "":
		fmt.Fprintf(w, "%slast fence: unknown (%s)\n", label, st.LastFenceError)
	}
	if m := st.Master; m != nil {
		line := "unknown (leader record not read yet)"
		switch {
		case m.Known && m.Name != "":
			line = fmt.Sprintf("%s, epoch %d", m.Name, m.Epoch)
		case m.Known && m.Epoch == 0:
			line = "none yet (the lease was never held)"
		case m.Known:
			line = fmt.Sprintf("none: epoch %d released", m.Epoch)
		}
		if m.Self.Acting {
			line += " (this host)"
		}
		fmt.Fprintf(w, "master   %s\n", line)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "error    %s\n", st.LastError)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tHOST\tSTATE\tFENCED\tROLES\tGENERATION\tLAST CHANGE\tSLOT STATE\tCHECKSUM")
	for _, h := range st.Hosts {
		name := shown(h.Name)
		if h.Self {
			name += " (this host)"
		}
		if name == "" {
			name = "-"
		}
		age := fmt.Sprintf("%.1fs ago", h.LastChangeAgeSeconds)
		if !h.ChangeSeen {
			age = fmt.Sprintf("none seen in %.1fs", h.LastChangeAgeSeconds)
		}
		check := h.Checksum.String()
		if h.Reason != "" {
			check += " (" + h.Reason + ")"
		}
		fenced := "no"
		switch {
		case h.Fenced:
			fenced = fmt.Sprintf("yes, dead %.0fs ago", h.FencedAgeSeconds)
		case h.FencedHow != "" && h.State != liveness.Dead:
			fenced = fmt.Sprintf("fencing: poison pill acked %.0fs ago", h.FencedAgeSeconds)
		case h.Unsafe:
			fenced = "UNSAFE: no watchdog"
		case h.GuestsUnknown && h.State == liveness.Left:
			fenced = "UNSAFE: left, but cannot list its guests"
		}
		state := h.State.String()
		if h.State == liveness.Live && h.SlotState == ondisk.StateJoining {
			// Renewing, but its join is not proven yet (issue 11: "live"
			// beside "joining").
			state = "joining"
		}
		roles := "-"
		if rs, ok := st.Roles[h.Name]; ok {
			parts := make([]string, len(rs))
			for i, r := range rs {
				parts[i] = string(r)
			}
			roles = strings.Join(parts, ",")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", h.Slot, name, state, fenced, roles, h.Generation, age, h.SlotState, check)
	}
	tw.Flush()
	if len(st.Guests) > 0 {
		fmt.Fprintln(w)
		printGuests(w, st.Guests)
	}
	printManagers(w, st)
	for _, warn := range st.Warnings {
		fmt.Fprintf(w, "\nWARNING: %s\n", warn)
	}
}
