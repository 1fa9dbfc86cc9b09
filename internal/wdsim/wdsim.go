package wdsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ExitReset is the supervisor's exit status after it reset the machine.
const ExitReset = 99

// Config of a Supervisor.
type Config struct {
	// FIFO is the path the daemon opens as its watchdog device. It is
	// created if missing (and then removed at the end); an existing FIFO
	// is reused.
	FIFO string
	// Timeout: the machine is reset when the watchdog is armed and no
	// byte has arrived for this long.
	Timeout time.Duration
	// Command is the machine's first process, started in a new process
	// group: argv, no shell.
	Command []string
	// Dir, Env, Stdin, Stdout and Stderr are the command's, as in
	// os/exec (nil Env: this process's environment).
	Dir    string
	Env    []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Log receives one JSON Record per line; nil: none.
	Log io.Writer
}

// Record is one line of the log.
type Record struct {
	// Event is one of:
	//	start     the command was started (PID, PGID)
	//	armed     the FIFO was opened: the countdown runs
	//	opened    opened again while armed (a restarted daemon); an open feeds
	//	closed    the last writer closed without the magic 'V': still armed
	//	disarmed  the last writer wrote 'V' and closed: not armed
	//	reset     no feed for Timeout: the process group was killed
	//	exited    the command exited (Status)
	//	exit      the supervisor ends (Status, Reset)
	Event string `json:"event"`
	// Time is the wall clock, for humans only.
	Time string `json:"time"`
	// MonoNS is CLOCK_MONOTONIC in nanoseconds: comparable with the
	// monotonic readings of other processes on this machine.
	MonoNS  int64  `json:"mono_ns"`
	FIFO    string `json:"fifo,omitempty"`
	Timeout string `json:"timeout,omitempty"`
	PID     int    `json:"pid,omitempty"`
	PGID    int    `json:"pgid,omitempty"`
	// Writers is how many descriptors have the FIFO open for writing.
	Writers int `json:"writers,omitempty"`
	// For a reset: the last feed, and the time since it on this
	// process's monotonic clock.
	LastFeedMonoNS  int64  `json:"last_feed_mono_ns,omitempty"`
	SinceLastFeedNS int64  `json:"since_last_feed_ns,omitempty"`
	SinceLastFeed   string `json:"since_last_feed,omitempty"`
	TimeoutNS       int64  `json:"timeout_ns,omitempty"`
	// Killed lists the processes a reset killed.
	Killed []int `json:"killed,omitempty"`
	// Status is an exit status (exited, exit).
	Status *int `json:"status,omitempty"`
	// Reset says the machine was reset (exit).
	Reset bool `json:"reset,omitempty"`
	// Left lists live processes of the group left running at exit
	// (exit after a clean stop).
	Left []int  `json:"left,omitempty"`
	Note string `json:"note,omitempty"`
}

// Result is how a supervised machine ended.
type Result struct {
	// Status is the supervisor's exit status: ExitReset after a reset,
	// else the command's (128 + signal number if a signal ended it).
	Status int
	// CommandStatus is the command's own status.
	CommandStatus int
	// Reset is the reset record, nil if there was none.
	Reset *Record
}

// State is a snapshot of the supervisor, for tests and the lab.
type State struct {
	Armed    bool
	Writers  int
	LastFeed time.Time // zero before the first open
	Reset    *Record
	Exited   bool // the command has exited
}

// Supervisor is a running simulated machine with its watchdog.
type Supervisor struct {
	cfg     Config
	cmd     *exec.Cmd
	pgid    int
	created bool

	rfd, ifd     int   // the FIFO's read end, the inotify instance
	wakeR, wakeW int   // self-pipe: the command exited
	cmdErr       error // set before the wake-up
	logMu        sync.Mutex
	enc          *json.Encoder
	done         chan struct{}
	result       Result
	mu           sync.Mutex // guards st
	st           State
	lastFeedMono int64
}

// Start creates the FIFO, starts watching it, then starts the command in a
// new process group. Before the command (or anything) opens the FIFO, the
// watchdog is not armed.
func Start(cfg Config) (*Supervisor, error) {
	if cfg.FIFO == "" {
		return nil, errors.New("wdsim: no FIFO")
	}
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("wdsim: timeout %v: it must be positive", cfg.Timeout)
	}
	if len(cfg.Command) == 0 {
		return nil, errors.New("wdsim: no command")
	}
	s := &Supervisor{cfg: cfg, rfd: -1, ifd: -1, wakeR: -1, wakeW: -1, done: make(chan struct{})}
	if cfg.Log != nil {
		s.enc = json.NewEncoder(cfg.Log)
	}
	if err := s.setup(); err != nil {
		s.cleanup()
		return nil, err
	}
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Dir, cmd.Env = cfg.Dir, cfg.Env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.cleanup()
		return nil, fmt.Errorf("wdsim: start %s: %w", cfg.Command[0], err)
	}
	s.cmd = cmd
	s.pgid = cmd.Process.Pid
	s.log(Record{Event: "start", FIFO: cfg.FIFO, Timeout: cfg.Timeout.String(), TimeoutNS: int64(cfg.Timeout),
		PID: cmd.Process.Pid, PGID: s.pgid})
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.cmdErr = err
		s.mu.Unlock()
		unix.Write(s.wakeW, []byte{1})
	}()
	go s.loop()
	return s, nil
}

func (s *Supervisor) setup() error {
	p := s.cfg.FIFO
	var st unix.Stat_t
	switch err := unix.Lstat(p, &st); {
	case errors.Is(err, unix.ENOENT):
		if err := unix.Mkfifo(p, 0o600); err != nil {
			return fmt.Errorf("wdsim: mkfifo %s: %w", p, err)
		}
		s.created = true
	case err != nil:
		return fmt.Errorf("wdsim: %s: %w", p, err)
	case st.Mode&unix.S_IFMT != unix.S_IFIFO:
		return fmt.Errorf("wdsim: %s exists and is not a FIFO", p)
	}
	var err error
	// Our read end is open for the whole run, so that a writer's
	// non-blocking open never fails for want of a reader, even between
	// two incarnations of the daemon.
	if s.rfd, err = unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("wdsim: open %s: %w", p, err)
	}
	// Opens and closes of the FIFO are seen through inotify: an open
	// arms the watchdog even before the first byte, as opening a real
	// device does. The watch is added after our own open.
	if s.ifd, err = unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK); err != nil {
		return fmt.Errorf("wdsim: inotify: %w", err)
	}
	if _, err = unix.InotifyAddWatch(s.ifd, p, unix.IN_OPEN|unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE); err != nil {
		return fmt.Errorf("wdsim: inotify watch %s: %w", p, err)
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return fmt.Errorf("wdsim: pipe: %w", err)
	}
	s.wakeR, s.wakeW = fds[0], fds[1]
	return nil
}

func (s *Supervisor) cleanup() {
	for _, fd := range []*int{&s.rfd, &s.ifd, &s.wakeR, &s.wakeW} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if s.created {
		os.Remove(s.cfg.FIFO)
		s.created = false
	}
}

// PGID is the machine's process group (the command's pid).
func (s *Supervisor) PGID() int { return s.pgid }

// Signal sends sig to every process of the machine's group.
func (s *Supervisor) Signal(sig syscall.Signal) error {
	return unix.Kill(-s.pgid, sig)
}

// State returns a snapshot.
func (s *Supervisor) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// Wait waits until the supervisor ends: the command has exited and either
// the watchdog is not armed (never opened, disarmed, or the machine was
// reset) or no live process is left in the group.
func (s *Supervisor) Wait() Result {
	<-s.done
	return s.result
}

// Done is closed when the supervisor has ended.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

func monoNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func (s *Supervisor) log(r Record) {
	if s.enc == nil {
		return
	}
	if r.MonoNS == 0 {
		r.MonoNS = monoNow()
	}
	if r.Time == "" {
		r.Time = time.Now().Format(time.RFC3339Nano)
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.enc.Encode(r)
}

// loop is the watchdog: it runs on one goroutine until the end.
func (s *Supervisor) loop() {
	defer close(s.done)
	defer s.cleanup()
	var (
		armed    bool
		writers  int
		lastFeed time.Time
		lastByte byte
		exited   bool
		cmdStat  int
		reset    *Record
	)
	buf := make([]byte, 4096)
	evbuf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))

	feed := func(now time.Time) {
		lastFeed = now
		mono := monoNow()
		s.mu.Lock()
		s.lastFeedMono = mono
		s.st.LastFeed = now
		s.mu.Unlock()
	}
	// drain reads what the FIFO holds; any byte is a feed.
	drain := func() {
		for {
			n, err := unix.Read(s.rfd, buf)
			if err == unix.EINTR {
				continue
			}
			if n <= 0 {
				return
			}
			lastByte = buf[n-1]
			feed(time.Now())
		}
	}
	publish := func() {
		s.mu.Lock()
		s.st.Armed, s.st.Writers, s.st.Reset, s.st.Exited = armed, writers, reset, exited
		s.mu.Unlock()
	}

	for {
		publish()
		if exited && (!armed || !s.groupAlive()) {
			break
		}
		fds := []unix.PollFd{{Fd: int32(s.ifd), Events: unix.POLLIN}, {Fd: int32(s.wakeR), Events: unix.POLLIN}}
		if writers > 0 {
			// With no writer, a FIFO that had one polls as hung
			// up for ever; data can only come from a writer.
			fds = append(fds, unix.PollFd{Fd: int32(s.rfd), Events: unix.POLLIN})
		}
		timeout := -1
		if armed {
			left := time.Until(lastFeed.Add(s.cfg.Timeout))
			timeout = int((left + time.Millisecond - 1) / time.Millisecond)
			if timeout < 0 {
				timeout = 0
			}
		}
		if exited && (timeout < 0 || timeout > 50) {
			timeout = 50 // look at the group again soon
		}
		if _, err := unix.Poll(fds, timeout); err != nil && err != unix.EINTR {
			s.log(Record{Event: "error", Note: "poll: " + err.Error()})
			time.Sleep(10 * time.Millisecond)
		}

		// Opens and closes, in order.
		for {
			n, err := unix.Read(s.ifd, evbuf)
			if err == unix.EINTR {
				continue
			}
			if n <= 0 {
				break
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&evbuf[off]))
				off += unix.SizeofInotifyEvent + int(ev.Len)
				switch {
				case ev.Mask&unix.IN_OPEN != 0:
					writers++
					lastByte = 0
					feed(time.Now()) // opening a watchdog feeds it
					if reset != nil {
						continue
					}
					if !armed {
						armed = true
						s.log(Record{Event: "armed", Writers: writers})
					} else {
						s.log(Record{Event: "opened", Writers: writers, Note: "opened again while armed"})
					}
				case ev.Mask&(unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE) != 0:
					if writers > 0 {
						writers--
					}
					drain() // what was written before the close
					if reset != nil || writers > 0 || !armed {
						continue
					}
					if lastByte == 'V' {
						armed = false
						s.log(Record{Event: "disarmed", Note: "magic close"})
					} else {
						s.log(Record{Event: "closed", Note: "closed without the magic 'V': still armed"})
					}
				case ev.Mask&unix.IN_Q_OVERFLOW != 0:
					s.log(Record{Event: "error", Note: "inotify queue overflow: opens or closes were missed"})
				}
			}
		}
		if writers > 0 {
			drain()
		}

		// The command exited?
		var one [16]byte
		if n, _ := unix.Read(s.wakeR, one[:]); n > 0 && !exited {
			exited = true
			s.mu.Lock()
			err := s.cmdErr
			s.mu.Unlock()
			cmdStat = exitStatus(s.cmd, err)
			st := cmdStat
			s.log(Record{Event: "exited", PID: s.pgid, Status: &st})
		}

		if armed && reset == nil {
			if since := time.Since(lastFeed); since >= s.cfg.Timeout {
				reset = s.reset(since)
				armed = false
			}
		}
	}

	status := cmdStat
	if reset != nil {
		status = ExitReset
	}
	s.result = Result{Status: status, CommandStatus: cmdStat, Reset: reset}
	rec := Record{Event: "exit", Status: &status, Reset: reset != nil}
	if reset == nil {
		rec.Left = s.groupMembers()
		if len(rec.Left) > 0 {
			rec.Note = "processes of the group left running (the watchdog is not armed)"
		}
	}
	s.log(rec)
	publish()
}

// reset kills the machine: every process of the group, and every
// descendant of the command that left the group.
func (s *Supervisor) reset(since time.Duration) *Record {
	s.mu.Lock()
	lastMono := s.lastFeedMono
	s.mu.Unlock()
	mono := monoNow()
	victims := s.machine()
	unix.Kill(-s.pgid, unix.SIGKILL)
	for _, pid := range victims {
		unix.Kill(pid, unix.SIGKILL)
	}
	r := &Record{Event: "reset", MonoNS: mono, Time: time.Now().Format(time.RFC3339Nano), PGID: s.pgid,
		LastFeedMonoNS: lastMono, SinceLastFeedNS: int64(since), SinceLastFeed: since.String(),
		TimeoutNS: int64(s.cfg.Timeout), Timeout: s.cfg.Timeout.String(), Killed: victims}
	s.log(*r)
	return r
}

// proc is one line of /proc/PID/stat.
type proc struct {
	pid, ppid, pgrp int
	state           byte
}

func procs() []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		f := strings.Fields(string(b[i+2:]))
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		out = append(out, proc{pid: pid, ppid: ppid, pgrp: pgrp, state: f[0][0]})
	}
	return out
}

func live(p proc) bool { return p.state != 'Z' && p.state != 'X' && p.state != 'x' }

// machine lists the live processes of the group and the live descendants
// of the command.
func (s *Supervisor) machine() []int {
	ps := procs()
	parent := map[int]int{}
	for _, p := range ps {
		parent[p.pid] = p.ppid
	}
	var out []int
	for _, p := range ps {
		if !live(p) {
			continue
		}
		in := p.pgrp == s.pgid
		for q, n := p.pid, 0; !in && q > 1 && n < 1000; q, n = parent[q], n+1 {
			in = q == s.pgid
		}
		if in {
			out = append(out, p.pid)
		}
	}
	sort.Ints(out)
	return out
}

func (s *Supervisor) groupMembers() []int {
	var out []int
	for _, p := range procs() {
		if p.pgrp == s.pgid && live(p) {
			out = append(out, p.pid)
		}
	}
	sort.Ints(out)
	return out
}

func (s *Supervisor) groupAlive() bool { return len(s.groupMembers()) > 0 }

func exitStatus(cmd *exec.Cmd, err error) int {
	if cmd.ProcessState == nil {
		if err != nil {
			return 127
		}
		return 0
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return cmd.ProcessState.ExitCode()
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
