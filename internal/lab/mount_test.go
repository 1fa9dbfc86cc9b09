package lab_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/mount"
)

// The daemon mounts its cluster root before it joins ([storage], issue 12):
// a real daemon, in a private mount namespace of its own (as a host is),
// mounts an ext4 loop device standing in for the shared device at
// mount_base/UUID, links ovs_link to it, opens the heartbeat area through
// the link and joins; hbfence status shows the mount. Given a cluster root
// it cannot mount, it does not join and says why.
func TestDaemonMountsItsClusterRoot(t *testing.T) {
	dev := loopDevice(t, 512, 64<<20)
	for _, tool := range []string{"mkfs.ext4", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed (apt-get install e2fsprogs util-linux)", tool)
		}
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	dir := t.TempDir()
	// The area, formatted on the file system in a namespace of its own.
	pre := filepath.Join(dir, "pre")
	os.MkdirAll(pre, 0o700)
	script := fmt.Sprintf("mount %s %s && %s init --profile fast --slots 8 %s/.server_pool_hb; rc=$?; umount %s; exit $rc", dev, pre, binary, pre, pre)
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("formatting the area on the device: %v: %s", err, out)
	}
	uuid := ondisk.NewUUID().String()
	write := func(name, root string) (cfg, sock string) {
		hd := filepath.Join(dir, name)
		os.MkdirAll(hd, 0o700)
		cfg, sock = filepath.Join(hd, "hbfence.toml"), filepath.Join(hd, "hbfence.sock")
		text := fmt.Sprintf(`[host]
name = %q
[heartbeat]
path = %q
[control]
socket = %q
[watchdog]
allow_no_watchdog = true
[daemon]
run_dir = %q
state_dir = %q
[storage]
cluster_root = %q
cluster_root_uuid = %q
mount_base = %q
ovs_link = %q
mount_attempts = 2
mount_backoff = "100ms"
`, name, filepath.Join(hd, "OVS", ".server_pool_hb"), sock, filepath.Join(hd, "run"), filepath.Join(hd, "state"),
			root, uuid, filepath.Join(hd, "mnt"), filepath.Join(hd, "OVS"))
		if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return cfg, sock
	}
	start := func(cfg string) (*exec.Cmd, *strings.Builder) {
		var log strings.Builder
		cmd := exec.Command("unshare", "-m", "--propagation", "private", binary, "daemon", "--config", cfg)
		cmd.Stdout, cmd.Stderr = &log, &log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &log
	}

	cfg, sock := write("m1", "ext4:"+dev)
	cmd, log := start(cfg)
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	var st daemon.Status
	err := lab.WaitUntil(context.Background(), 30*time.Second, 50*time.Millisecond, "the daemon joined on its mounted cluster root", func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := control.Call(ctx, sock, "status", nil, &st); err != nil {
			return false, nil
		}
		return st.Joined, nil
	})
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, log.String())
	}
	if st.Mounts == nil || len(st.Mounts.Points) == 0 || st.Mounts.Points[0].State != mount.Mounted {
		t.Fatalf("status shows the mounts %+v; want the cluster root mounted", st.Mounts)
	}
	if want := filepath.Join(dir, "m1", "mnt", uuid); st.Mounts.Points[0].Point != want {
		t.Errorf("the cluster root is mounted at %s, want %s", st.Mounts.Points[0].Point, want)
	}
	out, err := exec.Command(binary, "status", "--socket", sock).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mount    ") {
		t.Errorf("hbfence status: %v\n%s", err, out)
	}
	t.Logf("hbfence status:\n%s", out)
	// Not in this namespace: the daemon's mount is its own.
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), filepath.Join(dir, "m1", "mnt")) {
		t.Error("the daemon's mount leaked into the test's mount namespace")
	}

	// A cluster root that cannot be mounted: no join, and the reason.
	cfg2, _ := write("m2", "ext4:/dev/nonexistent-hbfence-test")
	cmd2, log2 := start(cfg2)
	done := make(chan error, 1)
	go func() { done <- cmd2.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errorsAs(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(log2.String(), "not mounted, so this host does not join") {
			t.Errorf("a cluster root that cannot be mounted: %v\n%s", err, log2.String())
		}
	case <-time.After(60 * time.Second):
		syscall.Kill(-cmd2.Process.Pid, syscall.SIGKILL)
		t.Fatalf("the daemon with a cluster root it cannot mount did not stop\n%s", log2.String())
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}
