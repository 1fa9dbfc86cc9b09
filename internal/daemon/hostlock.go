package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"golang.org/x/sys/unix"
)

// HostLock proves that no other daemon of this machine runs for one host of
// one pool: it is a Linux abstract unix socket, bound and listening for the
// life of the process, whose name is derived from the pool UUID (from the
// heartbeat header), the machine id and the host name — never from a
// configured path, so two daemons with different configurations, sockets
// or lock files still find each other. The kernel releases the name when
// the last descriptor of the socket is closed (the process exits, however it
// dies), so a crashed daemon leaves nothing behind.
//
// The descriptor is not close-on-exec only when passed on with File(): a
// re-executed image takes it back with HostLockFromFile.
type HostLock struct {
	f    *os.File
	name string
}

// hostLockName is the abstract socket's name (without the leading NUL).
func hostLockName(pool, machine ondisk.UUID, host string) string {
	sum := sha256.Sum256([]byte(machine.String() + "\x00" + host))
	return "hbfence/" + pool.String() + "/" + hex.EncodeToString(sum[:12])
}

// ErrHostLocked is wrapped by LockHost's error when another daemon holds
// the lock.
var ErrHostLocked = errors.New("another hbfence daemon runs for this host and pool")

// LockHost takes the host lock for host (with machine id machine) in pool,
// or fails at once, naming the pid of the daemon that holds it.
func LockHost(pool, machine ondisk.UUID, host string) (*HostLock, error) {
	name := hostLockName(pool, machine, host)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("host lock: socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: "@" + name}); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EADDRINUSE) {
			return nil, holderError(pool, host, name)
		}
		return nil, fmt.Errorf("host lock: bind abstract socket @%s: %w", name, err)
	}
	// Listening lets a refused daemon connect and read the holder's pid
	// with SO_PEERCRED; nothing is ever accepted, and a full backlog only
	// makes a refused daemon's message lack the pid.
	if err := unix.Listen(fd, 16); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("host lock: listen on @%s: %w", name, err)
	}
	return &HostLock{f: os.NewFile(uintptr(fd), "@"+name), name: name}, nil
}

// holderError says who holds the lock: the pid comes from SO_PEERCRED of a
// connection to the holder's socket (the credentials it had at listen).
func holderError(pool ondisk.UUID, host, name string) error {
	pid, perr := HostLockHolder(name)
	who := "pid unknown"
	if perr == nil {
		who = fmt.Sprintf("pid %d", pid)
	} else {
		who += " (" + perr.Error() + ")"
	}
	return fmt.Errorf("%w: host %q of pool %s is already served by the daemon with %s (abstract socket @%s); stop it first, or run this one under another [host] name",
		ErrHostLocked, host, pool, who, name)
}

// HostLockHolder returns the pid of the process that holds the abstract
// socket name.
func HostLockHolder(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	// A non-blocking connect to a listening unix socket completes at once
	// or fails with EAGAIN (backlog full): never waits.
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: "@" + name}); err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 0, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	return int(cred.Pid), nil
}

// HostLockFromFile takes back a host lock passed across an exec: f is the
// inherited descriptor (e.g. os.NewFile(3, "")). It checks that f is a
// listening unix socket bound to the expected name.
func HostLockFromFile(f *os.File, pool, machine ondisk.UUID, host string) (*HostLock, error) {
	name := hostLockName(pool, machine, host)
	sa, err := unix.Getsockname(int(f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("inherited host lock fd %d: %w", f.Fd(), err)
	}
	u, ok := sa.(*unix.SockaddrUnix)
	if !ok || u.Name != "@"+name {
		return nil, fmt.Errorf("inherited host lock fd %d is bound to %v, not @%s", f.Fd(), sa, name)
	}
	unix.CloseOnExec(int(f.Fd()))
	return &HostLock{f: f, name: name}, nil
}

// File returns the lock's descriptor, to be passed to a re-executed image
// (exec.Cmd.ExtraFiles or syscall.Exec after clearing FD_CLOEXEC). The lock
// is held as long as any process holds the descriptor.
func (l *HostLock) File() *os.File { return l.f }

// Name is the abstract socket's name, as `ss -xl` shows it (after "@").
func (l *HostLock) Name() string { return l.name }

// Close releases the lock.
func (l *HostLock) Close() error { return l.f.Close() }
