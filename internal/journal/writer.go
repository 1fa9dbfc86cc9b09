package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SendTimeout bounds one send to a journald whose socket stays full.
const SendTimeout = 100 * time.Millisecond

// Writer is an io.Writer of zerolog JSON lines that sends each to the
// journal. Safe for concurrent use.
type Writer struct {
	// Socket is journald's socket (Socket()).
	Socket string
	// Identifier is SYSLOG_IDENTIFIER; default "hbfence".
	Identifier string
	// Fallback takes a line the journal did not (nil: dropped).
	Fallback io.Writer

	mu   sync.Mutex
	conn *net.UnixConn
}

// Write sends one line. It never fails: a line the journal does not
// take goes to Fallback.
func (w *Writer) Write(p []byte) (int, error) {
	e, err := Entry(p, w.ident())
	if err == nil {
		err = w.send(e)
	}
	if err != nil && w.Fallback != nil {
		w.Fallback.Write(p)
	}
	return len(p), nil
}

func (w *Writer) ident() string {
	if w.Identifier == "" {
		return "hbfence"
	}
	return w.Identifier
}

// Close closes the writer's socket.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		err := w.conn.Close()
		w.conn = nil
		return err
	}
	return nil
}

func (w *Writer) send(data []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
		if err != nil {
			return err
		}
		w.conn = c
	}
	addr := &net.UnixAddr{Name: w.Socket, Net: "unixgram"}
	w.conn.SetWriteDeadline(time.Now().Add(SendTimeout))
	_, _, err := w.conn.WriteMsgUnix(data, nil, addr)
	if err == nil || !tooLarge(err) {
		return err
	}
	// Too large for a datagram (a SIGQUIT's stacks): pass it in a
	// sealed memfd, as sd_journal_send does.
	fd, err := unix.MemfdCreate("hbfence-journal", unix.MFD_ALLOW_SEALING|unix.MFD_CLOEXEC)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err != nil {
			return err
		}
		rest = rest[n:]
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		return err
	}
	_, _, err = w.conn.WriteMsgUnix(nil, unix.UnixRights(fd), addr)
	return err
}

func tooLarge(err error) bool {
	return errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.ENOBUFS)
}

// Entry turns one zerolog JSON line into a journal entry in the native
// protocol's serialization: MESSAGE (the message, then the line's other
// fields as key=value), PRIORITY, MESSAGE_ID when the line has one,
// SYSLOG_IDENTIFIER, and each other field of the line as HBFENCE_<KEY>.
func Entry(line []byte, ident string) ([]byte, error) {
	fields, err := parseLine(line)
	if err != nil {
		return nil, err
	}
	id := classify(fields)
	var msg, level, pri string
	var rest []field
	for _, f := range fields {
		switch f.key {
		case "message":
			msg = f.val
		case "level":
			level = f.val
		case FieldID:
			id = ID(f.val)
		case FieldPriority:
			pri = f.val
		default:
			rest = append(rest, f)
		}
	}
	p := Priority(level)
	if n, err := strconv.Atoi(pri); err == nil && n >= PriEmerg && n <= PriDebug {
		p = n
	}
	text := msg
	var tail []string
	for _, f := range rest {
		if f.key == "time" {
			continue
		}
		tail = append(tail, f.key+"="+f.val)
	}
	if len(tail) > 0 {
		text += " (" + strings.Join(tail, " ") + ")"
	}
	var b bytes.Buffer
	put(&b, "MESSAGE", text)
	put(&b, "PRIORITY", strconv.Itoa(p))
	if id != "" {
		put(&b, "MESSAGE_ID", string(id))
	}
	put(&b, "SYSLOG_IDENTIFIER", ident)
	for _, f := range rest {
		put(&b, FieldName(f.key), f.val)
	}
	return b.Bytes(), nil
}

// Priority is the syslog priority of a zerolog level.
func Priority(level string) int {
	switch level {
	case "trace", "debug":
		return PriDebug
	case "warn":
		return PriWarning
	case "error":
		return PriErr
	case "fatal":
		return PriCrit
	case "panic":
		return PriEmerg
	}
	return PriInfo
}

// FieldName is the journal field of a zerolog field: HBFENCE_ and the
// key in upper case, every character other than a letter, a digit or _
// made _ (journal field names are [A-Z0-9_], at most 64 bytes).
func FieldName(key string) string {
	var b strings.Builder
	b.WriteString("HBFENCE_")
	for _, r := range strings.ToUpper(key) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}

// put appends one field: KEY=value\n, or, for a value with a newline,
// KEY\n, its length as 64-bit little endian, the value and \n.
func put(b *bytes.Buffer, key, val string) {
	if !strings.ContainsRune(val, '\n') {
		b.WriteString(key)
		b.WriteByte('=')
		b.WriteString(val)
		b.WriteByte('\n')
		return
	}
	b.WriteString(key)
	b.WriteByte('\n')
	binary.Write(b, binary.LittleEndian, uint64(len(val)))
	b.WriteString(val)
	b.WriteByte('\n')
}

type field struct{ key, val string }

// parseLine reads a JSON object's fields in order; a string value is
// unquoted, any other value kept as its JSON text.
func parseLine(line []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("journal: not a JSON object: %.80q", line)
	}
	var out []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		key, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		val := string(raw)
		var s string
		if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
			val = s
		}
		out = append(out, field{key, val})
	}
	return out, nil
}

// Parse reads one datagram of the native protocol back into its fields
// (a field given twice keeps its last value): for tests and tools.
func Parse(data []byte) (map[string]string, error) {
	out := map[string]string{}
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			return nil, errors.New("journal: entry does not end with a newline")
		}
		line := data[:nl]
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			out[string(line[:eq])] = string(line[eq+1:])
			data = data[nl+1:]
			continue
		}
		data = data[nl+1:]
		if len(data) < 8 {
			return nil, fmt.Errorf("journal: field %s: no length", line)
		}
		n := binary.LittleEndian.Uint64(data[:8])
		data = data[8:]
		if uint64(len(data)) < n+1 || data[n] != '\n' {
			return nil, fmt.Errorf("journal: field %s: length %d past the end", line, n)
		}
		out[string(line)] = string(data[:n])
		data = data[n+1:]
	}
	return out, nil
}
