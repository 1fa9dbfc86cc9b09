package area

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Area is a formatted heartbeat area on a file or block device, opened for
// O_DIRECT I/O. Every I/O is bounded by the pool's io_timeout.
type Area struct {
	dev    *directio.Device
	header ondisk.Header
	sector []byte // one sector, for slot writes
}

// Open opens the area at path, from offset, and reads its header. Errors
// name the path and say what was found and what would fix it.
func Open(path string, offset int64, mode directio.Mode) (*Area, error) {
	dev, err := directio.Open(path, offset, mode)
	if err != nil {
		return nil, err
	}
	h, err := readHeader(dev)
	if err != nil {
		dev.Close()
		return nil, err
	}
	return &Area{dev: dev, header: h, sector: make([]byte, h.SectorSize)}, nil
}

// FromFile opens the area on a file opened for direct I/O already (handed
// over by the previous image of this process), reading its header again.
func FromFile(f *os.File, path string, offset int64) (*Area, error) {
	dev, err := directio.FromFile(f, path, offset)
	if err != nil {
		return nil, err
	}
	h, err := readHeader(dev)
	if err != nil {
		dev.Close()
		return nil, err
	}
	return &Area{dev: dev, header: h, sector: make([]byte, h.SectorSize)}, nil
}

func readHeader(dev *directio.Device) (ondisk.Header, error) {
	g := dev.Geometry()
	where := fmt.Sprintf("%s at offset %d", dev.Path(), dev.Offset())
	n := roundUp(ondisk.RecordSize, g.Alignment)
	if g.Size < int64(n) {
		return ondisk.Header{}, fmt.Errorf("%s: only %d bytes, fewer than the %d a header read needs: truncated, or never formatted (format it with hbfence init)", where, g.Size, n)
	}
	buf := make([]byte, n)
	// The timeout for the header read cannot come from the header; use
	// the largest io_timeout any profile allows.
	if err := dev.ReadAt(buf, 0, headerReadTimeout); err != nil {
		return ondisk.Header{}, fmt.Errorf("%s: reading the header: %w", where, err)
	}
	h, err := ondisk.DecodeHeader(buf)
	switch {
	case errors.Is(err, ondisk.ErrZeroed):
		return ondisk.Header{}, fmt.Errorf("%s: %w; format it with hbfence init", where, err)
	case errors.Is(err, ondisk.ErrNotHbfence):
		return ondisk.Header{}, fmt.Errorf("%s: %w (is the path or --offset right?)", where, err)
	case err != nil:
		return ondisk.Header{}, fmt.Errorf("%s: %w", where, err)
	}
	if int(h.SectorSize) < g.Alignment || int(h.SectorSize)%g.Alignment != 0 {
		return ondisk.Header{}, fmt.Errorf("%s: area formatted with %d-byte sectors, but direct I/O here needs %d-byte alignment; re-format it with hbfence init --sector-size %d",
			where, h.SectorSize, g.Alignment, roundUp(int(h.SectorSize), g.Alignment))
	}
	if uint64(g.Size) < h.AreaSize {
		return ondisk.Header{}, fmt.Errorf("%s: truncated: the header describes %d bytes (%d slots of %d bytes), but only %d bytes are there",
			where, h.AreaSize, h.SlotCount, h.SectorSize, g.Size)
	}
	return h, nil
}

const headerReadTimeout = 60 * time.Second

// Header is the area's header as read at open.
func (a *Area) Header() ondisk.Header { return a.header }

// Device is the underlying device.
func (a *Area) Device() *directio.Device { return a.dev }

// ReadSlots reads the whole slot region in one I/O into dst, which must
// hold SlotsLen bytes.
func (a *Area) ReadSlots(dst []byte) error {
	if len(dst) != a.header.SlotsLen() {
		return fmt.Errorf("ReadSlots: buffer of %d bytes, slot region is %d", len(dst), a.header.SlotsLen())
	}
	return a.dev.ReadAt(dst, int64(a.header.SlotsOffset), a.header.Timing.IOTimeout)
}

// WriteSlot writes one encoded slot record (RecordSize bytes) into its
// sector; the rest of the sector is zero.
func (a *Area) WriteSlot(index int, rec []byte) error {
	if index < 0 || index >= int(a.header.SlotCount) {
		return fmt.Errorf("WriteSlot: slot %d out of range (0..%d)", index, a.header.SlotCount-1)
	}
	clear(a.sector)
	copy(a.sector, rec)
	return a.dev.WriteAt(a.sector, a.header.SlotOffset(index), a.header.Timing.IOTimeout)
}

// Close releases the device.
func (a *Area) Close() error { return a.dev.Close() }

func roundUp(n, a int) int {
	if a <= 0 {
		return n
	}
	return (n + a - 1) / a * a
}

// FormatOptions say how to format.
type FormatOptions struct {
	// SectorSize is 0 to use the detected direct I/O alignment (at least
	// 512), or 512 or 4096.
	SectorSize int
	// Force overwrites an existing hbfence area, or data that is not
	// zeroes.
	Force bool
	// Create creates a missing plain file.
	Create bool
	// Build makes the header once the sector size is known.
	Build func(sectorSize int) (ondisk.Header, error)
}

// Found describes what a format found in the way.
type Found struct {
	Kind   string // "zeroes", "hbfence", "data", "beyond-end"
	Detail string
}

// InUseError: the target holds something that format would destroy.
type InUseError struct {
	Where string
	Found Found
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s holds %s; refusing to overwrite it without --force", e.Where, e.Found.Detail)
}

// Format writes a new area at path from offset: it checks what is there,
// zeroes the area, and writes the header last, so that an interrupted
// format never leaves a valid-looking area. It returns the header written.
func Format(path string, offset int64, opt FormatOptions) (ondisk.Header, error) {
	created := false
	if opt.Create {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			created = true
		} else if !errors.Is(err, os.ErrExist) {
			return ondisk.Header{}, fmt.Errorf("create %s: %w", path, err)
		}
	}
	h, err := format(path, offset, opt)
	if err != nil && created {
		os.Remove(path)
	}
	return h, err
}

func format(path string, offset int64, opt FormatOptions) (ondisk.Header, error) {
	dev, err := directio.Open(path, offset, directio.ReadWrite)
	if err != nil {
		return ondisk.Header{}, err
	}
	defer dev.Close()
	where := fmt.Sprintf("%s at offset %d", path, offset)
	g := dev.Geometry()
	ss := opt.SectorSize
	if ss == 0 {
		ss = max(512, g.Alignment)
	}
	if ss < g.Alignment || ss%g.Alignment != 0 {
		return ondisk.Header{}, fmt.Errorf("%s: sector size %d is below the %d-byte direct I/O alignment the storage needs; use --sector-size %d",
			where, ss, g.Alignment, roundUp(ss, g.Alignment))
	}
	h, err := opt.Build(ss)
	if err != nil {
		return ondisk.Header{}, err
	}
	size := int64(h.AreaSize)
	if g.Size < size {
		if g.BlockDevice {
			return ondisk.Header{}, fmt.Errorf("%s: the area needs %d bytes (%d slots of %d bytes) but the device has %d after the offset",
				where, size, h.SlotCount, h.SectorSize, g.Size)
		}
	}
	// What is there now? Read the part of the area that exists.
	existing := min(size, g.Size/int64(g.Alignment)*int64(g.Alignment))
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	found, err := inspect(dev, existing, buf)
	if err == nil && found.Kind == "zeroes" && existing < min(size, g.Size) {
		// A file whose size is not a multiple of the alignment ends in
		// a partial block that direct I/O cannot read: a short file of
		// another program may lie entirely in it.
		found, err = inspectTail(dev, existing, min(size, g.Size))
	}
	if err != nil {
		return ondisk.Header{}, fmt.Errorf("%s: reading what is there: %w", where, err)
	}
	if found.Kind != "zeroes" && !opt.Force {
		return ondisk.Header{}, &InUseError{Where: where, Found: found}
	}
	if g.Size < size {
		if err := dev.Extend(size); err != nil {
			return ondisk.Header{}, fmt.Errorf("%s: extending the file to hold the area: %w", where, err)
		}
	}
	// Zero the whole area, header first, so an interrupted format leaves
	// no valid header behind.
	clear(buf)
	for off := int64(0); off < size; off += chunk {
		n := int(min(chunk, size-off))
		if err := dev.WriteAt(buf[:n], off, headerReadTimeout); err != nil {
			return ondisk.Header{}, fmt.Errorf("%s: zeroing the area: %w", where, err)
		}
	}
	sector := make([]byte, h.SectorSize)
	copy(sector, h.Encode())
	if err := dev.WriteAt(sector, 0, headerReadTimeout); err != nil {
		return ondisk.Header{}, fmt.Errorf("%s: writing the header: %w", where, err)
	}
	// Read it back through the same path a daemon uses.
	back, err := readHeader(dev)
	if err != nil {
		return ondisk.Header{}, fmt.Errorf("%s: header did not read back: %w", where, err)
	}
	return back, nil
}

// inspect reads the first n bytes of the area and says what they hold.
func inspect(dev *directio.Device, n int64, buf []byte) (Found, error) {
	for off := int64(0); off < n; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), n-off)]
		if err := dev.ReadAt(b, off, headerReadTimeout); err != nil {
			return Found{}, err
		}
		if off == 0 && len(b) >= ondisk.RecordSize {
			old, err := ondisk.DecodeHeader(b[:ondisk.RecordSize])
			if err == nil || !errors.Is(err, ondisk.ErrZeroed) && !errors.Is(err, ondisk.ErrNotHbfence) {
				return Found{Kind: "hbfence", Detail: describeOld(old, err)}, nil
			}
		}
		if i := firstNonZero(b); i >= 0 {
			return Found{Kind: "data", Detail: fmt.Sprintf("data that is not zeroes at byte %d of the area (first bytes %q)",
				off+int64(i), head(b[i:]))}, nil
		}
	}
	return Found{Kind: "zeroes", Detail: "zeroes"}, nil
}

// inspectTail reads bytes from..to of the area, which end in a partial
// block, through the page cache, and says whether they are zeroes.
func inspectTail(dev *directio.Device, from, to int64) (Found, error) {
	f, err := os.Open(dev.Path())
	if err != nil {
		return Found{}, err
	}
	defer f.Close()
	b := make([]byte, to-from)
	if _, err := f.ReadAt(b, dev.Offset()+from); err != nil {
		return Found{}, err
	}
	if i := firstNonZero(b); i >= 0 {
		return Found{Kind: "data", Detail: fmt.Sprintf("data that is not zeroes at byte %d of the area (first bytes %q)",
			from+int64(i), head(b[i:]))}, nil
	}
	return Found{Kind: "zeroes", Detail: "zeroes"}, nil
}

func describeOld(h ondisk.Header, err error) string {
	if err != nil {
		return fmt.Sprintf("an hbfence area whose header does not decode (%v)", err)
	}
	return fmt.Sprintf("an hbfence area of pool %s (format %d.%d, %d slots of %d bytes, created %s)",
		h.PoolUUID, h.FormatMajor, h.FormatMinor, h.SlotCount, h.SectorSize, h.CreatedWall.Format(time.RFC3339))
}

func firstNonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}

func head(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}
