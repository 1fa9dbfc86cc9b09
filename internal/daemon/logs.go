package daemon

import (
	"fmt"
	"io"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/journal"
	"github.com/rs/zerolog"
)

// Logs is the daemon's logging, which a reload (SIGHUP) may change at run
// time: the level, the format and the target ([log]). Every logger
// derived from Logger follows a change.
type Logs struct {
	out io.Writer
	w   swapWriter
	mu  sync.Mutex
	cur config.Log
	l   zerolog.Logger
	// jw is the journal's writer, once a target chose it (kept across
	// reloads: one socket).
	jw *journal.Writer
	// toJournal is whether the lines go to the journal now.
	toJournal bool
}

// NewLogs builds the daemon's logging from [log], writing to out.
func NewLogs(c *config.Config, out io.Writer) *Logs {
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
	zerolog.DurationFieldUnit = time.Millisecond
	zerolog.DurationFieldInteger = true
	lg := &Logs{out: out}
	lg.Apply(c.Log)
	// The logger lets every level through; the global level filters,
	// so that a change reaches the loggers derived from this one.
	lg.l = zerolog.New(&lg.w).Level(zerolog.TraceLevel).With().Timestamp().Logger()
	return lg
}

// Logger is the root logger.
func (lg *Logs) Logger() zerolog.Logger { return lg.l }

// Apply makes [log] l current.
func (lg *Logs) Apply(l config.Log) {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	lvl, err := zerolog.ParseLevel(l.Level)
	if err != nil || l.Level == "" {
		lvl = zerolog.InfoLevel
	}
	zerolog.SetGlobalLevel(lvl)
	lg.w.set(lg.writerFor(l))
	lg.cur = l
}

// writerFor is where [log] l sends the lines: the journal's native
// protocol (internal/journal) when target is "journal", or "auto" and
// stderr is the journal (JOURNAL_STREAM); else out, as JSON or console
// text. The journal takes the JSON lines whatever the format (journalctl
// formats them); a line it does not take goes to out.
func (lg *Logs) writerFor(l config.Log) io.Writer {
	lg.toJournal = l.Target == "journal" || (l.Target == "auto" || l.Target == "") && lg.out == io.Writer(os.Stderr) && journal.StderrIsJournal()
	if lg.toJournal {
		if lg.jw == nil {
			lg.jw = &journal.Writer{Socket: journal.Socket(), Fallback: lg.out}
		}
		return lg.jw
	}
	if l.Format == "console" {
		return zerolog.ConsoleWriter{Out: lg.out, TimeFormat: "15:04:05.000"}
	}
	return lg.out
}

// ToJournal reports whether the lines go to the journal.
func (lg *Logs) ToJournal() bool {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	return lg.toJournal
}

// Logger builds the daemon's logger from the configuration (without
// reload).
func Logger(c *config.Config, w io.Writer) zerolog.Logger { return NewLogs(c, w).Logger() }

// swapWriter is a writer that can be replaced while in use.
type swapWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *swapWriter) set(w io.Writer) {
	s.mu.Lock()
	s.w = w
	s.mu.Unlock()
}

func (s *swapWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// changedKeys lists the "section.key" of every setting that differs
// between two configurations, in file order.
func changedKeys(a, b *config.Config) []string {
	var out []string
	va, vb := reflect.ValueOf(*a), reflect.ValueOf(*b)
	for i := 0; i < va.NumField(); i++ {
		sec := va.Type().Field(i)
		tag := sec.Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		sa, sb := va.Field(i), vb.Field(i)
		if sa.Kind() != reflect.Struct {
			if !reflect.DeepEqual(sa.Interface(), sb.Interface()) {
				out = append(out, tag)
			}
			continue
		}
		for j := 0; j < sa.NumField(); j++ {
			f := sa.Type().Field(j)
			key := f.Tag.Get("toml")
			if key == "" || key == "-" || !f.IsExported() {
				continue
			}
			if !reflect.DeepEqual(sa.Field(j).Interface(), sb.Field(j).Interface()) {
				out = append(out, fmt.Sprintf("[%s] %s", tag, key))
			}
		}
	}
	return out
}
