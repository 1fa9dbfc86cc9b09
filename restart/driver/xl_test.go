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
	t.Setenv("FAKE_OUT_list__l", "../../testdata/xl/list-l.json")
	t.Setenv("FAKE_OUT_list__v", "../../testdata/xl/list-v.txt")
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
		"list|-l", "list|-v",
		"migrate|--|7|-sCMD", // a host name that looks like an option stays a host name
		"list|-l", "list|-v",
		"shutdown|-w|--|7",
		"list|-l", "list|-v", // destroy of a guest that does not run: listed, not destroyed
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

// xl list -l leaves out, without an error, a domain whose stored
// configuration it cannot read; xl list -v, from the hypervisor, shows it.
// Such a listing is "unknown", an error: a guest hidden from it must never
// be confirmed gone (the fence path would disarm, the master restart it
// elsewhere) nor skipped by a destroy (issue 10 item 1).
func TestXlHiddenDomainIsUnknown(t *testing.T) {
	path, _ := fakeTool(t, "xl")
	t.Setenv("FAKE_OUT_list__l", "../../testdata/xl/list-l.json")
	t.Setenv("FAKE_OUT_list__v", "../../testdata/xl/list-v-hidden.txt")
	x := &Xl{Path: path}
	ctx := context.Background()
	hidden := Spec{UUID: "0004fb00-0006-0000-77aa-1234567890ab", Name: "legacy", Config: "/x"}
	if run, err := x.Running(ctx); err == nil {
		t.Fatalf("Running = %v with a domain xl list -l leaves out; want an error", run)
	} else if !strings.Contains(err.Error(), "domain 12") {
		t.Fatalf("the error does not name the domain: %v", err)
	}
	if err := ConfirmGone(ctx, x, hidden.UUID); err == nil {
		t.Fatal("a domain hidden from xl list -l was confirmed gone")
	}
	if err := x.Destroy(ctx, hidden); err == nil {
		t.Fatal("destroying a hidden domain reported success without destroying it")
	}
	// With the full listing, the same guests are listed as before.
	t.Setenv("FAKE_OUT_list__v", "../../testdata/xl/list-v.txt")
	run, err := x.Running(ctx)
	if want := []string{"0004fb00-0006-0000-5b3e-7c1f0c6a1a01", "0004fb00-0006-0000-9a2d-03e4b1c0d202"}; err != nil || !slices.Equal(run, want) {
		t.Fatalf("Running = %v, %v; want %v", run, err, want)
	}
}

func TestParseXlListVerbose(t *testing.T) {
	b, err := os.ReadFile("../../testdata/xl/list-v-hidden.txt")
	if err != nil {
		t.Fatal(err)
	}
	doms, err := ParseXlListVerbose(string(b))
	if err != nil {
		t.Fatal(err)
	}
	want := []xlDomain{{7, "0004fb00-0006-0000-5b3e-7c1f0c6a1a01"}, {9, "0004fb00-0006-0000-9a2d-03e4b1c0d202"}, {12, "0004fb00-0006-0000-77aa-1234567890ab"}}
	if !slices.Equal(doms, want) {
		t.Fatalf("got %v, want %v (Domain-0 left out, a name with spaces read, UUIDs lower case)", doms, want)
	}
	for _, bad := range []string{"", "web01 7 1 1 -b---- 1.0 0004fb00-0006-0000-5b3e-7c1f0c6a1a01\n",
		"Name ID Mem VCPUs State Time(s) UUID\nweb01 7 1 1 -b---- 1.0\n",
		"Name ID Mem VCPUs State Time(s) UUID\nweb01 x 1 1 -b---- 1.0 0004fb00-0006-0000-5b3e-7c1f0c6a1a01\n"} {
		if _, err := ParseXlListVerbose(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
