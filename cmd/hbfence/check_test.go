package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// healthy is the status of a joined host of a pool with a master.
func healthy() daemon.Status {
	var st daemon.Status
	st.Self, st.Slot, st.Joined = "v1", 0, true
	st.Timing = heartbeat.TimingJSON{Interval: 1, IOTimeout: 2, RenewalFail: 12, Watchdog: 10, HostDead: 27}
	st.LastRenewalAgeSeconds = 0.4
	st.RenewalLatency.MaxMS = 3
	st.Fence = &fence.Status{State: fence.Healthy}
	st.Master = &master.Status{Known: true, Name: "v2", Epoch: 7}
	st.Hosts = []heartbeat.HostStatus{{Name: "v1", Self: true, State: liveness.Live}, {Name: "v2", State: liveness.Live}}
	st.Guests = []agent.GuestStatus{{Name: "g1", State: restart.Running}}
	return st
}

// hbfence status --check: the worst condition decides the exit code, and
// the line names every condition found.
func TestStatusCheckJudges(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*daemon.Status)
		want   checkLevel
		says   string
	}{
		{"healthy", func(*daemon.Status) {}, checkOK, "master v2 epoch 7"},
		{"joining", func(s *daemon.Status) { s.Joined = false }, checkCritical, "not in the pool"},
		{"fencing", func(s *daemon.Status) { s.Fence = &fence.Status{State: fence.Fencing, Reason: "renewals lapsed"} }, checkCritical, "renewals lapsed"},
		{"no master", func(s *daemon.Status) { s.Master = &master.Status{Known: true, Epoch: 7, Released: true} }, checkCritical, "no master"},
		{"alarm", func(s *daemon.Status) {
			s.Alarms = []daemon.Alarm{{Code: daemon.AlarmAreaReplaced, Message: "x"}}
		}, checkCritical, "alarm area-replaced"},
		{"stayed unsafe", func(s *daemon.Status) { s.Watchdog.Unsafe, s.Watchdog.Note = true, "UNSAFE: fenced but..." }, checkCritical, "UNSAFE"},
		{"suspect peer", func(s *daemon.Status) { s.Hosts[1].State = liveness.Suspect }, checkWarning, "host v2 suspect"},
		{"unsafe peer", func(s *daemon.Status) { s.Hosts[1].Unsafe = true }, checkWarning, "host v2 unsafe"},
		{"slow renewal", func(s *daemon.Status) { s.RenewalLatency.MaxMS = 1500 }, checkWarning, "more than half of io_timeout"},
		{"old renewal", func(s *daemon.Status) { s.LastRenewalAgeSeconds = 7 }, checkWarning, "more than half of renewal_fail"},
		{"pending guest", func(s *daemon.Status) { s.Guests[0].State = restart.Pending }, checkWarning, "guest g1 pending"},
		{"critical beats warning", func(s *daemon.Status) { s.Hosts[1].State = liveness.Suspect; s.Joined = false }, checkCritical, "host v2 suspect"},
	} {
		st := healthy()
		tc.change(&st)
		level, line := judge(st)
		if level != tc.want || !strings.Contains(line, tc.says) || !strings.HasPrefix(line, "HBFENCE "+tc.want.String()+" - ") || !strings.Contains(line, " | hosts_live=") {
			t.Errorf("%s: %v %q, want %v saying %q", tc.name, level, line, tc.want, tc.says)
		}
	}
}

// With no daemon answering, --check is critical (exit 2) and says so, on
// one line of standard output.
func TestStatusCheckWithoutDaemon(t *testing.T) {
	var out, errw bytes.Buffer
	code := run(context.Background(), []string{"status", "--check", "--socket", filepath.Join(t.TempDir(), "none.sock")}, &out, &errw)
	if code != 2 || !strings.HasPrefix(out.String(), "HBFENCE CRITICAL - no daemon answers") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("status --check without a daemon: exit %d, stdout %q, stderr %q", code, out.String(), errw.String())
	}
}
