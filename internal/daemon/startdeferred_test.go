package daemon

import (
	"strings"
	"testing"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// A start the master cannot carry out now says so and why (issue 11: the
// start of a guest whose host hangs returned 0 and started nothing,
// silently).
func TestStartDeferred(t *testing.T) {
	hosts := []heartbeat.HostStatus{
		{Name: "live", State: liveness.Live},
		{Name: "hung", State: liveness.Suspect},
		{Name: "dead", State: liveness.Dead, Fenced: true},
		{Name: "unfenced", State: liveness.Dead},
	}
	for _, tc := range []struct {
		name string
		gs   agent.GuestStatus
		says string // "" for a start carried out as asked
	}{
		{"stopped, no host", agent.GuestStatus{State: restart.Stopped}, ""},
		{"stopped on a live host", agent.GuestStatus{Host: "live", State: restart.Stopped}, ""},
		{"on a hung host", agent.GuestStatus{Host: "hung", State: restart.Running}, "hung is suspect, not yet dead"},
		{"on a fenced host", agent.GuestStatus{Host: "dead", State: restart.Running}, ""},
		{"on a dead host not known fenced", agent.GuestStatus{Host: "unfenced", State: restart.Running}, "not known fenced"},
		{"on a host not in the view", agent.GuestStatus{Host: "other", State: restart.Running}, "not in this host's view"},
		{"already running", agent.GuestStatus{Host: "live", State: restart.Running}, "already runs on live"},
	} {
		got := startDeferred(tc.gs, hosts)
		if (tc.says == "") != (got == "") || !strings.Contains(got, tc.says) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.says)
		}
	}
}
