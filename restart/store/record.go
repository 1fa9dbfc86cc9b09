package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sync"
	"time"

	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Kind is what a record file holds.
type Kind uint16

const (
	KindPool   Kind = 1
	KindPlan   Kind = 2
	KindReport Kind = 3
	// KindRequest: a command a host that is not the master forwards to
	// the master (requests/NAME, written by host NAME only).
	KindRequest Kind = 4
	// KindAnswer: the master's answer to a forwarded command
	// (answers/NAME, written by the master of its epoch).
	KindAnswer Kind = 5
	// KindSeen: what one host sees of the pool's storage (sees/HOST),
	// which the master judges for hbfence pool validate (mount/validate)
	KindSeen Kind = 6
)

func (k Kind) String() string {
	switch k {
	case KindPool:
		return "pool"
	case KindPlan:
		return "plan"
	case KindReport:
		return "report"
	case KindRequest:
		return "request"
	case KindAnswer:
		return "answer"
	case KindSeen:
		return "seen"
	}
	return fmt.Sprintf("kind(%d)", uint16(k))
}

// Version is the record format this build writes and reads.
const Version = 1

const (
	headerSize = 64
	magic      = "HBRC"
	// MaxPayload bounds a record's payload (a plan of 10 000 guests is
	// about 2 MB).
	MaxPayload = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Header is a record's header.
type Header struct {
	Kind    Kind
	Seq     uint64 // the writer's sequence
	Epoch   uint64 // the master's epoch (pool, plan), 0 for a report
	Written time.Time
	// Pool is the pool the writer belongs to (its heartbeat area's pool
	// UUID); zero in a record written before records named their pool.
	Pool ondisk.UUID
}

// Errors of reading a record; test with errors.Is.
var (
	// ErrEmpty: the file does not exist or holds no record yet.
	ErrEmpty = errors.New("no record")
	// ErrTorn: the checksum does not match: a torn or concurrent write.
	// Keep what you had and read again later.
	ErrTorn = errors.New("record torn or being written (checksum mismatch)")
	// ErrCorrupt: not a record of this format (another file, a newer
	// version, a wrong kind).
	ErrCorrupt = errors.New("not a valid hbfence record")
	// ErrOtherPool: the record names another pool than this host's
	// heartbeat area: it is never used (nor overwritten by the master).
	ErrOtherPool = errors.New("a record of another pool")
)

// OtherPoolError says which pool a refused record names.
type OtherPoolError struct {
	Path      string
	Record    ondisk.UUID // the pool the record names
	Area      ondisk.UUID // this host's pool
	Kind      Kind
	WrittenAt time.Time
}

func (e *OtherPoolError) Error() string {
	return fmt.Sprintf("record %s: a %s record of pool %s (written %s), but this host's heartbeat area is pool %s: it is not used. "+
		"Either the heartbeat area was re-formatted (hbfence init) while these records stayed, or [guests] root is another pool's cluster root; "+
		"point [heartbeat] path and [guests] root at the same pool, or move the other pool's records (the directory %s) aside",
		e.Path, e.Kind, e.Record, e.WrittenAt.UTC().Format(time.RFC3339), e.Area, Dir)
}

func (e *OtherPoolError) Unwrap() error { return ErrOtherPool }

// File is one record file, opened for direct I/O. Its reads and writes
// are serialised.
type File struct {
	mu      sync.Mutex
	path    string
	dev     *directio.Device
	timeout time.Duration
	align   int
	seq     uint64
	// pool, when set, is the pool this host belongs to: written into
	// every record, and a record of another pool is refused.
	pool ondisk.UUID
}

// OpenFile opens the record file at path for direct I/O, creating it (empty)
// if create is set and it does not exist. Every I/O is bounded by
// timeout.
func OpenFile(path string, create bool, timeout time.Duration) (*File, error) {
	if create {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", path, err)
		}
		f.Close()
	}
	mode := directio.ReadOnly
	if create {
		mode = directio.ReadWrite
	}
	dev, err := directio.Open(path, 0, mode)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("record %s: %w", path, ErrEmpty)
		}
		return nil, fmt.Errorf("record %s: %w", path, err)
	}
	return &File{path: path, dev: dev, timeout: timeout, align: dev.Geometry().Alignment}, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Close closes the file.
func (f *File) Close() error { return f.dev.Close() }

// Write replaces the record with payload, in one write of the whole padded
// record. Seq is the writer's: one more than the last Write of this File,
// or than the sequence found in the file when the File was opened by a new
// writer (SetSeq).
func (f *File) Write(h Header, payload []byte) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("record %s: %d bytes, more than the %d a record holds", f.path, len(payload), MaxPayload)
	}
	f.seq++
	h.Seq = f.seq
	if h.Pool == (ondisk.UUID{}) {
		h.Pool = f.pool
	}
	if h.Written.IsZero() {
		h.Written = time.Now()
	}
	n := roundUp(headerSize+len(payload), f.align)
	buf := make([]byte, n)
	encodeHeader(buf[:headerSize], h, payload)
	copy(buf[headerSize:], payload)
	if err := f.dev.Extend(int64(n)); err != nil {
		return 0, fmt.Errorf("record %s: growing to %d bytes: %w", f.path, n, err)
	}
	if err := f.dev.WriteAt(buf, 0, f.timeout); err != nil {
		return 0, fmt.Errorf("record %s: %w", f.path, err)
	}
	return h.Seq, nil
}

// SetSeq sets the sequence the next Write continues from (a new writer
// continues the file's sequence).
func (f *File) SetSeq(seq uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if seq > f.seq {
		f.seq = seq
	}
}

// Read reads the record: its header and payload. ErrEmpty, ErrTorn and
// ErrCorrupt (wrapped, with the file and what was found) say why there is
// none.
func (f *File) Read(want Kind) (Header, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	first := make([]byte, f.align)
	if err := f.dev.ReadAt(first, 0, f.timeout); err != nil {
		if errors.Is(err, directio.ErrShort) {
			return Header{}, nil, fmt.Errorf("record %s: %w", f.path, ErrEmpty)
		}
		return Header{}, nil, fmt.Errorf("record %s: %w", f.path, err)
	}
	h, length, sum, err := decodeHeader(first[:headerSize])
	if err != nil {
		return Header{}, nil, fmt.Errorf("record %s: %w", f.path, err)
	}
	if h.Kind != want {
		return Header{}, nil, fmt.Errorf("record %s: holds a %s record, not a %s one: %w", f.path, h.Kind, want, ErrCorrupt)
	}
	var none ondisk.UUID
	if f.pool != none && h.Pool != none && h.Pool != f.pool {
		return Header{}, nil, &OtherPoolError{Path: f.path, Record: h.Pool, Area: f.pool, Kind: h.Kind, WrittenAt: h.Written}
	}
	buf := first
	if total := roundUp(headerSize+length, f.align); total > len(first) {
		buf = make([]byte, total)
		copy(buf, first)
		if err := f.dev.ReadAt(buf[len(first):], int64(len(first)), f.timeout); err != nil {
			if errors.Is(err, directio.ErrShort) {
				return Header{}, nil, fmt.Errorf("record %s: %w", f.path, ErrTorn) // being rewritten longer
			}
			return Header{}, nil, fmt.Errorf("record %s: %w", f.path, err)
		}
	}
	payload := buf[headerSize : headerSize+length]
	if crc32.Checksum(payload, castagnoli) != sum {
		return Header{}, nil, fmt.Errorf("record %s: %w", f.path, ErrTorn)
	}
	return h, payload, nil
}

func roundUp(n, a int) int { return (n + a - 1) / a * a }

// Header layout, little-endian:
//
//	0  4  magic "HBRC"
//	4  2  format version
//	6  2  kind
//	8  8  writer's sequence
//	16 8  epoch
//	24 8  wall clock of the write, Unix ns (for humans)
//	32 4  payload length
//	36 4  payload CRC-32C
//	40 16 the writer's pool UUID (zero: written before records named their pool)
//	56 4  reserved, zero
//	60 4  CRC-32C of bytes 0..59
func encodeHeader(b []byte, h Header, payload []byte) {
	copy(b[0:4], magic)
	binary.LittleEndian.PutUint16(b[4:6], Version)
	binary.LittleEndian.PutUint16(b[6:8], uint16(h.Kind))
	binary.LittleEndian.PutUint64(b[8:16], h.Seq)
	binary.LittleEndian.PutUint64(b[16:24], h.Epoch)
	binary.LittleEndian.PutUint64(b[24:32], uint64(h.Written.UnixNano()))
	binary.LittleEndian.PutUint32(b[32:36], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[36:40], crc32.Checksum(payload, castagnoli))
	copy(b[40:56], h.Pool[:])
	binary.LittleEndian.PutUint32(b[60:64], crc32.Checksum(b[0:60], castagnoli))
}

func decodeHeader(b []byte) (Header, int, uint32, error) {
	if isZero(b) {
		return Header{}, 0, 0, ErrEmpty
	}
	if string(b[0:4]) != magic {
		return Header{}, 0, 0, fmt.Errorf("magic %q, want %q (another program's file?): %w", b[0:4], magic, ErrCorrupt)
	}
	if crc32.Checksum(b[0:60], castagnoli) != binary.LittleEndian.Uint32(b[60:64]) {
		return Header{}, 0, 0, ErrTorn
	}
	if v := binary.LittleEndian.Uint16(b[4:6]); v != Version {
		return Header{}, 0, 0, fmt.Errorf("format version %d; this hbfence reads version %d (upgrade every host): %w", v, Version, ErrCorrupt)
	}
	h := Header{
		Kind:    Kind(binary.LittleEndian.Uint16(b[6:8])),
		Seq:     binary.LittleEndian.Uint64(b[8:16]),
		Epoch:   binary.LittleEndian.Uint64(b[16:24]),
		Written: time.Unix(0, int64(binary.LittleEndian.Uint64(b[24:32]))),
	}
	copy(h.Pool[:], b[40:56])
	length := int(binary.LittleEndian.Uint32(b[32:36]))
	if length > MaxPayload {
		return Header{}, 0, 0, fmt.Errorf("payload length %d above the limit %d: %w", length, MaxPayload, ErrCorrupt)
	}
	return h, length, binary.LittleEndian.Uint32(b[36:40]), nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func castagnoliSum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }
