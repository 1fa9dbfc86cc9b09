package restart

import (
	"fmt"
	"testing"

	"github.com/hbfence/hbfence/heartbeat/liveness"
)

// Placement of 10 000 guests over 256 hosts: every guest's host has just
// died (fenced), so every HA guest is placed anew.
func BenchmarkReconcileFailover10kGuests256Hosts(b *testing.B) {
	const hosts, guests = 256, 10000
	in := Input{Epoch: 2, Pool: Pool{HA: true}, Prev: Plan{Epoch: 2, Seq: 1, Guests: map[string]Assignment{}}}
	for i := range hosts {
		id := HostID{Name: fmt.Sprintf("host%03d", i), Generation: 1}
		in.Hosts = append(in.Hosts, Host{ID: id, State: liveness.Live, Roles: []Role{RoleVM}, Report: &Report{Host: id, Seq: 1, Epoch: 2}})
	}
	in.Hosts[0].State = liveness.Dead
	dead := in.Hosts[0].ID
	for i := range guests {
		g := Guest{UUID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), HA: true, Placement: Auto}
		if i%10 == 0 {
			g.Placement, g.Preferred = Manual, []string{fmt.Sprintf("host%03d", 1+i%255), fmt.Sprintf("host%03d", 1+(i+7)%255)}
		}
		in.Guests = append(in.Guests, g)
		in.Prev.Guests[g.UUID] = Assignment{Host: dead, State: Running}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, _ := Reconcile(in)
		if len(p.Guests) != guests {
			b.Fatal(len(p.Guests))
		}
	}
}

// The steady state: 10 000 guests running on 256 live hosts, adopted from
// their reports.
func BenchmarkReconcileSteady10kGuests256Hosts(b *testing.B) {
	const hosts, guests = 256, 10000
	in := Input{Epoch: 2, Pool: Pool{HA: true}, Prev: Plan{Epoch: 2, Seq: 1, Guests: map[string]Assignment{}}}
	reports := make([]*Report, hosts)
	for i := range hosts {
		id := HostID{Name: fmt.Sprintf("host%03d", i), Generation: 1}
		reports[i] = &Report{Host: id, Seq: 1, Epoch: 2}
		in.Hosts = append(in.Hosts, Host{ID: id, State: liveness.Live, Roles: []Role{RoleVM}, Report: reports[i]})
	}
	for i := range guests {
		g := Guest{UUID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), HA: true, Placement: Auto}
		in.Guests = append(in.Guests, g)
		reports[i%hosts].Running = append(reports[i%hosts].Running, g.UUID)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		Reconcile(in)
	}
}
