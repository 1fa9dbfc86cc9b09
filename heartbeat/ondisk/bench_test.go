package ondisk

import (
	"fmt"
	"testing"
)

// BenchmarkSlotEncode is the encode of every heartbeat write: EncodeInto
// a reused buffer, which must not allocate.
func BenchmarkSlotEncode(b *testing.B) {
	s := goldenSlot()
	buf := make([]byte, RecordSize)
	b.ReportAllocs()
	b.SetBytes(RecordSize)
	for b.Loop() {
		s.Sequence++
		s.EncodeInto(buf)
	}
}

func BenchmarkSlotDecode(b *testing.B) {
	rec := goldenSlot().Encode()
	b.ReportAllocs()
	b.SetBytes(RecordSize)
	for b.Loop() {
		if _, st, _ := DecodeSlot(rec, goldenPool, goldenSlotIndex); st != SlotOK {
			b.Fatal(st)
		}
	}
}

// BenchmarkDecodeSlots2000 decodes a region of 2000 used slots, as one
// heartbeat round does after its read, reusing the Decoded slice as the
// member driver does. Bytes are the region's size (what one round reads).
func BenchmarkDecodeSlots2000(b *testing.B) {
	for _, ss := range SectorSizes {
		b.Run(fmt.Sprintf("sector=%d", ss), func(b *testing.B) {
			h, err := NewHeader(goldenPool, ss, 2000, mustDefault(), "default", goldenCreated)
			if err != nil {
				b.Fatal(err)
			}
			recs := make(map[int][]byte, 2000)
			for i := 0; i < 2000; i++ {
				recs[i] = liveSlot(i).Encode()
			}
			raw := region(h, recs)
			var dst []Decoded
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			for b.Loop() {
				dst = DecodeSlotsInto(dst, raw, h)
			}
			if len(dst) != 2000 || dst[1999].Status != SlotOK {
				b.Fatalf("decode failed: %d slots", len(dst))
			}
		})
	}
}
