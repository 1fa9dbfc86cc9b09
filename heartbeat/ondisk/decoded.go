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
		s, st, why := DecodeSlot(sectorRecord(raw, i, ss), h.PoolUUID, i)
		dst[i] = Decoded{Index: i, Slot: s, Status: st, Reason: why}
	}
	return dst
}

// sectorRecord is the record at the start of sector i of a region as one
// read returned it: RecordSize bytes, fewer if the region was cut short
// (the decoders then report it corrupt), none past its end.
func sectorRecord(raw []byte, i, sectorSize int) []byte {
	off := i * sectorSize
	switch {
	case off+RecordSize <= len(raw):
		return raw[off : off+RecordSize]
	case off < len(raw):
		return raw[off:]
	}
	return nil
}

// Changed reports whether two valid records of one slot differ in a way
// that shows the writer wrote again: the writer bumps the sequence on each
// write and the generation on each join.
func Changed(a, b Slot) bool {
	return a.Generation != b.Generation || a.Sequence != b.Sequence ||
		a.JoinNonce != b.JoinNonce || a.State != b.State || a.HostName != b.HostName
}
