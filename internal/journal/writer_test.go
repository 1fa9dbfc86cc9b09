package journal

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// recorder is a datagram socket standing in for journald's: it returns
// the entries sent to it, parsed, passing memfds on as journald does.
type recorder struct {
	t    *testing.T
	path string
	conn *net.UnixConn
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.socket")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &recorder{t: t, path: path, conn: conn}
}

func (r *recorder) next() map[string]string {
	r.t.Helper()
	buf := make([]byte, 1<<20)
	oob := make([]byte, 64)
	r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, _, err := r.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		r.t.Fatal(err)
	}
	data := buf[:n]
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			r.t.Fatal(err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil {
			r.t.Fatal(err)
		}
		f := os.NewFile(uintptr(fds[0]), "memfd")
		defer f.Close()
		// journald reads the memfd from its start (the offset is the
		// sender's, at its end).
		if data, err = io.ReadAll(io.NewSectionReader(f, 0, 1<<30)); err != nil {
			r.t.Fatal(err)
		}
	}
	e, err := Parse(data)
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}

func TestWriterSendsFieldsPriorityAndID(t *testing.T) {
	rec := newRecorder(t)
	var fallback bytes.Buffer
	w := &Writer{Socket: rec.path, Fallback: &fallback}
	defer w.Close()
	log := zerolog.New(w).With().Timestamp().Str("host", "node1").Logger()

	Crit(log.Error(), MsgFence).Str("reason", "renewals failed for 3s").Int("slot", 3).Uint64("generation", 7).
		Msg("FENCING: stopped feeding the watchdog, killing HA guests")
	e := rec.next()
	want := map[string]string{
		"PRIORITY": "2", "MESSAGE_ID": string(MsgFence), "SYSLOG_IDENTIFIER": "hbfence",
		"HBFENCE_HOST": "node1", "HBFENCE_SLOT": "3", "HBFENCE_GENERATION": "7", "HBFENCE_REASON": "renewals failed for 3s",
	}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("%s=%q, want %q (entry %v)", k, e[k], v, e)
		}
	}
	if !strings.HasPrefix(e["MESSAGE"], "FENCING: stopped feeding the watchdog, killing HA guests (host=node1 ") ||
		!strings.Contains(e["MESSAGE"], "reason=renewals failed for 3s") {
		t.Errorf("MESSAGE=%q", e["MESSAGE"])
	}
	if _, ok := e["HBFENCE_MESSAGE_ID"]; ok {
		t.Error("the MESSAGE_ID is also sent as an HBFENCE_ field")
	}

	// The level's priority, a value with a newline (binary form).
	log.Warn().Str("stacks", "goroutine 1\ngoroutine 2").Msg("goroutine stacks")
	e = rec.next()
	if e["PRIORITY"] != "4" || e["HBFENCE_STACKS"] != "goroutine 1\ngoroutine 2" || e["MESSAGE_ID"] != "" {
		t.Errorf("warn line: %v", e)
	}
	log.Info().Msg("plain")
	if e = rec.next(); e["PRIORITY"] != "6" || e["MESSAGE"] != "plain (host=node1)" {
		t.Errorf("info line: %v", e)
	}

	// Too large for one datagram: a sealed memfd.
	big := strings.Repeat("x", 600<<10)
	log.Warn().Str("stacks", big).Msg("big")
	if e = rec.next(); e["HBFENCE_STACKS"] != big || e["PRIORITY"] != "4" {
		t.Errorf("big line: %d bytes of stacks, priority %q", len(e["HBFENCE_STACKS"]), e["PRIORITY"])
	}
	if fallback.Len() != 0 {
		t.Errorf("lines went to the fallback: %s", fallback.String())
	}
}

func TestWriterFallsBackWhenNoJournal(t *testing.T) {
	var fallback bytes.Buffer
	w := &Writer{Socket: filepath.Join(t.TempDir(), "none"), Fallback: &fallback}
	defer w.Close()
	log := zerolog.New(w)
	log.Error().Str("host", "n1").Msg("no journald here")
	if !strings.Contains(fallback.String(), `"message":"no journald here"`) {
		t.Errorf("fallback got %q", fallback.String())
	}
}

func TestPriorityOfLevels(t *testing.T) {
	for lv, want := range map[string]int{"debug": 7, "trace": 7, "info": 6, "warn": 4, "error": 3, "fatal": 2, "panic": 0, "": 6} {
		if got := Priority(lv); got != want {
			t.Errorf("Priority(%q) = %d, want %d", lv, got, want)
		}
	}
	if got := FieldName("peer-slot.x"); got != "HBFENCE_PEER_SLOT_X" {
		t.Errorf("FieldName: %q", got)
	}
}

// TestClassify pins each rule to the fields the line is logged with by
// its package (heartbeat.Member.report, heartbeat/master logEvent,
// restart/agent).
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		line string
		want ID
	}{
		{`{"level":"warn","host":"a","peer":"b","peer_slot":1,"generation":2,"slot":0,"from":"live","to":"suspect","silence_ms":900,"message":"host b is suspect"}`, MsgHostSuspect},
		{`{"level":"warn","host":"a","peer":"b","peer_slot":1,"generation":2,"from":"suspect","to":"dead","message":"host b is dead"}`, MsgHostDead},
		{`{"level":"info","host":"a","peer":"b","peer_slot":1,"generation":2,"from":"live","to":"left","message":"host b is left"}`, MsgHostLeft},
		{`{"level":"info","host":"a","peer":"b","peer_slot":1,"generation":2,"from":"unknown","to":"live","message":"host b is live"}`, ""},
		{`{"level":"info","host":"a","event":"holder-changed","epoch":3,"owner":"b","message":"master changed: b, epoch 3"}`, MsgMasterChange},
		{`{"level":"info","host":"a","event":"acquired","epoch":4,"message":"this host is master, epoch 4 (was epoch 3)"}`, MsgMasterChange},
		{`{"level":"info","host":"a","event":"released","epoch":4,"message":"master lease released"}`, ""},
		{`{"level":"warn","host":"a","component":"guests","guest":"vm1","uuid":"u","message":"guest start failed"}`, MsgGuestError},
		{`{"level":"error","host":"a","component":"guests","guest":"vm1","message":"guest could not be stopped"}`, MsgGuestError},
		{`{"level":"info","host":"a","component":"guests","guest":"vm1","message":"guest started"}`, ""},
		{`{"level":"warn","host":"a","peer":"b","from":"live","to":"dead","message_id":"` + string(MsgFence) + `","message":"x"}`, MsgFence},
	} {
		e, err := Entry([]byte(c.line), "hbfence")
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(e)
		if err != nil {
			t.Fatal(err)
		}
		if ID(f["MESSAGE_ID"]) != c.want {
			t.Errorf("%s: MESSAGE_ID %q, want %q", c.line, f["MESSAGE_ID"], c.want)
		}
	}
}
