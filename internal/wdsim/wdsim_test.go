package wdsim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbfence/hbfence/fence/watchdog"
	"github.com/hbfence/hbfence/internal/wdsim"
)

// The test binary doubles as the "daemon" of the simulated machine: run
// with WDSIM_HELPER=1 it feeds the FIFO through fence/watchdog following
// a script of steps given as arguments:
//
//	arm             open the FIFO (watchdog.New + Arm, explicit timeout)
//	feed:P:D        feed every P for D
//	disarm          magic close
//	close           close without 'V' (as a crash does)
//	sleep:D         sleep (not feeding)
//	pid:FILE        write own pid to FILE
//	guest:FILE      start a child "guest" (sleep 600) in the group, pid to FILE
//	escapee:FILE    start a child that leaves the group (setsid), pid to FILE
//	exit:N          exit with N
func TestMain(m *testing.M) {
	if os.Getenv("WDSIM_HELPER") == "1" {
		os.Exit(helper(os.Args[1], os.Args[2:]))
	}
	os.Exit(m.Run())
}

func helper(fifo string, steps []string) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "helper: "+format+"\n", a...)
		return 111
	}
	var w watchdog.Watchdog
	for _, step := range steps {
		f := strings.Split(step, ":")
		switch f[0] {
		case "arm":
			var err error
			w, err = watchdog.New(watchdog.Config{Path: fifo, Timeout: time.Second, TimeoutExplicit: true})
			if err != nil {
				return fail("%v", err)
			}
			if _, err := w.Arm(); err != nil {
				return fail("%v", err)
			}
		case "feed":
			p, _ := time.ParseDuration(f[1])
			d, _ := time.ParseDuration(f[2])
			for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(p) {
				if err := w.Feed(); err != nil {
					return fail("feed: %v", err)
				}
			}
		case "disarm":
			if err := w.Disarm(); err != nil {
				return fail("disarm: %v", err)
			}
		case "close":
			if err := w.Close(); err != nil {
				return fail("close: %v", err)
			}
		case "sleep":
			d, _ := time.ParseDuration(f[1])
			time.Sleep(d)
		case "pid":
			os.WriteFile(f[1], []byte(strconv.Itoa(os.Getpid())), 0o600)
		case "guest", "escapee":
			cmd := exec.Command("sleep", "600")
			if f[0] == "escapee" {
				cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			}
			if err := cmd.Start(); err != nil {
				return fail("guest: %v", err)
			}
			os.WriteFile(f[1], []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
		case "exit":
			n, _ := strconv.Atoi(f[1])
			return n
		default:
			return fail("unknown step %q", step)
		}
	}
	return 0
}

// machine runs a supervisor whose command is the helper (or a shell
// running helpers, with "HELPER" replaced by the helper's command line).
type machine struct {
	t    *testing.T
	dir  string
	fifo string
	sup  *wdsim.Supervisor
	log  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) records(t *testing.T) []wdsim.Record {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []wdsim.Record
	sc := bufio.NewScanner(bytes.NewReader(b.b.Bytes()))
	for sc.Scan() {
		var r wdsim.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func helperArgv(fifo string, steps ...string) []string {
	return append([]string{os.Args[0], fifo}, steps...)
}

func start(t *testing.T, timeout time.Duration, command func(fifo string) []string) *machine {
	t.Helper()
	dir := t.TempDir()
	m := &machine{t: t, dir: dir, fifo: filepath.Join(dir, "watchdog"), log: &syncBuffer{}}
	var stderr bytes.Buffer
	sup, err := wdsim.Start(wdsim.Config{
		FIFO:    m.fifo,
		Timeout: timeout,
		Command: command(m.fifo),
		Env:     append(os.Environ(), "WDSIM_HELPER=1"),
		Stderr:  &stderr,
		Log:     m.log,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.sup = sup
	t.Cleanup(func() {
		select {
		case <-sup.Done():
		default:
			sup.Signal(syscall.SIGKILL)
			sup.Wait()
		}
		if t.Failed() {
			t.Logf("log:\n%s\nstderr:\n%s", m.log.b.String(), stderr.String())
		}
	})
	return m
}

func (m *machine) wait(limit time.Duration) wdsim.Result {
	m.t.Helper()
	select {
	case <-m.sup.Done():
		return m.sup.Wait()
	case <-time.After(limit):
		m.t.Fatalf("the supervisor did not end within %v; state %+v", limit, m.sup.State())
	}
	return wdsim.Result{}
}

func (m *machine) waitFor(what string, limit time.Duration, cond func(wdsim.State) bool) {
	m.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond(m.sup.State()) {
		if time.Now().After(deadline) {
			m.t.Fatalf("not %s within %v; state %+v", what, limit, m.sup.State())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (m *machine) events() []string {
	var out []string
	for _, r := range m.log.records(m.t) {
		out = append(out, r.Event)
	}
	return out
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			pid, err := strconv.Atoi(string(b))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone says the process no longer runs (dead, or a zombie).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// slack is how late a reset may come after the timeout: poll wake-up and
// scheduling, generous for -race on a loaded machine.
const slack = 300 * time.Millisecond

func checkReset(t *testing.T, r *wdsim.Record, timeout time.Duration) {
	t.Helper()
	if r == nil {
		t.Fatal("no reset")
	}
	since := time.Duration(r.SinceLastFeedNS)
	if since < timeout {
		t.Errorf("reset %v after the last feed: before the timeout %v", since, timeout)
	}
	if since > timeout+slack {
		t.Errorf("reset %v after the last feed: later than timeout %v + %v", since, timeout, slack)
	}
	if r.MonoNS-r.LastFeedMonoNS < int64(timeout) {
		t.Errorf("monotonic stamps: reset at %d, last feed at %d: less than the timeout apart", r.MonoNS, r.LastFeedMonoNS)
	}
}

func TestFeedingKeepsItRunning(t *testing.T) {
	const timeout = 300 * time.Millisecond
	m := start(t, timeout, func(fifo string) []string {
		return helperArgv(fifo, "arm", "feed:50ms:1500ms", "disarm", "exit:0")
	})
	res := m.wait(10 * time.Second)
	if res.Status != 0 || res.Reset != nil {
		t.Errorf("result %+v, want status 0 and no reset", res)
	}
	if ev := strings.Join(m.events(), " "); ev != "start armed disarmed exited exit" {
		t.Errorf("events %q", ev)
	}
}

func TestStopFeedingResetsTheGroup(t *testing.T) {
	const timeout = 400 * time.Millisecond
	var guest, escapee string
	m := start(t, timeout, func(fifo string) []string {
		dir := filepath.Dir(fifo)
		guest, escapee = filepath.Join(dir, "guest"), filepath.Join(dir, "escapee")
		return helperArgv(fifo, "guest:"+guest, "escapee:"+escapee, "arm", "feed:50ms:300ms", "sleep:1h")
	})
	gpid, epid := readPid(t, guest), readPid(t, escapee)
	res := m.wait(10 * time.Second)
	if res.Status != wdsim.ExitReset || res.CommandStatus != 128+int(syscall.SIGKILL) {
		t.Errorf("result %+v, want status %d, command killed by SIGKILL", res, wdsim.ExitReset)
	}
	checkReset(t, res.Reset, timeout)
	waitGone(t, gpid)
	waitGone(t, epid)
	killed := fmt.Sprint(res.Reset.Killed)
	for _, pid := range []int{m.sup.PGID(), gpid, epid} {
		if !strings.Contains(killed, strconv.Itoa(pid)) {
			t.Errorf("reset killed %v; want %d among them (daemon %d, guest %d, setsid escapee %d)", res.Reset.Killed, pid, m.sup.PGID(), gpid, epid)
		}
	}
	if ev := strings.Join(m.events(), " "); ev != "start armed reset exited exit" {
		t.Errorf("events %q", ev)
	}
}

func TestSIGSTOPResets(t *testing.T) {
	const timeout = 500 * time.Millisecond
	m := start(t, timeout, func(fifo string) []string {
		return helperArgv(fifo, "arm", "feed:50ms:1h")
	})
	m.waitFor("armed", 10*time.Second, func(s wdsim.State) bool { return s.Armed })
	stopped := time.Now()
	if err := syscall.Kill(m.sup.PGID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	res := m.wait(10 * time.Second)
	after := time.Since(stopped)
	checkReset(t, res.Reset, timeout)
	if after < timeout-60*time.Millisecond || after > timeout+slack+100*time.Millisecond {
		t.Errorf("the supervisor ended %v after SIGSTOP; the timeout is %v", after, timeout)
	}
	if res.Status != wdsim.ExitReset {
		t.Errorf("status %d", res.Status)
	}
}

func TestMagicCloseDisarms(t *testing.T) {
	const timeout = 200 * time.Millisecond
	m := start(t, timeout, func(fifo string) []string {
		// Disarmed, then alive without feeding for 4 timeouts.
		return helperArgv(fifo, "arm", "feed:20ms:100ms", "disarm", "sleep:800ms", "exit:3")
	})
	res := m.wait(10 * time.Second)
	if res.Reset != nil || res.Status != 3 {
		t.Errorf("result %+v, want no reset and the command's status 3", res)
	}
}

func TestCrashCloseStaysArmed(t *testing.T) {
	const timeout = 300 * time.Millisecond
	m := start(t, timeout, func(fifo string) []string {
		return helperArgv(fifo, "arm", "feed:20ms:100ms", "close", "sleep:1h")
	})
	res := m.wait(10 * time.Second)
	checkReset(t, res.Reset, timeout)
	if ev := strings.Join(m.events(), " "); ev != "start armed closed reset exited exit" {
		t.Errorf("events %q", ev)
	}
}

func TestDaemonRestartReopens(t *testing.T) {
	// The timeout leaves room for starting a second helper binary
	// (slow under -race).
	const timeout = 1500 * time.Millisecond
	m := start(t, timeout, func(fifo string) []string {
		// A supervisor restarts the daemon after a crash: the new
		// incarnation opens the FIFO again within the timeout.
		h := strings.Join(helperArgv(fifo), " ")
		script := h + " arm feed:30ms:200ms close exit:1; sleep 0.2; " +
			h + " arm feed:30ms:600ms disarm exit:0"
		return []string{"sh", "-c", script}
	})
	res := m.wait(10 * time.Second)
	if res.Reset != nil || res.Status != 0 {
		t.Errorf("result %+v, want no reset, status 0", res)
	}
	if ev := strings.Join(m.events(), " "); ev != "start armed closed opened disarmed exited exit" {
		t.Errorf("events %q", ev)
	}
}

func TestDaemonRestartTooLate(t *testing.T) {
	const timeout = 300 * time.Millisecond
	m := start(t, timeout, func(fifo string) []string {
		h := strings.Join(helperArgv(fifo), " ")
		script := h + " arm feed:30ms:200ms close exit:1; sleep 1; " +
			h + " arm feed:30ms:300ms disarm exit:0"
		return []string{"sh", "-c", script}
	})
	res := m.wait(10 * time.Second)
	checkReset(t, res.Reset, timeout)
}

func TestNotArmedBeforeOpen(t *testing.T) {
	const timeout = 100 * time.Millisecond
	m := start(t, timeout, func(fifo string) []string {
		return []string{"sh", "-c", "sleep 0.6; exit 7"}
	})
	res := m.wait(10 * time.Second)
	if res.Reset != nil || res.Status != 7 {
		t.Errorf("result %+v, want no reset (never opened) and status 7", res)
	}
	if _, err := os.Stat(m.fifo); !os.IsNotExist(err) {
		t.Errorf("the FIFO it created is still there: %v", err)
	}
}

func TestArmedWithoutAWrite(t *testing.T) {
	// Opening arms, as with a real device, even if nothing is written.
	const timeout = 300 * time.Millisecond
	m := start(t, timeout, func(fifo string) []string {
		return []string{"sh", "-c", "exec 3>" + fifo + "; sleep 3600"}
	})
	res := m.wait(10 * time.Second)
	checkReset(t, res.Reset, timeout)
}

func TestCommandExitsWhileArmedWithGuests(t *testing.T) {
	// The daemon dies (no magic close) and its guest runs on: the
	// machine is still up and armed, so it is reset.
	const timeout = 300 * time.Millisecond
	var guest string
	m := start(t, timeout, func(fifo string) []string {
		guest = filepath.Join(filepath.Dir(fifo), "guest")
		return helperArgv(fifo, "guest:"+guest, "arm", "feed:30ms:100ms", "exit:2")
	})
	gpid := readPid(t, guest)
	res := m.wait(10 * time.Second)
	checkReset(t, res.Reset, timeout)
	if res.CommandStatus != 2 || res.Status != wdsim.ExitReset {
		t.Errorf("result %+v", res)
	}
	waitGone(t, gpid)
}

func TestCommandKilledBySignal(t *testing.T) {
	m := start(t, time.Second, func(fifo string) []string {
		return []string{"sh", "-c", "kill -TERM $$"}
	})
	res := m.wait(10 * time.Second)
	if res.Status != 128+int(syscall.SIGTERM) || res.Reset != nil {
		t.Errorf("result %+v, want 128+SIGTERM", res)
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	for name, cfg := range map[string]wdsim.Config{
		"no fifo":      {Timeout: time.Second, Command: []string{"true"}},
		"no timeout":   {FIFO: filepath.Join(dir, "a"), Command: []string{"true"}},
		"no command":   {FIFO: filepath.Join(dir, "b"), Timeout: time.Second},
		"not a fifo":   {FIFO: file, Timeout: time.Second, Command: []string{"true"}},
		"missing exec": {FIFO: filepath.Join(dir, "c"), Timeout: time.Second, Command: []string{filepath.Join(dir, "nope")}},
	} {
		if _, err := wdsim.Start(cfg); err == nil {
			t.Errorf("%s: started", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "c")); !os.IsNotExist(err) {
		t.Errorf("a failed start left its FIFO: %v", err)
	}
}
