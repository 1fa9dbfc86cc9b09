package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// testdata/pool-before-manager.rec is a pool record written by the build
// before the manager relation (pool managed-by, guest add --manages): it
// reads with no manager and no managed pool, its other fields as they
// were; written again by this build, the new fields round-trip, and the
// record stays version 1.
func TestAPoolRecordFromBeforeTheManagerRelationReads(t *testing.T) {
	old, err := os.ReadFile("testdata/pool-before-manager.rec")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, Dir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, Dir, "pool"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(root, true, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pool, _ := ondisk.ParseUUID("5a1f0c1e-0000-4000-8000-00000000000a")
	s.BindPool(pool)
	h, c, err := s.ReadPool()
	if err != nil {
		t.Fatalf("the old record: %v", err)
	}
	if h.Epoch != 7 || !c.HA || len(c.Guests) != 2 || c.Guests[0].Name != "manager-b" || !c.Guests[0].HA || !c.Guests[1].Management {
		t.Fatalf("the old record read as %+v %+v", h, c)
	}
	if c.ManagedBy != "" || c.Guests[0].Manages != "" || c.IsManager(c.Guests[0].UUID) || c.IsManager("") {
		t.Fatalf("an old record names a manager: managed_by %q, manages %q", c.ManagedBy, c.Guests[0].Manages)
	}

	c.ManagedBy = "0004FB00-0006-0000-0000-00000000A001" // upper case, as an operator may type it
	c.Guests[0].Manages = "5a1f0c1e-0000-4000-8000-00000000000b"
	if err := s.WritePool(8, c); err != nil {
		t.Fatal(err)
	}
	_, back, err := s.ReadPool()
	if err != nil {
		t.Fatal(err)
	}
	if back.ManagedBy != c.ManagedBy || back.Guests[0].Manages != c.Guests[0].Manages {
		t.Fatalf("written and read back: managed_by %q, manages %q", back.ManagedBy, back.Guests[0].Manages)
	}
	if !back.IsManager("0004fb00-0006-0000-0000-00000000a001") || back.IsManager(back.Guests[0].UUID) {
		t.Errorf("IsManager: the manager is %q", back.ManagedBy)
	}
	b, _ := os.ReadFile(filepath.Join(root, Dir, "pool"))
	if b[4] != Version || b[5] != 0 {
		t.Errorf("the record's format version is %d, want %d", b[4], Version)
	}
}
