package ondisk

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// region builds a slot region of h with the given record in each slot
// (nil: leave zero). The rest of each sector past the record is filled
// with 0xaa, which the decoder must ignore.
func region(h Header, recs map[int][]byte) []byte {
	ss := int(h.SectorSize)
	raw := make([]byte, h.SlotsLen())
	for i := 0; i < int(h.SlotCount); i++ {
		sector := raw[i*ss : (i+1)*ss]
		if ss > RecordSize {
			for j := RecordSize; j < ss; j++ {
				sector[j] = 0xaa
			}
		}
		if r, ok := recs[i]; ok {
			copy(sector, r)
		}
	}
	return raw
}

func liveSlot(i int) Slot {
	s := goldenSlot()
	s.Index = uint32(i)
	s.HostName = fmt.Sprintf("host-%d", i)
	s.Generation = uint64(100 + i)
	s.Sequence = uint64(1000 * i)
	return s
}

func TestDecodeSlots(t *testing.T) {
	for _, ss := range SectorSizes {
		t.Run(fmt.Sprint(ss), func(t *testing.T) {
			h, err := NewHeader(goldenPool, ss, 12, defaultTiming(t), "default", goldenCreated)
			if err != nil {
				t.Fatal(err)
			}
			other := goldenPool
			other[0] ^= 0xff
			foreign := liveSlot(3)
			foreign.PoolUUID = other
			newer := liveSlot(6)
			newer.Version = 2
			corrupt := liveSlot(2).Encode()
			corrupt[100] ^= 1
			leaving := liveSlot(8)
			leaving.State = StateLeaving
			left := liveSlot(9)
			left.State = StateLeft
			joining := liveSlot(10)
			joining.State = StateJoining
			recs := map[int][]byte{
				0:  liveSlot(0).Encode(),
				2:  corrupt,
				3:  foreign.Encode(),
				4:  liveSlot(5).Encode(), // slot 5's record written at 4
				5:  liveSlot(5).Encode(),
				6:  newer.Encode(),
				7:  bytes.Repeat([]byte{0x42}, RecordSize), // scribbled
				8:  leaving.Encode(),
				9:  left.Encode(),
				10: joining.Encode(),
				11: liveSlot(11).Encode(),
			}
			raw := region(h, recs)
			want := []struct {
				st     SlotStatus
				slot   Slot
				reason string
			}{
				0:  {SlotOK, liveSlot(0), ""},
				1:  {SlotUnused, Slot{}, ""},
				2:  {SlotCorrupt, Slot{}, "checksum"},
				3:  {SlotForeign, foreign, "record of pool"},
				4:  {SlotMisplaced, liveSlot(5), "record says slot 5"},
				5:  {SlotOK, liveSlot(5), ""},
				6:  {SlotNewer, newer, "version 2"},
				7:  {SlotCorrupt, Slot{}, `bad magic "BBBB"`},
				8:  {SlotOK, leaving, ""},
				9:  {SlotOK, left, ""},
				10: {SlotOK, joining, ""},
				11: {SlotOK, liveSlot(11), ""},
			}
			got := DecodeSlots(raw, h)
			if len(got) != len(want) {
				t.Fatalf("DecodeSlots gave %d slots, want %d", len(got), len(want))
			}
			for i, w := range want {
				d := got[i]
				if d.Index != i {
					t.Errorf("slot %d: Index %d", i, d.Index)
				}
				if d.Status != w.st {
					t.Errorf("slot %d: status %v (%s), want %v", i, d.Status, d.Reason, w.st)
					continue
				}
				if !strings.Contains(d.Reason, w.reason) || (w.reason == "") != (d.Reason == "") {
					t.Errorf("slot %d: reason %q, want %q", i, d.Reason, w.reason)
				}
				if !sameSlot(d.Slot, w.slot) {
					t.Errorf("slot %d: decoded\n%+v\nwant\n%+v", i, d.Slot, w.slot)
				}
			}

			// DecodeSlotsInto reuses the storage it is given.
			dst := make([]Decoded, 3, 64)
			out := DecodeSlotsInto(dst, raw, h)
			if len(out) != 12 || &out[0] != &dst[:1][0] {
				t.Errorf("DecodeSlotsInto did not reuse a large enough dst (len %d)", len(out))
			}
			for i := range out {
				a, b := out[i], got[i]
				if a.Index != b.Index || a.Status != b.Status || a.Reason != b.Reason || !sameSlot(a.Slot, b.Slot) {
					t.Errorf("DecodeSlotsInto slot %d differs from DecodeSlots", i)
				}
			}
			// A stale entry from an earlier round is overwritten.
			out = DecodeSlotsInto(out, region(h, nil), h)
			for i := range out {
				if out[i].Status != SlotUnused || out[i].Index != i || !sameSlot(out[i].Slot, Slot{}) {
					t.Errorf("after re-decoding zeroes, slot %d is %+v", i, out[i])
				}
			}
			small := make([]Decoded, 0, 2)
			if out := DecodeSlotsInto(small, raw, h); len(out) != 12 {
				t.Errorf("DecodeSlotsInto with a small dst gave %d slots", len(out))
			}
		})
	}
}

// A region shorter than the header says (a truncated read) decodes the
// slots it holds; the missing ones are corrupt, not a panic.
func TestDecodeSlotsShortRegion(t *testing.T) {
	for _, ss := range SectorSizes {
		h, err := NewHeader(goldenPool, ss, 4, defaultTiming(t), "", goldenCreated)
		if err != nil {
			t.Fatal(err)
		}
		raw := region(h, map[int][]byte{0: liveSlot(0).Encode(), 1: liveSlot(1).Encode(), 2: liveSlot(2).Encode()})
		for _, n := range []int{0, 1, ss, ss + 300, ss + RecordSize, 2*ss + 511, len(raw) - 1} {
			got := DecodeSlots(raw[:n], h)
			if len(got) != 4 {
				t.Fatalf("sector %d, %d bytes: %d slots", ss, n, len(got))
			}
			for i, d := range got {
				end := i*ss + RecordSize
				switch {
				case end <= n && i < 3:
					if d.Status != SlotOK {
						t.Errorf("sector %d, %d bytes: slot %d (complete) is %v (%s)", ss, n, i, d.Status, d.Reason)
					}
				case end <= n:
					if d.Status != SlotUnused {
						t.Errorf("sector %d, %d bytes: slot %d (zero) is %v", ss, n, i, d.Status)
					}
				default:
					if d.Status != SlotCorrupt || !strings.Contains(d.Reason, "short record") {
						t.Errorf("sector %d, %d bytes: slot %d (cut) is %v (%s), want corrupt, short", ss, n, i, d.Status, d.Reason)
					}
				}
			}
		}
	}
}

// With 4096-byte sectors, only the first 512 bytes of each sector are the
// record: what follows (here, another valid record) is ignored.
func TestDecodeSlotsReadsRecordAtSectorStart(t *testing.T) {
	h, err := NewHeader(goldenPool, 4096, 2, defaultTiming(t), "", goldenCreated)
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, h.SlotsLen())
	copy(raw[512:], liveSlot(0).Encode()) // inside sector 0, after its record
	copy(raw[4096+512:], liveSlot(1).Encode())
	for i, d := range DecodeSlots(raw, h) {
		if d.Status != SlotUnused {
			t.Errorf("slot %d: %v, want unused (the record is not at the sector's start)", i, d.Status)
		}
	}
	// A region read with 512-byte sectors by mistake: slot 1's record is
	// read from byte 512, and is found misplaced or not, never taken for
	// slot 1.
	h512, _ := NewHeader(goldenPool, 512, 2, defaultTiming(t), "", goldenCreated)
	got := DecodeSlots(raw, h512)
	if got[1].Status != SlotMisplaced {
		t.Errorf("slot 1 under the wrong sector size: %v, want misplaced", got[1].Status)
	}
}
