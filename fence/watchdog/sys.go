package watchdog

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// system is the thin layer of system calls the Device uses, so that the
// driver logic can be tested against a fake driver on a machine without
// one.
type system interface {
	stat(path string) (unix.Stat_t, error)
	open(path string, flags int) (int, error)
	getSupport(fd int) (unix.WatchdogInfo, error)
	// setTimeout writes secs with WDIOC_SETTIMEOUT and returns what the
	// driver wrote back (the kernel returns the timeout it set).
	setTimeout(fd int, secs int) (int, error)
	getTimeout(fd int) (int, error)
	keepalive(fd int) error
	write(fd int, p []byte) (int, error)
	close(fd int) error
	// nowayout reads the driver's nowayout flag from sysfs for the
	// character device rdev; known is false if sysfs does not say.
	nowayout(rdev uint64) (nowayout, known bool)
}

type realSystem struct {
	sysfs string // "/sys" but for tests
}

func (realSystem) stat(path string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Stat(path, &st)
	return st, err
}

func (realSystem) open(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

func (realSystem) getSupport(fd int) (unix.WatchdogInfo, error) {
	wi, err := unix.IoctlGetWatchdogInfo(fd)
	if err != nil {
		return unix.WatchdogInfo{}, err
	}
	return *wi, nil
}

func (realSystem) setTimeout(fd int, secs int) (int, error) {
	v := int32(secs)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.WDIOC_SETTIMEOUT, uintptr(unsafe.Pointer(&v))); e != 0 {
		return 0, e
	}
	return int(v), nil
}

func (realSystem) getTimeout(fd int) (int, error) {
	return unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT)
}

func (realSystem) keepalive(fd int) error { return unix.IoctlWatchdogKeepalive(fd) }

func (realSystem) write(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Write(fd, p)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

func (realSystem) close(fd int) error { return unix.Close(fd) }

func (s realSystem) nowayout(rdev uint64) (bool, bool) {
	root := s.sysfs
	if root == "" {
		root = "/sys"
	}
	maj, min := unix.Major(rdev), unix.Minor(rdev)
	candidates := []string{fmt.Sprintf("%s/dev/char/%d:%d/nowayout", root, maj, min)}
	if maj == 10 && min == 130 {
		// The legacy /dev/watchdog (misc 10:130) is watchdog0.
		candidates = append(candidates, root+"/class/watchdog/watchdog0/nowayout")
	}
	for _, p := range candidates {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		switch strings.TrimSpace(string(b)) {
		case "1":
			return true, true
		case "0":
			return false, true
		}
	}
	return false, false
}
