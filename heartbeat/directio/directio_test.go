package directio_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/directio"
	"golang.org/x/sys/unix"
)

// ioTimeout bounds I/O that is expected to succeed: long enough for a
// loaded CI machine under -race, never reached on a healthy disk.
const ioTimeout = 30 * time.Second

// newFile makes a file of size bytes filled with fill.
func newFile(t *testing.T, size int, fill byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hb")
	if err := os.WriteFile(path, bytes.Repeat([]byte{fill}, size), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func open(t *testing.T, path string, off int64, mode directio.Mode) *directio.Device {
	t.Helper()
	d, err := directio.Open(path, off, mode)
	if err != nil {
		t.Fatalf("Open(%s, %d): %v", path, off, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func TestGeometryFile(t *testing.T) {
	const size = 64 << 10
	path := newFile(t, size, 0)

	// What the kernel says, asked independently of the code under test.
	var sx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_DIOALIGN, &sx); err != nil {
		t.Fatal(err)
	}
	detected := sx.Mask&unix.STATX_DIOALIGN != 0 && sx.Dio_offset_align != 0
	wantAlign := 512
	if detected {
		wantAlign = int(sx.Dio_offset_align)
	}

	d := open(t, path, 0, directio.ReadWrite)
	g := d.Geometry()
	if g.BlockDevice {
		t.Error("BlockDevice = true for a regular file")
	}
	if g.Detected != detected {
		t.Errorf("Detected = %v; statx STATX_DIOALIGN says %v", g.Detected, detected)
	}
	if g.Alignment != wantAlign {
		t.Errorf("Alignment = %d, want %d (statx dio_offset_align %d)", g.Alignment, wantAlign, sx.Dio_offset_align)
	}
	if g.MemAlignment < 512 || (detected && g.MemAlignment < int(sx.Dio_mem_align)) {
		t.Errorf("MemAlignment = %d; want at least 512 and statx dio_mem_align %d", g.MemAlignment, sx.Dio_mem_align)
	}
	if g.Size != size {
		t.Errorf("Size = %d, want %d", g.Size, size)
	}
	if d.Path() != path || d.Offset() != 0 {
		t.Errorf("Path, Offset = %q, %d", d.Path(), d.Offset())
	}

	// At an offset, Size counts from the offset.
	off := int64(4 * g.Alignment)
	d2 := open(t, path, off, directio.ReadOnly)
	if got := d2.Geometry().Size; got != size-off {
		t.Errorf("at offset %d: Size = %d, want %d", off, got, size-off)
	}
}

// A file on a file system over 4096-byte sectors: statx reports 4096, and
// 512-byte I/O is refused before it reaches the kernel.
func TestGeometryFileOn4096(t *testing.T) {
	dir := mount4k(t)
	path := filepath.Join(dir, "hb")
	if err := os.WriteFile(path, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	d := open(t, path, 0, directio.ReadWrite)
	g := d.Geometry()
	if g.BlockDevice || !g.Detected || g.Alignment != 4096 {
		t.Errorf("geometry %+v; want a detected 4096 alignment on a regular file", g)
	}
	if err := d.WriteAt(make([]byte, 512), 0, ioTimeout); !errors.Is(err, directio.ErrAlignment) {
		t.Errorf("512-byte write: %v, want ErrAlignment", err)
	}
	if _, err := directio.Open(path, 512, directio.ReadOnly); !errors.Is(err, directio.ErrAlignment) {
		t.Errorf("Open at offset 512: %v, want ErrAlignment", err)
	}
	src := pattern(4096, 8)
	if err := d.WriteAt(src, 4096, ioTimeout); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 4096)
	if err := d.ReadAt(dst, 4096, ioTimeout); err != nil || !bytes.Equal(src, dst) {
		t.Errorf("round trip: %v, equal %v", err, bytes.Equal(src, dst))
	}
}

func TestRoundTripFileAtOffset(t *testing.T) {
	const size = 64 << 10
	path := newFile(t, size, 0xAA)
	d := open(t, path, 0, directio.ReadWrite)
	a := d.Geometry().Alignment
	d.Close()

	areaOff := int64(2 * a)
	d = open(t, path, areaOff, directio.ReadWrite)
	src := pattern(2*a, 1)
	if err := d.WriteAt(src, int64(a), ioTimeout); err != nil {
		t.Fatalf("WriteAt: %v", err)
	}
	dst := make([]byte, len(src))
	if err := d.ReadAt(dst, int64(a), ioTimeout); err != nil {
		t.Fatalf("ReadAt: %v", err)
	}
	if !bytes.Equal(dst, src) {
		t.Fatal("read back differs from what was written")
	}
	// On disk, the write is at areaOff+a and nothing else changed.
	disk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte{0xAA}, size)
	copy(want[areaOff+int64(a):], src)
	if !bytes.Equal(disk, want) {
		t.Fatalf("file differs from expected at byte %d", firstDiff(disk, want))
	}
	// The caller's buffers are its own: unaligned slices work, since the
	// device copies through its own aligned buffer.
	un := make([]byte, a+1)[1:]
	if err := d.ReadAt(un, int64(a), ioTimeout); err != nil {
		t.Fatalf("ReadAt into an unaligned buffer: %v", err)
	}
	if !bytes.Equal(un, src[:a]) {
		t.Fatal("unaligned read differs")
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

func TestMisaligned(t *testing.T) {
	const size = 64 << 10
	path := newFile(t, size, 0x55)
	d := open(t, path, 0, directio.ReadWrite)
	a := d.Geometry().Alignment
	before, _ := os.ReadFile(path)

	for _, c := range []struct {
		name string
		off  int64
		n    int
	}{
		{"offset", 100, a},
		{"length", 0, a + 100},
		{"short length", 0, 100},
		{"empty", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := d.WriteAt(make([]byte, c.n), c.off, ioTimeout)
			if !errors.Is(err, directio.ErrAlignment) {
				t.Errorf("WriteAt(%d bytes at %d) = %v, want ErrAlignment", c.n, c.off, err)
			}
			err = d.ReadAt(make([]byte, c.n), c.off, ioTimeout)
			if !errors.Is(err, directio.ErrAlignment) {
				t.Errorf("ReadAt(%d bytes at %d) = %v, want ErrAlignment", c.n, c.off, err)
			}
		})
	}
	// A negative offset would reach before the area's start.
	d.Close()
	d = open(t, path, int64(a), directio.ReadWrite)
	if err := d.WriteAt(make([]byte, a), -int64(a), ioTimeout); err == nil {
		t.Error("WriteAt at a negative offset succeeded")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("a refused I/O changed the file at byte %d", firstDiff(before, after))
	}
	// The device still works after refusing.
	if err := d.ReadAt(make([]byte, a), 0, ioTimeout); err != nil {
		t.Errorf("ReadAt after refusals: %v", err)
	}
}

func TestOpenOffset(t *testing.T) {
	const size = 8192
	path := newFile(t, size, 0)
	d := open(t, path, 0, directio.ReadOnly)
	a := d.Geometry().Alignment

	if _, err := directio.Open(path, int64(a)+1, directio.ReadOnly); !errors.Is(err, directio.ErrAlignment) {
		t.Errorf("Open at a misaligned offset: %v, want ErrAlignment", err)
	}
	if _, err := directio.Open(path, -int64(a), directio.ReadOnly); err == nil {
		t.Error("Open at a negative offset succeeded")
	}
	past := int64(size + a)
	_, err := directio.Open(path, past, directio.ReadOnly)
	if err == nil || !strings.Contains(err.Error(), "past the end") {
		t.Errorf("Open at %d in a file of %d bytes: %v, want an error saying past the end", past, size, err)
	}
	// Exactly at the end is an empty area, not an error.
	end := open(t, path, size, directio.ReadOnly)
	if end.Geometry().Size != 0 {
		t.Errorf("at the end: Size = %d, want 0", end.Geometry().Size)
	}
}

func TestShortReadAtEOF(t *testing.T) {
	path := newFile(t, 0, 0)
	d := open(t, path, 0, directio.ReadWrite)
	a := d.Geometry().Alignment
	if err := os.WriteFile(path, pattern(2*a, 3), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 4*a)
	err := d.ReadAt(dst, 0, ioTimeout)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("reading %d bytes of a %d-byte file: %v, want an error that says truncated", 4*a, 2*a, err)
	}
	err = d.ReadAt(dst[:a], int64(2*a), ioTimeout)
	if err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("reading at the end of the file: %v, want an error that says truncated", err)
	}
}

func TestNotAFileOrDevice(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{dir, "directory"},
		{fifo, "FIFO"},
		{sock, "socket"},
		{"/dev/null", "character device"},
	} {
		for _, mode := range []directio.Mode{directio.ReadOnly, directio.ReadWrite} {
			// Opening a FIFO for reading blocks until a writer comes;
			// Open must not, so a hang here fails the test rather
			// than hanging it.
			done := make(chan error, 1)
			go func() {
				d, err := directio.Open(c.path, 0, mode)
				if err == nil {
					d.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
					t.Errorf("Open(%s, mode %d) = %v, want an error naming the path and saying %q", c.path, mode, err, c.want)
				}
			case <-time.After(10 * time.Second):
				// Unblock the stuck open before failing.
				if w, err := os.OpenFile(c.path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
				t.Fatalf("Open(%s, mode %d) blocked", c.path, mode)
			}
		}
	}
}

func TestMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "file")
	_, err := directio.Open(path, 0, directio.ReadOnly)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open of a missing path: %v, want ErrNotExist naming the path", err)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	path := newFile(t, 8192, 0x11)
	d := open(t, path, 0, directio.ReadOnly)
	a := d.Geometry().Alignment
	err := d.WriteAt(pattern(a, 9), 0, ioTimeout)
	if err == nil {
		t.Fatal("WriteAt on a read-only device succeeded")
	}
	if !errors.Is(err, unix.EBADF) {
		t.Errorf("WriteAt on a read-only device: %v, want EBADF", err)
	}
	got, _ := os.ReadFile(path)
	if !bytes.Equal(got, bytes.Repeat([]byte{0x11}, 8192)) {
		t.Error("the refused write changed the file")
	}
	// A failed I/O does not leave the device busy.
	if err := d.ReadAt(make([]byte, a), 0, ioTimeout); err != nil {
		t.Errorf("ReadAt after the refused write: %v", err)
	}
}

func TestClose(t *testing.T) {
	path := newFile(t, 8192, 0)
	d, err := directio.Open(path, 0, directio.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	a := d.Geometry().Alignment
	if err := d.ReadAt(make([]byte, a), 0, ioTimeout); err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t, path); n != 1 {
		t.Fatalf("%d descriptors open on the file, want 1", n)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// An idle device's Close releases the descriptor before it returns.
	if n := openFDs(t, path); n != 0 {
		t.Errorf("%d descriptors still open after Close", n)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := d.ReadAt(make([]byte, a), 0, ioTimeout); !errors.Is(err, directio.ErrClosed) {
		t.Errorf("ReadAt after Close: %v, want ErrClosed", err)
	}
	if err := d.WriteAt(make([]byte, a), 0, ioTimeout); !errors.Is(err, directio.ErrClosed) {
		t.Errorf("WriteAt after Close: %v, want ErrClosed", err)
	}
}

func TestExtend(t *testing.T) {
	path := newFile(t, 4096, 0x22)
	d := open(t, path, 4096, directio.ReadWrite)
	if err := d.Extend(8192); err != nil {
		t.Fatal(err)
	}
	if got := d.Geometry().Size; got != 8192 {
		t.Errorf("Size after Extend = %d, want 8192", got)
	}
	fi, _ := os.Stat(path)
	if fi.Size() != 4096+8192 {
		t.Errorf("file is %d bytes, want %d", fi.Size(), 4096+8192)
	}
	if err := d.Extend(512); err != nil || d.Geometry().Size != 8192 {
		t.Errorf("Extend to less: %v, Size %d; want no change", err, d.Geometry().Size)
	}
}

func TestLoopGeometry(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(sectorName(ss), func(t *testing.T) {
			const size = 4 << 20
			dev, _ := newLoop(t, size, ss)
			d := open(t, dev, 0, directio.ReadWrite)
			g := d.Geometry()
			if !g.BlockDevice || !g.Detected {
				t.Errorf("BlockDevice, Detected = %v, %v; want true, true", g.BlockDevice, g.Detected)
			}
			if g.Alignment != ss {
				t.Errorf("Alignment = %d, want %d (losetup --sector-size %d)", g.Alignment, ss, ss)
			}
			if g.MemAlignment < 512 {
				t.Errorf("MemAlignment = %d", g.MemAlignment)
			}
			if g.Size != size {
				t.Errorf("Size = %d, want %d", g.Size, size)
			}
			src := pattern(2*ss, 5)
			if err := d.WriteAt(src, int64(ss), ioTimeout); err != nil {
				t.Fatalf("WriteAt: %v", err)
			}
			dst := make([]byte, len(src))
			if err := d.ReadAt(dst, int64(ss), ioTimeout); err != nil {
				t.Fatalf("ReadAt: %v", err)
			}
			if !bytes.Equal(src, dst) {
				t.Fatal("read back differs")
			}
			if ss > 512 {
				// 512-byte I/O is what a 512-sector format would do.
				if err := d.WriteAt(make([]byte, 512), 0, ioTimeout); !errors.Is(err, directio.ErrAlignment) {
					t.Errorf("512-byte write on a %d-sector device: %v, want ErrAlignment", ss, err)
				}
				if _, err := directio.Open(dev, 512, directio.ReadOnly); !errors.Is(err, directio.ErrAlignment) {
					t.Errorf("Open at offset 512 of a %d-sector device: %v, want ErrAlignment", ss, err)
				}
			}
			// Reading past the end of a device fails, saying so.
			err := d.ReadAt(make([]byte, ss), size, ioTimeout)
			if err == nil || !strings.Contains(err.Error(), "truncated") {
				t.Errorf("read past the end of the device: %v, want an error that says truncated", err)
			}
		})
	}
}

func sectorName(ss int) string {
	if ss == 4096 {
		return "sector=4096"
	}
	return "sector=512"
}
