package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/internal/control"
)

// Every command given --json prints its failure as one JSON object on
// standard output, with a stable code (issue 11: errors were plain text
// alone), and keeps its exit code.
func TestJSONErrors(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "d.sock")
	srv, err := control.Listen(sock, map[string]control.Handler{
		"guest": func(context.Context, json.RawMessage) (any, error) {
			return nil, errors.New("no guest \"nosuch\" in the pool")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	for _, tc := range []struct {
		args []string
		code string
		exit int
	}{
		{[]string{"status", "--json", "--socket", filepath.Join(dir, "none.sock")}, "unreachable", 1},
		{[]string{"guest", "start", "nosuch", "--json", "--socket", sock}, "refused", 1},
		{[]string{"guest", "frobnicate", "--json", "--socket", sock}, "usage", 2},
		{[]string{"status", "--json", "--config", filepath.Join(dir, "missing.toml")}, "config", 78},
	} {
		var out, errw bytes.Buffer
		exit := run(context.Background(), tc.args, &out, &errw)
		var je jsonError
		if err := json.Unmarshal(out.Bytes(), &je); err != nil {
			t.Errorf("%v: stdout %q is not one JSON object: %v", tc.args, out.String(), err)
			continue
		}
		if exit != tc.exit || je.Schema != JSONSchema || je.Error.Code != tc.code || je.Error.Message == "" || !strings.Contains(errw.String(), je.Error.Message) {
			t.Errorf("%v: exit %d, %+v, stderr %q; want exit %d, code %q, the message on stderr too", tc.args, exit, je, errw.String(), tc.exit, tc.code)
		}
	}
	// Without --json, no JSON.
	var out, errw bytes.Buffer
	run(context.Background(), []string{"status", "--socket", filepath.Join(dir, "none.sock")}, &out, &errw)
	if out.Len() != 0 {
		t.Errorf("status without --json printed %q on stdout", out.String())
	}
}
