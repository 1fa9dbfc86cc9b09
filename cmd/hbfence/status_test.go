package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/restart"
)

// TestStatusShowsRolesAndJoining (issue 11): each host's roles in the ROLES
// column and in --json by host name; a renewing host whose join is not
// proven shows as joining, not live.
func TestStatusShowsRolesAndJoining(t *testing.T) {
	st := daemon.Status{Status: heartbeat.Status{Hosts: []heartbeat.HostStatus{
		{Name: "node1", Slot: 0, Generation: 2, State: liveness.Live, SlotState: ondisk.StateLive, ChangeSeen: true},
		{Name: "node2", Slot: 1, Generation: 1, State: liveness.Live, SlotState: ondisk.StateJoining, ChangeSeen: true},
		{Name: "node3", Slot: 2, Generation: 1, State: liveness.Left, SlotState: ondisk.StateLeft, ChangeSeen: true},
	}}, Roles: map[string][]restart.Role{"node1": {restart.RoleVM, restart.RoleUtility}, "node2": {restart.RoleVM}}}
	var b strings.Builder
	printStatus(&b, st)
	out := b.String()
	for _, want := range []string{
		`(?m)^SLOT\s+HOST\s+STATE\s+FENCED\s+ROLES\s`,
		`(?m)^0\s+node1\s+live\s+no\s+vm,utility\s+2\s`,
		`(?m)^1\s+node2\s+joining\s+no\s+vm\s+1\s`,
		`(?m)^2\s+node3\s+left\s+no\s+-\s+1\s`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("status lacks %s:\n%s", want, out)
		}
	}
	j, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(j), `"roles":{"node1":["vm","utility"],"node2":["vm"]}`) {
		t.Errorf("--json roles: %s", j)
	}
}
