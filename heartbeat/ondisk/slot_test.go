package ondisk

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestSlotRoundTrip(t *testing.T) {
	name64 := strings.Repeat("h", 40) + ".pool.example.com" + "-node2" + "z"
	if len(name64) != MaxHostName {
		t.Fatalf("test bug: name64 is %d bytes", len(name64))
	}
	full := goldenSlot()
	for i := range full.Messages {
		m := &full.Messages[i]
		m.Kind = MessageKind(math.MaxUint16 - i)
		m.Flags = math.MaxUint16
		m.TargetSlot = math.MaxUint32
		m.TargetGeneration = math.MaxUint64
		m.Seq = math.MaxUint64 - uint64(i)
		for j := range m.Arg {
			m.Arg[j] = byte(0xff - j) // no zero byte: the whole argument is data
		}
	}
	variants := map[string]func(s *Slot){
		"golden":             func(s *Slot) {},
		"64-byte host name":  func(s *Slot) { s.HostName = name64 },
		"1-byte host name":   func(s *Slot) { s.HostName = "a" },
		"16-byte agent":      func(s *Slot) { s.Agent = "1.22.333-rc4+abc" },
		"empty agent":        func(s *Slot) { s.Agent = "" },
		"empty cells":        func(s *Slot) { s.Messages = [MessageCells]Message{} },
		"full cells":         func(s *Slot) { s.Messages = full.Messages },
		"zero wall":          func(s *Slot) { s.Wall = time.Time{} },
		"wall before 1970":   func(s *Slot) { s.Wall = time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC) },
		"wall with location": func(s *Slot) { s.Wall = goldenWall.In(time.FixedZone("CEST", 7200)) },
		"wall now":           func(s *Slot) { s.Wall = time.Now() },
		"max counters": func(s *Slot) {
			s.Generation, s.Sequence, s.JoinNonce = math.MaxUint64, math.MaxUint64, math.MaxUint64
		},
		"zero counters": func(s *Slot) { s.Generation, s.Sequence, s.JoinNonce = 0, 0, 0 },
		"flags set":     func(s *Slot) { s.Flags = 0xdeadbeef },
		"zero ids":      func(s *Slot) { s.MachineID, s.BootID = UUID{}, UUID{} },
	}
	indexes := []int{0, 1, goldenSlotIndex, 1999, MaxSlots - 1}
	for name, f := range variants {
		for _, st := range []SlotState{StateJoining, StateLive, StateLeaving, StateLeft} {
			for _, idx := range indexes {
				s := goldenSlot()
				f(&s)
				s.State = st
				s.Index = uint32(idx)
				b := s.Encode()
				if len(b) != RecordSize {
					t.Fatalf("Encode gives %d bytes", len(b))
				}
				got, status, why := DecodeSlot(b, goldenPool, idx)
				if status != SlotOK || why != "" {
					t.Fatalf("%s, %v, slot %d: status %v (%q), want ok", name, st, idx, status, why)
				}
				if !sameSlot(got, s) {
					t.Fatalf("%s, %v, slot %d: round trip\n got %+v\nwant %+v", name, st, idx, got, s)
				}
				if got.Wall.Location() != time.UTC {
					t.Fatalf("%s: decoded wall time in %v, want UTC", name, got.Wall.Location())
				}
				if !bytes.Equal(got.Encode(), b) {
					t.Fatalf("%s: Encode(Decode(b)) != b", name)
				}
			}
		}
	}
}

// EncodeInto overwrites whatever the buffer held, writes only the first
// RecordSize bytes, and does not allocate.
func TestSlotEncodeInto(t *testing.T) {
	s := goldenSlot()
	want := s.Encode()
	buf := bytes.Repeat([]byte{0x5a}, 4096)
	s.EncodeInto(buf)
	if !bytes.Equal(buf[:RecordSize], want) {
		t.Errorf("EncodeInto over a dirty buffer differs from Encode")
	}
	if !bytes.Equal(buf[RecordSize:], bytes.Repeat([]byte{0x5a}, 4096-RecordSize)) {
		t.Errorf("EncodeInto wrote past the record")
	}
	// A shorter host name than the buffer last held leaves no tail.
	s2 := s
	s2.HostName = "b"
	s2.EncodeInto(buf)
	if got, _, _ := DecodeSlot(buf, goldenPool, goldenSlotIndex); got.HostName != "b" {
		t.Errorf("host name after re-encoding = %q, want %q", got.HostName, "b")
	}
	allocs := testing.AllocsPerRun(100, func() { s.EncodeInto(buf) })
	if allocs != 0 {
		t.Errorf("EncodeInto allocates %v times per call, want 0", allocs)
	}
}

// Over-long strings are cut to their fields (callers check names with
// ValidHostName first); they never spill into the next field.
func TestSlotEncodeTruncates(t *testing.T) {
	s := goldenSlot()
	s.HostName = strings.Repeat("n", MaxHostName+10)
	s.Agent = strings.Repeat("v", agentVerLen+3)
	got, st, why := DecodeSlot(s.Encode(), goldenPool, goldenSlotIndex)
	if st != SlotOK {
		t.Fatalf("status %v (%s)", st, why)
	}
	if got.HostName != strings.Repeat("n", MaxHostName) || got.Agent != strings.Repeat("v", agentVerLen) {
		t.Errorf("host %q agent %q: not cut to their fields", got.HostName, got.Agent)
	}
	if got.Messages != s.Messages {
		t.Errorf("over-long strings changed the message cells")
	}
}

// DecodeSlot's bad inputs: each gives its status and a reason, never a
// panic.
func TestSlotDecodeBad(t *testing.T) {
	otherPool := goldenPool
	otherPool[15] ^= 1
	enc := func(f func(s *Slot)) []byte {
		s := goldenSlot()
		f(&s)
		return s.Encode()
	}
	rawEdit := func(f func(b []byte)) []byte {
		b := goldenSlot().Encode()
		f(b)
		return b
	}
	tests := []struct {
		name   string
		b      []byte
		index  int
		status SlotStatus
		reason string // a substring of the reason
	}{
		{"nil", nil, 7, SlotCorrupt, "short record: 0 bytes"},
		{"empty", []byte{}, 7, SlotCorrupt, "short record: 0 bytes"},
		{"511 bytes", goldenSlot().Encode()[:511], 7, SlotCorrupt, "short record: 511 bytes"},
		{"1 byte", []byte{'H'}, 7, SlotCorrupt, "short record: 1 bytes"},
		{"zero record", make([]byte, 512), 7, SlotUnused, ""},
		{"zero sector", make([]byte, 4096), 7, SlotUnused, ""},
		{"bad magic", rawEdit(func(b []byte) { copy(b, "XFSB") }), 7, SlotCorrupt, `bad magic "XFSB"`},
		{"binary magic", rawEdit(func(b []byte) { copy(b, "\x00\x01\xfe\"") }), 7, SlotCorrupt, `bad magic "\x00\x01\xfe\""`},
		{"header record", goldenHeaderNoT().Encode(), 7, SlotCorrupt, `bad magic "HBFE"`},
		{"all 0xff", bytes.Repeat([]byte{0xff}, 512), 7, SlotCorrupt, `bad magic "\xff\xff\xff\xff"`},
		{"checksum", rawEdit(func(b []byte) { b[200] ^= 0x10 }), 7, SlotCorrupt, "checksum mismatch"},
		{"crc zeroed", rawEdit(func(b []byte) { clear(b[508:]) }), 7, SlotCorrupt, "stored 00000000"},
		{"version 0", enc(func(s *Slot) { s.Version = 0 }), 7, SlotCorrupt, "version 0"},
		{"version 2", enc(func(s *Slot) { s.Version = 2 }), 7, SlotNewer, "version 2, this build reads 1"},
		{"version 65535", enc(func(s *Slot) { s.Version = math.MaxUint16 }), 7, SlotNewer, "version 65535"},
		{"other pool", enc(func(s *Slot) { s.PoolUUID = otherPool }), 7, SlotForeign, "record of pool 5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e5e, not 5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e5f"},
		{"zero pool", enc(func(s *Slot) { s.PoolUUID = UUID{} }), 7, SlotForeign, "record of pool 00000000-"},
		{"index names another slot", enc(func(s *Slot) { s.Index = 8 }), 7, SlotMisplaced, "record says slot 8"},
		{"index 0 read at 7", enc(func(s *Slot) { s.Index = 0 }), 7, SlotMisplaced, "record says slot 0"},
		{"read at negative index", goldenSlot().Encode(), -1, SlotMisplaced, "record says slot 7"},
		{"index 2^32-1", enc(func(s *Slot) { s.Index = math.MaxUint32 }), 7, SlotMisplaced, "record says slot 4294967295"},
		// An int index that equals the uint32 field modulo 2^32 is
		// another slot.
		{"index modulo 2^32", goldenSlot().Encode(), 7 + 1<<32, SlotMisplaced, "record says slot 7"},
		{"state free", enc(func(s *Slot) { s.State = StateFree }), 7, SlotCorrupt, "unknown state 0"},
		{"state 5", enc(func(s *Slot) { s.State = 5 }), 7, SlotCorrupt, "unknown state 5"},
		{"state 65535", enc(func(s *Slot) { s.State = math.MaxUint16 }), 7, SlotCorrupt, "unknown state 65535"},
		{"empty host name", enc(func(s *Slot) { s.HostName = "" }), 7, SlotCorrupt, "empty host name"},
		{"host name starts with NUL", rawEdit(func(b []byte) { b[sOffHost] = 0; reseal(b) }), 7, SlotCorrupt, "empty host name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, st, why := DecodeSlot(tt.b, goldenPool, tt.index)
			if st != tt.status {
				t.Fatalf("status %v (%q), want %v", st, why, tt.status)
			}
			if tt.reason == "" && why != "" {
				t.Errorf("reason %q, want none", why)
			}
			if !strings.Contains(why, tt.reason) {
				t.Errorf("reason %q does not contain %q", why, tt.reason)
			}
			if tt.reason != "" && why == "" {
				t.Errorf("no reason given for status %v", st)
			}
			if (st == SlotUnused || strings.Contains(why, "short") || strings.Contains(why, "magic") || strings.Contains(why, "checksum")) && !sameSlot(s, Slot{}) {
				t.Errorf("a record that failed before its fields were read returned %+v", s)
			}
		})
	}
}

// goldenHeaderNoT is goldenHeader for table initialisers without a *T.
func goldenHeaderNoT() Header {
	h, err := NewHeader(goldenPool, 512, 64, mustDefault(), "default", goldenCreated)
	if err != nil {
		panic(err)
	}
	return h
}

// A record that passes its checksum but fails a later check comes back
// with its fields filled, so dump can show whose record it was.
func TestSlotDecodeBadKeepsFields(t *testing.T) {
	s := goldenSlot()
	s.Index = 9
	got, st, _ := DecodeSlot(s.Encode(), goldenPool, 7)
	if st != SlotMisplaced {
		t.Fatalf("status %v", st)
	}
	if got.HostName != s.HostName || got.Generation != s.Generation || got.Index != 9 {
		t.Errorf("misplaced record decoded as %+v", got)
	}
}

// Every single-bit flip of a valid slot is corrupt: magic or checksum.
func TestSlotBitFlips(t *testing.T) {
	good := goldenSlot().Encode()
	for bit := 0; bit < RecordSize*8; bit++ {
		_, st, why := DecodeSlot(flipBit(good, bit), goldenPool, goldenSlotIndex)
		if st != SlotCorrupt {
			t.Fatalf("bit %d flipped: status %v (%s), want corrupt", bit, st, why)
		}
		want := "checksum mismatch"
		if bit < 32 {
			want = "bad magic"
		}
		if !strings.Contains(why, want) {
			t.Fatalf("bit %d flipped: reason %q, want %q", bit, why, want)
		}
	}
}

// A torn slot write (the start of the new record over the rest of the old
// one) reads as corrupt, unless the torn bytes equal the old or the new
// record: then it is that record, never a mix.
func TestSlotTorn(t *testing.T) {
	oldS := goldenSlot()
	newS := oldS
	newS.Sequence++
	newS.Wall = oldS.Wall.Add(2 * time.Second)
	newS.Messages[1] = Message{Kind: 3, TargetSlot: 1, TargetGeneration: 9, Seq: 43, Arg: arg("fence")}
	newS.Messages[3] = Message{}
	old, nw := oldS.Encode(), newS.Encode()
	first, last := -1, -1
	for i := range old {
		if old[i] != nw[i] {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if last != offCRC+3 && last != offCRC+2 && last != offCRC+1 && last != offCRC {
		t.Fatalf("test bug: checksums of old and new should differ (last difference at %d)", last)
	}
	for k := 1; k < RecordSize; k++ {
		torn := append(bytes.Clone(nw[:k]), old[k:]...)
		got, st, why := DecodeSlot(torn, goldenPool, goldenSlotIndex)
		switch {
		case k <= first:
			if st != SlotOK || !sameSlot(got, oldS) {
				t.Fatalf("tear at %d (no new byte): %v %s", k, st, why)
			}
		case k > last:
			if st != SlotOK || !sameSlot(got, newS) {
				t.Fatalf("tear at %d (all new bytes): %v %s", k, st, why)
			}
		default:
			if st != SlotCorrupt || !strings.Contains(why, "checksum") {
				t.Fatalf("tear at %d: status %v (%s), want corrupt by checksum", k, st, why)
			}
		}
		// The other way round: the end of the new record landed, the
		// start did not.
		torn = append(bytes.Clone(old[:k]), nw[k:]...)
		_, st, why = DecodeSlot(torn, goldenPool, goldenSlotIndex)
		if k > first && k <= last && st != SlotCorrupt {
			t.Fatalf("reverse tear at %d: status %v (%s), want corrupt", k, st, why)
		}
	}
	// The case the design names: first half new, second half old.
	torn := append(bytes.Clone(nw[:256]), old[256:]...)
	if _, st, _ := DecodeSlot(torn, goldenPool, goldenSlotIndex); st != SlotCorrupt {
		t.Errorf("first half new, second half old: %v, want corrupt", st)
	}
}

// Reserved bytes and bytes after a string's NUL are not part of a Slot: a
// record with them set (by a later minor revision, say) still decodes,
// and re-encoding gives the canonical record (those bytes zero).
func TestSlotDecodeIgnoresReserved(t *testing.T) {
	b := goldenSlot().Encode()
	for i := sOffMessages + MessageCells*messageSize; i < offCRC; i++ {
		b[i] = 0xee
	}
	copy(b[sOffHost+len("hv-node-07.example.com")+1:], "junk")
	copy(b[sOffAgent+len("0.1.0")+1:], "x")
	reseal(b)
	got, st, why := DecodeSlot(b, goldenPool, goldenSlotIndex)
	if st != SlotOK {
		t.Fatalf("status %v (%s)", st, why)
	}
	if !sameSlot(got, goldenSlot()) {
		t.Errorf("got %+v, want the golden slot", got)
	}
	if !bytes.Equal(canonicalSlot(b)[:offCRC], got.Encode()[:offCRC]) {
		t.Errorf("re-encoding is not the canonical record")
	}
}

func TestSlotStateText(t *testing.T) {
	for v, name := range map[SlotState]string{
		StateFree: "free", StateJoining: "joining", StateLive: "live", StateLeaving: "leaving", StateLeft: "left",
	} {
		if v.String() != name {
			t.Errorf("%d.String() = %q, want %q", uint16(v), v.String(), name)
		}
		b, err := v.MarshalText()
		if err != nil || string(b) != name {
			t.Errorf("MarshalText(%d) = %q, %v", uint16(v), b, err)
		}
		var got SlotState = 99
		if err := got.UnmarshalText([]byte(name)); err != nil || got != v {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", name, got, err, v)
		}
	}
	if got := SlotState(9).String(); got != "state(9)" {
		t.Errorf("SlotState(9).String() = %q", got)
	}
	for _, bad := range []string{"", "Live", "state(9)", "dead", " live"} {
		got := StateJoining
		err := got.UnmarshalText([]byte(bad))
		if err == nil {
			t.Errorf("UnmarshalText(%q) = %v, nil; want an error", bad, got)
		} else if !strings.Contains(err.Error(), `"`+bad+`"`) {
			t.Errorf("error %q does not quote the input", err)
		}
		if got != StateJoining {
			t.Errorf("failed UnmarshalText(%q) changed the value to %v", bad, got)
		}
	}
}

func TestSlotStatusText(t *testing.T) {
	for v, name := range map[SlotStatus]string{
		SlotOK: "ok", SlotUnused: "unused", SlotCorrupt: "corrupt", SlotForeign: "foreign",
		SlotMisplaced: "misplaced", SlotNewer: "newer-version",
	} {
		if v.String() != name {
			t.Errorf("%d.String() = %q, want %q", int(v), v.String(), name)
		}
		b, err := v.MarshalText()
		if err != nil || string(b) != name {
			t.Errorf("MarshalText(%d) = %q, %v", int(v), b, err)
		}
		got := SlotStatus(-1)
		if err := got.UnmarshalText([]byte(name)); err != nil || got != v {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", name, got, err, v)
		}
	}
	if got := SlotStatus(42).String(); got != "status(42)" {
		t.Errorf("SlotStatus(42).String() = %q", got)
	}
	for _, bad := range []string{"", "OK", "status(42)", "newer", "torn"} {
		got := SlotCorrupt
		if err := got.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = %v, nil; want an error", bad, got)
		}
		if got != SlotCorrupt {
			t.Errorf("failed UnmarshalText(%q) changed the value to %v", bad, got)
		}
	}
}

func TestValidHostName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
		want string // substring of the error
	}{
		{"hv1", true, ""},
		{"hv-node-07.example.com", true, ""},
		{"a", true, ""},
		{"UPPER_and_lower~!", true, ""},
		{strings.Repeat("x", MaxHostName), true, ""},
		{strings.Repeat("x", MaxHostName+1), false, "65 bytes; at most 64"},
		{"", false, "empty"},
		{"has space", false, "byte 0x20"},
		{" lead", false, "byte 0x20"},
		{"tab\there", false, "byte 0x09"},
		{"nul\x00inside", false, "byte 0x00"},
		{"newline\n", false, "byte 0x0a"},
		{"del\x7f", false, "byte 0x7f"},
		{"héte", false, "byte 0xc3"},
		{"\xff", false, "byte 0xff"},
	}
	for _, tt := range tests {
		err := ValidHostName(tt.name)
		if tt.ok {
			if err != nil {
				t.Errorf("ValidHostName(%q) = %v, want nil", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("ValidHostName(%q) = nil, want an error", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ValidHostName(%q) = %q, want it to contain %q", tt.name, err, tt.want)
		}
	}
	// Every valid name survives a slot round trip unchanged.
	for _, tt := range tests {
		if !tt.ok {
			continue
		}
		s := goldenSlot()
		s.HostName = tt.name
		if got, st, _ := DecodeSlot(s.Encode(), goldenPool, goldenSlotIndex); st != SlotOK || got.HostName != tt.name {
			t.Errorf("valid name %q: decoded %q, %v", tt.name, got.HostName, st)
		}
	}
}

func TestChanged(t *testing.T) {
	a := goldenSlot()
	tests := []struct {
		name string
		f    func(s *Slot)
		want bool
	}{
		{"same", func(s *Slot) {}, false},
		{"sequence", func(s *Slot) { s.Sequence++ }, true},
		{"generation", func(s *Slot) { s.Generation++ }, true},
		{"join nonce", func(s *Slot) { s.JoinNonce++ }, true},
		{"state", func(s *Slot) { s.State = StateLeft }, true},
		{"host name", func(s *Slot) { s.HostName = "other" }, true},
		// The wall clock is for humans: a writer whose clock moved but
		// which did not bump its sequence has not been seen to write.
		{"wall only", func(s *Slot) { s.Wall = s.Wall.Add(time.Hour) }, false},
		{"messages only", func(s *Slot) { s.Messages[1].Kind = 9 }, false},
	}
	for _, tt := range tests {
		b := a
		tt.f(&b)
		if got := Changed(a, b); got != tt.want {
			t.Errorf("Changed(%s) = %v, want %v", tt.name, got, tt.want)
		}
		if got := Changed(b, a); got != tt.want {
			t.Errorf("Changed(%s, reversed) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// canonicalSlot is what Encode(DecodeSlot(b)) gives for a valid record b:
// the reserved bytes and the bytes after each string's first NUL are
// zeroed (the checksum is left as it was).
func canonicalSlot(b []byte) []byte {
	c := bytes.Clone(b[:RecordSize])
	clear(c[sOffMessages+MessageCells*messageSize : offCRC])
	for _, f := range [][2]int{{sOffAgent, agentVerLen}, {sOffHost, MaxHostName}} {
		field := c[f[0] : f[0]+f[1]]
		if i := bytes.IndexByte(field, 0); i >= 0 {
			clear(field[i:])
		}
	}
	return c
}

func TestCanonicalSlotOfGolden(t *testing.T) {
	g := goldenSlot().Encode()
	if !bytes.Equal(canonicalSlot(g), g) {
		t.Errorf("the encoder's output is not canonical")
	}
}
