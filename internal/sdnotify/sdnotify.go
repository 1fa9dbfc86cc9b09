// Package sdnotify is the daemon's side of systemd's notify protocol
// (sd_notify(3), a service of Type=notify): READY=1 once the service is
// up, STATUS= one line that says how it is, STOPPING=1, RELOADING=1 and
// EXTEND_TIMEOUT_USEC=. It sends through go-systemd's daemon.SdNotify to
// $NOTIFY_SOCKET; with no NOTIFY_SOCKET nothing is sent and nothing fails.
//
// STATUS= lines are sent only when they change, and at most one every
// MinInterval: a caller may offer the current line as often as it likes.
package sdnotify

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// MinInterval is the shortest time between two STATUS= updates.
const MinInterval = time.Second

// Notifier sends to systemd. The zero value sends nothing; New reads the
// environment.
type Notifier struct {
	enabled bool
	// now is the clock of the rate limit (tests).
	now func() time.Time

	mu         sync.Mutex
	lastStatus string
	lastAt     time.Time
	errs       int
}

// New is a notifier for $NOTIFY_SOCKET (none: it sends nothing). It
// leaves the variable set: a re-executed image of the daemon (same pid)
// notifies too.
func New() *Notifier {
	return &Notifier{enabled: os.Getenv("NOTIFY_SOCKET") != "", now: time.Now}
}

// Enabled reports whether there is a socket to notify.
func (n *Notifier) Enabled() bool { return n != nil && n.enabled }

// send sends the assignments as one datagram.
func (n *Notifier) send(lines ...string) error {
	if !n.Enabled() {
		return nil
	}
	_, err := daemon.SdNotify(false, strings.Join(lines, "\n"))
	if err != nil {
		n.mu.Lock()
		n.errs++
		n.mu.Unlock()
	}
	return err
}

// OneLine makes s a single STATUS= line.
func OneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Ready says that the service is up, with its status; mainPID, when not
// zero, is sent as MAINPID= (after a re-exec: the same pid, which systemd
// already tracks; sent all the same, harmless).
func (n *Notifier) Ready(status string, mainPID int) error {
	lines := []string{"READY=1", "STATUS=" + OneLine(status)}
	if mainPID > 0 {
		lines = append(lines, fmt.Sprintf("MAINPID=%d", mainPID))
	}
	n.noteStatus(status)
	return n.send(lines...)
}

// Status sends STATUS= if status changed since the last one sent and the
// last one is at least MinInterval old; it reports whether it sent.
func (n *Notifier) Status(status string) bool {
	if !n.Enabled() {
		return false
	}
	status = OneLine(status)
	n.mu.Lock()
	now := n.now()
	if status == n.lastStatus || now.Sub(n.lastAt) < MinInterval {
		n.mu.Unlock()
		return false
	}
	n.lastStatus, n.lastAt = status, now
	n.mu.Unlock()
	return n.send("STATUS="+status) == nil
}

func (n *Notifier) noteStatus(status string) {
	if n == nil || n.now == nil {
		return
	}
	n.mu.Lock()
	n.lastStatus, n.lastAt = OneLine(status), n.now()
	n.mu.Unlock()
}

// Stopping says that a stop began; extend, when positive, is how long it
// may take (EXTEND_TIMEOUT_USEC=: systemd's stop timeout is then at
// least that long).
func (n *Notifier) Stopping(status string, extend time.Duration) error {
	lines := []string{"STOPPING=1", "STATUS=" + OneLine(status)}
	if extend > 0 {
		lines = append(lines, fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", extend.Microseconds()))
	}
	n.noteStatus(status)
	return n.send(lines...)
}

// Extend asks for d more before the current start or stop times out.
func (n *Notifier) Extend(d time.Duration) error {
	return n.send(fmt.Sprintf("EXTEND_TIMEOUT_USEC=%d", d.Microseconds()))
}

// Reloading says that a reload (or a re-exec) began, with
// MONOTONIC_USEC= (systemd 253's protocol for Type=notify-reload; older
// managers ignore it). READY=1 ends it.
func (n *Notifier) Reloading(status string) error {
	n.noteStatus(status)
	return n.send("RELOADING=1", fmt.Sprintf("MONOTONIC_USEC=%d", MonotonicUsec()), "STATUS="+OneLine(status))
}

// MonotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd
// compares MONOTONIC_USEC= with.
func MonotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Nano() / 1000
}
