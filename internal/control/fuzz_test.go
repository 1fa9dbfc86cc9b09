package control

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FuzzServe sends arbitrary bytes as a request to the server over a real
// unix socket pair. Whatever they are, the server answers exactly one line
// that is a valid Response, never panics, and calls a handler only with a
// known command and arguments that are valid JSON.
func FuzzServe(f *testing.F) {
	for _, s := range []string{
		`{"command":"status"}` + "\n",
		`{"command":"echo","args":{"host":"b"}}` + "\n",
		`{"command":"echo","args":[1,2,3]}`,
		`{"command":"nope"}` + "\n",
		`{"command":` + "\n",
		"\x00\xff\n",
		"",
		`{"command":"echo","args":"` + string(make([]byte, 300)) + `"}` + "\n",
	} {
		f.Add([]byte(s))
	}
	s := &Server{handlers: map[string]Handler{
		"status": func(context.Context, json.RawMessage) (any, error) { return map[string]int{"ok": 1}, nil },
		"echo": func(_ context.Context, args json.RawMessage) (any, error) {
			if len(args) > 0 && !json.Valid(args) {
				panic("handler given invalid JSON")
			}
			return args, nil
		},
	}}
	f.Fuzz(func(t *testing.T, req []byte) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		srvConn := fileConn(t, fds[0])
		cli := fileConn(t, fds[1])
		defer cli.Close()
		done := make(chan struct{})
		go func() { s.serve(context.Background(), srvConn); close(done) }()
		cli.SetDeadline(time.Now().Add(10 * time.Second))
		go func() {
			cli.Write(req)
			if len(req) == 0 || req[len(req)-1] != '\n' {
				cli.(*net.UnixConn).CloseWrite() // end of request
			}
		}()
		line, err := bufio.NewReader(cli).ReadBytes('\n')
		if err != nil {
			t.Fatalf("no answer line: %v (%q)", err, line)
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil {
			t.Fatalf("answer %q is not a Response: %v", line, err)
		}
		if resp.OK == (resp.Error != "") {
			t.Fatalf("answer %q: ok and error disagree", line)
		}
		<-done
	})
}

func fileConn(t *testing.T, fd int) net.Conn {
	f := os.NewFile(uintptr(fd), "socketpair")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
