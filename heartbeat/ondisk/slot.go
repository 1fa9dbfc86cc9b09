package ondisk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// SlotState is the state a host writes into its own slot.
type SlotState uint16

const (
	StateFree    SlotState = 0 // never written (all zeroes)
	StateJoining SlotState = 1 // claim written, join not yet proven
	StateLive    SlotState = 2 // member of the pool
	StateLeaving SlotState = 3 // handing its guests over before leaving
	StateLeft    SlotState = 4 // stopped cleanly; holds no guests
)

func (s SlotState) String() string {
	switch s {
	case StateFree:
		return "free"
	case StateJoining:
		return "joining"
	case StateLive:
		return "live"
	case StateLeaving:
		return "leaving"
	case StateLeft:
		return "left"
	}
	return fmt.Sprintf("state(%d)", uint16(s))
}

// MarshalText renders the state for JSON.
func (s SlotState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state rendered by MarshalText.
func (s *SlotState) UnmarshalText(b []byte) error {
	for v := StateFree; v <= StateLeft; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown slot state %q", b)
}

// Slot flags. Unknown bits are kept and ignored by readers.
const (
	// FlagNoWatchdog: the writer runs with no watchdog
	// (allow_no_watchdog). A stalled daemon cannot fence it, so its being
	// declared dead does not prove it fenced.
	FlagNoWatchdog uint32 = 1 << 0
	// FlagGuestsUnknown: the writer cannot list its guests (no hypervisor
	// driver and no kill hook), so it can never confirm them gone: a
	// "left" it writes does not prove its guests stopped, and its reports
	// prove no guest absent.
	FlagGuestsUnknown uint32 = 1 << 1
)

// Limits of the slot's fields.
const (
	MaxHostName   = 64
	agentVerLen   = 16
	MessageCells  = 4
	messageArgLen = 24
)

// MessageKind says what a message cell asks of its target. Kind 0 is an
// empty cell. The kinds themselves belong to the protocols that use them
// (master hand-over, fencing, guest restart); the cell layout does not
// change with them.
type MessageKind uint16

// Message is one cell of a slot's outbox: a message from the slot's owner to
// the host in TargetSlot, valid only while that host's generation is
// TargetGeneration.
type Message struct {
	Kind             MessageKind
	Flags            uint16
	TargetSlot       uint32
	TargetGeneration uint64
	Seq              uint64
	Arg              [messageArgLen]byte
}

// Empty reports whether the cell carries no message.
func (m Message) Empty() bool { return m.Kind == 0 }

// Slot is one host's heartbeat record. Only its owner writes it.
type Slot struct {
	Version    uint16
	State      SlotState
	Index      uint32 // the slot's own index, to catch misdirected writes
	Flags      uint32 // SlotFlag bits
	PoolUUID   UUID
	Generation uint64 // bumped on each join
	Sequence   uint64 // bumped on each write
	Wall       time.Time
	JoinNonce  uint64 // random per join attempt; tells two claimers apart
	MachineID  UUID   // /etc/machine-id of the writer
	BootID     UUID   // kernel boot id of the writer
	Agent      string // agent version, up to 16 bytes
	HostName   string // up to 64 bytes
	Messages   [MessageCells]Message
}

// SlotVersion is the slot record version this build writes.
const SlotVersion = 1

var slotMagic = [4]byte{'H', 'B', 'S', 'L'}

// Slot byte layout. All integers little-endian.
//
//	off size field
//	  0    4 magic "HBSL"
//	  4    2 record version
//	  6    2 state (0 free, 1 joining, 2 live, 3 leaving, 4 left)
//	  8    4 slot index
//	 12    4 flags (reserved, zero)
//	 16   16 pool UUID
//	 32    8 generation
//	 40    8 sequence
//	 48    8 writer's wall clock (unix ns, for humans only)
//	 56    8 join nonce
//	 64   16 machine id
//	 80   16 boot id
//	 96   16 agent version (NUL padded)
//	112   64 host name (NUL padded)
//	176  192 message cells, 4 × 48:
//	           +0 2 kind, +2 2 flags, +4 4 target slot,
//	           +8 8 target generation, +16 8 sequence, +24 24 argument
//	368  140 reserved, zero
//	508    4 CRC-32C (Castagnoli) of bytes 0..507
const (
	sOffMagic    = 0
	sOffVersion  = 4
	sOffState    = 6
	sOffIndex    = 8
	sOffFlags    = 12
	sOffPool     = 16
	sOffGen      = 32
	sOffSeq      = 40
	sOffWall     = 48
	sOffNonce    = 56
	sOffMachine  = 64
	sOffBoot     = 80
	sOffAgent    = 96
	sOffHost     = 112
	sOffMessages = 176
	messageSize  = 48
)

// Encode renders the slot into a record of RecordSize bytes.
func (s Slot) Encode() []byte {
	b := make([]byte, RecordSize)
	s.EncodeInto(b)
	return b
}

// EncodeInto renders the slot into b, which must hold RecordSize bytes.
// It does not allocate.
func (s Slot) EncodeInto(b []byte) {
	b = b[:RecordSize]
	clear(b)
	le := binary.LittleEndian
	copy(b[sOffMagic:], slotMagic[:])
	le.PutUint16(b[sOffVersion:], s.Version)
	le.PutUint16(b[sOffState:], uint16(s.State))
	le.PutUint32(b[sOffIndex:], s.Index)
	le.PutUint32(b[sOffFlags:], s.Flags)
	copy(b[sOffPool:], s.PoolUUID[:])
	le.PutUint64(b[sOffGen:], s.Generation)
	le.PutUint64(b[sOffSeq:], s.Sequence)
	le.PutUint64(b[sOffWall:], uint64(wallNanos(s.Wall)))
	le.PutUint64(b[sOffNonce:], s.JoinNonce)
	copy(b[sOffMachine:], s.MachineID[:])
	copy(b[sOffBoot:], s.BootID[:])
	copy(b[sOffAgent:sOffAgent+agentVerLen], s.Agent)
	copy(b[sOffHost:sOffHost+MaxHostName], s.HostName)
	for i, m := range s.Messages {
		c := b[sOffMessages+i*messageSize:]
		le.PutUint16(c[0:], uint16(m.Kind))
		le.PutUint16(c[2:], m.Flags)
		le.PutUint32(c[4:], m.TargetSlot)
		le.PutUint64(c[8:], m.TargetGeneration)
		le.PutUint64(c[16:], m.Seq)
		copy(c[24:24+messageArgLen], m.Arg[:])
	}
	le.PutUint32(b[offCRC:], checksum(b[:offCRC]))
}

// SlotStatus says how a slot's sector decoded.
type SlotStatus int

const (
	SlotOK        SlotStatus = iota // a valid record
	SlotUnused                      // all zeroes: never written
	SlotCorrupt                     // bad magic or checksum: torn or scribbled
	SlotForeign                     // valid record of another pool (stale, from before a re-format)
	SlotMisplaced                   // valid record whose index names another slot
	SlotNewer                       // record version newer than this build reads
)

func (s SlotStatus) String() string {
	switch s {
	case SlotOK:
		return "ok"
	case SlotUnused:
		return "unused"
	case SlotCorrupt:
		return "corrupt"
	case SlotForeign:
		return "foreign"
	case SlotMisplaced:
		return "misplaced"
	case SlotNewer:
		return "newer-version"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// MarshalText renders the status for JSON.
func (s SlotStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a status rendered by MarshalText.
func (s *SlotStatus) UnmarshalText(b []byte) error {
	for v := SlotOK; v <= SlotNewer; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown slot status %q", b)
}

// DecodeSlot parses the record of slot index in pool. Whatever the bytes,
// it never panics: a record that is not a valid slot of this pool at this
// index comes back with a status other than SlotOK and a reason. Callers
// treat anything but SlotOK as "no change seen".
func DecodeSlot(b []byte, pool UUID, index int) (Slot, SlotStatus, string) {
	if len(b) < RecordSize {
		return Slot{}, SlotCorrupt, fmt.Sprintf("short record: %d bytes", len(b))
	}
	b = b[:RecordSize]
	if isZero(b) {
		return Slot{}, SlotUnused, ""
	}
	if !bytes.Equal(b[sOffMagic:sOffMagic+4], slotMagic[:]) {
		return Slot{}, SlotCorrupt, fmt.Sprintf("bad magic %s", printable(b[:4]))
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(b[offCRC:]), checksum(b[:offCRC]); got != want {
		return Slot{}, SlotCorrupt, fmt.Sprintf("checksum mismatch: stored %08x, computed %08x", got, want)
	}
	s := Slot{
		Version:    le.Uint16(b[sOffVersion:]),
		State:      SlotState(le.Uint16(b[sOffState:])),
		Index:      le.Uint32(b[sOffIndex:]),
		Flags:      le.Uint32(b[sOffFlags:]),
		Generation: le.Uint64(b[sOffGen:]),
		Sequence:   le.Uint64(b[sOffSeq:]),
		Wall:       fromWallNanos(int64(le.Uint64(b[sOffWall:]))),
		JoinNonce:  le.Uint64(b[sOffNonce:]),
		Agent:      cString(b[sOffAgent : sOffAgent+agentVerLen]),
		HostName:   cString(b[sOffHost : sOffHost+MaxHostName]),
	}
	copy(s.PoolUUID[:], b[sOffPool:])
	copy(s.MachineID[:], b[sOffMachine:])
	copy(s.BootID[:], b[sOffBoot:])
	for i := range s.Messages {
		c := b[sOffMessages+i*messageSize:]
		m := &s.Messages[i]
		m.Kind = MessageKind(le.Uint16(c[0:]))
		m.Flags = le.Uint16(c[2:])
		m.TargetSlot = le.Uint32(c[4:])
		m.TargetGeneration = le.Uint64(c[8:])
		m.Seq = le.Uint64(c[16:])
		copy(m.Arg[:], c[24:24+messageArgLen])
	}
	if s.Version > SlotVersion {
		return s, SlotNewer, fmt.Sprintf("slot record version %d, this build reads %d", s.Version, SlotVersion)
	}
	if s.Version == 0 {
		return s, SlotCorrupt, "slot record version 0"
	}
	if s.PoolUUID != pool {
		return s, SlotForeign, fmt.Sprintf("record of pool %s, not %s", s.PoolUUID, pool)
	}
	if int64(s.Index) != int64(index) {
		return s, SlotMisplaced, fmt.Sprintf("record says slot %d", s.Index)
	}
	switch s.State {
	case StateJoining, StateLive, StateLeaving, StateLeft:
	default:
		return s, SlotCorrupt, fmt.Sprintf("unknown state %d", uint16(s.State))
	}
	if s.HostName == "" {
		return s, SlotCorrupt, "empty host name"
	}
	return s, SlotOK, ""
}

// ValidHostName is the one rule for host names: checked when a daemon
// starts, before a name is written into a slot, a leader record or a
// guest record, and wherever a command names a host.
func ValidHostName(name string) error {
	if name == "" {
		return fmt.Errorf("host name is empty")
	}
	if len(name) > MaxHostName {
		return fmt.Errorf("host name %q is %d bytes; at most %d fit in a slot", name, len(name), MaxHostName)
	}
	for _, c := range []byte(name) {
		if c <= 0x20 || c >= 0x7f {
			return fmt.Errorf("host name %q contains byte 0x%02x; use printable ASCII without spaces", name, c)
		}
	}
	// A host name also names a report file on the cluster root and is
	// handed to hypervisor tools as an argument (xl migrate, virsh
	// migrate): it must not be read as a path or as an option.
	switch {
	case name == "." || name == "..":
		return fmt.Errorf("host name %q cannot be used: it names a directory", name)
	case strings.ContainsRune(name, '/'):
		return fmt.Errorf("host name %q contains '/'; use the machine's host name (letters, digits, '.', '-', '_')", name)
	case name[0] == '-':
		return fmt.Errorf("host name %q begins with '-', which a hypervisor tool would take for an option", name)
	}
	return nil
}
