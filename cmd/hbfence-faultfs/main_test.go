package main

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/directio"
)

// The test binary is also the hbfence-faultfs binary when run with
// HBFENCE_FAULTFS_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("HBFENCE_FAULTFS_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil))
	}
	os.Exit(m.Run())
}

func ctlRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb, nil)
	return code, out.String(), errb.String()
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"bogus"},
		{"serve"},
		{"serve", "--backing", "/tmp"},
		{"ctl"},
		{"ctl", "--control", "/nonexistent"},
	} {
		if code, _, stderr := ctlRun(t, args...); code != 2 || stderr == "" {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
	if code, _, stderr := ctlRun(t, "ctl", "--control", filepath.Join(t.TempDir(), "none"), "status"); code != 1 || !strings.Contains(stderr, "none") {
		t.Errorf("ctl on a missing socket: exit %d, %q", code, stderr)
	}
}

func TestServeAndCtl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("hbfence-faultfs serve needs root: it mounts with mount(2)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("hbfence-faultfs serve needs /dev/fuse: %v", err)
	}
	dir := t.TempDir()
	backing, mnt, sock := filepath.Join(dir, "storage"), filepath.Join(dir, "hostA"), filepath.Join(dir, "hostA.ctl")
	os.Mkdir(backing, 0o755)
	os.Mkdir(mnt, 0o755)
	os.WriteFile(filepath.Join(backing, "hb"), make([]byte, 4096), 0o600)

	cmd := exec.Command(os.Args[0], "serve", "--backing", backing, "--mountpoint", mnt, "--control", sock)
	cmd.Env = append(os.Environ(), "HBFENCE_FAULTFS_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "ready ") {
			t.Fatalf("first line %q; stderr %s", line, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("not ready; stderr %s", stderr.String())
	}

	d, err := directio.Open(filepath.Join(mnt, "hb"), 0, directio.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	buf := make([]byte, 512)
	if code, out, e := ctlRun(t, "ctl", "--control", sock, "set", "write", "eio"); code != 0 || out != "ok\n" {
		t.Fatalf("ctl set: %d %q %q", code, out, e)
	}
	if err := d.WriteAt(buf, 0, 10*time.Second); !errors.Is(err, syscall.EIO) {
		t.Errorf("write after ctl set write eio: %v", err)
	}
	if code, out, _ := ctlRun(t, "ctl", "--control", sock, "status"); code != 0 || !strings.Contains(out, `"write":"eio"`) {
		t.Errorf("status: %d %q", code, out)
	}
	if code, _, e := ctlRun(t, "ctl", "--control", sock, "set", "write", "sideways"); code != 1 || !strings.Contains(e, "unknown fault") {
		t.Errorf("bad fault: %d %q", code, e)
	}
	if code, _, _ := ctlRun(t, "ctl", "--control", sock, "clear"); code != 0 {
		t.Error("clear failed")
	}
	if err := d.WriteAt(buf, 0, 10*time.Second); err != nil {
		t.Errorf("write after clear: %v", err)
	}

	// SIGTERM with the file still open: it unmounts anyway and exits 0.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if waitErr != nil {
			t.Errorf("serve exited: %v; stderr %s", waitErr, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	b, _ := os.ReadFile("/proc/self/mounts")
	if strings.Contains(string(b), " "+mnt+" ") {
		t.Error("still mounted after serve exited")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left: %v", err)
	}
}
