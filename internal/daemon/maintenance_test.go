package daemon

import (
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/hbfence/hbfence/restart/store"
)

// status warns about a host in maintenance, and status --check raises a
// WARNING naming it.
func TestMaintenanceWarning(t *testing.T) {
	c := store.PoolConfig{Maintenance: map[string]store.Maintenance{"v2": {Since: time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)}}}
	st := healthy()
	st.Warnings = poolWarnings(c, st.Status)
	if len(st.Warnings) != 1 || !strings.Contains(st.Warnings[0], "v2 in maintenance since 2026-12-07T03:00:00Z") || !strings.Contains(st.Warnings[0], "hbfence host maintenance exit v2") {
		t.Fatalf("warnings %q", st.Warnings)
	}
	level, line := Check(st)
	if level != CheckWarning || !strings.Contains(line, "host v2 in maintenance") {
		t.Fatalf("check: %v %q", level, line)
	}
	// Another warning is not taken for one.
	st.Warnings = []string{"the pool has 1 host with the utility role: ..."}
	if level, line := Check(st); level != CheckOK {
		t.Fatalf("check with the utility warning: %v %q", level, line)
	}
}

// The master's successor when it enters maintenance: a live host, not in
// maintenance if there is one, the first by name.
func TestMasterSuccessor(t *testing.T) {
	st := heartbeat.Status{Hosts: []heartbeat.HostStatus{{Name: "a", Self: true, State: liveness.Live},
		{Name: "d", State: liveness.Live}, {Name: "b", State: liveness.Dead}, {Name: "c", State: liveness.Live}}}
	c := store.PoolConfig{Maintenance: map[string]store.Maintenance{"a": {}, "c": {}}}
	if got := masterSuccessor(st, c); got != "d" {
		t.Errorf("successor %q, want d (c is in maintenance, b dead)", got)
	}
	c.Maintenance["d"] = store.Maintenance{}
	if got := masterSuccessor(st, c); got != "c" {
		t.Errorf("every other host in maintenance: successor %q, want c", got)
	}
	st.Hosts = st.Hosts[:1]
	if got := masterSuccessor(st, c); got != "" {
		t.Errorf("alone: successor %q", got)
	}
}

// guest migrate and start --on are refused, with the reason, for a host
// that is not available or that the placement does not allow, and for a
// driver that cannot live-migrate without --restart.
func TestMoveRefusals(t *testing.T) {
	hosts := []heartbeat.HostStatus{{Name: "a", State: liveness.Live, Generation: 1}, {Name: "b", State: liveness.Live, Generation: 3},
		{Name: "c", State: liveness.Suspect}, {Name: "u", State: liveness.Live}, {Name: "e", State: liveness.Live, Generation: 2}}
	c := store.PoolConfig{Maintenance: map[string]store.Maintenance{"m": {}}, Roles: map[string][]restart.Role{"u": {restart.RoleUtility}},
		Evacuations: map[string]store.Evacuation{"e": {Generation: 2}}}
	hosts = append(hosts, heartbeat.HostStatus{Name: "m", State: liveness.Live})
	g := store.GuestDef{Name: "web", Driver: "process", Placement: restart.Auto}
	running := agent.GuestStatus{State: restart.Running, Host: "a"}
	for _, tc := range []struct {
		to      string
		restart bool
		g       func(*store.GuestDef)
		gs      agent.GuestStatus
		says    string
	}{
		{to: "c", restart: true, gs: running, says: "c is suspect, not live"},
		{to: "m", restart: true, gs: running, says: "m is in maintenance"},
		{to: "u", restart: true, gs: running, says: "u lacks the vm role"},
		{to: "e", restart: true, gs: running, says: "e is being evacuated"},
		{to: "z", restart: true, gs: running, says: `no host "z"`},
		{to: "b", restart: true, gs: running, g: func(g *store.GuestDef) { g.Placement, g.Preferred = restart.Manual, []string{"a"} }, says: "not among its preferred hosts a"},
		{to: "b", gs: running, says: "the process driver cannot live-migrate a running guest; hbfence guest migrate web b --restart"},
		{to: "b", restart: true, gs: agent.GuestStatus{State: restart.Stopped}, says: "not running"},
		{to: "a", restart: true, gs: running, says: "already runs on a"},
		{to: "b", restart: true, gs: agent.GuestStatus{State: restart.Running, Host: "m"}, says: "which is in maintenance"},
	} {
		g := g
		if tc.g != nil {
			tc.g(&g)
		}
		err := moveGuest(&g, c, tc.gs, tc.to, tc.restart, hosts)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("migrate to %s: %v; want %q", tc.to, err, tc.says)
		}
		if g.MoveSeq != 0 {
			t.Errorf("migrate to %s: refused but written", tc.to)
		}
	}
	if err := moveGuest(&g, c, running, "b", true, hosts); err != nil || g.MoveSeq != 1 || g.MoveTo != "b" || !g.MoveRestart {
		t.Errorf("a good move: %v %+v", err, g)
	}
	xl := store.GuestDef{Name: "db", Driver: "xl", Placement: restart.Auto}
	if err := moveGuest(&xl, c, running, "b", false, hosts); err != nil || xl.MoveRestart {
		t.Errorf("a live move with xl: %v %+v", err, xl)
	}
	// An evacuation of an earlier incarnation does not stand.
	c.Evacuations["b"] = store.Evacuation{Generation: 2}
	if why := unavailableFor(c, g, "b", hosts); why != "" {
		t.Errorf("b/3 with an evacuation of b/2: %q", why)
	}
}
