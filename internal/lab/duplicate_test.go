package lab_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/lab"
)

// TestDuplicateDaemonRefused starts a second daemon for the same host (same
// [host] name and machine id, same area) whose configuration differs in
// every path (its control socket, hence its "<socket>.lock", and its log):
// it must exit within one second naming the pid of the running daemon, and
// the running one must go on undisturbed — same generation, no fence.
func TestDuplicateDaemonRefused(t *testing.T) {
	p := newPool(t, lab.Options{})
	a := startHosts(t, p, "a")[0]
	before, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dup, err := p.AddHost("a", "-dup")
	if err != nil {
		t.Fatal(err)
	}
	// Same machine: the running daemon's machine id.
	cfg, err := os.ReadFile(dup.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), dup.MachineID, a.MachineID, 1))
	if err := os.WriteFile(dup.Config, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := dup.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	exitErr, err := dup.Wait(ctx)
	cancel()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the duplicate daemon still runs after %v: %v\nits log:\n%s", took, err, dup.Log())
	}
	if exitErr == nil {
		t.Fatalf("the duplicate daemon exited with status 0; its log:\n%s", dup.Log())
	}
	want := fmt.Sprintf("pid %d", a.PID())
	if !strings.Contains(dup.Log(), want) {
		t.Fatalf("the duplicate's message does not name the running daemon (%s):\n%s", want, dup.Log())
	}
	t.Logf("duplicate refused in %v: %s", took.Round(time.Millisecond), strings.TrimSpace(lastLine(dup.Log())))
	// The first goes on: a few intervals later, the same generation and
	// no fence in its log.
	time.Sleep(8 * interval)
	after, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after.Generation != before.Generation || after.Slot != before.Slot {
		t.Fatalf("the running daemon went from slot %d generation %d to slot %d generation %d", before.Slot, before.Generation, after.Slot, after.Generation)
	}
	if log := a.Log(); strings.Contains(log, "fenc") || strings.Contains(log, "slot lost") {
		t.Fatalf("the running daemon's log mentions a fence:\n%s", log)
	}
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
