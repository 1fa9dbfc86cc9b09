package ondisk

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"testing"
	"time"
)

const (
	goldenBallotFile = "ballot-v1.bin"
	goldenLeaderFile = "leader-v1.bin"
	goldenBallotSlot = 5
)

// goldenBallot is the ballot of ballot-v1.bin: slot 5, generation 4, in
// instance 9, having accepted a hand-over value naming slot 2.
func goldenBallot() Ballot {
	return Ballot{
		Version:    LeaseVersion,
		Index:      goldenBallotSlot,
		PoolUUID:   goldenPool,
		Generation: 4,
		Lver:       9,
		Mbal:       3*64 + goldenBallotSlot + 1,
		Bal:        2*64 + goldenBallotSlot + 1,
		Value:      Owner{Slot: 2, Generation: 0x0102030405060708, Name: "hv-node-02.example.com"},
		ValueFlags: ValueHandOver,
		Wall:       goldenWall,
	}
}

// goldenLeader is the leader record of leader-v1.bin: epoch 9, released
// by its owner for a named successor.
func goldenLeader() Leader {
	return Leader{
		Version:   LeaseVersion,
		Flags:     LeaderReleased | LeaderSuccessor,
		Epoch:     9,
		PoolUUID:  goldenPool,
		Owner:     Owner{Slot: 7, Generation: 3, Name: "hv-node-07.example.com"},
		Successor: Owner{Slot: 2, Generation: 0x0102030405060708, Name: "hv-node-02.example.com"},
		Wall:      goldenWall,
	}
}

func sameBallot(a, b Ballot) bool {
	if !a.Wall.Equal(b.Wall) {
		return false
	}
	a.Wall, b.Wall = time.Time{}, time.Time{}
	return a == b
}

func sameLeader(a, b Leader) bool {
	if !a.Wall.Equal(b.Wall) {
		return false
	}
	a.Wall, b.Wall = time.Time{}, time.Time{}
	return a == b
}

func TestGoldenBallot(t *testing.T) {
	b := goldenBallot()
	checkGolden(t, goldenBallotFile, b.Encode())
	got, st, why := DecodeBallot(readGolden(t, goldenBallotFile), goldenPool, goldenBallotSlot)
	if st != RecordOK || why != "" {
		t.Fatalf("DecodeBallot(golden) = %v (%q), want ok", st, why)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"Version", got.Version, uint16(1)},
		{"Index", got.Index, uint32(5)},
		{"PoolUUID", got.PoolUUID.String(), "5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e5f"},
		{"Generation", got.Generation, uint64(4)},
		{"Lver", got.Lver, uint64(9)},
		{"Mbal", got.Mbal, uint64(198)},
		{"Bal", got.Bal, uint64(134)},
		{"Value.Slot", got.Value.Slot, uint32(2)},
		{"Value.Generation", got.Value.Generation, uint64(0x0102030405060708)},
		{"Value.Name", got.Value.Name, "hv-node-02.example.com"},
		{"ValueFlags", got.ValueFlags, ValueHandOver},
		{"Wall", got.Wall.Format(time.RFC3339Nano), "2024-05-01T12:00:02.5Z"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("golden ballot %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if !sameBallot(got, b) {
		t.Errorf("golden ballot decodes to\n%+v\nwant\n%+v", got, b)
	}
}

func TestGoldenLeader(t *testing.T) {
	l := goldenLeader()
	checkGolden(t, goldenLeaderFile, l.Encode())
	got, st, why := DecodeLeader(readGolden(t, goldenLeaderFile), goldenPool)
	if st != RecordOK || why != "" {
		t.Fatalf("DecodeLeader(golden) = %v (%q), want ok", st, why)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"Version", got.Version, uint16(1)},
		{"Released()", got.Released(), true},
		{"HasSuccessor()", got.HasSuccessor(), true},
		{"Epoch", got.Epoch, uint64(9)},
		{"Owner", got.Owner.String(), "hv-node-07.example.com (slot 7, generation 3)"},
		{"Successor.Slot", got.Successor.Slot, uint32(2)},
		{"Successor.Generation", got.Successor.Generation, uint64(0x0102030405060708)},
		{"Successor.Name", got.Successor.Name, "hv-node-02.example.com"},
		{"Wall", got.Wall.Format(time.RFC3339Nano), "2024-05-01T12:00:02.5Z"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("golden leader %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if !sameLeader(got, l) {
		t.Errorf("golden leader decodes to\n%+v\nwant\n%+v", got, l)
	}
}

// TestBallotByteTable checks the golden ballot against the byte table in
// lease.go's comment, field by field.
func TestBallotByteTable(t *testing.T) {
	rows, _ := parseTable(t, "lease.go", "// Ballot byte layout.")
	checkContiguous(t, "ballot table", rows, RecordSize)
	rec := readGolden(t, goldenBallotFile)
	b := goldenBallot()
	want := map[string][]byte{
		`magic "HBBL"`:       []byte("HBBL"),
		"record version (1)": le16(1),
		"value flags (bit 0: proposed by the previous owner, a hand-over)":     le16(1),
		"slot index (the writer's slot)":                                       le32(5),
		"value: owner slot":                                                    le32(2),
		"pool UUID":                                                            goldenPool[:],
		"writer's generation":                                                  le64(4),
		"lver: the Paxos instance (the epoch being decided), >= 1":             le64(9),
		"mbal: the highest ballot started in instance lver, >= 1":              le64(b.Mbal),
		"bal: the ballot in which the value was accepted, 0 for none, <= mbal": le64(b.Bal),
		"value: owner generation":                                              le64(0x0102030405060708),
		"writer's wall clock (unix ns, for humans only)":                       le64(uint64(goldenWall.UnixNano())),
		"value: owner host name (NUL padded); empty iff bal is 0":              padded("hv-node-02.example.com", 64),
		"reserved, zero":                                                       make([]byte, 364),
		"CRC-32C (Castagnoli) of bytes 0..507":                                 le32(crc32.Checksum(rec[:508], testCastagnoli)),
	}
	checkRows(t, "ballot", rec, rows, want)
}

// TestLeaderByteTable does the same for the leader record.
func TestLeaderByteTable(t *testing.T) {
	rows, _ := parseTable(t, "lease.go", "// Leader byte layout.")
	checkContiguous(t, "leader table", rows, RecordSize)
	rec := readGolden(t, goldenLeaderFile)
	want := map[string][]byte{
		`magic "HBLD"`:       []byte("HBLD"),
		"record version (1)": le16(1),
		"flags (bit 0 released, bit 1 successor named; others zero)": le16(3),
		"epoch, >= 1":          le64(9),
		"pool UUID":            goldenPool[:],
		"owner slot":           le32(7),
		"successor slot":       le32(2),
		"owner generation":     le64(3),
		"successor generation": le64(0x0102030405060708),
		"writer's wall clock (unix ns, for humans only)":            le64(uint64(goldenWall.UnixNano())),
		"owner host name (NUL padded), not empty":                   padded("hv-node-07.example.com", 64),
		"successor host name (NUL padded); empty unless flag bit 1": padded("hv-node-02.example.com", 64),
		"reserved, zero":                       make([]byte, 316),
		"CRC-32C (Castagnoli) of bytes 0..507": le32(crc32.Checksum(rec[:508], testCastagnoli)),
	}
	checkRows(t, "leader", rec, rows, want)
}

func TestBallotRoundTrip(t *testing.T) {
	name64 := strings.Repeat("n", MaxHostName)
	variants := map[string]func(b *Ballot){
		"golden":            func(b *Ballot) {},
		"phase 1, no value": func(b *Ballot) { b.Bal, b.Value, b.ValueFlags = 0, Owner{}, 0 },
		"64-byte name":      func(b *Ballot) { b.Value.Name = name64 },
		"bal equals mbal":   func(b *Ballot) { b.Bal = b.Mbal },
		"zero wall":         func(b *Ballot) { b.Wall = time.Time{} },
		"wall now":          func(b *Ballot) { b.Wall = time.Now() },
		"max counters": func(b *Ballot) {
			b.Generation, b.Lver, b.Mbal, b.Bal = math.MaxUint64, math.MaxUint64, math.MaxUint64, math.MaxUint64
			b.Value.Slot, b.Value.Generation = math.MaxUint32, math.MaxUint64
		},
		"unknown value flags": func(b *Ballot) { b.ValueFlags = 0xfffe },
		"value names slot 0":  func(b *Ballot) { b.Value.Slot = 0; b.Value.Generation = 0 },
	}
	for name, f := range variants {
		for _, idx := range []int{0, 1, goldenBallotSlot, MaxSlots - 1} {
			b := goldenBallot()
			f(&b)
			b.Index = uint32(idx)
			rec := b.Encode()
			if len(rec) != RecordSize {
				t.Fatalf("Encode gives %d bytes", len(rec))
			}
			got, st, why := DecodeBallot(rec, goldenPool, idx)
			if st != RecordOK || why != "" {
				t.Fatalf("%s, slot %d: status %v (%q), want ok", name, idx, st, why)
			}
			if !sameBallot(got, b) {
				t.Fatalf("%s, slot %d: round trip\n got %+v\nwant %+v", name, idx, got, b)
			}
			if !bytes.Equal(got.Encode(), rec) {
				t.Fatalf("%s: Encode(Decode(b)) != b", name)
			}
		}
	}
}

func TestLeaderRoundTrip(t *testing.T) {
	variants := map[string]func(l *Leader){
		"golden (released for a successor)": func(l *Leader) {},
		"held": func(l *Leader) {
			l.Flags, l.Successor = 0, Owner{}
		},
		"released": func(l *Leader) { l.Flags, l.Successor = LeaderReleased, Owner{} },
		"epoch 1":  func(l *Leader) { l.Epoch = 1 },
		"max": func(l *Leader) {
			l.Epoch = math.MaxUint64
			l.Owner = Owner{Slot: math.MaxUint32, Generation: math.MaxUint64, Name: strings.Repeat("o", MaxHostName)}
			l.Successor = Owner{Slot: math.MaxUint32, Generation: math.MaxUint64, Name: strings.Repeat("s", MaxHostName)}
		},
		"zero wall": func(l *Leader) { l.Wall = time.Time{} },
	}
	for name, f := range variants {
		l := goldenLeader()
		f(&l)
		rec := l.Encode()
		got, st, why := DecodeLeader(rec, goldenPool)
		if st != RecordOK || why != "" {
			t.Fatalf("%s: status %v (%q), want ok", name, st, why)
		}
		if !sameLeader(got, l) {
			t.Fatalf("%s: round trip\n got %+v\nwant %+v", name, got, l)
		}
		if !bytes.Equal(got.Encode(), rec) {
			t.Fatalf("%s: Encode(Decode(b)) != b", name)
		}
		d := DecodeLeaderSector(append(rec, make([]byte, 4096-512)...), goldenPool)
		if !d.Usable() || d.Epoch() != l.Epoch {
			t.Fatalf("%s: DecodeLeaderSector of a 4096-byte sector = %+v", name, d)
		}
	}
}

func TestLeaseEncodeIntoOverwritesAndDoesNotAllocate(t *testing.T) {
	buf := bytes.Repeat([]byte{0xee}, 600)
	b := goldenBallot()
	b.EncodeInto(buf)
	if !bytes.Equal(buf[:RecordSize], b.Encode()) {
		t.Fatal("Ballot.EncodeInto differs from Encode")
	}
	if !bytes.Equal(buf[RecordSize:], bytes.Repeat([]byte{0xee}, 600-RecordSize)) {
		t.Fatal("Ballot.EncodeInto wrote past the record")
	}
	l := goldenLeader()
	l.EncodeInto(buf)
	if !bytes.Equal(buf[:RecordSize], l.Encode()) {
		t.Fatal("Leader.EncodeInto differs from Encode")
	}
	if n := testing.AllocsPerRun(100, func() { b.EncodeInto(buf) }); n != 0 {
		t.Errorf("Ballot.EncodeInto allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { l.EncodeInto(buf) }); n != 0 {
		t.Errorf("Leader.EncodeInto allocates %v times", n)
	}
}

// Names longer than their field are cut at the field, not written over
// the next one.
func TestLeaseEncodeTruncatesNames(t *testing.T) {
	long := strings.Repeat("x", 100)
	b := goldenBallot()
	b.Value.Name = long
	got, st, _ := DecodeBallot(b.Encode(), goldenPool, goldenBallotSlot)
	if st != RecordOK || got.Value.Name != long[:MaxHostName] {
		t.Errorf("ballot with a 100-byte name: %v, name %q", st, got.Value.Name)
	}
	l := goldenLeader()
	l.Owner.Name, l.Successor.Name = long, long
	gl, st, _ := DecodeLeader(l.Encode(), goldenPool)
	if st != RecordOK || gl.Owner.Name != long[:MaxHostName] || gl.Successor.Name != long[:MaxHostName] {
		t.Errorf("leader with 100-byte names: %v, %q, %q", st, gl.Owner.Name, gl.Successor.Name)
	}
}

func TestDecodeBallotBad(t *testing.T) {
	other := goldenMachine
	cases := []struct {
		name   string
		rec    func() []byte
		index  int
		status RecordStatus
		reason string
	}{
		{"short", func() []byte { return goldenBallot().Encode()[:511] }, goldenBallotSlot, RecordCorrupt, "short record"},
		{"nil", func() []byte { return nil }, goldenBallotSlot, RecordCorrupt, "short record"},
		{"zeroes", func() []byte { return make([]byte, 512) }, goldenBallotSlot, RecordUnused, ""},
		{"slot magic", func() []byte { return goldenSlot().Encode() }, goldenBallotSlot, RecordCorrupt, "bad magic"},
		{"leader magic", func() []byte { return goldenLeader().Encode() }, goldenBallotSlot, RecordCorrupt, "bad magic"},
		{"bit flip", func() []byte { return flipBit(goldenBallot().Encode(), 8*bOffMbal+2) }, goldenBallotSlot, RecordCorrupt, "checksum mismatch"},
		{"torn: new first half, old second half", func() []byte {
			a, b := goldenBallot(), goldenBallot()
			b.Mbal += 64
			b.Bal = b.Mbal
			return append(b.Encode()[:256], a.Encode()[256:]...)
		}, goldenBallotSlot, RecordCorrupt, "checksum mismatch"},
		{"version 0", func() []byte { b := goldenBallot(); b.Version = 0; return b.Encode() }, goldenBallotSlot, RecordCorrupt, "version 0"},
		{"version 2", func() []byte { b := goldenBallot(); b.Version = 2; return b.Encode() }, goldenBallotSlot, RecordNewer, "version 2"},
		{"other pool", func() []byte { b := goldenBallot(); b.PoolUUID = other; return b.Encode() }, goldenBallotSlot, RecordForeign, "of pool"},
		{"other slot", func() []byte { return goldenBallot().Encode() }, 6, RecordMisplaced, "says slot 5"},
		{"lver 0", func() []byte { b := goldenBallot(); b.Lver = 0; return b.Encode() }, goldenBallotSlot, RecordCorrupt, "lver 0"},
		{"mbal 0", func() []byte {
			b := goldenBallot()
			b.Mbal, b.Bal, b.Value, b.ValueFlags = 0, 0, Owner{}, 0
			return b.Encode()
		}, goldenBallotSlot, RecordCorrupt, "mbal 0"},
		{"bal above mbal", func() []byte { b := goldenBallot(); b.Bal = b.Mbal + 1; return b.Encode() }, goldenBallotSlot, RecordCorrupt, "above mbal"},
		{"value without bal", func() []byte { b := goldenBallot(); b.Bal = 0; return b.Encode() }, goldenBallotSlot, RecordCorrupt, "value but bal 0"},
		{"flags without bal", func() []byte {
			b := goldenBallot()
			b.Bal, b.Value = 0, Owner{}
			return b.Encode()
		}, goldenBallotSlot, RecordCorrupt, "value but bal 0"},
		{"bal without value name", func() []byte { b := goldenBallot(); b.Value.Name = ""; return b.Encode() }, goldenBallotSlot, RecordCorrupt, "no value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, st, why := DecodeBallot(c.rec(), goldenPool, c.index)
			if st != c.status {
				t.Errorf("status %v (%q), want %v", st, why, c.status)
			}
			if !strings.Contains(why, c.reason) {
				t.Errorf("reason %q does not mention %q", why, c.reason)
			}
			if st != RecordOK && st != RecordUnused && why == "" {
				t.Errorf("status %v without a reason", st)
			}
		})
	}
}

func TestDecodeLeaderBad(t *testing.T) {
	cases := []struct {
		name   string
		rec    func() []byte
		status RecordStatus
		reason string
	}{
		{"short", func() []byte { return goldenLeader().Encode()[:100] }, RecordCorrupt, "short record"},
		{"zeroes", func() []byte { return make([]byte, 512) }, RecordUnused, ""},
		{"ballot magic", func() []byte { return goldenBallot().Encode() }, RecordCorrupt, "bad magic"},
		{"header", func() []byte { return goldenHeader(t).Encode() }, RecordCorrupt, "bad magic"},
		{"bit flip", func() []byte { return flipBit(goldenLeader().Encode(), 8*lOffEpoch) }, RecordCorrupt, "checksum mismatch"},
		{"version 0", func() []byte { l := goldenLeader(); l.Version = 0; return l.Encode() }, RecordCorrupt, "version 0"},
		{"version 9", func() []byte { l := goldenLeader(); l.Version = 9; return l.Encode() }, RecordNewer, "version 9"},
		{"other pool", func() []byte { l := goldenLeader(); l.PoolUUID = goldenBoot; return l.Encode() }, RecordForeign, "of pool"},
		{"epoch 0", func() []byte { l := goldenLeader(); l.Epoch = 0; return l.Encode() }, RecordCorrupt, "epoch 0"},
		{"unknown flag", func() []byte { l := goldenLeader(); l.Flags |= 1 << 7; return l.Encode() }, RecordCorrupt, "unknown flags 0x0080"},
		{"no owner name", func() []byte { l := goldenLeader(); l.Owner.Name = ""; return l.Encode() }, RecordCorrupt, "empty owner name"},
		{"successor not released", func() []byte { l := goldenLeader(); l.Flags = LeaderSuccessor; return l.Encode() }, RecordCorrupt, "not released"},
		{"successor without name", func() []byte { l := goldenLeader(); l.Successor.Name = ""; return l.Encode() }, RecordCorrupt, "without a name"},
		{"successor fields without flag", func() []byte { l := goldenLeader(); l.Flags = LeaderReleased; return l.Encode() }, RecordCorrupt, "no successor flag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, st, why := DecodeLeader(c.rec(), goldenPool)
			if st != c.status {
				t.Errorf("status %v (%q), want %v", st, why, c.status)
			}
			if !strings.Contains(why, c.reason) {
				t.Errorf("reason %q does not mention %q", why, c.reason)
			}
			d := DecodeLeaderSector(c.rec(), goldenPool)
			if d.Usable() != (c.status == RecordUnused) {
				t.Errorf("Usable() = %v for status %v", d.Usable(), c.status)
			}
			if d.Usable() && d.Epoch() != 0 {
				t.Errorf("unused leader sector has epoch %d", d.Epoch())
			}
		})
	}
}

// Every single-bit flip of a valid record is caught, never decoded as a
// valid record with other contents.
func TestLeaseBitFlips(t *testing.T) {
	b := goldenBallot().Encode()
	l := goldenLeader().Encode()
	for bit := 0; bit < 8*RecordSize; bit++ {
		if _, st, _ := DecodeBallot(flipBit(b, bit), goldenPool, goldenBallotSlot); st == RecordOK {
			t.Fatalf("ballot with bit %d flipped decodes ok", bit)
		}
		if _, st, _ := DecodeLeader(flipBit(l, bit), goldenPool); st == RecordOK {
			t.Fatalf("leader with bit %d flipped decodes ok", bit)
		}
	}
}

func TestDecodeBallots(t *testing.T) {
	for _, ss := range SectorSizes {
		h, err := NewHeader(goldenPool, ss, 6, mustDefault(), "", goldenCreated)
		if err != nil {
			t.Fatal(err)
		}
		if h.BallotsLen() != 6*ss {
			t.Fatalf("BallotsLen = %d, want %d", h.BallotsLen(), 6*ss)
		}
		if got, want := h.BallotOffsetOf(2), int64(h.BallotOffset)+2*int64(ss); got != want {
			t.Fatalf("BallotOffsetOf(2) = %d, want %d", got, want)
		}
		if h.BallotOffsetOf(int(h.SlotCount)-1)+int64(ss) != int64(h.AreaSize) {
			t.Fatalf("the last ballot block does not end the area")
		}
		raw := make([]byte, h.BallotsLen())
		put := func(i int, rec []byte) { copy(raw[i*ss:], rec) }
		b := goldenBallot()
		for _, i := range []int{0, 3} {
			b.Index = uint32(i)
			put(i, b.Encode())
		}
		b.Index = 1
		put(2, b.Encode()) // misplaced
		put(4, flipBit(b.Encode(), 100))
		if ss > RecordSize {
			// Bytes after the record in the sector are not read.
			raw[0*ss+RecordSize] = 0xff
		}
		got := DecodeBallots(raw, h)
		want := []RecordStatus{RecordOK, RecordUnused, RecordMisplaced, RecordOK, RecordCorrupt, RecordUnused}
		for i, w := range want {
			if got[i].Index != i || got[i].Status != w {
				t.Errorf("%d-byte sectors: block %d: index %d status %v (%s), want %v", ss, i, got[i].Index, got[i].Status, got[i].Reason, w)
			}
		}
		if got[3].Ballot.Index != 3 || got[3].Ballot.Lver != 9 {
			t.Errorf("block 3 decoded as %+v", got[3].Ballot)
		}
		// A short region: the missing blocks are corrupt, not a panic.
		short := DecodeBallotsInto(got, raw[:2*ss+100], h)
		if &short[0] != &got[0] {
			t.Errorf("DecodeBallotsInto did not reuse the slice")
		}
		if short[2].Status != RecordCorrupt || short[3].Status != RecordCorrupt || short[5].Status != RecordCorrupt {
			t.Errorf("short region: %v %v %v", short[2].Status, short[3].Status, short[5].Status)
		}
	}
}

func TestRecordStatusText(t *testing.T) {
	for s := RecordOK; s <= RecordNewer; s++ {
		b, _ := s.MarshalText()
		var back RecordStatus
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v: round trip gives %v, %v", s, back, err)
		}
	}
	if got := RecordStatus(42).String(); got != "status(42)" {
		t.Errorf("String of an unknown status = %q", got)
	}
	var s RecordStatus
	if err := s.UnmarshalText([]byte("fine")); err == nil {
		t.Error("UnmarshalText accepted an unknown status")
	}
}

func TestOwner(t *testing.T) {
	a := Owner{Slot: 3, Generation: 2, Name: "a"}
	if !a.Same(Owner{Slot: 3, Generation: 2, Name: "b"}) {
		t.Error("Same compares names")
	}
	if a.Same(Owner{Slot: 3, Generation: 3, Name: "a"}) || a.Same(Owner{Slot: 4, Generation: 2, Name: "a"}) {
		t.Error("Same ignores slot or generation")
	}
	if (Owner{}).String() != "nobody" || !(Owner{}).IsZero() || a.IsZero() {
		t.Error("zero owner")
	}
	if got := fmt.Sprint(a); got != "a (slot 3, generation 2)" {
		t.Errorf("String = %q", got)
	}
}

func FuzzDecodeBallot(f *testing.F) {
	g := goldenBallot()
	seeds := [][]byte{g.Encode(), {}, make([]byte, 512), goldenLeader().Encode(), goldenSlot().Encode()}
	p1 := g
	p1.Bal, p1.Value, p1.ValueFlags = 0, Owner{}, 0
	seeds = append(seeds, p1.Encode())
	for _, s := range seeds {
		f.Add(s, uint16(goldenBallotSlot), false)
		f.Add(s, uint16(goldenBallotSlot), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, index uint16, resealIt bool) {
		b := data
		if resealIt && len(b) >= RecordSize {
			b = reseal(bytes.Clone(b))
		}
		x, st, why := DecodeBallot(b, goldenPool, int(index))
		if st != RecordOK {
			if st != RecordUnused && why == "" {
				t.Fatalf("status %v without a reason", st)
			}
			return
		}
		if x.Lver == 0 || x.Mbal == 0 || x.Bal > x.Mbal || (x.Bal == 0) != (x.Value.Name == "") {
			t.Fatalf("decoded an inconsistent ballot as ok: %+v", x)
		}
		// A valid record survives a round trip once its reserved bytes
		// and the bytes after the name's first NUL are zeroed.
		again, st2, _ := DecodeBallot(x.Encode(), goldenPool, int(index))
		if st2 != RecordOK || !sameBallot(again, x) {
			t.Fatalf("re-encoded ballot decodes as %v %+v, want %+v", st2, again, x)
		}
	})
}

func FuzzDecodeLeader(f *testing.F) {
	g := goldenLeader()
	held := g
	held.Flags, held.Successor = 0, Owner{}
	for _, s := range [][]byte{g.Encode(), held.Encode(), {}, make([]byte, 512), goldenBallot().Encode()} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, resealIt bool) {
		b := data
		if resealIt && len(b) >= RecordSize {
			b = reseal(bytes.Clone(b))
		}
		l, st, why := DecodeLeader(b, goldenPool)
		if st != RecordOK {
			if st != RecordUnused && why == "" {
				t.Fatalf("status %v without a reason", st)
			}
			return
		}
		if l.Epoch == 0 || l.Owner.Name == "" || (l.HasSuccessor() && !l.Released()) {
			t.Fatalf("decoded an inconsistent leader record as ok: %+v", l)
		}
		again, st2, _ := DecodeLeader(l.Encode(), goldenPool)
		if st2 != RecordOK || !sameLeader(again, l) {
			t.Fatalf("re-encoded leader decodes as %v %+v, want %+v", st2, again, l)
		}
	})
}

func BenchmarkBallotEncode(b *testing.B) {
	x := goldenBallot()
	buf := make([]byte, RecordSize)
	b.ReportAllocs()
	for b.Loop() {
		x.EncodeInto(buf)
	}
}

func BenchmarkBallotDecode(b *testing.B) {
	rec := goldenBallot().Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, st, _ := DecodeBallot(rec, goldenPool, goldenBallotSlot); st != RecordOK {
			b.Fatal(st)
		}
	}
}

func BenchmarkDecodeBallots64(b *testing.B) {
	h, err := NewHeader(goldenPool, 512, 64, mustDefault(), "", goldenCreated)
	if err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, h.BallotsLen())
	x := goldenBallot()
	for i := 0; i < 64; i += 2 {
		x.Index = uint32(i)
		copy(raw[i*512:], x.Encode())
	}
	dst := DecodeBallots(raw, h)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		dst = DecodeBallotsInto(dst, raw, h)
	}
}
