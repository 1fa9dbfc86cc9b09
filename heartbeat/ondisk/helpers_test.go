package ondisk

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/timing"
)

// Fixed values of the golden records. Every field has a value of its own,
// so that two fields swapped in the code cannot go unnoticed.
var (
	goldenPool    = UUID{0x5b, 0x0c, 0x8d, 0x3e, 0x2f, 0x41, 0x4c, 0x9a, 0x8e, 0x6d, 0x7a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f}
	goldenMachine = UUID{0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0x47, 0xa8, 0x89, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0}
	goldenBoot    = UUID{0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0x47, 0xc8, 0x89, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0}
	goldenCreated = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	goldenWall    = time.Date(2024, 5, 1, 12, 0, 2, 500000000, time.UTC)
)

const goldenSlotIndex = 7

func mustDefault() timing.Params {
	p, err := timing.Profile("default")
	if err != nil {
		panic(err)
	}
	return p
}

func defaultTiming(t testing.TB) timing.Params {
	t.Helper()
	p, err := timing.Profile("default")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// goldenHeader is the header of header-v1.bin: 512-byte sectors, 64
// slots, the default profile.
func goldenHeader(t testing.TB) Header {
	t.Helper()
	h, err := NewHeader(goldenPool, 512, 64, defaultTiming(t), "default", goldenCreated)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func arg(s string) (a [messageArgLen]byte) {
	copy(a[:], s)
	return a
}

// goldenSlot is the slot of slot-v1.bin: live, with three of its four
// message cells filled (cell 1 empty).
func goldenSlot() Slot {
	return Slot{
		Version:    SlotVersion,
		State:      StateLive,
		Index:      goldenSlotIndex,
		Flags:      0,
		PoolUUID:   goldenPool,
		Generation: 3,
		Sequence:   987654321,
		Wall:       goldenWall,
		JoinNonce:  0x8badf00ddeadbeef,
		MachineID:  goldenMachine,
		BootID:     goldenBoot,
		Agent:      "0.1.0",
		HostName:   "hv-node-07.example.com",
		Messages: [MessageCells]Message{
			{Kind: 1, Flags: 0x0002, TargetSlot: 3, TargetGeneration: 2, Seq: 41, Arg: arg("evacuate")},
			{},
			{Kind: 0x0203, Flags: 0x8001, TargetSlot: 4095, TargetGeneration: 0xfedcba9876543210, Seq: 42, Arg: arg("abcdefghijklmnopqrstuvwx")},
			{Kind: 7, Flags: 0, TargetSlot: 0, TargetGeneration: 1, Seq: 1 << 40, Arg: [messageArgLen]byte{0: 0xff, 1: 0x00, 23: 0x01}},
		},
	}
}

var testCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// reseal recomputes the CRC-32C of a 512-byte record after a test changed
// it, independently of the code under test.
func reseal(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[508:], crc32.Checksum(b[:508], testCastagnoli))
	return b
}

func flipBit(b []byte, bit int) []byte {
	c := bytes.Clone(b)
	c[bit/8] ^= 1 << (bit % 8)
	return c
}

// sameHeader compares headers; times compare as instants (decoding drops
// the monotonic reading and the location).
func sameHeader(a, b Header) bool {
	if !a.CreatedWall.Equal(b.CreatedWall) {
		return false
	}
	a.CreatedWall, b.CreatedWall = time.Time{}, time.Time{}
	return a == b
}

func sameSlot(a, b Slot) bool {
	if !a.Wall.Equal(b.Wall) {
		return false
	}
	a.Wall, b.Wall = time.Time{}, time.Time{}
	return a == b
}
