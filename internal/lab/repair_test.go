package lab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/hbfence/hbfence/restart/store"
)

// A pool record that cannot be read (bytes flipped on the storage) is
// repaired with hbfence pool repair on the master, through the real CLI
// and daemon (issue 10, item 17); before, a change is refused, after, it
// is made, and the guests kept their definitions.
func TestPoolRepairOnTheMaster(t *testing.T) {
	p, hosts, m := guestPool(t, lab.GuestSpec{Name: "p1", HA: true}, lab.GuestSpec{Name: "p2", HA: true})
	ctx := context.Background()
	rec := filepath.Join(filepath.Dir(p.Area), store.Dir, "pool")
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	for i := 64; i < 128; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(rec, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := p.Run(ctx, "pool", "ha", "disable", "--socket", m.Socket); err == nil || !strings.Contains(out, "cannot be read") {
		t.Fatalf("a change of an unreadable pool record: %v\n%s", err, out)
	}
	var other *lab.Host
	for _, h := range hosts {
		if h != m {
			other = h
		}
	}
	// Asked on a host that is not the master, the repair is forwarded to
	// the master and carried out there, from the master's copy.
	out, err := p.Run(ctx, "pool", "repair", "--socket", other.Socket)
	if err != nil || !strings.Contains(out, "repaired from the master copy") || !strings.Contains(out, "2 guests") || !strings.Contains(out, "pool.unreadable-") {
		t.Fatalf("pool repair: %v\n%s", err, out)
	}
	t.Logf("hbfence pool repair:\n%s", out)
	if out, err := p.Run(ctx, "pool", "repair", "--socket", m.Socket); err == nil || !strings.Contains(out, "reads fine") {
		t.Fatalf("a second pool repair: %v\n%s", err, out)
	}
	if out, err := p.Run(ctx, "pool", "ha", "enable", "--socket", m.Socket); err != nil || !strings.Contains(out, "2 guests") {
		t.Fatalf("a change after the repair: %v\n%s", err, out)
	}
	// Every change works from any host: stop and start a guest, switch
	// HA off and on, on a host that is not the master.
	for _, args := range [][]string{{"guest", "stop", "p1", "--socket", other.Socket}, {"pool", "ha", "disable", "--socket", other.Socket},
		{"pool", "ha", "enable", "--socket", other.Socket}, {"guest", "start", "p1", "--socket", other.Socket}} {
		if out, err := p.Run(ctx, args...); err != nil {
			t.Fatalf("hbfence %v on %s (not the master): %v\n%s", args, other.Name, err, out)
		}
	}
	waitGuests(t, m, 10*time.Second, "p1 running again after a stop and a start asked on "+other.Name, func(gs map[string]agent.GuestStatus) bool {
		return gs["p1"].State == restart.Running
	})

	// pool show works on any host: the roles beside each host's state.
	if out, err := p.Run(ctx, "pool", "role", "nosuch", "vm", "--socket", m.Socket); err == nil || !strings.Contains(out, `no host "nosuch" in the pool`) {
		t.Fatalf("pool role of a host not in the pool: %v\n%s", err, out)
	}
	if out, err := p.Run(ctx, "pool", "role", other.Name, "vm,utility", "--socket", m.Socket); err != nil || !strings.Contains(out, "roles of "+other.Name+": vm,utility\n") {
		t.Fatalf("pool role: %v\n%s", err, out)
	}
	err = lab.WaitUntil(ctx, 10*time.Second, 50*time.Millisecond, "pool show on "+other.Name+" naming its roles", func() (bool, error) {
		out, err := p.Run(ctx, "pool", "show", "--json", "--socket", other.Socket)
		if err != nil {
			return false, fmt.Errorf("pool show --json: %v: %s", err, out)
		}
		var v daemon.PoolView
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			return false, err
		}
		if !v.HA || v.Guests != 2 || v.HAGuests != 2 || len(v.Hosts) != 3 || v.Alarms == nil {
			return false, nil
		}
		for _, h := range v.Hosts {
			want := "vm"
			if h.Name == other.Name {
				want = "vm,utility"
			}
			if h.State != "live" || fmt.Sprint(h.Roles) != "["+strings.ReplaceAll(want, ",", " ")+"]" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err = p.Run(ctx, "pool", "show", "--socket", other.Socket)
	if err != nil || !strings.Contains(out, "HA       enabled") || !strings.Contains(out, "2 guests defined, 2 guests with HA") || !strings.Contains(out, "vm,utility") {
		t.Fatalf("pool show: %v\n%s", err, out)
	}
	t.Logf("hbfence pool show on %s:\n%s", other.Name, out)
	// A role list without vm says what it means.
	if out, err := p.Run(ctx, "pool", "role", other.Name, "utility", "--socket", other.Socket); err != nil || !strings.Contains(out, "no vm role") {
		t.Fatalf("pool role HOST utility: %v\n%s", err, out)
	}
}
