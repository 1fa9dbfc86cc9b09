package control

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCallRoundTrip(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "c.sock")
	srv, err := Listen(sock, map[string]Handler{
		"echo": func(_ context.Context, args json.RawMessage) (any, error) {
			var v map[string]string
			json.Unmarshal(args, &v)
			return v, nil
		},
		"fail": func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("no such host") },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	defer srv.Close()

	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", st.Mode().Perm())
	}
	if d, _ := os.Stat(filepath.Dir(sock)); d.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v, want 0700", d.Mode().Perm())
	}
	var out map[string]string
	if err := Call(ctx, sock, "echo", map[string]string{"a": "b"}, &out); err != nil || out["a"] != "b" {
		t.Errorf("echo: %v %v", out, err)
	}
	if err := Call(ctx, sock, "fail", nil, nil); err == nil || !strings.Contains(err.Error(), "no such host") {
		t.Errorf("fail: %v", err)
	}
	if err := Call(ctx, sock, "nope", nil, nil); err == nil || !strings.Contains(err.Error(), `unknown command "nope"`) {
		t.Errorf("unknown: %v", err)
	}
	// A second daemon must not steal a live socket.
	if _, err := Listen(sock, nil); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("second Listen: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(sock, nil)
	if err != nil {
		t.Fatalf("stale socket file not replaced: %v", err)
	}
	srv.Close()
}

func TestCallNoDaemon(t *testing.T) {
	err := Call(context.Background(), filepath.Join(t.TempDir(), "none.sock"), "status", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no hbfence daemon at") {
		t.Errorf("got %v", err)
	}
}
