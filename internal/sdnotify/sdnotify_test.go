package sdnotify

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifierSendsAndRateLimits(t *testing.T) {
	c := listen(t)
	n := New()
	now := time.Unix(1000, 0)
	n.now = func() time.Time { return now }
	if err := n.Ready("live in pool x,\nslot 3", 0); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, c); got != "READY=1\nSTATUS=live in pool x, slot 3" {
		t.Errorf("ready: %q", got)
	}
	now = now.Add(2 * time.Second)
	if n.Status("live in pool x, slot 3") {
		t.Error("the same status was sent again")
	}
	if !n.Status("FENCING: storage") {
		t.Error("a new status was not sent")
	}
	if got := recv(t, c); got != "STATUS=FENCING: storage" {
		t.Errorf("status: %q", got)
	}
	now = now.Add(MinInterval / 2)
	if n.Status("fenced") {
		t.Error("a status sent within MinInterval of the last")
	}
	now = now.Add(MinInterval)
	if !n.Status("fenced") {
		t.Error("the changed status not sent after MinInterval")
	}
	if got := recv(t, c); got != "STATUS=fenced" {
		t.Errorf("status: %q", got)
	}
	n.Stopping("stopping", 90*time.Second)
	if got := recv(t, c); got != "STOPPING=1\nSTATUS=stopping\nEXTEND_TIMEOUT_USEC=90000000" {
		t.Errorf("stopping: %q", got)
	}
	n.Reloading("reloading")
	got := recv(t, c)
	if !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || !strings.HasSuffix(got, "\nSTATUS=reloading") {
		t.Errorf("reloading: %q", got)
	}
	n.Ready("back", 4242)
	if got := recv(t, c); got != "READY=1\nSTATUS=back\nMAINPID=4242" {
		t.Errorf("ready after re-exec: %q", got)
	}
}

func TestNoSocketSendsNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := New()
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	if err := n.Ready("x", 0); err != nil {
		t.Error(err)
	}
	if n.Status("y") {
		t.Error("sent a status with no socket")
	}
	var zero *Notifier
	if zero.Enabled() {
		t.Error("nil notifier enabled")
	}
}
