package restart

import (
	"strings"
	"testing"

	"github.com/hbfence/hbfence/heartbeat/liveness"
)

// The guest the pool record names as this pool's manager is never
// restarted here as HA, though its own record says HA (a record written
// before pool managed-by, or by an older master): its host dies, it stops
// and says why, while an HA guest of the same host is restarted.
func TestTheManagerOfThisPoolIsNotRestartedHere(t *testing.T) {
	dead := with(host("a", 1), func(h *Host) { h.State = liveness.Dead })
	in := Input{Epoch: 1, Pool: Pool{HA: true, ManagedBy: "AAAA0000-0000-4000-8000-000000000001"},
		Guests: []Guest{haGuest("aaaa0000-0000-4000-8000-000000000001"), haGuest("g2")},
		Hosts:  []Host{dead, host("b", 1)},
		Prev: planOf(1, map[string]Assignment{
			"aaaa0000-0000-4000-8000-000000000001": {Host: id("a"), State: Running},
			"g2":                                   {Host: id("a"), State: Running}})}
	p, _ := Reconcile(in)
	want(t, p, "aaaa0000-0000-4000-8000-000000000001", HostID{}, Stopped)
	want(t, p, "g2", id("b"), Starting)
	if m := p.Guests["aaaa0000-0000-4000-8000-000000000001"].Message; !strings.Contains(m, "manages this pool") {
		t.Errorf("the manager's message %q does not say it manages this pool", m)
	}

	// Without the relation the same guest is restarted: the refusal is
	// the relation's, not the guest's.
	in.Pool.ManagedBy = ""
	p, _ = Reconcile(in)
	want(t, p, "aaaa0000-0000-4000-8000-000000000001", id("b"), Starting)
}

// A pending manager (no host was available) is not placed once the
// relation names it.
func TestAPendingManagerIsNotPlaced(t *testing.T) {
	u := "aaaa0000-0000-4000-8000-000000000001"
	in := Input{Epoch: 1, Pool: Pool{HA: true, ManagedBy: u}, Guests: []Guest{haGuest(u)},
		Hosts: []Host{host("b", 1)}, Prev: planOf(1, map[string]Assignment{u: {State: Pending}})}
	p, _ := Reconcile(in)
	want(t, p, u, HostID{}, Stopped)
}
