package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCallRoundTrip(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "run", "c.sock")
	srv, err := Listen(sock, map[string]Handler{
		"echo": func(_ context.Context, args json.RawMessage) (any, error) {
			var v map[string]string
			json.Unmarshal(args, &v)
			return v, nil
		},
		"fail": func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("no such host") },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	defer srv.Close()

	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", st.Mode().Perm())
	}
	if d, _ := os.Stat(filepath.Dir(sock)); d.Mode().Perm() != 0o700 {
		t.Errorf("socket directory mode %v, want 0700", d.Mode().Perm())
	}
	var out map[string]string
	if err := Call(ctx, sock, "echo", map[string]string{"a": "b"}, &out); err != nil || out["a"] != "b" {
		t.Errorf("echo: %v %v", out, err)
	}
	if err := Call(ctx, sock, "fail", nil, nil); err == nil || !strings.Contains(err.Error(), "no such host") {
		t.Errorf("fail: %v", err)
	}
	if err := Call(ctx, sock, "nope", nil, nil); err == nil || !strings.Contains(err.Error(), `unknown command "nope"`) {
		t.Errorf("unknown: %v", err)
	}
	// A second daemon must not steal a live socket.
	if _, err := Listen(sock, nil); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("second Listen: %v", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // a dead daemon's socket: the file stays, nobody answers
	srv, err := Listen(sock, nil)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	srv.Close()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("Close left the socket: %v", err)
	}
}

// [control] socket naming something that is not a socket (even the pool's
// heartbeat file) is refused and left as it was, at Listen and at Close.
func TestListenNeverRemovesWhatIsNotASocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, ".server_pool_hb")
	os.WriteFile(file, []byte("pool"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.Mkdir(empty, 0o700)
	for _, p := range []string{file, empty} {
		if srv, err := Listen(p, nil); err == nil {
			srv.Close()
			t.Errorf("Listen(%s) accepted a non-socket", p)
		} else if !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("Listen(%s): %v, want it to say what is there", p, err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "pool" {
		t.Errorf("the file was touched: %q %v", b, err)
	}
	if fi, err := os.Stat(empty); err != nil || !fi.IsDir() {
		t.Errorf("the directory was touched: %v", err)
	}
}

// Close removes the socket only while it is still this server's: a
// successor that bound the path since keeps its socket.
func TestCloseLeavesASuccessorsSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	srv, err := Listen(sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(sock)
	next, err := Listen(sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	srv.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("the successor's socket is gone: %v", err)
	}
}

// A request line longer than MaxRequest is refused without reading it all.
func TestRequestSizeBounded(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	srv, err := Listen(sock, map[string]Handler{"status": func(context.Context, json.RawMessage) (any, error) { return "ok", nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() { // far more than MaxRequest, no newline
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = 'a'
		}
		for i := 0; i < 8; i++ {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c.SetReadDeadline(time.Now().Add(time.Minute))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil || !strings.Contains(string(line), "longer than") {
		t.Errorf("answer %q %v, want a refusal of the long request", line, err)
	}
	// And the server still answers a good request.
	var out string
	if err := Call(context.Background(), sock, "status", nil, &out); err != nil || out != "ok" {
		t.Errorf("after the long request: %q %v", out, err)
	}
}

func TestCallNoDaemon(t *testing.T) {
	err := Call(context.Background(), filepath.Join(t.TempDir(), "none.sock"), "status", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no hbfence daemon at") {
		t.Errorf("got %v", err)
	}
}

// TestAtMostMaxConnsServedAtOnce: MaxConns clients whose requests block
// in the handler; one more request, to a handler that answers at once, is
// not answered while they block (it waits in the backlog), and is once they
// end. A server without the bound answers it at once, so the test fails
// on it whatever the machine's speed; on the bounded server the wait can
// only time out.
func TestAtMostMaxConnsServedAtOnce(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	var cur, most atomic.Int32
	entered, release := make(chan struct{}, MaxConns), make(chan struct{})
	srv, err := Listen(sock, map[string]Handler{
		"hold": func(ctx context.Context, _ json.RawMessage) (any, error) {
			n := cur.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			entered <- struct{}{}
			<-release
			cur.Add(-1)
			return "ok", nil
		},
		"quick": func(context.Context, json.RawMessage) (any, error) { return "ok", nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	defer srv.Close()
	answered := make(chan error, MaxConns)
	for i := 0; i < MaxConns; i++ {
		go func() {
			var out string
			answered <- Call(ctx, sock, "hold", nil, &out)
		}()
	}
	for i := 0; i < MaxConns; i++ {
		<-entered
	}
	var out string
	qctx, qcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = Call(qctx, sock, "quick", nil, &out)
	qcancel()
	if err == nil {
		t.Fatalf("a request was answered while %d others were being served; the bound is %d", MaxConns, MaxConns)
	}
	close(release)
	for i := 0; i < MaxConns; i++ {
		if err := <-answered; err != nil {
			t.Errorf("held client %d: %v", i, err)
		}
	}
	if err := Call(ctx, sock, "quick", nil, &out); err != nil {
		t.Fatalf("after the held requests ended: %v", err)
	}
	if m := most.Load(); m != MaxConns {
		t.Fatalf("%d handlers ran at once, want %d", m, MaxConns)
	}
}
