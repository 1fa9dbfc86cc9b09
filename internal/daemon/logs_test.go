package daemon

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/journal"
)

// [log] target = "journal" sends the lines by the native protocol, with
// the MESSAGE_ID and priority of a fence; a reload to "stderr" swaps the
// writer under the loggers already derived, and back.
func TestLogsTargetJournalAndReload(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "journal.socket")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv(journal.SocketEnv, sock)
	recv := func() map[string]string {
		t.Helper()
		buf := make([]byte, 1<<16)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		e, err := journal.Parse(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	var out bytes.Buffer
	c := &config.Config{Log: config.Log{Level: "info", Format: "json", Target: "journal"}}
	lg := NewLogs(c, &out)
	if !lg.ToJournal() {
		t.Fatal("target journal: not to the journal")
	}
	log := lg.Logger().With().Str("host", "n1").Logger()
	journal.Crit(log.Error(), journal.MsgFence).Str("reason", "slot taken").Int("slot", 2).Msg("FENCING: stopped feeding the watchdog, killing HA guests")
	e := recv()
	if e["PRIORITY"] != "2" || e["MESSAGE_ID"] != string(journal.MsgFence) || e["HBFENCE_HOST"] != "n1" || e["HBFENCE_SLOT"] != "2" || e["HBFENCE_REASON"] != "slot taken" {
		t.Errorf("fence entry: %v", e)
	}
	if out.Len() != 0 {
		t.Errorf("stderr got %q while the journal took the line", out.String())
	}

	lg.Apply(config.Log{Level: "info", Format: "json", Target: "stderr"})
	if lg.ToJournal() {
		t.Error("target stderr: still to the journal")
	}
	log.Info().Msg("to stderr now")
	if !strings.Contains(out.String(), `"message":"to stderr now"`) {
		t.Errorf("after the reload to stderr: %q", out.String())
	}
	lg.Apply(config.Log{Level: "info", Format: "json", Target: "journal"})
	log.Warn().Msg("back to the journal")
	if e := recv(); e["MESSAGE"] != "back to the journal (host=n1)" || e["PRIORITY"] != "4" {
		t.Errorf("after the reload back: %v", e)
	}

	// "auto" with an out that is not stderr: never the journal.
	lg.Apply(config.Log{Level: "info", Format: "console", Target: "auto"})
	if lg.ToJournal() {
		t.Error("auto with a buffer for stderr went to the journal")
	}
}
