package driver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestVirshArgv(t *testing.T) {
	path, log := fakeTool(t, "virsh")
	list := filepath.Join(t.TempDir(), "list")
	os.WriteFile(list, []byte("\n"), 0o600)
	t.Setenv("FAKE_OUT___quiet", list) // every call starts with --quiet
	v := &Virsh{Path: path}
	g := Spec{UUID: testUUID, Name: "web01", Config: "/OVS/Repositories/r1/web01.xml"}
	ctx := context.Background()
	if err := v.Start(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := v.Migrate(ctx, g, "kvm02"); err != nil {
		t.Fatal(err)
	}
	if err := v.Destroy(ctx, g); err != nil { // not listed: nothing to do
		t.Fatal(err)
	}
	want := []string{
		"--quiet|-c|qemu:///system|create|--|/OVS/Repositories/r1/web01.xml",
		"--quiet|-c|qemu:///system|migrate|--live|--undefinesource|--|" + testUUID + "|qemu+ssh://kvm02/system",
		"--quiet|-c|qemu:///system|list|--uuid",
	}
	if got := argvLog(t, log); !slices.Equal(got, want) {
		t.Fatalf("argv:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestExecContract(t *testing.T) {
	path, log := fakeTool(t, "guestctl")
	listOut := filepath.Join(t.TempDir(), "list")
	os.WriteFile(listOut, []byte(testUUID+"\n"), 0o600)
	t.Setenv("FAKE_OUT_list", listOut)
	e := &Exec{Argv: []string{path}}
	g := Spec{UUID: testUUID, Name: "web01", Config: "/OVS/web01.cfg"}
	ctx := context.Background()
	for _, f := range []func() error{
		func() error { return e.Start(ctx, g) },
		func() error { return e.Stop(ctx, g) },
		func() error { return e.Destroy(ctx, g) },
	} {
		if err := f(); err != nil {
			t.Fatal(err)
		}
	}
	run, err := e.Running(ctx)
	if err != nil || !slices.Equal(run, []string{testUUID}) {
		t.Fatalf("list: %v %v", run, err)
	}
	t.Setenv("FAKE_EXIT_migrate", "3")
	if err := e.Migrate(ctx, g, "h2"); !errors.Is(err, ErrNoMigration) {
		t.Fatalf("migrate exit 3: %v, want ErrNoMigration", err)
	}
	t.Setenv("FAKE_EXIT_start", "1")
	t.Setenv("FAKE_ERR", "no such image")
	if err := e.Start(ctx, g); err == nil || !strings.Contains(err.Error(), "no such image") {
		t.Fatalf("failing start: %v", err)
	}
	os.WriteFile(listOut, []byte("not-a-uuid\n"), 0o600)
	if _, err := e.Running(ctx); err == nil {
		t.Fatal("a list with a bad line was accepted")
	}
	want := []string{"start|" + testUUID + "|web01|/OVS/web01.cfg", "stop|" + testUUID + "|web01", "destroy|" + testUUID + "|web01", "list", "migrate|" + testUUID + "|web01|h2"}
	if got := argvLog(t, log); !slices.Equal(got[:5], want) {
		t.Fatalf("argv:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// The UUID a guest's configuration gives it, read for the check before
// every start.
func TestConfigUUID(t *testing.T) {
	dir := t.TempDir()
	xmlPath := filepath.Join(dir, "d.xml")
	os.WriteFile(xmlPath, []byte("<domain type='kvm'><name>d</name><uuid>0B7C1D2E-3F40-4A5B-8C6D-7E8F9A0B1C2D</uuid></domain>"), 0o644)
	if u, err := (&Virsh{}).ConfigUUID(xmlPath); err != nil || u != "0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d" {
		t.Errorf("virsh: %q, %v", u, err)
	}
	noUUID := filepath.Join(dir, "n.xml")
	os.WriteFile(noUUID, []byte("<domain type='kvm'><name>d</name></domain>"), 0o644)
	if _, err := (&Virsh{}).ConfigUUID(noUUID); err == nil || !strings.Contains(err.Error(), "no <uuid>") {
		t.Errorf("virsh without a uuid: %v", err)
	}
	cfg := filepath.Join(dir, "vm.cfg")
	os.WriteFile(cfg, []byte("name = 'web01'\nuuid = '0004fb00-0006-0000-5b3e-7c1f0c6a1a01'\nmemory = 4096\n"), 0o644)
	if u, err := (&Xl{}).ConfigUUID(cfg); err != nil || u != "0004fb00-0006-0000-5b3e-7c1f0c6a1a01" {
		t.Errorf("xl: %q, %v", u, err)
	}
	os.WriteFile(cfg, []byte("name = 'web01'\n"), 0o644)
	if _, err := (&Xl{}).ConfigUUID(cfg); err == nil || !strings.Contains(err.Error(), "no uuid") {
		t.Errorf("xl without a uuid: %v", err)
	}
}

// A listing in upper case names the same guests as the pool's lower-case
// UUIDs: otherwise a running guest would look absent to the pool.
func TestListingsAreLowerCase(t *testing.T) {
	got, err := ParseUUIDLines("test", "AAAAAAAA-2222-3333-4444-55555555555F\n\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"aaaaaaaa-2222-3333-4444-55555555555f"}; !slices.Equal(got, want) {
		t.Fatalf("ParseUUIDLines = %v, want %v", got, want)
	}
}

// The exec driver adds no "--" (its script's positions are its contract):
// it refuses a guest or host name that its script would take for an
// option, and runs nothing (issue 10 item 13).
func TestExecRefusesOptionLikeNames(t *testing.T) {
	path, log := fakeTool(t, "guestctl")
	e := &Exec{Argv: []string{path}}
	ctx := context.Background()
	g := Spec{UUID: testUUID, Name: "web01", Config: "/OVS/web01.cfg"}
	if err := e.Migrate(ctx, g, "-sCMD"); err == nil || !strings.Contains(err.Error(), `"-sCMD" begins with "-"`) {
		t.Fatalf("migrate to -sCMD: %v", err)
	}
	g.Name = "--force"
	for _, f := range []func() error{
		func() error { return e.Start(ctx, g) },
		func() error { return e.Stop(ctx, g) },
		func() error { return e.Destroy(ctx, g) },
	} {
		if err := f(); err == nil {
			t.Fatal("a guest named --force was passed to the script")
		}
	}
	if got := argvLog(t, log); len(got) != 0 {
		t.Fatalf("the script ran: %q", got)
	}
}
