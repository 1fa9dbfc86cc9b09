package fence

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExecKiller(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "reason")
	ok := &ExecKiller{Argv: []string{"/bin/sh", "-c", `printf %s "$HBFENCE_REASON" > "$0"`, marker}, Timeout: 5 * time.Second}
	if err := ok.KillHAGuests(context.Background(), "poison pill"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(marker); string(b) != "poison pill" {
		t.Errorf("hook saw reason %q", b)
	}
	fail := &ExecKiller{Argv: []string{"/bin/sh", "-c", "echo guest vm7 still running; exit 3"}, Timeout: 5 * time.Second}
	if err := fail.KillHAGuests(context.Background(), "test"); err == nil || !strings.Contains(err.Error(), "guest vm7 still running") {
		t.Errorf("failing hook: %v", err)
	}
	// A hook that hangs, with a child that would keep its output open: the
	// whole group is killed at the timeout.
	hang := &ExecKiller{Argv: []string{"/bin/sh", "-c", "sleep 600 & sleep 600"}, Timeout: 200 * time.Millisecond}
	err := hang.KillHAGuests(context.Background(), "test")
	if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
		t.Errorf("hanging hook: %v", err)
	}
	if err := (&ExecKiller{}).KillHAGuests(context.Background(), "test"); err == nil {
		t.Error("an empty hook confirmed")
	}
	if err := (NoGuests{}).KillHAGuests(context.Background(), "test"); err != nil {
		t.Error(err)
	}
}
