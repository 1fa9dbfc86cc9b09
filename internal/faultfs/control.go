package faultfs

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// The control protocol: one command per line, one reply line per command.
//
//	set OP FAULT...   OP is read, write, open or all; FAULT as ParseFault
//	clear             every fault to pass (releases hung operations)
//	status            a JSON Status
//
// A reply is "ok", "error: ..." or, for status, the JSON object.

// Status is the reply to "status".
type Status struct {
	Mountpoint string            `json:"mountpoint"`
	Backing    string            `json:"backing"`
	Faults     map[string]string `json:"faults"`
	Stats      Stats             `json:"stats"`
}

// Status returns the mount's faults and counters.
func (f *FS) Status() Status {
	st := Status{Mountpoint: f.opts.Mountpoint, Backing: f.opts.Backing, Faults: map[string]string{}, Stats: f.Stats()}
	for op, fault := range f.Faults() {
		st.Faults[string(op)] = fault.String()
	}
	return st
}

// Exec runs one control command on the mount, as the socket does.
func (f *FS) Exec(line string) (string, error) {
	w := strings.Fields(line)
	if len(w) == 0 {
		return "", errors.New("empty command: want set, clear or status")
	}
	switch w[0] {
	case "set":
		if len(w) < 3 {
			return "", fmt.Errorf("usage: set %s|all FAULT (pass, hang, eio, errno NAME, delay DURATION)", strings.Join(sortedOps(), "|"))
		}
		fault, err := ParseFault(w[2:])
		if err != nil {
			return "", err
		}
		if err := f.Set(Op(w[1]), fault); err != nil {
			return "", err
		}
		return "ok", nil
	case "clear":
		f.Clear()
		return "ok", nil
	case "status":
		b, err := json.Marshal(f.Status())
		return string(b), err
	}
	return "", fmt.Errorf("unknown command %q: want set, clear or status", w[0])
}

type controlServer struct {
	path string
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	cs   map[net.Conn]bool
}

func listenControl(path string, f *FS) (*controlServer, error) {
	os.Remove(path) // a stale socket of an earlier run
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("faultfs: control socket: %w", err)
	}
	os.Chmod(path, 0o600)
	s := &controlServer{path: path, ln: ln, cs: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.cs[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer func() {
					s.mu.Lock()
					delete(s.cs, c)
					s.mu.Unlock()
					c.Close()
				}()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					reply, err := f.Exec(sc.Text())
					if err != nil {
						reply = "error: " + err.Error()
					}
					if _, err := fmt.Fprintln(c, reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	return s, nil
}

func (s *controlServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.cs {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	os.Remove(s.path)
}

// Control sends one command to the control socket of a mount and returns
// the reply; a reply "error: ..." is returned as an error.
func Control(socket, command string) (string, error) {
	c, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("faultfs control %s: %w", socket, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, command); err != nil {
		return "", fmt.Errorf("faultfs control %s: %w", socket, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("faultfs control %s: no reply: %w", socket, err)
	}
	line = strings.TrimSuffix(line, "\n")
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		return "", fmt.Errorf("faultfs control %s: %s", socket, msg)
	}
	return line, nil
}
