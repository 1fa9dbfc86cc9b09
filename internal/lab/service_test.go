package lab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/internal/journal"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
	"golang.org/x/sys/unix"
)

// sink is a datagram socket that records what a daemon sends to it: its
// NOTIFY_SOCKET (one string per datagram) or its journal socket (one
// parsed entry per datagram, a memfd read as journald reads it).
type sink struct {
	t    *testing.T
	path string
	conn *net.UnixConn

	mu      sync.Mutex
	notes   []string
	entries []map[string]string
}

func newSink(t *testing.T, path string, isJournal bool) *sink {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{t: t, path: path, conn: conn}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf, oob := make([]byte, 1<<20), make([]byte, 128)
		for {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			data := append([]byte(nil), buf[:n]...)
			if oobn > 0 {
				if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) > 0 {
					if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) > 0 {
						f := os.NewFile(uintptr(fds[0]), "memfd")
						data, _ = io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
						f.Close()
					}
				}
			}
			s.mu.Lock()
			if isJournal {
				e, err := journal.Parse(data)
				if err != nil {
					e = map[string]string{"PARSE_ERROR": err.Error()}
				}
				s.entries = append(s.entries, e)
			} else {
				s.notes = append(s.notes, string(data))
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// waitNote waits for a notification that satisfies ok, from index from
// on, and returns it and its index.
func (s *sink) waitNote(what string, from int, ok func(string) bool) (string, int) {
	s.t.Helper()
	var got string
	at := -1
	err := lab.WaitUntil(context.Background(), 30*time.Second, 20*time.Millisecond, what, func() (bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i := from; i < len(s.notes); i++ {
			if ok(s.notes[i]) {
				got, at = s.notes[i], i
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		s.mu.Lock()
		s.t.Fatalf("%v; notifications so far:\n%s", err, strings.Join(s.notes, "\n--\n"))
	}
	return got, at
}

// waitEntry waits for a journal entry that has every field of want (a
// value ending in * matches as a prefix, one starting with * as a
// substring).
func (s *sink) waitEntry(what string, timeout time.Duration, want map[string]string) map[string]string {
	s.t.Helper()
	var got map[string]string
	err := lab.WaitUntil(context.Background(), timeout, 20*time.Millisecond, what, func() (bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.entries {
			if matches(e, want) {
				got = e
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		s.t.Fatalf("%v; want %v; journal so far:\n%s", err, want, s.dump())
	}
	return got
}

func matches(e, want map[string]string) bool {
	for k, v := range want {
		got, ok := e[k]
		switch {
		case !ok:
			return false
		case strings.HasPrefix(v, "*"):
			if !strings.Contains(got, v[1:]) {
				return false
			}
		case strings.HasSuffix(v, "*"):
			if !strings.HasPrefix(got, v[:len(v)-1]) {
				return false
			}
		case got != v:
			return false
		}
	}
	return true
}

func (s *sink) dump() string {
	var b strings.Builder
	for _, e := range s.entries {
		fmt.Fprintf(&b, "  [%s] %s %s\n", e["PRIORITY"], e["MESSAGE_ID"], e["MESSAGE"])
	}
	return b.String()
}

// serviceHost is a lab host whose daemon runs as under systemd: with a
// NOTIFY_SOCKET, and with stderr "connected to the journal"
// (JOURNAL_STREAM names its log file's device and inode), so that it logs
// by the native protocol, to a socket of the test (HBFENCE_JOURNAL_SOCKET).
type serviceHost struct {
	*lab.Host
	notify, journal *sink
}

// serviceAndPlainHost starts host nameA as a systemd service (its notify
// and journal sockets recorded) and nameB as a plain daemon, and waits
// until both have joined and armed their watchdogs.
func serviceAndPlainHost(t *testing.T, p *lab.Pool, nameA, nameB string) (a, b *lab.Host, sa *serviceHost) {
	t.Helper()
	a, err := p.AddHost(nameA, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err = p.AddHost(nameB, "")
	if err != nil {
		t.Fatal(err)
	}
	sa = startServiceHost(t, p, a, nil)
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitJoined(context.Background(), 60*time.Second, a, b); err != nil {
		t.Fatal(err)
	}
	waitAllArmed(t, a, b)
	return a, b, sa
}

func startServiceHost(t *testing.T, p *lab.Pool, h *lab.Host, sinks *serviceHost) *serviceHost {
	t.Helper()
	if sinks == nil {
		dir := filepath.Dir(h.Config)
		sinks = &serviceHost{Host: h, notify: newSink(t, filepath.Join(dir, "notify.sock"), false),
			journal: newSink(t, filepath.Join(dir, "journal.sock"), true)}
	}
	f, err := os.OpenFile(h.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Setenv("NOTIFY_SOCKET", sinks.notify.path)
	t.Setenv(journal.SocketEnv, sinks.journal.path)
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	err = h.Start()
	// Only this host's daemon notifies these sockets (t.Setenv restores
	// the environment at the end of the test).
	for _, k := range []string{"NOTIFY_SOCKET", journal.SocketEnv, "JOURNAL_STREAM"} {
		os.Unsetenv(k)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("journal of %s:\n%s", h.Name, sinks.journal.dump())
		}
	})
	return sinks
}

// The daemon as a systemd service, end to end with real daemons: READY=1
// once joined, armed and adopted, with a STATUS= line that says so;
// RELOADING=1 then READY=1 around a SIGHUP; a poison pill's fence logged
// at crit with its MESSAGE_ID and HBFENCE_ fields, its reason on local
// disk and in hbfence status after a restart; a dead and a departed peer
// with theirs; STOPPING=1 with EXTEND_TIMEOUT_USEC= at a stop.
func TestServiceNotifyJournalAndLastFence(t *testing.T) {
	p := newPool(t, lab.Options{Watchdog: true, Guests: true})
	var hosts []*serviceHost
	var plain []*lab.Host
	for _, n := range []string{"s1", "s2", "s3"} {
		h, err := p.AddHost(n, "")
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, startServiceHost(t, p, h, nil))
		plain = append(plain, h)
	}
	if err := p.WaitJoined(context.Background(), 60*time.Second, plain...); err != nil {
		t.Fatal(err)
	}
	waitAllArmed(t, plain...)
	st0, err := plain[0].Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pool8 := st0.PoolUUID.String()[:8]

	for _, h := range hosts {
		st, err := h.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ready, _ := h.notify.waitNote(h.Name+" READY=1", 0, func(s string) bool { return strings.HasPrefix(s, "READY=1\n") })
		// READY=1 carries the STATUS= computed from the view that was
		// ready: joined (this slot), armed, guests adopted.
		want := fmt.Sprintf("STATUS=live in pool %s, slot %d, ", pool8, st.Slot)
		if !strings.Contains(ready, want) || !strings.Contains(ready, " guests here") {
			t.Errorf("%s: READY=1 came with %q; want %q... guests here", h.Name, ready, want)
		}
		if strings.Contains(ready, "MAINPID=") {
			t.Errorf("%s: MAINPID= sent on a fresh start: %q", h.Name, ready)
		}
		// The journal, by the native protocol: the start line with
		// the host's field, nothing in the log file.
		h.journal.waitEntry(h.Name+" logs its start to the journal", 10*time.Second,
			map[string]string{"MESSAGE": "starting*", "PRIORITY": "6", "HBFENCE_HOST": h.Name, "SYSLOG_IDENTIFIER": "hbfence"})
		h.journal.waitEntry(h.Name+" logs its watchdog armed", 10*time.Second, map[string]string{"MESSAGE": "watchdog armed*", "HBFENCE_BACKEND": "fifo"})
		if log := h.Log(); strings.Contains(log, `"message":"starting"`) {
			t.Errorf("%s logged to stderr although stderr is the journal:\n%s", h.Name, log)
		}
	}
	// Every host saw the master chosen: a master change, with its epoch.
	masterHost, _ := waitActing(t, plain, 0, 2*hostDead)
	for _, h := range hosts {
		h.journal.waitEntry(h.Name+" logs the master", 2*hostDead, map[string]string{"MESSAGE_ID": string(journal.MsgMasterChange), "HBFENCE_EPOCH": "*"})
	}
	var m *serviceHost
	var rest []*serviceHost
	for _, h := range hosts {
		if h.Host == masterHost {
			m = h
		} else {
			rest = append(rest, h)
		}
	}
	victim, dying := rest[0], rest[1]

	// SIGHUP: RELOADING=1 with MONOTONIC_USEC=, then READY=1 again.
	_, n0 := victim.notify.waitNote("READY", 0, func(s string) bool { return strings.HasPrefix(s, "READY=1\n") })
	if err := syscall.Kill(victim.DaemonPID(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	_, n1 := victim.notify.waitNote("RELOADING=1", n0+1, func(s string) bool {
		return strings.HasPrefix(s, "RELOADING=1\nMONOTONIC_USEC=")
	})
	victim.notify.waitNote("READY=1 after the reload", n1+1, func(s string) bool { return strings.HasPrefix(s, "READY=1\n") })

	// A poison pill (action off) fences the victim: the fence at crit
	// with its id and fields, then a clean exit (0: it stays out).
	res, err := poison(t, p, m.Host, victim.Name, "off")
	if err != nil || !res.Acked {
		t.Fatalf("fence: %+v, %v", res, err)
	}
	if exitErr := waitExit(t, victim.Host, 3*hostDead); exitErr != nil {
		t.Fatalf("%s exited with %v, want 0 (fenced off)", victim.Name, exitErr)
	}
	crit := map[string]string{"PRIORITY": "2", "MESSAGE_ID": string(journal.MsgFence), "HBFENCE_HOST": victim.Name}
	victim.journal.waitEntry("the poison pill received, at crit", time.Second,
		merge(crit, map[string]string{"MESSAGE": "poison pill received*", "HBFENCE_PEER": m.Name, "HBFENCE_ACTION": "off"}))
	fenceLine := victim.journal.waitEntry("FENCING at crit", time.Second,
		merge(crit, map[string]string{"MESSAGE": "FENCING: *", "HBFENCE_REASON": "poison pill from " + m.Name + "*"}))
	victim.journal.waitEntry("fenced, at crit", time.Second, merge(crit, map[string]string{"MESSAGE": "fenced: HA guests confirmed gone*"}))

	// Its reason is on local disk, in the host's state directory.
	lf := filepath.Join(filepath.Dir(victim.Config), "state", "last-fence")
	b, err := os.ReadFile(lf)
	if err != nil {
		t.Fatalf("no last-fence file after the fence: %v", err)
	}
	var rec struct {
		Reason     string    `json:"reason"`
		Time       time.Time `json:"time"`
		Slot       int       `json:"slot"`
		Generation uint64    `json:"generation"`
		Host       string    `json:"host"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Reason != fenceLine["HBFENCE_REASON"] || rec.Host != victim.Name || rec.Slot < 0 || rec.Generation == 0 {
		t.Errorf("last-fence %+v; want the reason %q of host %s with its slot", rec, fenceLine["HBFENCE_REASON"], victim.Name)
	}

	// A peer killed: suspect, then dead, each with its id and the peer.
	if err := dying.Kill(); err != nil {
		t.Fatal(err)
	}
	m.journal.waitEntry("the master sees "+dying.Name+" suspect", 2*hostDead,
		map[string]string{"MESSAGE_ID": string(journal.MsgHostSuspect), "HBFENCE_PEER": dying.Name, "PRIORITY": "4"})
	m.journal.waitEntry("the master sees "+dying.Name+" dead", 3*hostDead,
		map[string]string{"MESSAGE_ID": string(journal.MsgHostDead), "HBFENCE_PEER": dying.Name, "PRIORITY": "4", "HBFENCE_HOST": m.Name, "HBFENCE_PEER_SLOT": "*"})

	// The victim started again: hbfence status shows its last fence,
	// from before this start.
	startServiceHost(t, p, victim.Host, victim)
	if err := p.WaitJoined(context.Background(), 60*time.Second, m.Host, victim.Host); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(binary, "status", "--config", victim.Config).CombinedOutput()
	if err != nil {
		t.Fatalf("hbfence status: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "last fence: "+rec.Reason+" at ") || !strings.Contains(string(out), "before this daemon started") {
		t.Errorf("hbfence status does not show the last fence %q:\n%s", rec.Reason, out)
	}
	out, err = exec.Command(binary, "status", "--json", "--config", victim.Config).Output()
	if err != nil {
		t.Fatal(err)
	}
	var st daemon.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	if st.LastFence == nil || st.LastFence.Reason != rec.Reason || !st.LastFence.Time.Before(st.Started) {
		t.Errorf("status --json: last_fence %+v, started %v", st.LastFence, st.Started)
	}

	// A stop: STOPPING=1 with a stop timeout extension, a clean exit, and
	// the others log the host as left.
	_, n2 := m.notify.waitNote("master ready", 0, func(s string) bool { return strings.HasPrefix(s, "READY=1\n") })
	if err := syscall.Kill(m.DaemonPID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopping, _ := m.notify.waitNote("STOPPING=1", n2+1, func(s string) bool { return strings.HasPrefix(s, "STOPPING=1\n") })
	if !strings.Contains(stopping, "\nEXTEND_TIMEOUT_USEC=") {
		t.Errorf("STOPPING=1 without EXTEND_TIMEOUT_USEC=: %q", stopping)
	}
	if exitErr := waitExit(t, m.Host, 3*hostDead); exitErr != nil {
		t.Errorf("%s exited with %v after SIGTERM, want 0", m.Name, exitErr)
	}
	victim.journal.waitEntry(victim.Name+" sees "+m.Name+" left", 2*hostDead,
		map[string]string{"MESSAGE_ID": string(journal.MsgHostLeft), "HBFENCE_PEER": m.Name})
	// ... and takes the master role, a master change.
	victim.journal.waitEntry(victim.Name+" becomes master", 3*hostDead,
		map[string]string{"MESSAGE_ID": string(journal.MsgMasterChange), "HBFENCE_EVENT": "acquired"})
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// An upgrade's re-exec (SIGUSR1) as systemd sees it: RELOADING=1 before
// the exec, then, from the new image (same pid), READY=1 with MAINPID=
// once it has resumed its slot and adopted its guests.
func TestServiceNotifyAcrossUpgrade(t *testing.T) {
	installed := installBinaries(t)
	p := newPool(t, lab.Options{Watchdog: true, Guests: true, Binary: installed})
	a, _, sa := serviceAndPlainHost(t, p, "v1", "v2")
	_, n0 := sa.notify.waitNote("READY=1", 0, func(s string) bool { return strings.HasPrefix(s, "READY=1\n") })
	pid := a.DaemonPID()
	before, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	_, n1 := sa.notify.waitNote("RELOADING=1 before the exec", n0+1, func(s string) bool {
		return strings.HasPrefix(s, "RELOADING=1\nMONOTONIC_USEC=") && strings.Contains(s, "STATUS=upgrading: re-executing ")
	})
	ready, _ := sa.notify.waitNote("READY=1 from the new image", n1+1, func(s string) bool { return strings.HasPrefix(s, "READY=1\n") })
	if !strings.Contains(ready, fmt.Sprintf("\nMAINPID=%d", pid)) {
		t.Errorf("READY=1 after the re-exec without MAINPID=%d: %q", pid, ready)
	}
	if !strings.Contains(ready, fmt.Sprintf("STATUS=live in pool %s, slot %d, ", before.PoolUUID.String()[:8], before.Slot)) {
		t.Errorf("READY=1 after the re-exec: %q", ready)
	}
	sa.journal.waitEntry("the new image logs to the journal", 10*time.Second,
		map[string]string{"MESSAGE": "upgrade: this is the new image*", "HBFENCE_HOST": a.Name, "HBFENCE_PID": fmt.Sprint(pid)})
	after, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after.PID != pid || after.Generation != before.Generation {
		t.Errorf("after the upgrade: pid %d generation %d; before %d, %d", after.PID, after.Generation, pid, before.Generation)
	}
}

// A host's storage grows slow, then is cut, through its own faultfs
// mount: the journal has the latency near its budget (and STATUS= says
// so), then the fence at crit with the renewals' reason, which the
// last-fence file holds too.
func TestServiceJournalStorageSlowThenFence(t *testing.T) {
	if err := lab.FaultFSAvailable(); err != nil {
		t.Skip("SKIP: " + err.Error())
	}
	faultfsOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", lab.FaultFSBinary(binary), "github.com/hbfence/hbfence/cmd/hbfence-faultfs").CombinedOutput()
		if err != nil {
			faultfsErr = fmt.Errorf("building hbfence-faultfs: %v\n%s", err, out)
		}
	})
	if faultfsErr != nil {
		t.Fatal(faultfsErr)
	}
	p := newPool(t, lab.Options{Watchdog: true, FaultFS: true})
	a, _, sa := serviceAndPlainHost(t, p, "w1", "w2")
	var err error
	_, n0 := sa.notify.waitNote("READY=1", 0, func(s string) bool { return strings.HasPrefix(s, "READY=1\n") })

	// 600 ms on every I/O: above half of io_timeout (1 s), within it.
	if err := a.SlowStorage(600 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	sa.journal.waitEntry("storage latency near its budget", 20*time.Second,
		map[string]string{"MESSAGE_ID": string(journal.MsgStorageLatency), "PRIORITY": "4", "HBFENCE_HOST": a.Name, "MESSAGE": "storage latency near its budget: *"})
	sa.notify.waitNote("STATUS= says the storage is slow", n0+1, func(s string) bool {
		return strings.HasPrefix(s, "STATUS=live in pool ") && strings.Contains(s, "; storage slow: a renewal took ")
	})
	if err := a.RestoreStorage(); err != nil {
		t.Fatal(err)
	}
	sa.journal.waitEntry("storage latency back", 30*time.Second, map[string]string{"MESSAGE": "storage latency back within its budget*"})

	// Cut: the renewals fail for renewal_fail, the host fences.
	if err := a.CutStorage(); err != nil {
		t.Fatal(err)
	}
	fenceLine := sa.journal.waitEntry("FENCING at crit", 3*p.Timing.RenewalFail,
		map[string]string{"PRIORITY": "2", "MESSAGE_ID": string(journal.MsgFence), "MESSAGE": "FENCING: *", "HBFENCE_HOST": a.Name})
	// Written while the guests are killed, right after the FENCING line.
	var b2 []byte
	if err := lab.WaitUntil(context.Background(), 2*time.Second, 10*time.Millisecond, "the last-fence file", func() (bool, error) {
		b2, err = os.ReadFile(filepath.Join(filepath.Dir(a.Config), "state", "last-fence"))
		return err == nil, nil
	}); err != nil {
		t.Fatalf("no last-fence file after the fence: %v", err)
	}
	var rec struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(b2, &rec); err != nil || rec.Reason == "" || rec.Reason != fenceLine["HBFENCE_REASON"] {
		t.Errorf("last-fence reason %q (%v); the journal's %q", rec.Reason, err, fenceLine["HBFENCE_REASON"])
	}
	sa.journal.waitEntry("fenced at crit", 3*p.Timing.RenewalFail,
		map[string]string{"PRIORITY": "2", "MESSAGE_ID": string(journal.MsgFence), "MESSAGE": "fenced: HA guests confirmed gone*"})
	if err := a.RestoreStorage(); err != nil {
		t.Fatal(err)
	}
	t.Logf("fence reason: %s", rec.Reason)
}

// The master logs its plan's guest events: a host stopped, one of its
// guests placed on another host (MsgGuestRestarted), one with no other
// host it may run on pending (MsgGuestPending), each with HBFENCE_GUEST.
func TestServiceJournalGuestEvents(t *testing.T) {
	p := newPool(t, lab.Options{Watchdog: true, Guests: true})
	var hosts []*serviceHost
	var plain []*lab.Host
	for _, n := range []string{"x1", "x2", "x3"} {
		h, err := p.AddHost(n, "")
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, startServiceHost(t, p, h, nil))
		plain = append(plain, h)
	}
	if err := p.WaitJoined(context.Background(), 60*time.Second, plain...); err != nil {
		t.Fatal(err)
	}
	waitAllArmed(t, plain...)
	mh, _ := waitActing(t, plain, 0, 2*hostDead)
	var m *serviceHost
	var rest []*lab.Host
	for _, h := range hosts {
		if h.Host == mh {
			m = h
		} else {
			rest = append(rest, h.Host)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// e1 may run on either other host; e2 only where e1 went first.
	if err := p.AddGuests(context.Background(), mh, self,
		lab.GuestSpec{Name: "e1", HA: true, Placement: "manual", Preferred: []string{rest[0].Name, rest[1].Name}}); err != nil {
		t.Fatal(err)
	}
	gs := waitGuests(t, mh, 10*time.Second, "e1 running", func(gs map[string]agent.GuestStatus) bool {
		return gs["e1"].State == restart.Running
	})
	stop, keep := rest[0], rest[1]
	if gs["e1"].Host == keep.Name {
		stop, keep = keep, stop
	}
	if err := p.AddGuests(context.Background(), mh, self,
		lab.GuestSpec{Name: "e2", HA: true, Placement: "manual", Preferred: []string{stop.Name}}); err != nil {
		t.Fatal(err)
	}
	waitGuests(t, mh, 10*time.Second, "both guests running on "+stop.Name, func(gs map[string]agent.GuestStatus) bool {
		return gs["e1"].State == restart.Running && gs["e1"].Host == stop.Name && gs["e2"].State == restart.Running && gs["e2"].Host == stop.Name
	})
	if err := stop.Stop(context.Background()); err != nil {
		t.Fatalf("%s did not stop cleanly: %v", stop.Name, err)
	}
	m.journal.waitEntry("e1 placed on "+keep.Name, hostDead, map[string]string{"MESSAGE_ID": string(journal.MsgGuestRestarted),
		"HBFENCE_GUEST": "e1", "HBFENCE_ON": keep.Name, "HBFENCE_WAS_ON": stop.Name, "HBFENCE_HOST": m.Name, "PRIORITY": "6"})
	m.journal.waitEntry("e2 pending", hostDead, map[string]string{"MESSAGE_ID": string(journal.MsgGuestPending),
		"HBFENCE_GUEST": "e2", "HBFENCE_STATE": "pending", "PRIORITY": "4", "MESSAGE": "guest e2 pending*"})
}
