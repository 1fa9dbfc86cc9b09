package daemon

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/restart"
)

// CheckLevel is a monitoring plugin's verdict (the Nagios convention,
// which Icinga, Zabbix and Prometheus' blackbox scripts read): the
// process's exit code.
type CheckLevel int

const (
	CheckOK CheckLevel = iota
	CheckWarning
	CheckCritical
	CheckUnknown
)

func (l CheckLevel) String() string {
	return [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}[l]
}

// Check is hbfence status --check: the worst condition of this host's
// view, and a one-line summary of every condition found. Pure.
//
// Critical: this host is not in the pool, is fencing or unsafe, there is
// no master, or an alarm is raised. Warning: a peer is suspect or unsafe,
// a renewal took more than half of io_timeout or the last one is older
// than half of renewal_fail, a host is in maintenance, a guest is pending
// or in error.
func Check(st Status) (CheckLevel, string) {
	level := CheckOK
	var why []string
	raise := func(l CheckLevel, format string, args ...any) {
		level = max(level, l)
		why = append(why, fmt.Sprintf(format, args...))
	}
	t := st.Timing
	if !st.Joined {
		raise(CheckCritical, "not in the pool (joining)")
	}
	if f := st.Fence; f != nil && f.State != fence.Healthy {
		raise(CheckCritical, "this host is %s: %s", f.State, f.Reason)
	}
	if st.Watchdog.Unsafe && strings.HasPrefix(st.Watchdog.Note, "UNSAFE") {
		raise(CheckCritical, "%s", st.Watchdog.Note)
	} else if st.Watchdog.Unsafe {
		raise(CheckWarning, "this host runs without a watchdog")
	}
	for _, a := range st.Alarms {
		raise(CheckCritical, "alarm %s", a.Code)
	}
	if m := st.Master; st.Joined && (m == nil || !m.Known || m.Name == "") {
		raise(CheckCritical, "no master")
	}
	if st.Joined && t.IOTimeout > 0 && st.RenewalLatency.MaxMS > 500*t.IOTimeout {
		raise(CheckWarning, "renewal latency %.0f ms, more than half of io_timeout (%gs)", st.RenewalLatency.MaxMS, t.IOTimeout)
	}
	if st.Joined && t.RenewalFail > 0 && st.LastRenewalAgeSeconds > t.RenewalFail/2 {
		raise(CheckWarning, "last renewal %.1fs ago, more than half of renewal_fail (%gs)", st.LastRenewalAgeSeconds, t.RenewalFail)
	} else if st.Joined && t.RenewalFail > 0 && st.RenewalGapMaxSeconds > t.RenewalFail/2 {
		raise(CheckWarning, "a gap of %.1fs between two renewals in the last minutes, more than half of renewal_fail (%gs)", st.RenewalGapMaxSeconds, t.RenewalFail)
	}
	live := 0
	for _, h := range st.Hosts {
		switch {
		case h.Self:
		case h.State == liveness.Suspect:
			raise(CheckWarning, "host %s suspect", printable(h.Name))
		case h.Unsafe && h.State != liveness.Left:
			raise(CheckWarning, "host %s unsafe (no watchdog)", printable(h.Name))
		case h.GuestsUnknown && h.State == liveness.Left:
			raise(CheckWarning, "host %s left but cannot list its guests", printable(h.Name))
		}
		if h.State == liveness.Live {
			live++
		}
	}
	for _, w := range st.Warnings {
		if h, ok := inMaintenance(w); ok {
			raise(CheckWarning, "host %s in maintenance", printable(h))
		}
	}
	running := 0
	for _, g := range st.Guests {
		switch g.State {
		case restart.Running:
			running++
		case restart.Pending:
			raise(CheckWarning, "guest %s pending", printable(g.Name))
		case restart.Error:
			raise(CheckWarning, "guest %s in error", printable(g.Name))
		}
	}
	summary := fmt.Sprintf("HBFENCE %s - ", level)
	if len(why) > 0 {
		summary += strings.Join(why, "; ")
	} else {
		summary += fmt.Sprintf("live in pool %s, slot %d", short(st.PoolUUID.String()), st.Slot)
		if m := st.Master; m != nil {
			summary += fmt.Sprintf(", master %s epoch %d", printable(m.Name), m.Epoch)
		}
	}
	summary += fmt.Sprintf(" | hosts_live=%d guests_running=%d guests=%d renewal_age=%.3fs;%g;%g renewal_latency_max=%.3fms;%g;%g",
		live, running, len(st.Guests), st.LastRenewalAgeSeconds, t.RenewalFail/2, t.RenewalFail, st.RenewalLatency.MaxMS, 500*t.IOTimeout, 1000*t.IOTimeout)
	return level, summary
}

func short(uuid string) string {
	if len(uuid) > 8 {
		return uuid[:8]
	}
	return uuid
}

// printable is s with control characters and invalid UTF-8 escaped (Go
// quoting without the quotes), for a one-line summary.
func printable(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
