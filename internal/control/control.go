// Package control is the daemon's local control socket: a unix socket,
// mode 0600 in a directory only root can enter, speaking one JSON request
// and one JSON response per connection. It is how "hbfence status" and
// later commands (master move, fence, guests) reach the daemon.
package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hbfence/hbfence/internal/privdir"
)

// Request is what a client asks.
type Request struct {
	Command string          `json:"command"`
	Args    json.RawMessage `json:"args,omitempty"`
}

// Response is what the daemon answers.
type Response struct {
	OK     bool            `json:"ok"`
	Error  string          `json:"error,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Handler answers one command.
type Handler func(ctx context.Context, args json.RawMessage) (any, error)

// Server serves the control socket.
type Server struct {
	path     string
	ln       *net.UnixListener
	ino      uint64 // the socket file's inode, to remove only our own
	handlers map[string]Handler
	slots    chan struct{} // one token per connection being served
}

// MaxRequest is the longest request line the daemon reads; MaxConns the
// number of connections it serves at once (more wait in the backlog).
// Both keep a local flood from taking the daemon's memory or threads.
const (
	MaxRequest = 64 << 10
	MaxConns   = 16
)

// Listen creates the socket at path (mode 0600; the directory is created
// with mode 0700 if missing). A stale socket left by a dead daemon is
// replaced; a socket a live daemon answers on is not.
func Listen(path string, handlers map[string]Handler) (*Server, error) {
	if err := privdir.Ensure(filepath.Dir(path), "[control] socket "+path); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("[control] socket %s: a %s is there, not a socket; it is left alone: choose another path or remove it yourself", path, kindOf(fi))
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control socket %s: another daemon is answering on it", path)
		}
		// A socket nobody answers on: a dead daemon's.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control socket %s: removing the stale socket: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	ln.SetUnlinkOnClose(false) // Close removes it only if it is still ours
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return &Server{path: path, ln: ln, ino: st.Ino, handlers: handlers, slots: make(chan struct{}, MaxConns)}, nil
}

func kindOf(fi os.FileInfo) string {
	switch {
	case fi.IsDir():
		return "directory"
	case fi.Mode().IsRegular():
		return "regular file"
	case fi.Mode()&os.ModeSymlink != 0:
		return "symbolic link"
	default:
		return "file of mode " + fi.Mode().String()
	}
}

// File is a duplicate of the listening socket, for handing it to the next
// image of this process (a re-exec); the caller closes it.
func (s *Server) File() (*os.File, error) {
	return s.ln.File()
}

// FromFile serves on a listening socket handed over by the previous image
// of this process (a re-exec), at path. f is closed.
func FromFile(path string, f *os.File, handlers map[string]Handler) (*Server, error) {
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("control socket %s handed over: %w", path, err)
	}
	ul, ok := ln.(*net.UnixListener)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("control socket %s handed over: not a unix listener", path)
	}
	ul.SetUnlinkOnClose(false)
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		ul.Close()
		return nil, fmt.Errorf("control socket %s handed over: %w", path, err)
	}
	return &Server{path: path, ln: ul, ino: st.Ino, handlers: handlers, slots: make(chan struct{}, MaxConns)}, nil
}

// Serve answers connections until ctx is done.
func (s *Server) Serve(ctx context.Context) {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	for {
		select { // at most MaxConns served at once; the rest wait in the backlog
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		c, err := s.ln.Accept()
		if err != nil {
			<-s.slots
			return
		}
		go func() {
			defer func() { <-s.slots }()
			s.serve(ctx, c)
		}()
	}
}

// Close stops listening and removes the socket.
func (s *Server) Close() error {
	err := s.ln.Close()
	var st syscall.Stat_t
	if syscall.Lstat(s.path, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFSOCK && st.Ino == s.ino {
		os.Remove(s.path)
	}
	return err
}

func (s *Server) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var req Request
	resp := Response{}
	peerErr := checkPeer(c, "client")
	// The line is read (bounded) also from a refused peer, so that it
	// reads the refusal rather than a broken pipe; it is never decoded.
	line, err := readLine(bufio.NewReader(c))
	if err == nil && peerErr == nil {
		err = json.Unmarshal(line, &req)
	}
	switch {
	case peerErr != nil:
		resp.Error = peerErr.Error()
	case err != nil:
		resp.Error = fmt.Sprintf("bad request: %v", err)
	case s.handlers[req.Command] == nil:
		resp.Error = fmt.Sprintf("unknown command %q", req.Command)
	default:
		res, herr := s.handlers[req.Command](ctx, req.Args)
		if herr != nil {
			resp.Error = herr.Error()
		} else if b, merr := json.Marshal(res); merr != nil {
			resp.Error = merr.Error()
		} else {
			resp.OK, resp.Result = true, b
		}
	}
	b, _ := json.Marshal(resp)
	c.Write(append(b, '\n'))
}

// readLine reads one request line of at most MaxRequest bytes.
func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > MaxRequest {
			return nil, fmt.Errorf("request longer than %d bytes", MaxRequest)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return line, err
	}
}

// ErrUnreachable: no daemon answers on the socket (none runs there, or
// the caller may not connect). Test with errors.Is.
var ErrUnreachable = errors.New("no daemon answers")

// RemoteError is the daemon's refusal or failure of a command.
type RemoteError struct{ Message string }

func (e *RemoteError) Error() string { return "daemon: " + e.Message }

// Call sends one command to the daemon at socket and decodes its result
// into out (which may be nil). A daemon's refusal is a *RemoteError; no
// daemon answering wraps ErrUnreachable.
func Call(ctx context.Context, socket, command string, args, out any) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no hbfence daemon at %s (is it running? is --config or --socket right?): %w", socket, ErrUnreachable)
		}
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("%s: permission denied (the control socket is for root): %w", socket, ErrUnreachable)
		}
		return fmt.Errorf("connecting to the daemon at %s: %w (%w)", socket, err, ErrUnreachable)
	}
	defer c.Close()
	if err := checkPeer(c, "daemon"); err != nil {
		return fmt.Errorf("%s: %w: not sending %q to it", socket, err, command)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	req := Request{Command: command}
	if args != nil {
		if req.Args, err = json.Marshal(args); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("sending to the daemon at %s: %w (%w)", socket, err, ErrUnreachable)
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading the daemon's answer from %s: %w (%w)", socket, err, ErrUnreachable)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("daemon's answer from %s: %w", socket, err)
	}
	if !resp.OK {
		return &RemoteError{Message: resp.Error}
	}
	if out != nil {
		return json.Unmarshal(resp.Result, out)
	}
	return nil
}

// checkPeer checks the process at the other end of c by its kernel
// credentials (SO_PEERCRED): it must run as root or as this process's own
// user. The daemon answers no one else (the socket's mode says the same;
// this holds even if the mode is changed), and a client sends no command
// to a socket another user bound first. who names the peer's role.
func checkPeer(c net.Conn, who string) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return fmt.Errorf("the %s is not on a unix socket", who)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("reading the %s's credentials: %w", who, cerr)
	}
	return peerAllowed(who, cred.Pid, cred.Uid, uint32(os.Geteuid()))
}

// peerAllowed is checkPeer's rule.
func peerAllowed(who string, pid int32, uid, self uint32) error {
	if uid == 0 || uid == self {
		return nil
	}
	return fmt.Errorf("the %s (pid %d) runs as uid %d, not root: refused", who, pid, uid)
}
