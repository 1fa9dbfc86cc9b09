package lab_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// Real daemons: pool managed-by, typed on a host that is not the master,
// turns the HA of the running manager guest off; guest ha enable of it is
// then refused; and when its host is killed the master does not restart
// it in the pool it manages, saying why, while an HA guest of the same
// pool is restarted.
func TestTheManagerIsNotRestartedInThePoolItManages(t *testing.T) {
	const mgr = "0004fb00-0006-0000-0000-00000000a001"
	p, hosts, m := guestPool(t, lab.GuestSpec{Name: "mgr", HA: true, UUID: mgr}, lab.GuestSpec{Name: "app", HA: true})
	ctx := context.Background()
	other := hosts[0]
	if other == m {
		other = hosts[1]
	}
	out, err := p.Run(ctx, "pool", "managed-by", "--manager-uuid", mgr, "--socket", other.Socket)
	if err != nil || !strings.Contains(out, "its HA is turned off") {
		t.Fatalf("pool managed-by on %s (not the master): %v: %s", other.Name, err, out)
	}
	out, err = p.Run(ctx, "guest", "ha", "enable", "mgr", "--socket", other.Socket)
	if err == nil || !strings.Contains(out, "manages this pool") {
		t.Fatalf("guest ha enable of the manager: %v: %s; want it refused", err, out)
	}
	gs, err := m.Guests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gs["mgr"].HA || !gs["mgr"].ManagesThisPool || gs["mgr"].State != restart.Running {
		t.Fatalf("the manager after managed-by: %+v; want it running, HA off, manages_this_pool", gs["mgr"])
	}

	victim := hostByName(hosts, gs["mgr"].Host)
	var observer *lab.Host
	for _, h := range hosts {
		if h != victim {
			observer = h
		}
	}
	// The pool's other HA guest, moved onto the victim's host by hand,
	// dies with it: it is restarted, the manager is not.
	if gs["app"].Host != victim.Name {
		if out, err := p.Run(ctx, "guest", "migrate", "app", victim.Name, "--restart", "--socket", observer.Socket); err != nil {
			t.Fatalf("guest migrate app %s: %v: %s", victim.Name, err, out)
		}
		waitGuests(t, observer, 10*hostDead, "app running on "+victim.Name, func(gs map[string]agent.GuestStatus) bool {
			return gs["app"].State == restart.Running && gs["app"].Host == victim.Name
		})
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	after := waitGuests(t, observer, 4*hostDead, "app restarted elsewhere and mgr stopped", func(gs map[string]agent.GuestStatus) bool {
		return gs["app"].State == restart.Running && gs["app"].Host != victim.Name && gs["mgr"].State == restart.Stopped
	})
	if msg := after["mgr"].Message; !strings.Contains(msg, "manages this pool") {
		t.Errorf("the manager's message %q does not say why it was not restarted", msg)
	}
	ws, err := lab.ReadDisk(p.Disk("mgr"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Host != victim.Name {
		t.Errorf("the manager's disk shows %+v; want its one copy, on %s", ws, victim.Name)
	}
}
