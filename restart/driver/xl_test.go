package driver

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseXlList(t *testing.T) {
	b, err := os.ReadFile("../../testdata/xl/list-l.json")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseXlList(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0004fb00-0006-0000-5b3e-7c1f0c6a1a01", "0004fb00-0006-0000-9a2d-03e4b1c0d202"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v (Domain-0 left out)", got, want)
	}
	for _, bad := range []string{`{"domid": 1}`, `[{"config": {}}]`, `[{"domid": 3, "config": {"c_info": {"name": "x", "uuid": "nope"}}}]`} {
		if _, err := ParseXlList([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// The xl driver passes the argv a Xen host expects, and nothing through a
// shell: a fake xl on PATH records what it got.
func TestXlArgv(t *testing.T) {
	path, log := fakeTool(t, "xl")
	t.Setenv("FAKE_OUT_list", "../../testdata/xl/list-l.json")
	x := &Xl{Path: path}
	ctx := context.Background()
	web := Spec{UUID: "0004fb00-0006-0000-5b3e-7c1f0c6a1a01", Name: "web01", Config: "/OVS/Repositories/r1/VirtualMachines/web01/vm.cfg"}
	gone := Spec{UUID: "0004fb00-0006-0000-0000-000000000000", Name: "gone; rm -rf /", Config: "/x"}
	if err := x.Start(ctx, web); err != nil {
		t.Fatal(err)
	}
	if err := x.Migrate(ctx, web, "-sCMD"); err != nil {
		t.Fatal(err)
	}
	if err := x.Stop(ctx, web); err != nil {
		t.Fatal(err)
	}
	if err := x.Destroy(ctx, gone); err != nil {
		t.Fatalf("destroying a guest that does not run: %v", err)
	}
	// Stop, destroy and migrate find the domain id by UUID first (web01
	// is domain 7 in the recorded list).
	want := []string{
		"create|--|/OVS/Repositories/r1/VirtualMachines/web01/vm.cfg",
		"list|-l",
		"migrate|--|7|-sCMD", // a host name that looks like an option stays a host name
		"list|-l",
		"shutdown|-w|--|7",
		"list|-l", // destroy of a guest that does not run: listed, not destroyed
	}
	if got := argvLog(t, log); !slices.Equal(got, want) {
		t.Fatalf("argv:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A failing xl: its message comes back.
	t.Setenv("FAKE_EXIT_create", "1")
	t.Setenv("FAKE_ERR", "libxl: error: out of memory")
	err := x.Start(ctx, web)
	var ee *ExitError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "out of memory") {
		t.Fatalf("failed create: %v", err)
	}
}
