package area_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

const slots = 64

var created = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func fast(tb testing.TB) timing.Params {
	tb.Helper()
	p, err := timing.Profile("fast")
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// opts are the options hbfence init passes, for a pool of n slots.
func opts(tb testing.TB, pool ondisk.UUID, n int) area.FormatOptions {
	p := fast(tb)
	return area.FormatOptions{
		Create: true,
		Build: func(ss int) (ondisk.Header, error) {
			return ondisk.NewHeader(pool, ss, n, p, "fast", created)
		},
	}
}

// areaSize is the size of an area of n slots with sector size ss.
func areaSize(tb testing.TB, ss, n int) int {
	h, err := ondisk.NewHeader(ondisk.NewUUID(), ss, n, fast(tb), "fast", created)
	if err != nil {
		tb.Fatal(err)
	}
	return int(h.AreaSize)
}

func format(tb testing.TB, path string, off int64, o area.FormatOptions) ondisk.Header {
	tb.Helper()
	h, err := area.Format(path, off, o)
	if err != nil {
		tb.Fatalf("Format(%s, %d): %v", path, off, err)
	}
	return h
}

func openArea(tb testing.TB, path string, off int64, mode directio.Mode) *area.Area {
	tb.Helper()
	a, err := area.Open(path, off, mode)
	if err != nil {
		tb.Fatalf("Open(%s, %d): %v", path, off, err)
	}
	tb.Cleanup(func() { a.Close() })
	return a
}

// checkFormatted checks the bytes of a freshly formatted area: the header
// record in sector 0 and zeroes everywhere else.
func checkFormatted(t *testing.T, b []byte, h ondisk.Header) {
	t.Helper()
	if len(b) != int(h.AreaSize) {
		t.Fatalf("area is %d bytes, header says %d", len(b), h.AreaSize)
	}
	if !bytes.Equal(b[:ondisk.RecordSize], h.Encode()) {
		t.Error("sector 0 does not hold the header record")
	}
	if i := bytes.IndexFunc(b[ondisk.RecordSize:], func(r rune) bool { return r != 0 }); i >= 0 {
		t.Errorf("non-zero byte at %d after the header record", ondisk.RecordSize+i)
	}
}

func wantErr(t *testing.T, err error, what string, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want one saying %q", what, parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not say %q", what, err, p)
		}
	}
}

func TestFormatCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".server_pool_hb")
	pool := ondisk.NewUUID()
	h := format(t, path, 0, opts(t, pool, slots))
	if h.PoolUUID != pool || h.SlotCount != slots || h.SectorSize < 512 {
		t.Errorf("header: pool %s, %d slots, sector %d", h.PoolUUID, h.SlotCount, h.SectorSize)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("created with mode %v, want 0600", fi.Mode().Perm())
	}
	checkFormatted(t, readAll(t, path), h)

	a := openArea(t, path, 0, directio.ReadOnly)
	got := a.Header()
	if got.PoolUUID != pool || got.SlotCount != slots || got.Timing != fast(t) || got.Profile != "fast" || !got.CreatedWall.Equal(created) {
		t.Errorf("Open read back %+v", got)
	}
	// The detected sector size: the file system's direct I/O alignment,
	// at least 512.
	if want := max(512, a.Device().Geometry().Alignment); int(got.SectorSize) != want {
		t.Errorf("sector size %d, want %d", got.SectorSize, want)
	}
}

func TestFormatZeroes(t *testing.T) {
	t.Run("longer", func(t *testing.T) {
		// A file of zeroes longer than the area: formatted in place,
		// and the zeroes after the area stay where they are.
		size := areaSize(t, 512, slots) + 64<<10
		path := filepath.Join(t.TempDir(), "hb")
		writeFilled(t, path, size, 0)
		h := format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
		b := readAll(t, path)
		if len(b) != size {
			t.Fatalf("file is %d bytes after format, was %d", len(b), size)
		}
		checkFormatted(t, b[:h.AreaSize], h)
	})
	t.Run("shorter", func(t *testing.T) {
		// A file of zeroes shorter than the area grows to hold it,
		// including a length that is not a multiple of the alignment.
		path := filepath.Join(t.TempDir(), "hb")
		writeFilled(t, path, 4096+100, 0)
		h := format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
		checkFormatted(t, readAll(t, path), h)
	})
	t.Run("empty", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hb")
		writeFilled(t, path, 0, 0)
		o := opts(t, ondisk.NewUUID(), slots)
		o.Create = false
		h := format(t, path, 0, o)
		checkFormatted(t, readAll(t, path), h)
	})
}

func TestFormatRefusesExistingArea(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hb")
	old := format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
	// A live host's slot, which a second format would destroy.
	a := openArea(t, path, 0, directio.ReadWrite)
	writeSlot(t, a, 5, "host-5")
	a.Close()
	before := readAll(t, path)

	_, err := area.Format(path, 0, opts(t, ondisk.NewUUID(), 128))
	var inUse *area.InUseError
	if !errors.As(err, &inUse) || inUse.Found.Kind != "hbfence" {
		t.Fatalf("Format over an hbfence area: %v, want an *InUseError of kind hbfence", err)
	}
	wantErr(t, err, "format over an existing area",
		old.PoolUUID.String(), fmt.Sprintf("%d slots", slots), "created "+created.Format(time.RFC3339), "--force", path)
	if after := readAll(t, path); !bytes.Equal(before, after) {
		t.Errorf("the refused format changed byte %d", firstDiff(before, after))
	}
}

// A header with the hbfence magic that does not decode (torn, or from a
// newer version) is still an hbfence area: refused, and said so.
func TestFormatRefusesDamagedArea(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hb")
	format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
	b := readAll(t, path)
	b[200] ^= 0xFF // breaks the checksum
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := area.Format(path, 0, opts(t, ondisk.NewUUID(), slots))
	wantErr(t, err, "format over a damaged area", "hbfence area", "checksum", "--force")
	if after := readAll(t, path); !bytes.Equal(b, after) {
		t.Error("the refused format changed the file")
	}
}

func TestFormatRefusesOtherData(t *testing.T) {
	script := []byte("#!/bin/sh\necho not a heartbeat\n")
	for _, c := range []struct {
		name string
		size int // of the file
		at   int // where the foreign bytes are
	}{
		{"at the start", 1 << 20, 0},
		{"after zeroes", 1 << 20, 3*4096 + 17},
		{"last byte of the area", 1 << 20, areaSize(t, 512, slots) - len(script)},
		// Shorter than one direct I/O block: direct I/O cannot read
		// it, and it is still somebody's file.
		{"short file", len(script), 0},
		{"unaligned tail", 4096 + 100, 4096 + 100 - len(script)},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hb")
			b := make([]byte, c.size)
			copy(b[c.at:], script)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := area.Format(path, 0, opts(t, ondisk.NewUUID(), slots))
			var inUse *area.InUseError
			if !errors.As(err, &inUse) || inUse.Found.Kind != "data" {
				t.Fatalf("Format over another program's file: %v, want an *InUseError of kind data", err)
			}
			wantErr(t, err, "format over data", fmt.Sprintf("at byte %d", c.at), `#!/bin/sh`, "--force")
			if after := readAll(t, path); !bytes.Equal(b, after) {
				t.Errorf("the refused format changed byte %d", firstDiff(b, after))
			}
		})
	}
}

func TestFormatForce(t *testing.T) {
	t.Run("over an area", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hb")
		format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
		a := openArea(t, path, 0, directio.ReadWrite)
		writeSlot(t, a, 7, "host-7")
		a.Close()

		pool := ondisk.NewUUID()
		o := opts(t, pool, 32)
		o.Force = true
		h := format(t, path, 0, o)
		if h.PoolUUID != pool || h.SlotCount != 32 {
			t.Errorf("forced format: pool %s, %d slots", h.PoolUUID, h.SlotCount)
		}
		// The old area was longer; the new one is zeroed after its
		// header, so the old slot 7 is gone.
		b := readAll(t, path)
		checkFormatted(t, b[:h.AreaSize], h)
	})
	t.Run("over data", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "hb")
		writeFilled(t, path, 256<<10, 0xA5)
		o := opts(t, ondisk.NewUUID(), slots)
		o.Force = true
		h := format(t, path, 0, o)
		b := readAll(t, path)
		checkFormatted(t, b[:h.AreaSize], h)
		if !bytes.Equal(b[h.AreaSize:], bytes.Repeat([]byte{0xA5}, len(b)-int(h.AreaSize))) {
			t.Error("bytes after the area changed")
		}
	})
}

func TestFormatAtOffsetInFile(t *testing.T) {
	const off = 64 << 10
	size := areaSize(t, 512, slots)
	path := filepath.Join(t.TempDir(), "disk")
	// Somebody's data before the area and after it, zeroes in between.
	b := make([]byte, off+size+off)
	for i := range off {
		b[i] = 0xBE
		b[off+size+i] = 0xEF
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o := opts(t, ondisk.NewUUID(), slots)
	o.Create = false
	h := format(t, path, off, o)
	after := readAll(t, path)
	if len(after) != len(b) {
		t.Fatalf("file is %d bytes, was %d", len(after), len(b))
	}
	if !bytes.Equal(after[:off], b[:off]) {
		t.Error("bytes before the offset changed")
	}
	if !bytes.Equal(after[off+size:], b[off+size:]) {
		t.Error("bytes after the area changed")
	}
	checkFormatted(t, after[off:off+size], h)

	openArea(t, path, off, directio.ReadOnly)
	_, err := area.Open(path, 0, directio.ReadOnly)
	wantErr(t, err, "Open at the wrong offset", "not an hbfence", "--offset", "at offset 0")
}

func TestFormatLoop(t *testing.T) {
	needLoop(t)
	t.Run("4096 detected", func(t *testing.T) {
		dev, _ := newLoop(t, 4<<20, 4096, 0)
		h := format(t, dev, 0, opts(t, ondisk.NewUUID(), slots))
		if h.SectorSize != 4096 {
			t.Errorf("sector size %d on a 4096-sector device, want 4096", h.SectorSize)
		}
		a := openArea(t, dev, 0, directio.ReadOnly)
		if a.Header().SectorSize != 4096 {
			t.Errorf("Open: sector size %d", a.Header().SectorSize)
		}
	})
	t.Run("512 refused on 4096", func(t *testing.T) {
		dev, backing := newLoop(t, 4<<20, 4096, 0x3C)
		before := readAll(t, backing)
		o := opts(t, ondisk.NewUUID(), slots)
		o.SectorSize = 512
		o.Force = true // even with force: the storage cannot do it
		_, err := area.Format(dev, 0, o)
		wantErr(t, err, "--sector-size 512 on a 4096-sector device", "4096", "use --sector-size 4096", dev)
		detach(t, dev)
		if after := readAll(t, backing); !bytes.Equal(before, after) {
			t.Error("the refused format changed the device")
		}
	})
	t.Run("512 detected", func(t *testing.T) {
		dev, _ := newLoop(t, 4<<20, 512, 0)
		h := format(t, dev, 0, opts(t, ondisk.NewUUID(), slots))
		if h.SectorSize != 512 {
			t.Errorf("sector size %d on a 512-sector device, want 512", h.SectorSize)
		}
	})
	t.Run("too small", func(t *testing.T) {
		dev, backing := newLoop(t, 64<<10, 512, 0)
		_, err := area.Format(dev, 0, opts(t, ondisk.NewUUID(), 2000))
		wantErr(t, err, "an area larger than the device", "the device has 65536")
		detach(t, dev)
		if after := readAll(t, backing); !bytes.Equal(after, make([]byte, 64<<10)) {
			t.Error("the refused format changed the device")
		}
	})
	t.Run("at offset", func(t *testing.T) {
		const off = 1 << 20
		size := areaSize(t, 4096, slots)
		dev, backing := newLoop(t, 4<<20, 4096, 0)
		b := readAll(t, backing)
		for i := range off {
			b[i] = 0x77
		}
		for i := off + size; i < len(b); i++ {
			b[i] = 0x88
		}
		if err := os.WriteFile(backing, b, 0o600); err != nil {
			t.Fatal(err)
		}
		o := opts(t, ondisk.NewUUID(), slots)
		o.Create = false
		h := format(t, dev, off, o)
		a := openArea(t, dev, off, directio.ReadWrite)
		writeSlot(t, a, slots-1, "last")
		a.Close()
		detach(t, dev)
		after := readAll(t, backing)
		if !bytes.Equal(after[:off], b[:off]) {
			t.Error("bytes before the offset changed")
		}
		if !bytes.Equal(after[off+size:], b[off+size:]) {
			t.Error("bytes after the area changed")
		}
		if !bytes.Equal(after[off:off+ondisk.RecordSize], h.Encode()) {
			t.Error("no header at the offset")
		}
	})
	t.Run("moved to 4096-sector storage", func(t *testing.T) {
		// An area formatted with 512-byte sectors, whose storage now
		// needs 4096-byte direct I/O (the same image on a new LUN).
		dev, backing := newLoop(t, 4<<20, 512, 0)
		format(t, dev, 0, opts(t, ondisk.NewUUID(), slots))
		detach(t, dev)
		dev4k := attach(t, backing, 4096)
		_, err := area.Open(dev4k, 0, directio.ReadOnly)
		wantErr(t, err, "Open of a 512 area on 4096 storage", "512-byte sectors", "--sector-size 4096")
	})
}

// A file on a file system that needs 4096-byte direct I/O (as an NFS
// client may not say, but a local file system does through statx).
func TestFormatFileOn4096(t *testing.T) {
	dir := mount4k(t)
	path := filepath.Join(dir, ".server_pool_hb")
	o := opts(t, ondisk.NewUUID(), slots)
	o.SectorSize = 512
	_, err := area.Format(path, 0, o)
	wantErr(t, err, "--sector-size 512 on a file needing 4096", "use --sector-size 4096")
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused format left a file behind: %v", err)
	}
	h := format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
	if h.SectorSize != 4096 {
		t.Errorf("detected sector size %d, want 4096", h.SectorSize)
	}
	a := openArea(t, path, 0, directio.ReadWrite)
	writeSlot(t, a, 1, "host-1")
	raw := make([]byte, h.SlotsLen())
	if err := a.ReadSlots(raw); err != nil {
		t.Fatal(err)
	}
	if d := ondisk.DecodeSlots(raw, h)[1]; d.Status != ondisk.SlotOK || d.Slot.HostName != "host-1" {
		t.Errorf("slot 1: %v %q", d.Status, d.Slot.HostName)
	}
}

func TestOpenTruncated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hb")
	h := format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
	cut := int64(h.AreaSize / 2)
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	_, err := area.Open(path, 0, directio.ReadWrite)
	wantErr(t, err, "Open of a truncated area", "truncated", fmt.Sprint(h.AreaSize), fmt.Sprint(cut), path)

	// Cut inside the header.
	if err := os.Truncate(path, 100); err != nil {
		t.Fatal(err)
	}
	_, err = area.Open(path, 0, directio.ReadWrite)
	wantErr(t, err, "Open of an area cut inside its header", "truncated", "100 bytes")
}

func TestOpenZeroed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hb")
	writeFilled(t, path, 1<<20, 0)
	_, err := area.Open(path, 0, directio.ReadOnly)
	wantErr(t, err, "Open of zeroes", "not formatted", "hbfence init")
}

func TestOpenNewerFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hb")
	format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
	b := readAll(t, path)
	// A header from format 2.0, with a valid checksum.
	binary.LittleEndian.PutUint16(b[8:], ondisk.FormatMajor+1)
	binary.LittleEndian.PutUint32(b[508:], crc32.Checksum(b[:508], crc32.MakeTable(crc32.Castagnoli)))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := area.Open(path, 0, directio.ReadWrite)
	if !errors.Is(err, ondisk.ErrNewerFormat) {
		t.Errorf("Open of a newer format: %v, want ErrNewerFormat", err)
	}
	wantErr(t, err, "Open of a newer format", "upgrade", fmt.Sprintf("%d.0", ondisk.FormatMajor+1))
	if after := readAll(t, path); !bytes.Equal(b, after) {
		t.Error("Open changed the file")
	}
}

func TestOpenRandom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hb")
	b := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := area.Open(path, 0, directio.ReadWrite)
	if !errors.Is(err, ondisk.ErrNotHbfence) {
		t.Errorf("Open of random bytes: %v, want ErrNotHbfence", err)
	}
	wantErr(t, err, "Open of random bytes", "not an hbfence", path)
	if after := readAll(t, path); !bytes.Equal(b, after) {
		t.Error("Open changed the file")
	}
}

func TestOpenUnreadable(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", ".server_pool_hb")
	_, err := area.Open(missing, 0, directio.ReadOnly)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of a missing path: %v, want ErrNotExist", err)
	}
	wantErr(t, err, "Open of a missing path", missing)

	_, err = area.Open(dir, 0, directio.ReadOnly)
	wantErr(t, err, "Open of a directory", dir, "directory")

	// Format without Create does not make a file.
	o := opts(t, ondisk.NewUUID(), slots)
	o.Create = false
	path := filepath.Join(dir, "hb")
	if _, err := area.Format(path, 0, o); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Format of a missing path without Create: %v, want ErrNotExist", err)
	}
	// A format that fails removes the file it created.
	o = opts(t, ondisk.NewUUID(), slots)
	o.Build = func(int) (ondisk.Header, error) { return ondisk.Header{}, errors.New("bad flags") }
	if _, err := area.Format(path, 0, o); err == nil || !strings.Contains(err.Error(), "bad flags") {
		t.Errorf("Format with a failing Build: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the failed format left the file it created: %v", err)
	}
}

// record encodes a valid slot record for index i.
func record(h ondisk.Header, i int, name string, seq uint64) []byte {
	s := ondisk.Slot{
		Version:    ondisk.SlotVersion,
		State:      ondisk.StateLive,
		Index:      uint32(i),
		PoolUUID:   h.PoolUUID,
		Generation: 3,
		Sequence:   seq,
		Wall:       created,
		JoinNonce:  42,
		Agent:      "test",
		HostName:   name,
	}
	return s.Encode()
}

func writeSlot(tb testing.TB, a *area.Area, i int, name string) {
	tb.Helper()
	if err := a.WriteSlot(i, record(a.Header(), i, name, 1)); err != nil {
		tb.Fatalf("WriteSlot(%d): %v", i, err)
	}
}

func TestSlotRoundTrip(t *testing.T) {
	type target struct {
		name  string
		setup func(t *testing.T) (path, backing string)
	}
	targets := []target{
		{"file", func(t *testing.T) (string, string) {
			p := filepath.Join(t.TempDir(), "hb")
			return p, p
		}},
		{"loop-512", func(t *testing.T) (string, string) { return newLoop(t, 4<<20, 512, 0) }},
		{"loop-4096", func(t *testing.T) (string, string) { return newLoop(t, 4<<20, 4096, 0) }},
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			path, backing := tg.setup(t)
			h := format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
			a := openArea(t, path, 0, directio.ReadWrite)
			ss := int(h.SectorSize)

			// Neighbours first, then the slot between them twice: the
			// second write replaces the first, and the neighbours keep
			// their records.
			for _, i := range []int{2, 4} {
				writeSlot(t, a, i, fmt.Sprintf("host-%d", i))
			}
			if err := a.WriteSlot(3, record(h, 3, "first-writer-with-a-long-name", 1)); err != nil {
				t.Fatal(err)
			}
			rec := record(h, 3, "host-3", 2)
			if err := a.WriteSlot(3, rec); err != nil {
				t.Fatal(err)
			}
			raw := make([]byte, h.SlotsLen())
			if err := a.ReadSlots(raw); err != nil {
				t.Fatalf("ReadSlots: %v", err)
			}
			dec := ondisk.DecodeSlots(raw, h)
			for i, d := range dec {
				switch i {
				case 2, 3, 4:
					want := fmt.Sprintf("host-%d", i)
					if d.Status != ondisk.SlotOK || d.Slot.HostName != want {
						t.Errorf("slot %d: %v %q (%s), want %q", i, d.Status, d.Slot.HostName, d.Reason, want)
					}
				default:
					if d.Status != ondisk.SlotUnused {
						t.Errorf("slot %d: %v, want unused", i, d.Status)
					}
				}
			}
			if dec[3].Slot.Sequence != 2 {
				t.Errorf("slot 3 sequence %d, want 2", dec[3].Slot.Sequence)
			}
			// On storage: slot 3's sector is the record and then zeroes,
			// at SlotOffset(3).
			if tg.name != "file" {
				a.Close()
				detach(t, path)
			}
			disk := readAll(t, backing)
			sec := disk[h.SlotOffset(3) : h.SlotOffset(3)+int64(ss)]
			if !bytes.Equal(sec[:ondisk.RecordSize], rec) || !ondisk.IsZero(sec[ondisk.RecordSize:]) {
				t.Error("slot 3's sector on storage is not the record followed by zeroes")
			}
		})
	}
}

func TestSlotErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hb")
	h := format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
	a := openArea(t, path, 0, directio.ReadWrite)
	if err := a.WriteSlot(slots, record(h, slots, "x", 1)); err == nil {
		t.Error("WriteSlot past the last slot succeeded")
	}
	if err := a.WriteSlot(-1, record(h, 0, "x", 1)); err == nil {
		t.Error("WriteSlot(-1) succeeded")
	}
	if err := a.ReadSlots(make([]byte, h.SlotsLen()-1)); err == nil {
		t.Error("ReadSlots into a short buffer succeeded")
	}
	before := readAll(t, path)
	ro := openArea(t, path, 0, directio.ReadOnly)
	if err := ro.WriteSlot(1, record(h, 1, "x", 1)); err == nil {
		t.Error("WriteSlot on a read-only area succeeded")
	}
	if after := readAll(t, path); !bytes.Equal(before, after) {
		t.Error("the refused writes changed the file")
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}
