package ondisk

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ondisk from the current encoder")

// goldenDir is the repository's testdata/ondisk.
var goldenDir = filepath.Join("..", "..", "testdata", "ondisk")

const (
	goldenHeaderFile = "header-v1.bin"
	goldenSlotFile   = "slot-v1.bin"
)

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatalf("%v (run go test ./heartbeat/ondisk -run Golden -update to create it)", err)
	}
	return b
}

// checkGolden compares got with the golden file, byte for byte, or
// rewrites the file under -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
	want := readGolden(t, name)
	if len(got) != len(want) {
		t.Fatalf("%s: encoder gives %d bytes, golden file has %d", name, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: first difference at byte %d: encoder gives %#02x, golden file has %#02x\n"+
				"the on-storage format changed: bump the format version, or run with -update if the change is intended and compatible",
				name, i, got[i], want[i])
		}
	}
}

func TestGoldenHeader(t *testing.T) {
	h := goldenHeader(t)
	checkGolden(t, goldenHeaderFile, h.Encode())

	// Decode the golden file and check every field against literal
	// values, not against what NewHeader computes.
	got, err := DecodeHeader(readGolden(t, goldenHeaderFile))
	if err != nil {
		t.Fatalf("DecodeHeader(golden): %v", err)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"FormatMajor", got.FormatMajor, uint16(1)},
		{"FormatMinor", got.FormatMinor, uint16(0)},
		{"PoolUUID", got.PoolUUID.String(), "5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e5f"},
		{"SectorSize", got.SectorSize, uint32(512)},
		{"SlotCount", got.SlotCount, uint32(64)},
		{"LeaderOffset", got.LeaderOffset, uint64(512)},
		{"SlotsOffset", got.SlotsOffset, uint64(8 * 512)},
		{"BallotOffset", got.BallotOffset, uint64((8 + 64) * 512)},
		{"AreaSize", got.AreaSize, uint64((8 + 2*64) * 512)},
		{"Timing.Interval", got.Timing.Interval.String(), "2s"},
		{"Timing.IOTimeout", got.Timing.IOTimeout.String(), "5s"},
		{"Timing.RenewalFail", got.Timing.RenewalFail.String(), "15s"},
		{"Timing.Watchdog", got.Timing.Watchdog.String(), "10s"},
		{"Timing.HostDead", got.Timing.HostDead.String(), "27s"},
		{"Profile", got.Profile, "default"},
		{"CreatedWall", got.CreatedWall.Format("2006-01-02T15:04:05.999999999Z07:00"), "2024-05-01T12:00:00.123456789Z"},
		{"SlotOffset(0)", got.SlotOffset(0), int64(4096)},
		{"SlotOffset(63)", got.SlotOffset(63), int64(4096 + 63*512)},
		{"SlotsLen()", got.SlotsLen(), 64 * 512},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("golden header %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if !sameHeader(got, h) {
		t.Errorf("golden header decodes to\n%+v\nwant\n%+v", got, h)
	}
}

func TestGoldenSlot(t *testing.T) {
	s := goldenSlot()
	checkGolden(t, goldenSlotFile, s.Encode())

	got, st, why := DecodeSlot(readGolden(t, goldenSlotFile), goldenPool, goldenSlotIndex)
	if st != SlotOK {
		t.Fatalf("DecodeSlot(golden) = %v (%s), want ok", st, why)
	}
	if why != "" {
		t.Errorf("DecodeSlot(golden) gave reason %q with status ok", why)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"Version", got.Version, uint16(1)},
		{"State", got.State.String(), "live"},
		{"Index", got.Index, uint32(7)},
		{"Flags", got.Flags, uint32(0)},
		{"PoolUUID", got.PoolUUID.String(), "5b0c8d3e-2f41-4c9a-8e6d-7a1b2c3d4e5f"},
		{"Generation", got.Generation, uint64(3)},
		{"Sequence", got.Sequence, uint64(987654321)},
		{"Wall", got.Wall.Format("2006-01-02T15:04:05.999999999Z07:00"), "2024-05-01T12:00:02.5Z"},
		{"JoinNonce", got.JoinNonce, uint64(0x8badf00ddeadbeef)},
		{"MachineID", got.MachineID.String(), "a1a2a3a4-a5a6-47a8-89aa-abacadaeafb0"},
		{"BootID", got.BootID.String(), "c1c2c3c4-c5c6-47c8-89ca-cbcccdcecfd0"},
		{"Agent", got.Agent, "0.1.0"},
		{"HostName", got.HostName, "hv-node-07.example.com"},
		{"Messages[0].Kind", got.Messages[0].Kind, MessageKind(1)},
		{"Messages[0].Flags", got.Messages[0].Flags, uint16(2)},
		{"Messages[0].TargetSlot", got.Messages[0].TargetSlot, uint32(3)},
		{"Messages[0].TargetGeneration", got.Messages[0].TargetGeneration, uint64(2)},
		{"Messages[0].Seq", got.Messages[0].Seq, uint64(41)},
		{"Messages[0].Arg", string(bytes.TrimRight(got.Messages[0].Arg[:], "\x00")), "evacuate"},
		{"Messages[1].Empty()", got.Messages[1].Empty(), true},
		{"Messages[1]", got.Messages[1], Message{}},
		{"Messages[2].Kind", got.Messages[2].Kind, MessageKind(0x0203)},
		{"Messages[2].Flags", got.Messages[2].Flags, uint16(0x8001)},
		{"Messages[2].TargetSlot", got.Messages[2].TargetSlot, uint32(4095)},
		{"Messages[2].TargetGeneration", got.Messages[2].TargetGeneration, uint64(0xfedcba9876543210)},
		{"Messages[2].Seq", got.Messages[2].Seq, uint64(42)},
		{"Messages[2].Arg", string(got.Messages[2].Arg[:]), "abcdefghijklmnopqrstuvwx"},
		{"Messages[3].Kind", got.Messages[3].Kind, MessageKind(7)},
		{"Messages[3].TargetGeneration", got.Messages[3].TargetGeneration, uint64(1)},
		{"Messages[3].Seq", got.Messages[3].Seq, uint64(1 << 40)},
		{"Messages[3].Arg", got.Messages[3].Arg, [messageArgLen]byte{0: 0xff, 23: 0x01}},
		{"Messages[3].Empty()", got.Messages[3].Empty(), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("golden slot %s = %v, want %v", c.field, c.got, c.want)
		}
	}
	if !sameSlot(got, s) {
		t.Errorf("golden slot decodes to\n%+v\nwant\n%+v", got, s)
	}
}

// tableRow is one row of a byte table in a source comment.
type tableRow struct {
	off, size int
	field     string
}

var (
	rowRE  = regexp.MustCompile(`^//\t\s*(\d+)\s+(\d+) (.+)$`)
	cellRE = regexp.MustCompile(`\+(\d+) (\d+) ([a-z ]+)`)
)

// parseTable reads the byte table that follows the line starting with
// title in a source file of this package. Continuation lines (the message
// cell layout) are returned as cells.
func parseTable(t *testing.T, file, title string) (rows []tableRow, cells []tableRow) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if !in {
			in = strings.HasPrefix(line, title)
			continue
		}
		if !strings.HasPrefix(line, "//") {
			break
		}
		if m := rowRE.FindStringSubmatch(line); m != nil {
			off, _ := strconv.Atoi(m[1])
			size, _ := strconv.Atoi(m[2])
			rows = append(rows, tableRow{off, size, m[3]})
			continue
		}
		for _, m := range cellRE.FindAllStringSubmatch(line, -1) {
			off, _ := strconv.Atoi(m[1])
			size, _ := strconv.Atoi(m[2])
			cells = append(cells, tableRow{off, size, strings.TrimSpace(m[3])})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no byte table after %q", file, title)
	}
	return rows, cells
}

// checkContiguous checks that the rows tile [0, total) with no gap or
// overlap.
func checkContiguous(t *testing.T, what string, rows []tableRow, total int) {
	t.Helper()
	next := 0
	for _, r := range rows {
		if r.off != next {
			t.Errorf("%s: field %q at offset %d, but the previous field ends at %d", what, r.field, r.off, next)
		}
		next = r.off + r.size
	}
	if next != total {
		t.Errorf("%s: fields end at %d, want %d", what, next, total)
	}
}

func le16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func padded(s string, n int) []byte {
	b := make([]byte, n)
	copy(b, s)
	return b
}

// checkRows checks each table row against the encoded record: the bytes
// at the row's offset must be the expected bytes for that field. Every row
// must have an expectation and every expectation a row.
func checkRows(t *testing.T, what string, rec []byte, rows []tableRow, want map[string][]byte) {
	t.Helper()
	seen := map[string]bool{}
	for _, r := range rows {
		w, ok := want[r.field]
		if !ok {
			t.Errorf("%s: table row %q (offset %d) has no expected value in this test", what, r.field, r.off)
			continue
		}
		seen[r.field] = true
		if len(w) != r.size {
			t.Errorf("%s: table says %q is %d bytes, test expects %d", what, r.field, r.size, len(w))
			continue
		}
		if got := rec[r.off : r.off+r.size]; !bytes.Equal(got, w) {
			t.Errorf("%s: bytes %d..%d (%q) are % x, want % x", what, r.off, r.off+r.size-1, r.field, got, w)
		}
	}
	for f := range want {
		if !seen[f] {
			t.Errorf("%s: expected field %q is not in the byte table", what, f)
		}
	}
}

// TestHeaderByteTable reads the byte table in header.go's comment and
// checks the golden header against it, little-endian, field by field.
func TestHeaderByteTable(t *testing.T) {
	rows, _ := parseTable(t, "header.go", "// Header byte layout.")
	checkContiguous(t, "header table", rows, RecordSize)
	rec := readGolden(t, goldenHeaderFile)
	want := map[string][]byte{
		`magic "HBFENCE1"`:             []byte("HBFENCE1"),
		"format major":                 le16(1),
		"format minor":                 le16(0),
		"record size (512)":            le32(512),
		"pool UUID":                    goldenPool[:],
		"sector size":                  le32(512),
		"slot count":                   le32(64),
		"leader record offset (bytes)": le64(512),
		"slots offset (bytes)":         le64(4096),
		"ballots offset (bytes)":       le64(72 * 512),
		"area size (bytes)":            le64(136 * 512),
		"interval (ns)":                le64(2e9),
		"io_timeout (ns)":              le64(5e9),
		"renewal_fail (ns)":            le64(15e9),
		"watchdog (ns)":                le64(10e9),
		"host_dead (ns)":               le64(27e9),
		"created, wall clock (unix ns, for humans)": le64(uint64(goldenCreated.UnixNano())),
		"profile name (NUL padded)":                 padded("default", 16),
		"reserved, zero":                            make([]byte, 372),
		"CRC-32C (Castagnoli) of bytes 0..507":      le32(crc32.Checksum(rec[:508], testCastagnoli)),
	}
	checkRows(t, "header", rec, rows, want)
}

// TestSlotByteTable does the same for slot.go's table, including the
// layout of a message cell and the list of state values.
func TestSlotByteTable(t *testing.T) {
	rows, cells := parseTable(t, "slot.go", "// Slot byte layout.")
	checkContiguous(t, "slot table", rows, RecordSize)
	rec := readGolden(t, goldenSlotFile)
	s := goldenSlot()

	var msgs []byte
	for _, m := range s.Messages {
		var c []byte
		c = append(c, le16(uint16(m.Kind))...)
		c = append(c, le16(m.Flags)...)
		c = append(c, le32(m.TargetSlot)...)
		c = append(c, le64(m.TargetGeneration)...)
		c = append(c, le64(m.Seq)...)
		c = append(c, m.Arg[:]...)
		msgs = append(msgs, c...)
	}
	stateRow := ""
	for _, r := range rows {
		if strings.HasPrefix(r.field, "state (") {
			stateRow = r.field
		}
	}
	want := map[string][]byte{
		`magic "HBSL"`:           []byte("HBSL"),
		"record version":         le16(1),
		stateRow:                 le16(2),
		"slot index":             le32(7),
		"flags (reserved, zero)": le32(0),
		"pool UUID":              goldenPool[:],
		"generation":             le64(3),
		"sequence":               le64(987654321),
		"writer's wall clock (unix ns, for humans only)": le64(uint64(goldenWall.UnixNano())),
		"join nonce":                           le64(0x8badf00ddeadbeef),
		"machine id":                           goldenMachine[:],
		"boot id":                              goldenBoot[:],
		"agent version (NUL padded)":           padded("0.1.0", 16),
		"host name (NUL padded)":               padded("hv-node-07.example.com", 64),
		"message cells, 4 × 48:":               msgs,
		"reserved, zero":                       make([]byte, 140),
		"CRC-32C (Castagnoli) of bytes 0..507": le32(crc32.Checksum(rec[:508], testCastagnoli)),
	}
	if stateRow == "" {
		t.Errorf("slot table has no state row")
	}
	checkRows(t, "slot", rec, rows, want)

	// The cell layout line: +0 2 kind, +2 2 flags, ... tiles 48 bytes,
	// and each cell of the golden slot matches it.
	checkContiguous(t, "message cell", cells, messageSize)
	for i, m := range s.Messages {
		cell := rec[sOffMessages+i*messageSize : sOffMessages+(i+1)*messageSize]
		checkRows(t, fmt.Sprintf("message cell %d", i), cell, cells, map[string][]byte{
			"kind":              le16(uint16(m.Kind)),
			"flags":             le16(m.Flags),
			"target slot":       le32(m.TargetSlot),
			"target generation": le64(m.TargetGeneration),
			"sequence":          le64(m.Seq),
			"argument":          m.Arg[:],
		})
	}

	// "state (0 free, 1 joining, ...)" lists the values the code uses.
	inner := strings.TrimSuffix(strings.TrimPrefix(stateRow, "state ("), ")")
	n := 0
	for _, part := range strings.Split(inner, ", ") {
		var v int
		var name string
		if _, err := fmt.Sscanf(part, "%d %s", &v, &name); err != nil {
			t.Errorf("state row %q: cannot parse %q: %v", stateRow, part, err)
			continue
		}
		if got := SlotState(v).String(); got != name {
			t.Errorf("state table says %d is %q, code says %q", v, name, got)
		}
		n++
	}
	if n != int(StateLeft)+1 {
		t.Errorf("state table lists %d states, code has %d", n, int(StateLeft)+1)
	}
}
