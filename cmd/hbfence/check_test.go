package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// With no daemon answering, --check is critical (exit 2) and says so, on
// one line of standard output.
func TestStatusCheckWithoutDaemon(t *testing.T) {
	var out, errw bytes.Buffer
	code := run(context.Background(), []string{"status", "--check", "--socket", filepath.Join(t.TempDir(), "none.sock")}, &out, &errw)
	if code != 2 || !strings.HasPrefix(out.String(), "HBFENCE CRITICAL - no daemon answers") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("status --check without a daemon: exit %d, stdout %q, stderr %q", code, out.String(), errw.String())
	}
}
