package ondisk

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// The master lease's records: one ballot block per slot (the Disk Paxos
// "dblock" of that slot's owner) and one leader record. Both are RecordSize
// bytes at the start of their sector, little-endian, with the CRC-32C of
// bytes 0..507 in bytes 508..511, like the header and the slots. The
// protocol that writes them is package heartbeat/lease.

// LeaseVersion is the version of the ballot and leader records this build
// writes.
const LeaseVersion = 1

var (
	ballotMagic = [4]byte{'H', 'B', 'B', 'L'}
	leaderMagic = [4]byte{'H', 'B', 'L', 'D'}
)

// Owner names one incarnation of a host: the slot it holds and the
// generation of its join. It is the value the master lease decides (the
// Disk Paxos "inp"). Name is for humans: the protocol compares Slot and
// Generation, and the name only as part of a whole value.
type Owner struct {
	Slot       uint32
	Generation uint64
	Name       string // up to MaxHostName bytes
}

// IsZero reports whether o names nobody.
func (o Owner) IsZero() bool { return o == Owner{} }

// Same reports whether a and b name the same incarnation (slot and
// generation).
func (o Owner) Same(b Owner) bool { return o.Slot == b.Slot && o.Generation == b.Generation }

func (o Owner) String() string {
	if o.IsZero() {
		return "nobody"
	}
	return fmt.Sprintf("%s (slot %d, generation %d)", o.Name, o.Slot, o.Generation)
}

// Value flags of a ballot's value.
const (
	// ValueHandOver: the value was proposed by the owner of the previous
	// epoch for its successor (hbfence master move), not by the named
	// host itself. For humans; the protocol treats every value alike.
	ValueHandOver uint16 = 1 << 0
)

// Ballot is one slot's Disk Paxos block. Only the host that holds the slot
// writes it.
type Ballot struct {
	Version  uint16
	Index    uint32 // the writer's slot
	PoolUUID UUID
	// Generation is the writer's generation (the incarnation that wrote
	// the block). The block belongs to the slot, not to the incarnation:
	// a new incarnation carries the block's accepted value forward.
	Generation uint64
	// Lver is the Paxos instance: the epoch being decided.
	Lver uint64
	// Mbal is the highest ballot number the writer has started in
	// instance Lver; Bal the ballot in which it accepted Value (0: none).
	Mbal uint64
	Bal  uint64
	// Value (inp) is the value accepted in ballot Bal; zero when Bal is 0.
	Value      Owner
	ValueFlags uint16
	Wall       time.Time // writer's wall clock, for humans
}

// Ballot byte layout. All integers little-endian.
//
//	off size field
//	  0    4 magic "HBBL"
//	  4    2 record version (1)
//	  6    2 value flags (bit 0: proposed by the previous owner, a hand-over)
//	  8    4 slot index (the writer's slot)
//	 12    4 value: owner slot
//	 16   16 pool UUID
//	 32    8 writer's generation
//	 40    8 lver: the Paxos instance (the epoch being decided), >= 1
//	 48    8 mbal: the highest ballot started in instance lver, >= 1
//	 56    8 bal: the ballot in which the value was accepted, 0 for none, <= mbal
//	 64    8 value: owner generation
//	 72    8 writer's wall clock (unix ns, for humans only)
//	 80   64 value: owner host name (NUL padded); empty iff bal is 0
//	144  364 reserved, zero
//	508    4 CRC-32C (Castagnoli) of bytes 0..507
const (
	bOffMagic    = 0
	bOffVersion  = 4
	bOffVFlags   = 6
	bOffIndex    = 8
	bOffValSlot  = 12
	bOffPool     = 16
	bOffGen      = 32
	bOffLver     = 40
	bOffMbal     = 48
	bOffBal      = 56
	bOffValGen   = 64
	bOffWall     = 72
	bOffValName  = 80
	bOffReserved = 144
)

// Encode renders the ballot into a record of RecordSize bytes.
func (b Ballot) Encode() []byte {
	r := make([]byte, RecordSize)
	b.EncodeInto(r)
	return r
}

// EncodeInto renders the ballot into r, which must hold RecordSize bytes.
// It does not allocate.
func (b Ballot) EncodeInto(r []byte) {
	r = r[:RecordSize]
	clear(r)
	le := binary.LittleEndian
	copy(r[bOffMagic:], ballotMagic[:])
	le.PutUint16(r[bOffVersion:], b.Version)
	le.PutUint16(r[bOffVFlags:], b.ValueFlags)
	le.PutUint32(r[bOffIndex:], b.Index)
	le.PutUint32(r[bOffValSlot:], b.Value.Slot)
	copy(r[bOffPool:], b.PoolUUID[:])
	le.PutUint64(r[bOffGen:], b.Generation)
	le.PutUint64(r[bOffLver:], b.Lver)
	le.PutUint64(r[bOffMbal:], b.Mbal)
	le.PutUint64(r[bOffBal:], b.Bal)
	le.PutUint64(r[bOffValGen:], b.Value.Generation)
	le.PutUint64(r[bOffWall:], uint64(wallNanos(b.Wall)))
	copy(r[bOffValName:bOffValName+MaxHostName], b.Value.Name)
	le.PutUint32(r[offCRC:], checksum(r[:offCRC]))
}

// RecordStatus says how a ballot or leader sector decoded.
type RecordStatus int

const (
	RecordOK        RecordStatus = iota // a valid record
	RecordUnused                        // all zeroes: never written
	RecordCorrupt                       // bad magic, checksum or contents: torn or scribbled
	RecordForeign                       // valid record of another pool
	RecordMisplaced                     // valid ballot whose index names another slot
	RecordNewer                         // record version newer than this build reads
)

func (s RecordStatus) String() string {
	switch s {
	case RecordOK:
		return "ok"
	case RecordUnused:
		return "unused"
	case RecordCorrupt:
		return "corrupt"
	case RecordForeign:
		return "foreign"
	case RecordMisplaced:
		return "misplaced"
	case RecordNewer:
		return "newer-version"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// MarshalText renders the status for JSON.
func (s RecordStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a status rendered by MarshalText.
func (s *RecordStatus) UnmarshalText(b []byte) error {
	for v := RecordOK; v <= RecordNewer; v++ {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown record status %q", b)
}

// leaseCommon checks what the ballot and the leader record share: length,
// zeroes, magic, checksum. ok is false when st and why say why not.
func leaseCommon(b []byte, magic [4]byte) (rec []byte, st RecordStatus, why string, ok bool) {
	if len(b) < RecordSize {
		return nil, RecordCorrupt, fmt.Sprintf("short record: %d bytes", len(b)), false
	}
	b = b[:RecordSize]
	if isZero(b) {
		return nil, RecordUnused, "", false
	}
	if !bytes.Equal(b[0:4], magic[:]) {
		return nil, RecordCorrupt, fmt.Sprintf("bad magic %s, expected %q", printable(b[:4]), magic[:]), false
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(b[offCRC:]), checksum(b[:offCRC]); got != want {
		return nil, RecordCorrupt, fmt.Sprintf("checksum mismatch: stored %08x, computed %08x", got, want), false
	}
	return b, RecordOK, "", true
}

// DecodeBallot parses the ballot block of slot index in pool. Whatever the
// bytes, it never panics: a sector that is not a valid ballot of this pool
// at this index comes back with a status other than RecordOK and a reason.
// An all-zero sector is RecordUnused: a slot that never took part in the
// lease, which the protocol reads as an empty block.
func DecodeBallot(b []byte, pool UUID, index int) (Ballot, RecordStatus, string) {
	r, st, why, ok := leaseCommon(b, ballotMagic)
	if !ok {
		return Ballot{}, st, why
	}
	le := binary.LittleEndian
	x := Ballot{
		Version:    le.Uint16(r[bOffVersion:]),
		ValueFlags: le.Uint16(r[bOffVFlags:]),
		Index:      le.Uint32(r[bOffIndex:]),
		Generation: le.Uint64(r[bOffGen:]),
		Lver:       le.Uint64(r[bOffLver:]),
		Mbal:       le.Uint64(r[bOffMbal:]),
		Bal:        le.Uint64(r[bOffBal:]),
		Wall:       fromWallNanos(int64(le.Uint64(r[bOffWall:]))),
		Value: Owner{
			Slot:       le.Uint32(r[bOffValSlot:]),
			Generation: le.Uint64(r[bOffValGen:]),
			Name:       cString(r[bOffValName : bOffValName+MaxHostName]),
		},
	}
	copy(x.PoolUUID[:], r[bOffPool:])
	if x.Version > LeaseVersion {
		return x, RecordNewer, fmt.Sprintf("ballot record version %d, this build reads %d", x.Version, LeaseVersion)
	}
	if x.Version == 0 {
		return x, RecordCorrupt, "ballot record version 0"
	}
	if x.PoolUUID != pool {
		return x, RecordForeign, fmt.Sprintf("ballot of pool %s, not %s", x.PoolUUID, pool)
	}
	if int64(x.Index) != int64(index) {
		return x, RecordMisplaced, fmt.Sprintf("ballot says slot %d", x.Index)
	}
	switch {
	case x.Lver == 0:
		return x, RecordCorrupt, "ballot with lver 0"
	case x.Mbal == 0:
		return x, RecordCorrupt, "ballot with mbal 0"
	case x.Bal > x.Mbal:
		return x, RecordCorrupt, fmt.Sprintf("ballot with bal %d above mbal %d", x.Bal, x.Mbal)
	case x.Bal == 0 && (!x.Value.IsZero() || x.ValueFlags != 0):
		return x, RecordCorrupt, "ballot with a value but bal 0"
	case x.Bal != 0 && x.Value.Name == "":
		return x, RecordCorrupt, fmt.Sprintf("ballot with bal %d but no value", x.Bal)
	}
	return x, RecordOK, ""
}

// BallotDecoded is one ballot block as read from storage.
type BallotDecoded struct {
	Index  int
	Ballot Ballot       // valid only when Status is RecordOK (partly filled otherwise)
	Status RecordStatus // RecordOK, or why the block cannot be used
	Reason string       // for humans, when Status is not RecordOK
}

// BallotOffsetOf is the byte offset of slot i's ballot block from the start
// of the area.
func (h Header) BallotOffsetOf(i int) int64 {
	return int64(h.BallotOffset) + int64(i)*int64(h.SectorSize)
}

// BallotsLen is the length in bytes of the ballot region.
func (h Header) BallotsLen() int { return int(h.SlotCount) * int(h.SectorSize) }

// DecodeBallots splits the ballot region, as one read returned it, into
// blocks. raw must hold h.SlotCount sectors; missing sectors decode as
// corrupt.
func DecodeBallots(raw []byte, h Header) []BallotDecoded {
	return DecodeBallotsInto(nil, raw, h)
}

// DecodeBallotsInto is DecodeBallots reusing dst's storage.
func DecodeBallotsInto(dst []BallotDecoded, raw []byte, h Header) []BallotDecoded {
	n := int(h.SlotCount)
	ss := int(h.SectorSize)
	if cap(dst) < n {
		dst = make([]BallotDecoded, n)
	}
	dst = dst[:n]
	for i := 0; i < n; i++ {
		x, st, why := DecodeBallot(sectorRecord(raw, i, ss), h.PoolUUID, i)
		dst[i] = BallotDecoded{Index: i, Ballot: x, Status: st, Reason: why}
	}
	return dst
}

// Leader flags.
const (
	// LeaderReleased: the owner gave the lease up; the epoch stays, and
	// the next acquisition decides epoch + 1.
	LeaderReleased uint16 = 1 << 0
	// LeaderSuccessor: released for the named successor (a hand-over):
	// the owner decided, in instance epoch + 1, that Successor owns the
	// next epoch. Set only with LeaderReleased.
	LeaderSuccessor uint16 = 1 << 1

	leaderKnownFlags = LeaderReleased | LeaderSuccessor
)

// Leader is the master lease's leader record: who owns which epoch. Only
// the owner of an epoch writes the record of that epoch (see package
// heartbeat/lease).
type Leader struct {
	Version   uint16
	Flags     uint16
	Epoch     uint64
	PoolUUID  UUID
	Owner     Owner
	Successor Owner     // with LeaderSuccessor
	Wall      time.Time // writer's wall clock, for humans
}

// Released reports whether the owner gave the lease up.
func (l Leader) Released() bool { return l.Flags&LeaderReleased != 0 }

// HasSuccessor reports whether the lease was released for a named
// successor.
func (l Leader) HasSuccessor() bool { return l.Flags&LeaderSuccessor != 0 }

// Leader byte layout. All integers little-endian.
//
//	off size field
//	  0    4 magic "HBLD"
//	  4    2 record version (1)
//	  6    2 flags (bit 0 released, bit 1 successor named; others zero)
//	  8    8 epoch, >= 1
//	 16   16 pool UUID
//	 32    4 owner slot
//	 36    4 successor slot
//	 40    8 owner generation
//	 48    8 successor generation
//	 56    8 writer's wall clock (unix ns, for humans only)
//	 64   64 owner host name (NUL padded), not empty
//	128   64 successor host name (NUL padded); empty unless flag bit 1
//	192  316 reserved, zero
//	508    4 CRC-32C (Castagnoli) of bytes 0..507
const (
	lOffMagic    = 0
	lOffVersion  = 4
	lOffFlags    = 6
	lOffEpoch    = 8
	lOffPool     = 16
	lOffSlot     = 32
	lOffSuccSlot = 36
	lOffGen      = 40
	lOffSuccGen  = 48
	lOffWall     = 56
	lOffName     = 64
	lOffSuccName = 128
	lOffReserved = 192
)

// Encode renders the leader record into a record of RecordSize bytes.
func (l Leader) Encode() []byte {
	r := make([]byte, RecordSize)
	l.EncodeInto(r)
	return r
}

// EncodeInto renders the leader record into r, which must hold RecordSize
// bytes. It does not allocate.
func (l Leader) EncodeInto(r []byte) {
	r = r[:RecordSize]
	clear(r)
	le := binary.LittleEndian
	copy(r[lOffMagic:], leaderMagic[:])
	le.PutUint16(r[lOffVersion:], l.Version)
	le.PutUint16(r[lOffFlags:], l.Flags)
	le.PutUint64(r[lOffEpoch:], l.Epoch)
	copy(r[lOffPool:], l.PoolUUID[:])
	le.PutUint32(r[lOffSlot:], l.Owner.Slot)
	le.PutUint32(r[lOffSuccSlot:], l.Successor.Slot)
	le.PutUint64(r[lOffGen:], l.Owner.Generation)
	le.PutUint64(r[lOffSuccGen:], l.Successor.Generation)
	le.PutUint64(r[lOffWall:], uint64(wallNanos(l.Wall)))
	copy(r[lOffName:lOffName+MaxHostName], l.Owner.Name)
	copy(r[lOffSuccName:lOffSuccName+MaxHostName], l.Successor.Name)
	le.PutUint32(r[offCRC:], checksum(r[:offCRC]))
}

// DecodeLeader parses the leader record of pool. It never panics. An
// all-zero sector is RecordUnused: no epoch was ever decided (epoch 0, the
// lease is free).
func DecodeLeader(b []byte, pool UUID) (Leader, RecordStatus, string) {
	r, st, why, ok := leaseCommon(b, leaderMagic)
	if !ok {
		return Leader{}, st, why
	}
	le := binary.LittleEndian
	l := Leader{
		Version: le.Uint16(r[lOffVersion:]),
		Flags:   le.Uint16(r[lOffFlags:]),
		Epoch:   le.Uint64(r[lOffEpoch:]),
		Owner: Owner{
			Slot:       le.Uint32(r[lOffSlot:]),
			Generation: le.Uint64(r[lOffGen:]),
			Name:       cString(r[lOffName : lOffName+MaxHostName]),
		},
		Successor: Owner{
			Slot:       le.Uint32(r[lOffSuccSlot:]),
			Generation: le.Uint64(r[lOffSuccGen:]),
			Name:       cString(r[lOffSuccName : lOffSuccName+MaxHostName]),
		},
		Wall: fromWallNanos(int64(le.Uint64(r[lOffWall:]))),
	}
	copy(l.PoolUUID[:], r[lOffPool:])
	if l.Version > LeaseVersion {
		return l, RecordNewer, fmt.Sprintf("leader record version %d, this build reads %d", l.Version, LeaseVersion)
	}
	if l.Version == 0 {
		return l, RecordCorrupt, "leader record version 0"
	}
	if l.PoolUUID != pool {
		return l, RecordForeign, fmt.Sprintf("leader record of pool %s, not %s", l.PoolUUID, pool)
	}
	switch {
	case l.Epoch == 0:
		return l, RecordCorrupt, "leader record with epoch 0"
	case l.Flags&^leaderKnownFlags != 0:
		return l, RecordCorrupt, fmt.Sprintf("leader record with unknown flags %#04x", l.Flags&^leaderKnownFlags)
	case l.Owner.Name == "":
		return l, RecordCorrupt, "leader record with an empty owner name"
	case l.HasSuccessor() && !l.Released():
		return l, RecordCorrupt, "leader record names a successor but is not released"
	case l.HasSuccessor() && l.Successor.Name == "":
		return l, RecordCorrupt, "leader record names a successor without a name"
	case !l.HasSuccessor() && !l.Successor.IsZero():
		return l, RecordCorrupt, "leader record has successor fields but no successor flag"
	}
	return l, RecordOK, ""
}

// LeaderDecoded is the leader record as read from storage.
type LeaderDecoded struct {
	Leader Leader       // valid only when Status is RecordOK
	Status RecordStatus // RecordOK, RecordUnused (epoch 0), or why it cannot be used
	Reason string
}

// DecodeLeaderSector decodes the leader sector as one read returned it.
func DecodeLeaderSector(raw []byte, pool UUID) LeaderDecoded {
	l, st, why := DecodeLeader(raw, pool)
	return LeaderDecoded{Leader: l, Status: st, Reason: why}
}

// Usable reports whether the read tells the epoch: a valid record, or an
// unused sector (epoch 0).
func (d LeaderDecoded) Usable() bool { return d.Status == RecordOK || d.Status == RecordUnused }

// Epoch is the decided epoch the read shows: 0 for an unused sector.
// Meaningful only when Usable.
func (d LeaderDecoded) Epoch() uint64 {
	if d.Status == RecordOK {
		return d.Leader.Epoch
	}
	return 0
}
