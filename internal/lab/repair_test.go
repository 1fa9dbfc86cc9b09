package lab_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/internal/lab"
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
	if out, err := p.Run(ctx, "pool", "repair", "--socket", other.Socket); err == nil || !strings.Contains(out, "not the master") {
		t.Fatalf("pool repair on a host that is not the master: %v\n%s", err, out)
	}
	out, err := p.Run(ctx, "pool", "repair", "--socket", m.Socket)
	if err != nil || !strings.Contains(out, "repaired from the master copy") || !strings.Contains(out, "2 guest(s)") || !strings.Contains(out, "pool.unreadable-") {
		t.Fatalf("pool repair: %v\n%s", err, out)
	}
	t.Logf("hbfence pool repair:\n%s", out)
	if out, err := p.Run(ctx, "pool", "repair", "--socket", m.Socket); err == nil || !strings.Contains(out, "reads fine") {
		t.Fatalf("a second pool repair: %v\n%s", err, out)
	}
	if out, err := p.Run(ctx, "pool", "ha", "enable", "--socket", m.Socket); err != nil || !strings.Contains(out, "2 guest(s)") {
		t.Fatalf("a change after the repair: %v\n%s", err, out)
	}
}
