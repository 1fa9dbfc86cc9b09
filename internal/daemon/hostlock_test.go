package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

func TestHostLockRefusesSecondAndNamesPID(t *testing.T) {
	pool := ondisk.UUID{1, 2, 3, byte(os.Getpid()), byte(os.Getpid() >> 8)}
	machine := ondisk.UUID{9}
	l, err := LockHost(pool, machine, "a")
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockHost(pool, machine, "a")
	if !errors.Is(err, ErrHostLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second lock: %v, want ErrHostLocked naming pid %d", err, os.Getpid())
	}
	// Another host name, machine or pool is another lock.
	for _, o := range []struct {
		p, m ondisk.UUID
		h    string
	}{{pool, machine, "b"}, {pool, ondisk.UUID{8}, "a"}, {ondisk.UUID{7}, machine, "a"}} {
		l2, err := LockHost(o.p, o.m, o.h)
		if err != nil {
			t.Fatalf("%v: %v", o, err)
		}
		l2.Close()
	}
	// Passed on as a file, taken back: still the lock.
	l3, err := HostLockFromFile(l.File(), pool, machine, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := HostLockFromFile(l.File(), pool, machine, "b"); err == nil {
		t.Fatal("a lock of another host taken back from the fd")
	}
	if err := l3.Close(); err != nil {
		t.Fatal(err)
	}
	// Released on close.
	l4, err := LockHost(pool, machine, "a")
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	l4.Close()
}

// TestInstanceLockRefusesASymlink: a symbolic link planted at the lock's
// path is refused (O_NOFOLLOW), and what it points at is not created.
func TestInstanceLockRefusesASymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	lock := filepath.Join(dir, "hbfence.sock.lock")
	if err := os.Symlink(target, lock); err != nil {
		t.Fatal(err)
	}
	f, err := lockInstance(lock)
	if err == nil {
		f.Close()
		t.Fatal("a symbolic link at the lock's path was followed")
	}
	if !strings.Contains(err.Error(), "symbolic link is refused") {
		t.Errorf("error %q does not say a link is refused", err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Errorf("the link's target was created: %v", err)
	}
}
