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
	mp := newMountedPool(t)
	m1 := mp.start("m1", "ext4:"+mp.dev, "")
	st := m1.waitJoined()
	if st.Mounts == nil || len(st.Mounts.Points) == 0 || st.Mounts.Points[0].State != mount.Mounted {
		t.Fatalf("status shows the mounts %+v; want the cluster root mounted", st.Mounts)
	}
	if want := filepath.Join(mp.dir, "m1", "mnt", mp.uuid); st.Mounts.Points[0].Point != want {
		t.Errorf("the cluster root is mounted at %s, want %s", st.Mounts.Points[0].Point, want)
	}
	out, err := exec.Command(binary, "status", "--socket", m1.sock).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mount    ") {
		t.Errorf("hbfence status: %v\n%s", err, out)
	}
	t.Logf("hbfence status:\n%s", out)
	// Not in this namespace: the daemon's mount is its own.
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), filepath.Join(mp.dir, "m1", "mnt")) {
		t.Error("the daemon's mount leaked into the test's mount namespace")
	}

	// A cluster root that cannot be mounted: no join, and the reason.
	m2 := mp.start("m2", "ext4:/dev/nonexistent-hbfence-test", "")
	done := make(chan error, 1)
	go func() { done <- m2.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errorsAs(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(m2.log.String(), "not mounted, so this host does not join") {
			t.Errorf("a cluster root that cannot be mounted: %v\n%s", err, m2.log.String())
		}
	case <-time.After(60 * time.Second):
		syscall.Kill(-m2.cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("the daemon with a cluster root it cannot mount did not stop\n%s", m2.log.String())
	}
}

// mountedPool is a pool whose cluster root is an ext4 loop device (dev,
// with the heartbeat area on it) that each daemon mounts itself, in a
// private mount namespace of its own, at its own mount_base/uuid.
type mountedPool struct {
	t         *testing.T
	dev, uuid string
	dir       string
}

func newMountedPool(t *testing.T) *mountedPool {
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
	return &mountedPool{t: t, dev: dev, uuid: ondisk.NewUUID().String(), dir: dir}
}

// mountedHost is one daemon of a mountedPool.
type mountedHost struct {
	t         *testing.T
	cfg, sock string
	cmd       *exec.Cmd
	log       *strings.Builder
}

// start writes host name's configuration (cluster root root, then extra
// lines of [storage]) and starts its daemon in a mount namespace of its
// own; it is stopped at the test's end.
func (mp *mountedPool) start(name, root, extra string) *mountedHost {
	t := mp.t
	hd := filepath.Join(mp.dir, name)
	os.MkdirAll(hd, 0o700)
	h := &mountedHost{t: t, cfg: filepath.Join(hd, "hbfence.toml"), sock: filepath.Join(hd, "hbfence.sock"), log: &strings.Builder{}}
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
%s`, name, filepath.Join(hd, "OVS", ".server_pool_hb"), h.sock, filepath.Join(hd, "run"), filepath.Join(hd, "state"),
		root, mp.uuid, filepath.Join(hd, "mnt"), filepath.Join(hd, "OVS"), extra)
	if err := os.WriteFile(h.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cmd = exec.Command("unshare", "-m", "--propagation", "private", binary, "daemon", "--config", h.cfg)
	h.cmd.Stdout, h.cmd.Stderr = h.log, h.log
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.cmd.Process.Signal(syscall.SIGTERM)
		h.cmd.Wait()
	})
	return h
}

// waitJoined waits until the daemon has joined, and returns its status.
func (h *mountedHost) waitJoined() daemon.Status {
	var st daemon.Status
	err := lab.WaitUntil(context.Background(), 30*time.Second, 50*time.Millisecond, "the daemon joined on its mounted cluster root", func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := control.Call(ctx, h.sock, "status", nil, &st); err != nil {
			return false, nil
		}
		return st.Joined, nil
	})
	if err != nil {
		h.t.Fatalf("%v\nlog:\n%s", err, h.log.String())
	}
	return st
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

// waitMaster waits until the daemon acts as the pool's master.
func (h *mountedHost) waitMaster() {
	err := lab.WaitUntil(context.Background(), 30*time.Second, 50*time.Millisecond, "the daemon acts as master", func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var st daemon.Status
		if err := control.Call(ctx, h.sock, "status", nil, &st); err != nil {
			return false, nil
		}
		return st.Master != nil && st.Master.Self.Acting, nil
	})
	if err != nil {
		h.t.Fatalf("%v\nlog:\n%s", err, h.log.String())
	}
}
