package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/restart"
)

// metricsText is the status in the Prometheus text format (version 0.0.4),
// for node_exporter's textfile collector: the figures of hbfence status
// --check, with no listener of the daemon's own. Pure.
func metricsText(st Status) string {
	var b strings.Builder
	gauge := func(name, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	bit := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	level, _ := Check(st)
	gauge("hbfence_check_level", "The verdict of hbfence status --check: 0 ok, 1 warning, 2 critical, 3 unknown.")
	fmt.Fprintf(&b, "hbfence_check_level %d\n", level)
	gauge("hbfence_joined", "1 if this host is in the pool.")
	fmt.Fprintf(&b, "hbfence_joined %d\n", bit(st.Joined))
	healthy := st.Fence != nil && st.Fence.State == fence.Healthy
	gauge("hbfence_healthy", "1 if this host's renewals are fresh (its fencer is healthy).")
	fmt.Fprintf(&b, "hbfence_healthy %d\n", bit(healthy))
	gauge("hbfence_unsafe", "1 if this host runs without a watchdog it can trust.")
	fmt.Fprintf(&b, "hbfence_unsafe %d\n", bit(st.Watchdog.Unsafe))
	master, epoch := false, uint64(0)
	if m := st.Master; m != nil {
		master, epoch = m.Self.Acting, m.Epoch
	}
	gauge("hbfence_master", "1 if this host acts as the pool master.")
	fmt.Fprintf(&b, "hbfence_master %d\n", bit(master))
	gauge("hbfence_master_epoch", "The latest master epoch this host has read.")
	fmt.Fprintf(&b, "hbfence_master_epoch %d\n", epoch)
	gauge("hbfence_renewal_age_seconds", "Time since this host's last renewal began.")
	fmt.Fprintf(&b, "hbfence_renewal_age_seconds %s\n", num(st.LastRenewalAgeSeconds))
	gauge("hbfence_renewal_latency_max_seconds", "The slowest of the recent renewals.")
	fmt.Fprintf(&b, "hbfence_renewal_latency_max_seconds %s\n", num(st.RenewalLatency.MaxMS/1000))
	gauge("hbfence_renewal_gap_max_seconds", "The largest gap between two renewals over the last 5 minutes (the open one included).")
	fmt.Fprintf(&b, "hbfence_renewal_gap_max_seconds %s\n", num(st.RenewalGapMaxSeconds))
	gauge("hbfence_renewal_margin_seconds", "renewal_fail minus the largest gap: what was left before a fence, at the worst moment.")
	fmt.Fprintf(&b, "hbfence_renewal_margin_seconds %s\n", num(st.RenewalMarginSeconds))
	gauge("hbfence_renewal_fail_seconds", "The pool's renewal_fail: a renewal older than this fences the host.")
	fmt.Fprintf(&b, "hbfence_renewal_fail_seconds %s\n", num(st.Timing.RenewalFail))
	gauge("hbfence_io_timeout_seconds", "The pool's io_timeout.")
	fmt.Fprintf(&b, "hbfence_io_timeout_seconds %s\n", num(st.Timing.IOTimeout))

	hosts := map[string]int{}
	for _, s := range []liveness.State{liveness.Unknown, liveness.Live, liveness.Suspect, liveness.Dead, liveness.Left} {
		hosts[s.String()] = 0
	}
	for _, h := range st.Hosts {
		hosts[h.State.String()]++
	}
	gauge("hbfence_hosts", "The hosts of the pool by their state as this host sees them.")
	for _, k := range sortedKeys(hosts) {
		fmt.Fprintf(&b, "hbfence_hosts{state=%q} %d\n", k, hosts[k])
	}
	guests := map[string]int{}
	for _, s := range []restart.State{restart.Running, restart.Starting, restart.Stopping, restart.Migrating, restart.Pending, restart.Stopped, restart.Error} {
		guests[string(s)] = 0
	}
	for _, g := range st.Guests {
		guests[string(g.State)]++
	}
	gauge("hbfence_guests", "The pool's guests by state, as the last plan read here shows them.")
	for _, k := range sortedKeys(guests) {
		fmt.Fprintf(&b, "hbfence_guests{state=%q} %d\n", k, guests[k])
	}
	gauge("hbfence_alarm", "1 for each alarm raised (codes: docs/operations.md, Alarms).")
	for _, code := range []string{AlarmAreaReplaced, AlarmRecordsOfAnotherPool} {
		on := false
		for _, a := range st.Alarms {
			on = on || a.Code == code
		}
		fmt.Fprintf(&b, "hbfence_alarm{code=%q} %d\n", code, bit(on))
	}
	return b.String()
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// writeMetrics replaces path with text atomically (a new file renamed over
// it, so that node_exporter never reads half a file).
func writeMetrics(path, text string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(text)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// metricsLoop rewrites [metrics] textfile every interval until ctx ends,
// then removes it: a stale file would show a stopped daemon as healthy.
func (d *Daemon) metricsLoop(ctx context.Context, path string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	failing := false
	for {
		err := writeMetrics(path, metricsText(d.status()))
		if err != nil && !failing {
			d.log.Warn().Err(err).Str("path", path).Msg("[metrics] textfile cannot be written; retrying every interval")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			os.Remove(path)
			return
		case <-tick.C:
		}
	}
}
