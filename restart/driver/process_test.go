package driver

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const testUUID = "6f1c2a3b-0d4e-4f50-8a6b-7c8d9e0f1a2b"

func processGuest(t *testing.T, argv string) (*Process, Spec) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "guest.json")
	if err := os.WriteFile(cfg, []byte(argv), 0o600); err != nil {
		t.Fatal(err)
	}
	return &Process{StateDir: filepath.Join(dir, "state"), Host: "h1"}, Spec{UUID: testUUID, Name: "g1", Config: cfg}
}

func TestProcessLifecycle(t *testing.T) {
	p, g := processGuest(t, `{"argv": ["/bin/sleep", "1000"]}`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Start(ctx, g); err != nil {
		t.Fatal(err)
	}
	run, err := p.Running(ctx)
	if err != nil || !slices.Equal(run, []string{testUUID}) {
		t.Fatalf("running %v, %v", run, err)
	}
	// A restarted daemon (a new driver on the same state) adopts it.
	again := &Process{StateDir: p.StateDir, Host: "h1"}
	if run, _ := again.Running(ctx); !slices.Equal(run, []string{testUUID}) {
		t.Fatalf("a new driver sees %v", run)
	}
	pid, _ := p.alive(testUUID)
	if err := again.Start(ctx, g); err != nil {
		t.Fatal(err)
	}
	if pid2, _ := p.alive(testUUID); pid2 != pid {
		t.Fatalf("a second start started another process (%d, was %d)", pid2, pid)
	}
	if err := again.Stop(ctx, g); err != nil {
		t.Fatal(err)
	}
	if run, _ := p.Running(ctx); len(run) != 0 {
		t.Fatalf("still running after stop: %v", run)
	}
	if err := p.Destroy(ctx, g); err != nil {
		t.Fatalf("destroying a stopped guest: %v", err)
	}
}

func TestProcessDestroyAndStalePid(t *testing.T) {
	// A guest that ignores SIGTERM is gone only after Destroy.
	ready := filepath.Join(t.TempDir(), "ready")
	p, g := processGuest(t, `{"argv": ["/bin/sh", "-c", "trap '' TERM; touch `+ready+`; while :; do sleep 0.05; done"]}`)
	ctx := context.Background()
	if err := p.Start(ctx, g); err != nil {
		t.Fatal(err)
	}
	// Wait until the trap is set (bounded): a signal before it would end
	// the guest.
	for i := 0; ; i++ {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if i == 500 {
			t.Fatal("the guest never got ready")
		}
		time.Sleep(10 * time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if err := p.Stop(short, g); err == nil {
		t.Fatal("stop of a guest that ignores SIGTERM returned nil")
	}
	long, cancel2 := context.WithTimeout(ctx, 10*time.Second)
	defer cancel2()
	if err := p.Destroy(long, g); err != nil {
		t.Fatal(err)
	}
	// A pid file naming a process with another start time is stale.
	if err := os.WriteFile(p.pidFile(testUUID), []byte("1 12345\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if run, _ := p.Running(ctx); len(run) != 0 {
		t.Fatalf("a stale pid file counts as running: %v", run)
	}
}

func TestProcessBadConfig(t *testing.T) {
	for _, c := range []struct{ cfg, want string }{
		{`{"argv": []}`, "absolute program path"},
		{`{"argv": ["sleep", "1"]}`, "absolute program path"},
		{`{"args": ["/bin/sleep"]}`, "unknown field"},
	} {
		p, g := processGuest(t, c.cfg)
		err := p.Start(context.Background(), g)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), g.Config) {
			t.Errorf("config %s: %v; want an error naming the file and %q", c.cfg, err, c.want)
		}
	}
}
