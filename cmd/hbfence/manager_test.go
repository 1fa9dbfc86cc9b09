package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/restart/agent"
)

// guest show, guest list, status and pool show say which guest manages
// this pool and which pool a manager guest manages; the manager of this
// pool is never told to have its HA enabled.
func TestTheManagerRelationIsShown(t *testing.T) {
	const poolB = "d706ad8a-91f1-4949-b32e-b4857cdf0318"
	mgrA := agent.GuestStatus{Name: "mgr-a", UUID: "0004fb00-0006-0000-0000-00000000a001", HAPool: true, ManagesThisPool: true}
	mgrB := agent.GuestStatus{Name: "mgr-b", UUID: "0004fb00-0006-0000-0000-00000000b001", HA: true, HAPool: true, HAGuest: true, Manages: poolB}

	var w bytes.Buffer
	printGuest(&w, mgrA)
	if s := w.String(); !strings.Contains(s, "ha        off: it manages this pool") || strings.Contains(s, "guest ha enable") ||
		!strings.Contains(s, "manager   manages this pool (pool managed-by): never HA here") {
		t.Errorf("guest show of this pool's manager:\n%s", s)
	}
	w.Reset()
	printGuest(&w, mgrB)
	if s := w.String(); !strings.Contains(s, "ha        on:") || !strings.Contains(s, "manager   manages pool "+poolB) {
		t.Errorf("guest show of the other pool's manager:\n%s", s)
	}
	if got := haWord(mgrA); got != "off (manages this pool)" {
		t.Errorf("guest list's HA of this pool's manager: %q", got)
	}

	w.Reset()
	printManagers(&w, daemon.Status{ManagedBy: mgrA.UUID, Guests: []agent.GuestStatus{mgrA, mgrB}})
	if s := w.String(); !strings.Contains(s, "manager  this pool is managed by guest "+mgrA.UUID+" (mgr-a here, never HA in this pool)") ||
		!strings.Contains(s, "manager  guest mgr-b manages pool "+poolB) {
		t.Errorf("status's manager lines:\n%s", s)
	}
	w.Reset()
	printManagers(&w, daemon.Status{Guests: []agent.GuestStatus{{Name: "web01"}}})
	if w.Len() != 0 {
		t.Errorf("status of a pool without the relation prints %q", w.String())
	}

	for _, c := range []struct {
		v    daemon.PoolView
		want string
	}{
		{daemon.PoolView{}, "manager  none recorded (hbfence pool managed-by --manager-uuid UUID)"},
		{daemon.PoolView{ManagedBy: mgrA.UUID, Manager: "mgr-a"}, "manager  guest " + mgrA.UUID + " (mgr-a in this pool: never HA here)"},
		{daemon.PoolView{ManagedBy: mgrA.UUID}, "manager  guest " + mgrA.UUID + " (an HA guest of another pool)"},
	} {
		w.Reset()
		printPoolManager(&w, c.v)
		if got := strings.TrimSpace(w.String()); got != c.want {
			t.Errorf("pool show's manager line %q, want %q", got, c.want)
		}
	}
}
