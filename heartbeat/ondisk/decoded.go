package ondisk

// Decoded is one slot as read from storage.
type Decoded struct {
	Index  int
	Slot   Slot       // valid only when Status is SlotOK (partly filled otherwise)
	Status SlotStatus // SlotOK, or why the record cannot be used
	Reason string     // for humans, when Status is not SlotOK
}

// DecodeSlots splits the slot region, as one read returned it, into slots.
// raw must hold h.SlotCount sectors.
func DecodeSlots(raw []byte, h Header) []Decoded {
	return DecodeSlotsInto(nil, raw, h)
}

// DecodeSlotsInto is DecodeSlots reusing dst's storage.
func DecodeSlotsInto(dst []Decoded, raw []byte, h Header) []Decoded {
	n := int(h.SlotCount)
	ss := int(h.SectorSize)
	if cap(dst) < n {
		dst = make([]Decoded, n)
	}
	dst = dst[:n]
	for i := 0; i < n; i++ {
		off := i * ss
		var rec []byte
		if off+RecordSize <= len(raw) {
			rec = raw[off : off+RecordSize]
		} else if off < len(raw) {
			rec = raw[off:]
		}
		s, st, why := DecodeSlot(rec, h.PoolUUID, i)
		dst[i] = Decoded{Index: i, Slot: s, Status: st, Reason: why}
	}
	return dst
}

// Changed reports whether two valid records of one slot differ in a way
// that shows the writer wrote again: the writer bumps the sequence on each
// write and the generation on each join.
func Changed(a, b Slot) bool {
	return a.Generation != b.Generation || a.Sequence != b.Sequence ||
		a.JoinNonce != b.JoinNonce || a.State != b.State || a.HostName != b.HostName
}
