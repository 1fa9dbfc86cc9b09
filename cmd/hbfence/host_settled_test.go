package main

import (
	"testing"

	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// An evacuation's watch ends only when its guests will not move further
// by themselves. A guest pending while a new master waits for the hosts'
// reports on its epoch (TestMaintenance in CI at 925ff66: the watch ended
// 0.2 s in, reporting m1 not moved) is not settled; one pending with no
// host to take it is.
func TestSettled(t *testing.T) {
	for _, c := range []struct {
		g    agent.GuestStatus
		want bool
	}{
		{agent.GuestStatus{State: restart.Pending, Message: "waiting for v3 to report on epoch 2"}, false},
		{agent.GuestStatus{State: restart.Pending, Message: "waiting for v1, v3 to report on epoch 12"}, false},
		{agent.GuestStatus{State: restart.Pending, Message: "no host can take it: v2 is in maintenance"}, true},
		{agent.GuestStatus{State: restart.Running, Host: "v1"}, false},
		{agent.GuestStatus{State: restart.Running, Host: "v2"}, true},
		{agent.GuestStatus{State: restart.Stopping, Host: "v1"}, false},
		{agent.GuestStatus{State: restart.Error, Message: "gave up"}, true},
	} {
		if got := settled(c.g, "v1"); got != c.want {
			t.Errorf("settled(%s %q on %q) = %v, want %v", c.g.State, c.g.Message, c.g.Host, got, c.want)
		}
	}
}
