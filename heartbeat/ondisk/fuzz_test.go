package ondisk

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

// The fuzz targets take a "reseal" flag: when set, the record's CRC is
// recomputed after the fuzzer's mutation, so that mutations reach the
// checks behind the checksum instead of nearly all failing it.

// canonicalHeader is what Encode(DecodeHeader(b)) gives for a valid
// header b: the reserved bytes and the profile bytes after its first NUL
// are zeroed (the checksum is left as it was).
func canonicalHeader(b []byte) []byte {
	c := bytes.Clone(b[:RecordSize])
	clear(c[hOffProfile+profileLen : offCRC])
	p := c[hOffProfile : hOffProfile+profileLen]
	if i := bytes.IndexByte(p, 0); i >= 0 {
		clear(p[i:])
	}
	return c
}

func headerSeeds(t testing.TB) [][]byte {
	g := readGolden(t, goldenHeaderFile)
	seeds := [][]byte{g, {}, make([]byte, 511), make([]byte, 512), g[:100]}
	seeds = append(seeds, flipBit(g, 0), flipBit(g, 8*hOffSlots+3), flipBit(g, 8*offCRC))
	newer := goldenHeader(t)
	newer.FormatMajor = 2
	seeds = append(seeds, newer.Encode())
	h4 := goldenHeader(t)
	h4, _ = NewHeader(goldenPool, 4096, 2000, h4.Timing, "fast-ish", goldenCreated)
	seeds = append(seeds, h4.Encode())
	old := goldenHeader(t)
	old.PoolUUID = goldenMachine
	seeds = append(seeds, append(bytes.Clone(g[:256]), old.Encode()[256:]...))
	elf := make([]byte, 512)
	copy(elf, "\x7fELF\x02\x01\x01\x00")
	seeds = append(seeds, elf, append(bytes.Clone(g), bytes.Repeat([]byte{0xa5}, 3584)...))
	return seeds
}

func FuzzDecodeHeader(f *testing.F) {
	for _, s := range headerSeeds(f) {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, resealIt bool) {
		b := data
		if resealIt && len(b) >= RecordSize {
			b = reseal(bytes.Clone(b))
		}
		h, err := DecodeHeader(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			if h != (Header{}) {
				t.Fatalf("error %v returned with a header %+v", err, h)
			}
			return
		}
		if h.FormatMajor != FormatMajor {
			t.Fatalf("decoded format major %d", h.FormatMajor)
		}
		// Every slot lies inside the area, at a non-negative offset.
		ss := int64(h.SectorSize)
		first, last := h.SlotOffset(0), h.SlotOffset(int(h.SlotCount)-1)
		if first < ss || last < first || uint64(last+ss) > h.AreaSize {
			t.Fatalf("slots at %d..%d outside the area of %d bytes: %+v", first, last+ss, h.AreaSize, h)
		}
		if err := h.Timing.Validate(); err != nil {
			t.Fatalf("decoded header breaks a timing rule: %v", err)
		}
		enc := h.Encode()
		h2, err := DecodeHeader(enc)
		if err != nil {
			t.Fatalf("re-encoded header does not decode: %v\n%+v", err, h)
		}
		if !sameHeader(h, h2) {
			t.Fatalf("re-encoded header decodes differently:\n%+v\n%+v", h, h2)
		}
		canon := canonicalHeader(b)
		if !bytes.Equal(enc[:offCRC], canon[:offCRC]) {
			t.Fatalf("Encode(Decode(b)) differs from b beyond its reserved bytes")
		}
		if bytes.Equal(canon, b[:RecordSize]) && !bytes.Equal(enc, b[:RecordSize]) {
			t.Fatalf("Encode(Decode(b)) != b for a canonical b")
		}
	})
}

func slotSeeds(t testing.TB) [][]byte {
	g := readGolden(t, goldenSlotFile)
	seeds := [][]byte{g, {}, make([]byte, 511), make([]byte, 512), g[:300]}
	seeds = append(seeds, flipBit(g, 0), flipBit(g, 8*sOffHost), flipBit(g, 8*offCRC+31))
	for _, f := range []func(s *Slot){
		func(s *Slot) { s.Version = 2 },
		func(s *Slot) { s.Index = 8 },
		func(s *Slot) { s.PoolUUID = goldenBoot },
		func(s *Slot) { s.State = 9 },
		func(s *Slot) { s.HostName = "" },
		func(s *Slot) { s.HostName = "h234567890123456789012345678901234567890123456789012345678901234" },
		func(s *Slot) { s.Messages = [MessageCells]Message{} },
		func(s *Slot) { s.Wall = time.Time{} },
	} {
		s := goldenSlot()
		f(&s)
		seeds = append(seeds, s.Encode())
	}
	newer := goldenSlot()
	newer.Sequence++
	seeds = append(seeds, append(newer.Encode()[:256], g[256:]...))
	seeds = append(seeds, readGolden(t, goldenHeaderFile))
	return seeds
}

func FuzzDecodeSlot(f *testing.F) {
	for _, s := range slotSeeds(f) {
		f.Add(s, goldenSlotIndex, false)
		f.Add(s, goldenSlotIndex, true)
	}
	f.Add(readGolden(f, goldenSlotFile), 0, false)
	f.Add(readGolden(f, goldenSlotFile), -1, true)
	f.Fuzz(func(t *testing.T, data []byte, index int, resealIt bool) {
		b := data
		if resealIt && len(b) >= RecordSize {
			b = reseal(bytes.Clone(b))
		}
		s, st, why := DecodeSlot(b, goldenPool, index)
		switch st {
		case SlotOK, SlotUnused:
			if why != "" {
				t.Fatalf("status %v with reason %q", st, why)
			}
		case SlotCorrupt, SlotForeign, SlotMisplaced, SlotNewer:
			if why == "" {
				t.Fatalf("status %v without a reason", st)
			}
		default:
			t.Fatalf("unknown status %v", st)
		}
		if st == SlotUnused && (len(b) < RecordSize || !IsZero(b[:RecordSize])) {
			t.Fatalf("unused, but the record is not 512 zero bytes")
		}
		if st != SlotOK {
			return
		}
		if s.PoolUUID != goldenPool || int64(s.Index) != int64(index) || s.HostName == "" ||
			s.State < StateJoining || s.State > StateLeft || s.Version != SlotVersion {
			t.Fatalf("status ok for a slot that should not pass: %+v", s)
		}
		enc := s.Encode()
		s2, st2, why2 := DecodeSlot(enc, goldenPool, index)
		if st2 != SlotOK || !sameSlot(s, s2) {
			t.Fatalf("re-encoded slot decodes as %v (%s):\n%+v\nwant\n%+v", st2, why2, s2, s)
		}
		// Encode(Decode(b)) is b, up to the bytes a Slot does not hold
		// (reserved space, string bytes after a NUL), and exactly b
		// when those are zero.
		canon := canonicalSlot(b)
		if !bytes.Equal(enc[:offCRC], canon[:offCRC]) {
			t.Fatalf("Encode(Decode(b)) differs from b beyond its reserved bytes")
		}
		if bytes.Equal(canon, b[:RecordSize]) && !bytes.Equal(enc, b[:RecordSize]) {
			t.Fatalf("Encode(Decode(b)) != b for a canonical b")
		}
	})
}

// FuzzDecodeSlots fuzzes the splitting of a region into slots. The input
// is the records only, 512 bytes each, so that inputs stay small with
// 4096-byte sectors: the target lays each record at the start of its
// sector, fills the rest of the sector with pad, and may cut the region's
// end (cut bytes off the last sector).
func FuzzDecodeSlots(f *testing.F) {
	g := readGolden(f, goldenSlotFile)
	for _, big := range []bool{false, true} {
		corrupt := liveSlot(1).Encode()
		corrupt[9] ^= 4
		recs := slices.Concat(liveSlot(0).Encode(), corrupt, make([]byte, 512), liveSlot(2).Encode())
		f.Add(recs, big, uint8(2), uint16(0), byte(0xaa), false)
		f.Add(recs, big, uint8(2), uint16(0), byte(0), true)
		f.Add(recs[:len(recs)-100], big, uint8(2), uint16(0), byte(0), false)
		f.Add(recs, big, uint8(0), uint16(300), byte(0), false)
		f.Add([]byte{}, big, uint8(6), uint16(0), byte(0), false)
		f.Add(bytes.Repeat(g, 8), big, uint8(6), uint16(1), byte(0x55), false)
	}
	f.Fuzz(func(t *testing.T, recs []byte, big bool, count uint8, cut uint16, pad byte, resealIt bool) {
		ss := 512
		if big {
			ss = 4096
		}
		n := MinSlots + int(count)%7
		h, err := NewHeader(goldenPool, ss, n, mustDefault(), "", goldenCreated)
		if err != nil {
			t.Fatal(err)
		}
		var raw []byte
		for off := 0; off < len(recs); off += RecordSize {
			rec := bytes.Clone(recs[off:min(off+RecordSize, len(recs))])
			if resealIt && len(rec) == RecordSize {
				reseal(rec)
			}
			raw = append(raw, rec...)
			if len(rec) == RecordSize {
				raw = append(raw, bytes.Repeat([]byte{pad}, ss-RecordSize)...)
			}
		}
		raw = raw[:len(raw)-min(len(raw), int(cut)%ss)]
		out := DecodeSlots(raw, h)
		if len(out) != n {
			t.Fatalf("%d slots, want %d", len(out), n)
		}
		for i, d := range out {
			if d.Index != i {
				t.Fatalf("entry %d has index %d", i, d.Index)
			}
			// Each entry is what DecodeSlot says of that sector's
			// record alone.
			var rec []byte
			if off := i * ss; off < len(raw) {
				rec = raw[off:min(off+RecordSize, len(raw))]
			}
			s, st, why := DecodeSlot(rec, goldenPool, i)
			if st != d.Status || why != d.Reason || !sameSlot(s, d.Slot) {
				t.Fatalf("slot %d: DecodeSlots gave %v %q, DecodeSlot gives %v %q", i, d.Status, d.Reason, st, why)
			}
		}
	})
}
