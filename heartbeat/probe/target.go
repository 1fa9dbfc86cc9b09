package probe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// RegionSectors is the size of the scratch file and of a device region, in
// sectors: a write of one sector, a read of all of them.
const RegionSectors = 8

// Mode is what kind of target the probe runs on.
type Mode string

const (
	ModeScratch Mode = "scratch" // a scratch file in a directory
	ModeRegion  Mode = "region"  // a region of a file or device, from --offset
	ModeSlot    Mode = "slot"    // an unused slot of a formatted area
)

// Target is where the probe does its I/O. Open it with Open, run it with
// Run, and always Close it: Close removes the scratch file or restores the
// region.
type Target struct {
	Mode Mode
	// Path is the file or device the I/O goes to (the scratch file for
	// ModeScratch); Offset the area's or region's start in it.
	Path   string
	Offset int64
	// Sector is the size of a write; ReadLen of a read.
	Sector  int
	ReadLen int
	// Slot is the unused slot used (ModeSlot), and Pool its pool.
	Slot int
	Pool ondisk.UUID

	dev      *directio.Device
	writeOff int64 // where writes go, from Offset
	readOff  int64 // where reads start, from Offset
	header   ondisk.Header
	original []byte // ModeRegion: what the region held, written back by Close
	scratch  string // ModeScratch: the file Close removes
	closed   bool
}

// InUseError: a region holds something the probe would destroy.
type InUseError struct {
	Where string
	Found string
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("%s holds %s; the probe would overwrite it (and write it back at the end): give --force if that is what you want, another --offset, or a directory to probe with a scratch file", e.Where, e.Found)
}

// NoUnusedSlotError: every slot of the area has been written.
type NoUnusedSlotError struct {
	Path  string
	Slots int
}

func (e *NoUnusedSlotError) Error() string {
	return fmt.Sprintf("%s: no unused slot among its %d: the probe writes only to a slot that was never written (see hbfence dump); probe a directory on the same storage instead", e.Path, e.Slots)
}

// SlotTakenError: a host wrote the slot the probe was using.
type SlotTakenError struct {
	Path   string
	Slot   int
	Reason string
}

func (e *SlotTakenError) Error() string {
	return fmt.Sprintf("%s: slot %d is no longer unused (%s): a host took it; the probe stopped at once and wrote nothing more", e.Path, e.Slot, e.Reason)
}

// setupTimeout bounds the I/O of Open and Close.
const setupTimeout = 60 * time.Second

// Open opens the probe's target. path is:
//
//   - a directory: a scratch file .hbfence-probe-<pid> of RegionSectors
//     sectors is created in it (offset must be 0), and removed by Close;
//   - a file or block device holding a valid hbfence header at offset: the
//     probe uses the highest-numbered unused slot of the area;
//   - any other file or block device: the region of RegionSectors sectors
//     from offset, which must hold zeroes unless force; Close writes back
//     what it held.
func Open(path string, offset int64, force bool) (*Target, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		if offset != 0 {
			return nil, fmt.Errorf("%s is a directory: --offset applies to a file or block device", path)
		}
		return openScratch(path)
	}
	dev, err := directio.Open(path, offset, directio.ReadWrite)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("%s at offset %d", path, offset)
	a := max(512, dev.Geometry().Alignment)
	size := RegionSectors * a
	n := (ondisk.RecordSize + a - 1) / a * a
	if dev.Geometry().Size < int64(n) {
		dev.Close()
		return nil, fmt.Errorf("%s: only %d bytes; the probe needs %d (%d sectors of %d): give a directory to probe with a scratch file", where, dev.Geometry().Size, size, RegionSectors, a)
	}
	head := make([]byte, n)
	if err := dev.ReadAt(head, 0, setupTimeout); err != nil {
		dev.Close()
		return nil, fmt.Errorf("%s: reading what is there: %w", where, err)
	}
	_, herr := ondisk.DecodeHeader(head[:ondisk.RecordSize])
	switch {
	case herr == nil:
		dev.Close()
		return openSlot(path, offset)
	case !errors.Is(herr, ondisk.ErrZeroed) && !errors.Is(herr, ondisk.ErrNotHbfence) && !force:
		dev.Close()
		return nil, &InUseError{Where: where, Found: fmt.Sprintf("an hbfence area whose header does not decode (%v)", herr)}
	}
	return openRegion(dev, where, size, force)
}

func openScratch(dir string) (*Target, error) {
	name := filepath.Join(dir, fmt.Sprintf(".hbfence-probe-%d", os.Getpid()))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating the scratch file: %w", err)
	}
	f.Close()
	dev, err := directio.Open(name, 0, directio.ReadWrite)
	if err != nil {
		os.Remove(name)
		return nil, err
	}
	a := max(512, dev.Geometry().Alignment)
	size := RegionSectors * a
	if err := dev.Extend(int64(size)); err != nil {
		dev.Close()
		os.Remove(name)
		return nil, fmt.Errorf("%s: sizing the scratch file to %d bytes: %w", name, size, err)
	}
	return &Target{Mode: ModeScratch, Path: name, Sector: a, ReadLen: size, dev: dev, scratch: name}, nil
}

func openRegion(dev *directio.Device, where string, size int, force bool) (*Target, error) {
	if dev.Geometry().Size < int64(size) {
		dev.Close()
		return nil, fmt.Errorf("%s: only %d bytes; the probe needs %d (%d sectors of %d): give a directory to probe with a scratch file",
			where, dev.Geometry().Size, size, RegionSectors, size/RegionSectors)
	}
	orig := make([]byte, size)
	if err := dev.ReadAt(orig, 0, setupTimeout); err != nil {
		dev.Close()
		return nil, fmt.Errorf("%s: reading what is there: %w", where, err)
	}
	if i := firstNonZero(orig); i >= 0 && !force {
		dev.Close()
		return nil, &InUseError{Where: where, Found: fmt.Sprintf("data that is not zeroes at byte %d of the %d-byte region", i, size)}
	}
	return &Target{Mode: ModeRegion, Path: dev.Path(), Offset: dev.Offset(), Sector: size / RegionSectors, ReadLen: size,
		dev: dev, original: orig}, nil
}

func openSlot(path string, offset int64) (*Target, error) {
	ar, err := area.Open(path, offset, directio.ReadWrite)
	if err != nil {
		return nil, err
	}
	h := ar.Header()
	raw := make([]byte, h.SlotsLen())
	if err := ar.ReadSlots(raw); err != nil {
		ar.Close()
		return nil, fmt.Errorf("%s: reading the slots: %w", path, err)
	}
	slot := -1
	for i := int(h.SlotCount) - 1; i >= 0; i-- {
		if unused(raw, h, i) == "" {
			slot = i
			break
		}
	}
	if slot < 0 {
		ar.Close()
		return nil, &NoUnusedSlotError{Path: path, Slots: int(h.SlotCount)}
	}
	return &Target{Mode: ModeSlot, Path: path, Offset: offset, Sector: int(h.SectorSize), ReadLen: h.SlotsLen(),
		Slot: slot, Pool: h.PoolUUID, dev: ar.Device(), header: h,
		writeOff: h.SlotOffset(slot), readOff: int64(h.SlotsOffset)}, nil
}

// unused says why slot i of a slot region is not unused, "" if it is: its
// whole sector must be zeroes (the record decodes as ondisk.SlotUnused and
// the rest of the sector is empty too).
func unused(raw []byte, h ondisk.Header, i int) string {
	ss := int(h.SectorSize)
	sec := raw[i*ss : (i+1)*ss]
	s, st, why := ondisk.DecodeSlot(sec, h.PoolUUID, i)
	if st == ondisk.SlotOK {
		return fmt.Sprintf("it holds host %q, state %s, generation %d", s.HostName, s.State, s.Generation)
	}
	if st != ondisk.SlotUnused {
		return fmt.Sprintf("it reads %s: %s", st, why)
	}
	if !ondisk.IsZero(sec) {
		return "its sector holds data after the record"
	}
	return ""
}

// Describe says what the target is, for humans.
func (t *Target) Describe() string {
	switch t.Mode {
	case ModeScratch:
		return fmt.Sprintf("scratch file %s (%d sectors of %d bytes; removed at the end)", t.Path, RegionSectors, t.Sector)
	case ModeRegion:
		return fmt.Sprintf("%s, bytes %d to %d (%d sectors of %d; what they held is written back at the end)",
			t.Path, t.Offset, t.Offset+int64(t.ReadLen), RegionSectors, t.Sector)
	}
	return fmt.Sprintf("%s at offset %d: unused slot %d of pool %s (writes zeroes into that slot's sector, reads the %d-byte slot region, checks before every write that the slot is still unused)",
		t.Path, t.Offset, t.Slot, t.Pool, t.ReadLen)
}

// pattern is what a write of cycle seq puts in its sector (not in ModeSlot,
// which writes zeroes): a tag and the sequence, then non-zero filler, so
// storage that elides zero writes still does the write.
func (t *Target) pattern(buf []byte, seq uint64) {
	copy(buf, "HBFPROBE")
	binary.LittleEndian.PutUint64(buf[8:], seq)
	for i := 16; i < len(buf); i++ {
		buf[i] = byte(seq) ^ byte(i) | 1
	}
}

// seqOf is the sequence a read's first sector shows, if it holds a pattern.
func seqOf(buf []byte) (uint64, bool) {
	if len(buf) < 16 || string(buf[:8]) != "HBFPROBE" {
		return 0, false
	}
	return binary.LittleEndian.Uint64(buf[8:]), true
}

// Close ends the probe's use of the target: it removes the scratch file or
// writes the region's original bytes back. An I/O left under way by a
// timeout is waited for (up to a minute) before the region is restored.
func (t *Target) Close() error {
	if t.closed {
		return nil
	}
	t.closed = true
	switch t.Mode {
	case ModeScratch:
		t.dev.Close()
		if err := os.Remove(t.scratch); err != nil {
			return fmt.Errorf("removing the scratch file: %w", err)
		}
		return nil
	case ModeRegion:
		defer t.dev.Close()
		deadline := time.Now().Add(setupTimeout)
		for {
			err := t.dev.WriteAt(t.original, 0, setupTimeout)
			if err == nil {
				return nil
			}
			if !errors.Is(err, directio.ErrBusy) || time.Now().After(deadline) {
				return fmt.Errorf("%s: writing back the %d bytes the region held at offset %d: %w; they are lost, the region holds the probe's pattern", t.Path, len(t.original), t.Offset, err)
			}
			time.Sleep(10 * time.Millisecond) // an I/O that timed out is still under way
		}
	}
	return t.dev.Close()
}

func firstNonZero(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return i
		}
	}
	return -1
}
