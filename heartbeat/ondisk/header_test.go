package ondisk

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/timing"
)

func TestHeaderRoundTrip(t *testing.T) {
	created := []time.Time{
		{},
		goldenCreated,
		time.Date(1965, 3, 1, 0, 0, 0, 1, time.UTC), // before the epoch
		time.Date(2200, 1, 1, 0, 0, 0, 0, time.FixedZone("X", 3600)),
		time.Now(), // carries a monotonic reading, which is dropped
	}
	for _, prof := range timing.ProfileNames() {
		p, err := timing.Profile(prof)
		if err != nil {
			t.Fatal(err)
		}
		for _, ss := range SectorSizes {
			for _, n := range []int{MinSlots, 64, 2000, MaxSlots} {
				for i, c := range created {
					for _, name := range []string{"", prof, "exactly16bytes!!"} {
						pool := NewUUID()
						h, err := NewHeader(pool, ss, n, p, name, c)
						if err != nil {
							t.Fatalf("NewHeader(%d, %d, %s, %q): %v", ss, n, prof, name, err)
						}
						b := h.Encode()
						if len(b) != RecordSize {
							t.Fatalf("Encode gives %d bytes", len(b))
						}
						got, err := DecodeHeader(b)
						if err != nil {
							t.Fatalf("DecodeHeader(Encode(%+v)): %v", h, err)
						}
						if !sameHeader(got, h) {
							t.Fatalf("round trip (sector %d, %d slots, %s, created #%d, name %q):\n got %+v\nwant %+v", ss, n, prof, i, name, got, h)
						}
						if got.CreatedWall.Location() != time.UTC {
							t.Fatalf("decoded CreatedWall in %v, want UTC", got.CreatedWall.Location())
						}
						// Re-encoding the decoded header gives the same bytes.
						if !bytes.Equal(got.Encode(), b) {
							t.Fatalf("Encode(Decode(b)) != b")
						}
					}
				}
			}
		}
	}
}

// The decoder accepts a longer input (a whole sector) and reads only its
// first 512 bytes.
func TestHeaderDecodeSector(t *testing.T) {
	h := goldenHeader(t)
	sector := bytes.Repeat([]byte{0xa5}, 4096)
	copy(sector, h.Encode())
	got, err := DecodeHeader(sector)
	if err != nil {
		t.Fatal(err)
	}
	if !sameHeader(got, h) {
		t.Errorf("got %+v, want %+v", got, h)
	}
}

func TestNewHeaderLayout(t *testing.T) {
	p := defaultTiming(t)
	tests := []struct {
		ss, n                           int
		leader, slots, ballots, area    uint64
		slotOff0, slotOffLast, slotsLen int64
	}{
		{512, 2, 512, 4096, 5120, 6144, 4096, 4608, 1024},
		{512, 64, 512, 4096, 36864, 69632, 4096, 4096 + 63*512, 64 * 512},
		{4096, 2000, 4096, 32768, 32768 + 2000*4096, (8 + 4000) * 4096, 32768, 32768 + 1999*4096, 2000 * 4096},
		{4096, 4096, 4096, 32768, 32768 + 4096*4096, (8 + 8192) * 4096, 32768, 32768 + 4095*4096, 4096 * 4096},
	}
	for _, tt := range tests {
		h, err := NewHeader(goldenPool, tt.ss, tt.n, p, "default", goldenCreated)
		if err != nil {
			t.Fatalf("NewHeader(%d, %d): %v", tt.ss, tt.n, err)
		}
		if h.FormatMajor != FormatMajor || h.FormatMinor != FormatMinor {
			t.Errorf("format %d.%d, want %d.%d", h.FormatMajor, h.FormatMinor, FormatMajor, FormatMinor)
		}
		if h.LeaderOffset != tt.leader || h.SlotsOffset != tt.slots || h.BallotOffset != tt.ballots || h.AreaSize != tt.area {
			t.Errorf("NewHeader(%d, %d): leader %d slots %d ballots %d area %d, want %d %d %d %d",
				tt.ss, tt.n, h.LeaderOffset, h.SlotsOffset, h.BallotOffset, h.AreaSize, tt.leader, tt.slots, tt.ballots, tt.area)
		}
		if got := h.SlotOffset(0); got != tt.slotOff0 {
			t.Errorf("SlotOffset(0) = %d, want %d", got, tt.slotOff0)
		}
		if got := h.SlotOffset(tt.n - 1); got != tt.slotOffLast {
			t.Errorf("SlotOffset(%d) = %d, want %d", tt.n-1, got, tt.slotOffLast)
		}
		if got := h.SlotsLen(); int64(got) != tt.slotsLen {
			t.Errorf("SlotsLen() = %d, want %d", got, tt.slotsLen)
		}
	}
}

func TestNewHeaderErrors(t *testing.T) {
	p := defaultTiming(t)
	bad := p
	bad.HostDead = 20 * time.Second
	tests := []struct {
		name    string
		ss, n   int
		t       timing.Params
		profile string
		want    string
	}{
		{"sector 1024", 1024, 64, p, "", "sector size 1024"},
		{"sector 0", 0, 64, p, "", "sector size 0"},
		{"sector 520", 520, 64, p, "", "sector size 520"},
		{"1 slot", 512, 1, p, "", "slot count 1"},
		{"0 slots", 512, 0, p, "", "slot count 0"},
		{"negative slots", 512, -5, p, "", "slot count -5"},
		{"4097 slots", 512, MaxSlots + 1, p, "", "slot count 4097"},
		{"long profile", 512, 64, p, "seventeen-bytes!!", "longer than 16 bytes"},
		{"bad timing", 512, 64, bad, "", "host_dead > renewal_fail + watchdog + margin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := NewHeader(goldenPool, tt.ss, tt.n, tt.t, tt.profile, goldenCreated)
			if err == nil {
				t.Fatalf("NewHeader = %+v, nil; want error containing %q", h, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if h != (Header{}) {
				t.Errorf("NewHeader returned %+v with its error", h)
			}
		})
	}
	var re *timing.RuleError
	if _, err := NewHeader(goldenPool, 512, 64, bad, "", goldenCreated); !errors.As(err, &re) {
		t.Errorf("NewHeader with bad timing: %v is not a *timing.RuleError", err)
	}
}

func TestHeaderDecodeShortAndZero(t *testing.T) {
	for _, n := range []int{0, 1, 8, 256, 511} {
		b := goldenHeader(t).Encode()[:n]
		_, err := DecodeHeader(b)
		if !errors.Is(err, ErrShort) {
			t.Errorf("DecodeHeader(%d bytes) = %v, want ErrShort", n, err)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("got %d bytes", n)) {
			t.Errorf("error %q does not say how many bytes were found", err)
		}
	}
	if _, err := DecodeHeader(nil); !errors.Is(err, ErrShort) {
		t.Errorf("DecodeHeader(nil) = %v, want ErrShort", err)
	}
	for _, n := range []int{512, 4096} {
		if _, err := DecodeHeader(make([]byte, n)); !errors.Is(err, ErrZeroed) {
			t.Errorf("DecodeHeader(%d zero bytes) = %v, want ErrZeroed", n, err)
		}
	}
	// Zeroes in the first 512 bytes are an unformatted area even when
	// something follows.
	b := make([]byte, 1024)
	b[600] = 1
	if _, err := DecodeHeader(b); !errors.Is(err, ErrZeroed) {
		t.Errorf("DecodeHeader(zero record, data after it) = %v, want ErrZeroed", err)
	}
}

func TestHeaderDecodeForeign(t *testing.T) {
	tests := []struct {
		name  string
		first string // the record's first bytes
		shown string // how the error shows them
	}{
		{"ELF binary", "\x7fELF\x02\x01\x01\x00", `"\x7fELF\x02\x01\x01\x00"`},
		{"text file", "hello, world\n", `"hello, w"`},
		{"older magic", "HBFENCE0", `"HBFENCE0"`},
		{"lower case", "hbfence1", `"hbfence1"`},
		{"quote and backslash", "a\"b\\c\xffde", `"a\"b\\c\xffde"`},
		{"one byte", "\x01", `"\x01\x00\x00\x00\x00\x00\x00\x00"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := make([]byte, RecordSize)
			copy(b, tt.first)
			_, err := DecodeHeader(b)
			if !errors.Is(err, ErrNotHbfence) {
				t.Fatalf("DecodeHeader = %v, want ErrNotHbfence", err)
			}
			if !strings.Contains(err.Error(), "first bytes are "+tt.shown) {
				t.Errorf("error %q does not show the bytes found as %s", err, tt.shown)
			}
			if !strings.Contains(err.Error(), `"HBFENCE1"`) {
				t.Errorf("error %q does not show the expected magic", err)
			}
		})
	}
	// A slot record is not a header.
	if _, err := DecodeHeader(goldenSlot().Encode()); !errors.Is(err, ErrNotHbfence) {
		t.Errorf("DecodeHeader(slot record) = %v, want ErrNotHbfence", err)
	}
	// All ones.
	if _, err := DecodeHeader(bytes.Repeat([]byte{0xff}, 512)); !errors.Is(err, ErrNotHbfence) {
		t.Errorf("DecodeHeader(all 0xff) = %v, want ErrNotHbfence", err)
	}
}

// Every single-bit flip of a valid header is detected: in the magic as
// "not hbfence", anywhere else by the checksum.
func TestHeaderBitFlips(t *testing.T) {
	good := goldenHeader(t).Encode()
	for bit := 0; bit < RecordSize*8; bit++ {
		b := flipBit(good, bit)
		_, err := DecodeHeader(b)
		switch {
		case bit < 64:
			if !errors.Is(err, ErrNotHbfence) {
				t.Fatalf("bit %d (magic) flipped: %v, want ErrNotHbfence", bit, err)
			}
		case bit/8 >= hOffMajor && bit/8 < hOffMajor+2 && binaryMajor(b) > FormatMajor:
			// The major version now reads as newer: the decoder says
			// so, and that the checksum fails.
			if !errors.Is(err, ErrNewerFormat) || !errors.Is(err, ErrChecksum) {
				t.Fatalf("bit %d (major) flipped: %v, want ErrNewerFormat and ErrChecksum", bit, err)
			}
		default:
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("bit %d flipped: %v, want ErrChecksum", bit, err)
			}
			if errors.Is(err, ErrNewerFormat) {
				t.Fatalf("bit %d flipped: %v also says newer format", bit, err)
			}
		}
	}
}

func binaryMajor(b []byte) uint16 { return uint16(b[hOffMajor]) | uint16(b[hOffMajor+1])<<8 }

// A torn header, the start of one write and the rest of an older one, is
// a checksum error unless it happens to equal one of the two records.
func TestHeaderTorn(t *testing.T) {
	oldH := goldenHeader(t)
	newH := oldH
	newH.PoolUUID = NewUUID()
	newH.Profile = "fast"
	newH.Timing, _ = timing.Profile("fast")
	newH.CreatedWall = goldenCreated.Add(time.Hour)
	old, nw := oldH.Encode(), newH.Encode()
	first, last := -1, -1
	for i := range old {
		if old[i] != nw[i] {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	for k := 1; k < RecordSize; k++ {
		torn := append(bytes.Clone(nw[:k]), old[k:]...)
		h, err := DecodeHeader(torn)
		switch {
		case k <= first:
			if err != nil || !sameHeader(h, oldH) {
				t.Fatalf("tear at %d (no new byte yet): %v", k, err)
			}
		case k > last:
			if err != nil || !sameHeader(h, newH) {
				t.Fatalf("tear at %d (all new bytes): %v", k, err)
			}
		default:
			if !errors.Is(err, ErrChecksum) {
				t.Fatalf("tear at %d: DecodeHeader = %+v, %v; want ErrChecksum", k, h, err)
			}
		}
	}
	// The half-and-half case the design names.
	torn := append(bytes.Clone(nw[:256]), old[256:]...)
	if _, err := DecodeHeader(torn); !errors.Is(err, ErrChecksum) {
		t.Errorf("first half new, second half old: %v, want ErrChecksum", err)
	}
}

func TestHeaderNewerFormat(t *testing.T) {
	for _, major := range []uint16{2, 3, math.MaxUint16} {
		h := goldenHeader(t)
		h.FormatMajor = major
		h.FormatMinor = 4
		_, err := DecodeHeader(h.Encode())
		if !errors.Is(err, ErrNewerFormat) {
			t.Fatalf("major %d: %v, want ErrNewerFormat", major, err)
		}
		msg := err.Error()
		for _, want := range []string{"upgrade", fmt.Sprintf("%d.4", major), "reads format 1"} {
			if !strings.Contains(msg, want) {
				t.Errorf("major %d: error %q does not contain %q", major, msg, want)
			}
		}
		if errors.Is(err, ErrChecksum) {
			t.Errorf("major %d with a good checksum: %v also says checksum", major, err)
		}
	}

	// A newer format may lay out the rest differently: the version is
	// judged before the layout.
	h := goldenHeader(t)
	h.FormatMajor = 2
	h.SectorSize = 8192
	h.SlotCount = 100000
	if _, err := DecodeHeader(h.Encode()); !errors.Is(err, ErrNewerFormat) {
		t.Errorf("major 2 with a layout format 1 cannot read: %v, want ErrNewerFormat", err)
	}

	// ... and may checksum differently (here: a 4096-byte record with
	// its CRC elsewhere). Still "newer format", not only "corrupt".
	b := h.Encode()
	b[hOffRecSize], b[hOffRecSize+1] = 0x00, 0x10
	b[508] ^= 0xff
	_, err := DecodeHeader(b)
	if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("major 2 whose checksum is not format 1's: %v, want ErrNewerFormat saying upgrade", err)
	}
}

func TestHeaderOlderAndMinorVersions(t *testing.T) {
	// Format 0 is written by no hbfence.
	h := goldenHeader(t)
	h.FormatMajor = 0
	_, err := DecodeHeader(h.Encode())
	if err == nil || !strings.Contains(err.Error(), "format version 0") {
		t.Errorf("major 0: %v, want an error naming version 0", err)
	}
	if errors.Is(err, ErrNewerFormat) {
		t.Errorf("major 0 reported as newer: %v", err)
	}

	// A newer minor version with fields in the reserved space stays
	// readable; the reserved bytes are not part of the Header.
	h = goldenHeader(t)
	h.FormatMinor = 9
	b := h.Encode()
	for i := hOffProfile + profileLen; i < offCRC; i++ {
		b[i] = byte(i)
	}
	got, err := DecodeHeader(reseal(b))
	if err != nil {
		t.Fatalf("minor 9 with reserved bytes used: %v", err)
	}
	if !sameHeader(got, h) {
		t.Errorf("minor 9: got %+v, want %+v", got, h)
	}
}

func TestHeaderRecordSizeField(t *testing.T) {
	for _, rs := range []byte{0, 1, 4} { // 0, 256, 1024 as the field's second byte
		b := goldenHeader(t).Encode()
		b[hOffRecSize], b[hOffRecSize+1] = 0, rs
		_, err := DecodeHeader(reseal(b))
		if err == nil || !strings.Contains(err.Error(), "record size") {
			t.Errorf("record size %d: %v, want an error naming the record size", int(rs)<<8, err)
		}
	}
}

// Header layout errors: each case changes a valid header, encodes it with
// a good checksum, and expects an error that names what is wrong.
func TestHeaderLayoutErrors(t *testing.T) {
	const max64 = math.MaxUint64
	tests := []struct {
		name string
		f    func(h *Header)
		want string
	}{
		{"sector size 1024", func(h *Header) { h.SectorSize = 1024 }, "sector_size is 1024"},
		{"sector size 0", func(h *Header) { h.SectorSize = 0 }, "sector_size is 0"},
		{"sector size 8192", func(h *Header) { h.SectorSize = 8192 }, "sector_size is 8192"},
		{"slot count 0", func(h *Header) { h.SlotCount = 0 }, "slot_count is 0"},
		{"slot count 1", func(h *Header) { h.SlotCount = 1 }, "slot_count is 1"},
		{"slot count 4097", func(h *Header) { h.SlotCount = MaxSlots + 1 }, "slot_count is 4097"},
		{"slot count 2^32-1", func(h *Header) { h.SlotCount = math.MaxUint32 }, "slot_count is 4294967295"},
		{"leader over header", func(h *Header) { h.LeaderOffset = 0 }, "leader_offset is 0"},
		{"leader unaligned", func(h *Header) { h.LeaderOffset = 513 }, "leader_offset is 513"},
		{"slots unaligned", func(h *Header) { h.SlotsOffset = 4097 }, "slots_offset is 4097"},
		{"ballots unaligned", func(h *Header) { h.BallotOffset++ }, "ballots_offset is 36865"},
		{"slots over leader", func(h *Header) { h.SlotsOffset = h.LeaderOffset }, "regions overlap"},
		{"slots before leader", func(h *Header) { h.LeaderOffset = 8 * 512; h.SlotsOffset = 512 }, "regions overlap"},
		{"ballots over slots", func(h *Header) { h.BallotOffset = h.SlotsOffset + 63*512 }, "regions overlap"},
		{"ballots before slots", func(h *Header) { h.BallotOffset = 2 * 512 }, "regions overlap"},
		{"area one byte short", func(h *Header) { h.AreaSize-- }, "ballots_offset is 36864: not sector aligned or outside the area of 69631 bytes"},
		{"area one sector short", func(h *Header) { h.AreaSize -= 512 }, "outside the area of 69120 bytes"},
		{"area size 0", func(h *Header) { h.AreaSize = 0 }, "leader_offset is 512: not sector aligned or outside the area of 0 bytes"},
		{"area holds only leader and slots", func(h *Header) { h.AreaSize = h.BallotOffset }, "ballots_offset"},
		{"area beyond int64", func(h *Header) { h.AreaSize = max64 }, "area_size"},
		{"area 2^63", func(h *Header) { h.AreaSize = 1 << 63 }, "area_size"},
		// Offsets that wrap around 2^64 when the region length is
		// added must not come back inside the area.
		{"leader wraps", func(h *Header) { h.LeaderOffset = max64 - 511 }, "leader_offset is 18446744073709551104"},
		{"slots wrap", func(h *Header) { h.SlotsOffset = max64 - 64*512 + 1 }, "slots_offset"},
		{"ballots wrap", func(h *Header) { h.BallotOffset = max64 - 64*512 + 1 }, "ballots_offset"},
		{"slots beyond area", func(h *Header) { h.SlotsOffset = h.AreaSize + 512 }, "slots_offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := goldenHeader(t)
			tt.f(&h)
			got, err := DecodeHeader(h.Encode())
			if err == nil {
				t.Fatalf("DecodeHeader(%+v) = %+v, nil; want an error containing %q", h, got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			for _, sentinel := range []error{ErrChecksum, ErrNewerFormat, ErrNotHbfence, ErrZeroed, ErrShort} {
				if errors.Is(err, sentinel) {
					t.Errorf("layout error %q is also %v", err, sentinel)
				}
			}
			if got != (Header{}) {
				t.Errorf("DecodeHeader returned %+v with its error", got)
			}
		})
	}

	// An area larger than needed, and regions with gaps between them,
	// are a layout a later format may write: accepted.
	h := goldenHeader(t)
	h.AreaSize += 1 << 20
	h.BallotOffset += 4096
	if _, err := DecodeHeader(h.Encode()); err != nil {
		t.Errorf("gaps and a larger area: %v", err)
	}
}

// A header whose timing breaks a rule does not decode, and the error is
// the rule's, so tools can name it.
func TestHeaderTimingRule(t *testing.T) {
	tests := []struct {
		f    func(p *timing.Params)
		rule string
	}{
		{func(p *timing.Params) { p.HostDead = 26 * time.Second }, "host_dead > renewal_fail + watchdog + margin"},
		{func(p *timing.Params) { p.RenewalFail = 14 * time.Second }, "renewal_fail >= 3 × io_timeout"},
		{func(p *timing.Params) { p.Interval = 5 * time.Second }, "interval < io_timeout"},
		{func(p *timing.Params) { p.Watchdog = 0 }, "watchdog between 10ms and 1h0m0s"},
		// 2^63 ns and more read back as a negative duration.
		{func(p *timing.Params) { p.HostDead = math.MinInt64 }, "host_dead between 10ms and 1h0m0s"},
	}
	for _, tt := range tests {
		h := goldenHeader(t)
		tt.f(&h.Timing)
		_, err := DecodeHeader(h.Encode())
		var re *timing.RuleError
		if !errors.As(err, &re) {
			t.Errorf("timing %v: %v, want a *timing.RuleError", h.Timing, err)
			continue
		}
		if re.Rule != tt.rule {
			t.Errorf("timing %v: rule %q, want %q", h.Timing, re.Rule, tt.rule)
		}
		if !strings.Contains(err.Error(), "header timing") {
			t.Errorf("error %q does not say it is the header's timing", err)
		}
	}
}
