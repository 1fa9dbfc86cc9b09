package daemon

import (
	"strings"
	"testing"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// healthy is the status of a joined host of a pool with a master.
func healthy() Status {
	var st Status
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
		change func(*Status)
		want   CheckLevel
		says   string
	}{
		{"healthy", func(*Status) {}, CheckOK, "master v2 epoch 7"},
		{"joining", func(s *Status) { s.Joined = false }, CheckCritical, "not in the pool"},
		{"fencing", func(s *Status) { s.Fence = &fence.Status{State: fence.Fencing, Reason: "renewals lapsed"} }, CheckCritical, "renewals lapsed"},
		{"no master", func(s *Status) { s.Master = &master.Status{Known: true, Epoch: 7, Released: true} }, CheckCritical, "no master"},
		{"alarm", func(s *Status) {
			s.Alarms = []Alarm{{Code: AlarmAreaReplaced, Message: "x"}}
		}, CheckCritical, "alarm area-replaced"},
		{"stayed unsafe", func(s *Status) { s.Watchdog.Unsafe, s.Watchdog.Note = true, "UNSAFE: fenced but..." }, CheckCritical, "UNSAFE"},
		{"suspect peer", func(s *Status) { s.Hosts[1].State = liveness.Suspect }, CheckWarning, "host v2 suspect"},
		{"unsafe peer", func(s *Status) { s.Hosts[1].Unsafe = true }, CheckWarning, "host v2 unsafe"},
		{"slow renewal", func(s *Status) { s.RenewalLatency.MaxMS = 1500 }, CheckWarning, "more than half of io_timeout"},
		{"old renewal", func(s *Status) { s.LastRenewalAgeSeconds = 7 }, CheckWarning, "more than half of renewal_fail"},
		{"a long gap lately", func(s *Status) { s.RenewalGapMaxSeconds = 8 }, CheckWarning, "a gap of 8.0s between two renewals"},
		{"pending guest", func(s *Status) { s.Guests[0].State = restart.Pending }, CheckWarning, "guest g1 pending"},
		{"critical beats warning", func(s *Status) { s.Hosts[1].State = liveness.Suspect; s.Joined = false }, CheckCritical, "host v2 suspect"},
	} {
		st := healthy()
		tc.change(&st)
		level, line := Check(st)
		if level != tc.want || !strings.Contains(line, tc.says) || !strings.HasPrefix(line, "HBFENCE "+tc.want.String()+" - ") || !strings.Contains(line, " | hosts_live=") {
			t.Errorf("%s: %v %q, want %v saying %q", tc.name, level, line, tc.want, tc.says)
		}
	}
}
