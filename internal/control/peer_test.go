package control

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const nobody = 65534

// The test binary doubles as the other user's process: with
// HBFENCE_CONTROL_CHILD set it is a client that calls the socket, or a
// forged daemon that binds it first.
func TestMain(m *testing.M) {
	sock := os.Getenv("HBFENCE_CONTROL_SOCKET")
	switch os.Getenv("HBFENCE_CONTROL_CHILD") {
	case "call":
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fmt.Println("call:", Call(ctx, sock, "status", nil, nil))
		os.Exit(0)
	case "forge":
		ln, err := net.Listen("unix", sock)
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		bufio.NewReader(c).ReadBytes('\n')
		c.Write([]byte(`{"ok":true,"result":{"acknowledged":true}}` + "\n"))
		c.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// asNobody starts this test binary as uid 65534 with the given role. The
// binary is copied where that user can execute it.
func asNobody(t *testing.T, role, sock string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root to run a process as another user (CI runs as root)")
	}
	dir, err := os.MkdirTemp("", "hbfence-control-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "control.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	cmd := exec.Command(bin)
	cmd.Env = []string{"HBFENCE_CONTROL_CHILD=" + role, "HBFENCE_CONTROL_SOCKET=" + sock}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return cmd
}

// The daemon answers no one but root, even when the socket's mode lets
// another user connect.
func TestDaemonRefusesAnotherUsersClient(t *testing.T) {
	base, err := os.MkdirTemp("", "hbfence-control-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o711) // others may pass, not write
	sock := filepath.Join(base, "hbfence.sock")
	called := false
	srv, err := Listen(sock, map[string]Handler{"status": func(context.Context, json.RawMessage) (any, error) {
		called = true
		return "secret", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	os.Chmod(sock, 0o666) // an operator's mistake: the mode alone no longer guards it
	cmd := asNobody(t, "call", sock)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "runs as uid 65534, not root: refused") || called {
		t.Fatalf("another user's call got %q (handler called: %v), want it refused by uid", out, called)
	}
}

// A client run by root sends nothing to a socket another user bound first.
func TestClientRefusesAnotherUsersDaemon(t *testing.T) {
	base, err := os.MkdirTemp("", "hbfence-control-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755)
	dir := filepath.Join(base, "run")
	os.Mkdir(dir, 0o755)
	os.Chown(dir, nobody, nobody) // a directory the other user can write
	sock := filepath.Join(dir, "hbfence.sock")
	cmd := asNobody(t, "forge", sock)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("forged daemon: %q", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var res map[string]any
	err = Call(ctx, sock, "fence", map[string]string{"host": "b"}, &res)
	if err == nil || !strings.Contains(err.Error(), "the daemon (pid") || !strings.Contains(err.Error(), "runs as uid 65534") {
		t.Fatalf("call to another user's socket: %v (result %v), want refused naming its uid", err, res)
	}
	// And the daemon refuses to listen in such a directory.
	if _, err := Listen(filepath.Join(dir, "other.sock"), nil); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Fatalf("Listen in another user's directory: %v, want refused", err)
	}
}

func TestPeerAllowed(t *testing.T) {
	if err := peerAllowed("client", 1, 0, 0); err != nil {
		t.Error(err)
	}
	if err := peerAllowed("client", 1, 1000, 1000); err != nil {
		t.Error(err)
	}
	if err := peerAllowed("daemon", 7, 1000, 0); err == nil || !strings.Contains(err.Error(), "pid 7") {
		t.Errorf("uid 1000 to root: %v", err)
	}
}
