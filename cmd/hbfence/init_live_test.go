package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// replaceWait makes refuseLiveArea's wait run during instead of
// sleeping, and records the duration it was asked to wait.
func replaceWait(t *testing.T, during func()) *time.Duration {
	t.Helper()
	var asked time.Duration
	old := waitHostDead
	waitHostDead = func(_ context.Context, d time.Duration) error {
		asked = d
		during()
		return nil
	}
	t.Cleanup(func() { waitHostDead = old })
	return &asked
}

// slotWriter writes host's slot into the area at path, as a running
// daemon does each interval: each call bumps the sequence.
func slotWriter(t *testing.T, path string, index int, host string) func() {
	t.Helper()
	a, err := area.Open(path, 0, directio.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	s := ondisk.Slot{Version: ondisk.SlotVersion, State: ondisk.StateLive, Index: uint32(index),
		PoolUUID: a.Header().PoolUUID, Generation: 1, HostName: host, Agent: "test"}
	return func() {
		s.Sequence++
		s.Wall = time.Now()
		if err := a.WriteSlot(index, s.Encode()); err != nil {
			t.Error(err)
		}
	}
}

// init --force over an area whose slots change between the two reads is
// refused, names the live host, and writes nothing.
func TestInitForceRefusesLiveArea(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".server_pool_hb")
	mustInit(t, path, "--profile", "fast", "--slots", "4")
	write := slotWriter(t, path, 2, "kvm2")
	write()
	asked := replaceWait(t, write) // kvm2 writes again between the reads
	before, _ := os.ReadFile(path)
	code, _, stderr := hb(t, "init", "--force", "--profile", "fast", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr)
	}
	for _, want := range []string{"is in use", "kvm2 (slot 2)", "changed within 6s", "even --force", "nothing was written"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error %q does not say %q", stderr, want)
		}
	}
	if *asked != 6*time.Second {
		t.Errorf("waited %s between the reads, want the old pool's host_dead 6s", *asked)
	}
	// Only kvm2's own write landed; the header and the rest are as before.
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before[:512], after[:512]) {
		t.Error("the header changed")
	}
	if _, out, _ := hb(t, "dump", path); !strings.Contains(out, "kvm2") {
		t.Errorf("kvm2's slot is gone:\n%s", out)
	}
}

// A stale slot (a host that stopped writing) does not stop a forced
// format: only a change between the two reads does.
func TestInitForceFormatsQuietArea(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".server_pool_hb")
	mustInit(t, path, "--profile", "fast", "--slots", "4", "--uuid", "0123456789abcdef0123456789abcdef")
	slotWriter(t, path, 1, "kvm1")() // wrote once, then died
	asked := replaceWait(t, func() {})
	mustInit(t, path, "--force", "--profile", "fast", "--uuid", "fedcba9876543210fedcba9876543210")
	if *asked != 6*time.Second {
		t.Errorf("waited %s, want 6s", *asked)
	}
	_, out, _ := hb(t, "dump", path)
	if !strings.Contains(out, "fedcba98-7654-3210-fedc-ba9876543210") {
		t.Errorf("not re-formatted:\n%s", out)
	}
}
