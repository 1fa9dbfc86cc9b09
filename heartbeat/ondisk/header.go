package ondisk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hbfence/hbfence/heartbeat/timing"
)

// RecordSize is the size of every record (header, slot). It fits in the
// smallest sector hbfence supports, so one record is one sector write.
const RecordSize = 512

// FormatMajor is the on-storage format this build writes. A reader refuses
// a header whose major version is higher than its own; minor versions add
// fields in reserved space and stay readable.
const (
	FormatMajor = 1
	FormatMinor = 0
)

// Layout of the area, in sectors from the start of the area. The header
// records the offsets, so a later format may move regions.
const (
	headerSector   = 0
	leaderSector   = 1 // the master lease's leader record (issue: pool master)
	reservedSector = 2 // sectors 2..7 are reserved and stay zero
	firstSlot      = 8
)

// Supported sector sizes.
var SectorSizes = []int{512, 4096}

// Slot counts.
const (
	MinSlots = 2
	MaxSlots = 4096
)

var headerMagic = [8]byte{'H', 'B', 'F', 'E', 'N', 'C', 'E', '1'}

// Header is the first sector of a heartbeat area.
type Header struct {
	FormatMajor uint16
	FormatMinor uint16
	PoolUUID    UUID
	SectorSize  uint32
	SlotCount   uint32
	// Offsets of the regions, in bytes from the start of the area.
	LeaderOffset uint64
	SlotsOffset  uint64
	BallotOffset uint64
	AreaSize     uint64
	Timing       timing.Params
	Profile      string // up to 16 bytes, for humans
	CreatedWall  time.Time
}

// Header byte layout. All integers little-endian.
//
//	off size field
//	  0    8 magic "HBFENCE1"
//	  8    2 format major
//	 10    2 format minor
//	 12    4 record size (512)
//	 16   16 pool UUID
//	 32    4 sector size
//	 36    4 slot count
//	 40    8 leader record offset (bytes)
//	 48    8 slots offset (bytes)
//	 56    8 ballots offset (bytes)
//	 64    8 area size (bytes)
//	 72    8 interval (ns)
//	 80    8 io_timeout (ns)
//	 88    8 renewal_fail (ns)
//	 96    8 watchdog (ns)
//	104    8 host_dead (ns)
//	112    8 created, wall clock (unix ns, for humans)
//	120   16 profile name (NUL padded)
//	136  372 reserved, zero
//	508    4 CRC-32C (Castagnoli) of bytes 0..507
const (
	hOffMagic    = 0
	hOffMajor    = 8
	hOffMinor    = 10
	hOffRecSize  = 12
	hOffUUID     = 16
	hOffSector   = 32
	hOffSlots    = 36
	hOffLeader   = 40
	hOffSlotsOff = 48
	hOffBallots  = 56
	hOffArea     = 64
	hOffInterval = 72
	hOffIO       = 80
	hOffRenewal  = 88
	hOffWatchdog = 96
	hOffHostDead = 104
	hOffCreated  = 112
	hOffProfile  = 120
	profileLen   = 16
	offCRC       = RecordSize - 4
)

// NewHeader lays out an area for the given sector size and slot count.
func NewHeader(pool UUID, sectorSize, slots int, t timing.Params, profile string, created time.Time) (Header, error) {
	if !validSectorSize(sectorSize) {
		return Header{}, fmt.Errorf("sector size %d is not supported (use 512 or 4096)", sectorSize)
	}
	if slots < MinSlots || slots > MaxSlots {
		return Header{}, fmt.Errorf("slot count %d is out of range (%d..%d)", slots, MinSlots, MaxSlots)
	}
	if len(profile) > profileLen {
		return Header{}, fmt.Errorf("profile name %q is longer than %d bytes", profile, profileLen)
	}
	if err := t.Validate(); err != nil {
		return Header{}, err
	}
	ss := uint64(sectorSize)
	n := uint64(slots)
	return Header{
		FormatMajor:  FormatMajor,
		FormatMinor:  FormatMinor,
		PoolUUID:     pool,
		SectorSize:   uint32(sectorSize),
		SlotCount:    uint32(slots),
		LeaderOffset: leaderSector * ss,
		SlotsOffset:  firstSlot * ss,
		BallotOffset: (firstSlot + n) * ss,
		AreaSize:     (firstSlot + 2*n) * ss,
		Timing:       t,
		Profile:      profile,
		CreatedWall:  created,
	}, nil
}

func validSectorSize(s int) bool {
	for _, v := range SectorSizes {
		if s == v {
			return true
		}
	}
	return false
}

// SlotOffset is the byte offset of slot i from the start of the area.
func (h Header) SlotOffset(i int) int64 {
	return int64(h.SlotsOffset) + int64(i)*int64(h.SectorSize)
}

// SlotsLen is the length in bytes of the slot region.
func (h Header) SlotsLen() int { return int(h.SlotCount) * int(h.SectorSize) }

// Encode renders the header into a record of RecordSize bytes.
func (h Header) Encode() []byte {
	b := make([]byte, RecordSize)
	le := binary.LittleEndian
	copy(b[hOffMagic:], headerMagic[:])
	le.PutUint16(b[hOffMajor:], h.FormatMajor)
	le.PutUint16(b[hOffMinor:], h.FormatMinor)
	le.PutUint32(b[hOffRecSize:], RecordSize)
	copy(b[hOffUUID:], h.PoolUUID[:])
	le.PutUint32(b[hOffSector:], h.SectorSize)
	le.PutUint32(b[hOffSlots:], h.SlotCount)
	le.PutUint64(b[hOffLeader:], h.LeaderOffset)
	le.PutUint64(b[hOffSlotsOff:], h.SlotsOffset)
	le.PutUint64(b[hOffBallots:], h.BallotOffset)
	le.PutUint64(b[hOffArea:], h.AreaSize)
	le.PutUint64(b[hOffInterval:], uint64(h.Timing.Interval))
	le.PutUint64(b[hOffIO:], uint64(h.Timing.IOTimeout))
	le.PutUint64(b[hOffRenewal:], uint64(h.Timing.RenewalFail))
	le.PutUint64(b[hOffWatchdog:], uint64(h.Timing.Watchdog))
	le.PutUint64(b[hOffHostDead:], uint64(h.Timing.HostDead))
	le.PutUint64(b[hOffCreated:], uint64(wallNanos(h.CreatedWall)))
	copy(b[hOffProfile:hOffProfile+profileLen], h.Profile)
	le.PutUint32(b[offCRC:], checksum(b[:offCRC]))
	return b
}

// Errors a header decode can return; test with errors.Is.
var (
	ErrNotHbfence  = errors.New("not an hbfence heartbeat area")
	ErrZeroed      = errors.New("area is not formatted (all zeroes)")
	ErrChecksum    = errors.New("checksum mismatch")
	ErrNewerFormat = errors.New("written by a newer format version")
	ErrShort       = errors.New("record is shorter than 512 bytes")
)

// DecodeHeader parses and checks a header record. Every error says what was
// found, so that "hbfence init" and "hbfence dump" can tell the operator.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < RecordSize {
		return Header{}, fmt.Errorf("%w (got %d bytes)", ErrShort, len(b))
	}
	b = b[:RecordSize]
	if isZero(b) {
		return Header{}, ErrZeroed
	}
	if !bytes.Equal(b[hOffMagic:hOffMagic+8], headerMagic[:]) {
		return Header{}, fmt.Errorf("%w: first bytes are %s, expected %q", ErrNotHbfence, printable(b[:8]), headerMagic[:])
	}
	le := binary.LittleEndian
	h := Header{
		FormatMajor: le.Uint16(b[hOffMajor:]),
		FormatMinor: le.Uint16(b[hOffMinor:]),
	}
	if got, want := le.Uint32(b[offCRC:]), checksum(b[:offCRC]); got != want {
		if h.FormatMajor > FormatMajor {
			// A newer major format may place or compute its
			// checksum differently: say so, not only "corrupt".
			return Header{}, fmt.Errorf("header %w %d.%d (format %d rules give a %w: stored %08x, computed %08x); this hbfence reads format %d: upgrade hbfence on this host",
				ErrNewerFormat, h.FormatMajor, h.FormatMinor, FormatMajor, ErrChecksum, got, want, FormatMajor)
		}
		return Header{}, fmt.Errorf("header %w: stored %08x, computed %08x (torn write or corruption)", ErrChecksum, got, want)
	}
	if h.FormatMajor > FormatMajor {
		return Header{}, fmt.Errorf("header %w %d.%d; this hbfence reads format %d: upgrade hbfence on this host",
			ErrNewerFormat, h.FormatMajor, h.FormatMinor, FormatMajor)
	}
	if h.FormatMajor == 0 {
		return Header{}, fmt.Errorf("header has format version 0, which no hbfence writes")
	}
	if rs := le.Uint32(b[hOffRecSize:]); rs != RecordSize {
		return Header{}, fmt.Errorf("header record size is %d, expected %d", rs, RecordSize)
	}
	copy(h.PoolUUID[:], b[hOffUUID:])
	h.SectorSize = le.Uint32(b[hOffSector:])
	h.SlotCount = le.Uint32(b[hOffSlots:])
	h.LeaderOffset = le.Uint64(b[hOffLeader:])
	h.SlotsOffset = le.Uint64(b[hOffSlotsOff:])
	h.BallotOffset = le.Uint64(b[hOffBallots:])
	h.AreaSize = le.Uint64(b[hOffArea:])
	h.Timing = timing.Params{
		Interval:    time.Duration(le.Uint64(b[hOffInterval:])),
		IOTimeout:   time.Duration(le.Uint64(b[hOffIO:])),
		RenewalFail: time.Duration(le.Uint64(b[hOffRenewal:])),
		Watchdog:    time.Duration(le.Uint64(b[hOffWatchdog:])),
		HostDead:    time.Duration(le.Uint64(b[hOffHostDead:])),
	}
	h.CreatedWall = fromWallNanos(int64(le.Uint64(b[hOffCreated:])))
	h.Profile = cString(b[hOffProfile : hOffProfile+profileLen])
	if err := h.checkLayout(); err != nil {
		return Header{}, err
	}
	return h, nil
}

// checkLayout verifies that the header describes an area this build can
// use: known sector size, slot count in range, regions inside the area and
// not overlapping, timing that keeps the rules.
func (h Header) checkLayout() error {
	if !validSectorSize(int(h.SectorSize)) {
		return fmt.Errorf("header field sector_size is %d; only 512 and 4096 are supported", h.SectorSize)
	}
	if h.SlotCount < MinSlots || h.SlotCount > MaxSlots {
		return fmt.Errorf("header field slot_count is %d; must be %d..%d", h.SlotCount, MinSlots, MaxSlots)
	}
	if h.AreaSize > math.MaxInt64 {
		// Offsets are used as int64 file offsets.
		return fmt.Errorf("header field area_size is %d; larger than any file or device", h.AreaSize)
	}
	ss := uint64(h.SectorSize)
	n := uint64(h.SlotCount)
	for _, r := range []struct {
		name     string
		off, len uint64
	}{
		{"leader_offset", h.LeaderOffset, ss},
		{"slots_offset", h.SlotsOffset, n * ss},
		{"ballots_offset", h.BallotOffset, n * ss},
	} {
		// Written so that no sum can wrap: a huge offset must not come
		// back inside the area modulo 2^64.
		if r.off%ss != 0 || r.off < ss || r.off > h.AreaSize || r.len > h.AreaSize-r.off {
			return fmt.Errorf("header field %s is %d: not sector aligned or outside the area of %d bytes", r.name, r.off, h.AreaSize)
		}
	}
	if h.SlotsOffset < h.LeaderOffset+ss || h.BallotOffset < h.SlotsOffset+n*ss {
		return fmt.Errorf("header regions overlap (leader %d, slots %d, ballots %d)", h.LeaderOffset, h.SlotsOffset, h.BallotOffset)
	}
	if err := h.Timing.Validate(); err != nil {
		return fmt.Errorf("header timing: %w", err)
	}
	return nil
}
