package directio

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Device is a heartbeat area opened for O_DIRECT|O_DSYNC I/O: a plain file
// (the NFS case) or a block device, from a byte offset on.
//
// Every I/O runs on one worker goroutine and is bounded by a timeout. An I/O
// that does not return in time is reported as failed (ErrTimeout) and the
// caller goes on deciding; the worker stays blocked in the system call, and
// until it returns every further I/O fails at once with ErrBusy. The worker
// owns the aligned buffer the kernel reads into or writes from, so a timed
// out I/O can never scribble on memory the caller has reused.
type Device struct {
	path     string
	offset   int64
	file     *os.File
	geometry Geometry

	mu     sync.Mutex
	busy   bool   // an I/O is under way, or its result not yet taken
	busyOp string // what it is doing, for ErrBusy
	// abandoned is set when the caller of the I/O under way gave up on
	// it (timeout); the worker then frees the device when the system
	// call returns.
	abandoned bool
	since     time.Time // when it started
	buf       []byte    // aligned; owned by the worker while busy
	reqs      chan request
	closing   chan struct{}
	exited    chan struct{} // closed when the worker has returned
	closed    bool
}

// Geometry is what the kernel says about direct I/O to the path.
type Geometry struct {
	// BlockDevice is true for a block device, false for a regular file.
	BlockDevice bool
	// Alignment is the offset and length alignment direct I/O needs
	// (BLKSSZGET for a device, statx STATX_DIOALIGN for a file).
	Alignment int
	// MemAlignment is the buffer address alignment direct I/O needs.
	MemAlignment int
	// Detected is false when the file system did not report its direct
	// I/O alignment (statx without STATX_DIOALIGN, as on NFS) and 512 was
	// assumed.
	Detected bool
	// Size is the number of bytes from the offset to the end of the file
	// or device.
	Size int64
}

// Errors of a Device; test with errors.Is.
var (
	ErrTimeout   = errors.New("I/O timed out")
	ErrBusy      = errors.New("an earlier I/O has not returned")
	ErrClosed    = errors.New("device is closed")
	ErrAlignment = errors.New("not aligned for direct I/O")
	// ErrShort: the file ended before the I/O did.
	ErrShort = errors.New("short I/O: the file ends before")
)

type request struct {
	write bool
	off   int64
	n     int
	done  chan result
}

type result struct {
	n   int
	err error
}

// Mode says how to open.
type Mode int

const (
	ReadOnly Mode = iota
	ReadWrite
)

// Open opens path for direct I/O at offset. The offset must be a multiple
// of the path's direct I/O alignment.
func Open(path string, offset int64, mode Mode) (*Device, error) {
	// Look before opening: opening a FIFO for reading blocks until a
	// writer comes, and a directory or character device is never right.
	if fi, err := os.Stat(path); err == nil {
		if kind := badKind(fi.Mode()); kind != "" {
			return nil, fmt.Errorf("%s is %s, not a regular file or block device", path, kind)
		}
	}
	flags := unix.O_DIRECT | unix.O_CLOEXEC
	if mode == ReadWrite {
		flags |= unix.O_RDWR | unix.O_DSYNC
	} else {
		flags |= unix.O_RDONLY
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("open %s with O_DIRECT: the file system does not support direct I/O (%v)", path, err)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return FromFile(f, path, offset)
}

// FromFile makes a Device of a file opened for direct I/O already: an
// open handed over by the previous image of this process (a re-exec).
// path is what the file was opened from, for messages. On error f is
// closed.
func FromFile(f *os.File, path string, offset int64) (*Device, error) {
	if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_DIRECT == 0 {
		f.Close()
		return nil, fmt.Errorf("%s: the open handed over is not for direct I/O (flags %#x, %v)", path, fl, err)
	}
	g, err := probe(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if offset < 0 || offset%int64(g.Alignment) != 0 {
		f.Close()
		return nil, fmt.Errorf("%s: offset %d is %w: it must be a multiple of %d", path, offset, ErrAlignment, g.Alignment)
	}
	if offset > g.Size {
		f.Close()
		return nil, fmt.Errorf("%s: offset %d is past the end (%d bytes)", path, offset, g.Size)
	}
	g.Size -= offset
	d := &Device{
		path:     path,
		offset:   offset,
		file:     f,
		geometry: g,
		reqs:     make(chan request),
		closing:  make(chan struct{}),
		exited:   make(chan struct{}),
	}
	go d.worker()
	return d, nil
}

// File is the open file, for handing it to the next image of this process
// (a re-exec). Do no I/O on it.
func (d *Device) File() *os.File { return d.file }

// Path is the path the device was opened from.
func (d *Device) Path() string { return d.path }

// Offset is where the area starts in the file or device.
func (d *Device) Offset() int64 { return d.offset }

// Geometry returns what was found at open.
func (d *Device) Geometry() Geometry { return d.geometry }

func probe(f *os.File) (Geometry, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return Geometry{}, fmt.Errorf("fstat: %w", err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
		if err != nil {
			return Geometry{}, fmt.Errorf("ioctl BLKSSZGET: %w", err)
		}
		var size uint64
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); e != 0 {
			return Geometry{}, fmt.Errorf("ioctl BLKGETSIZE64: %w", e)
		}
		return Geometry{BlockDevice: true, Alignment: ss, MemAlignment: ss, Detected: true, Size: int64(size)}, nil
	case unix.S_IFREG:
		g := Geometry{Alignment: 512, MemAlignment: 512, Size: st.Size}
		var sx unix.Statx_t
		err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN, &sx)
		if err == nil && sx.Mask&unix.STATX_DIOALIGN != 0 {
			if sx.Dio_offset_align == 0 {
				return Geometry{}, errors.New("the file system does not support direct I/O on this file (statx reports no STATX_DIOALIGN alignment)")
			}
			g.Alignment = int(sx.Dio_offset_align)
			g.MemAlignment = int(sx.Dio_mem_align)
			g.Detected = true
		}
		if g.MemAlignment < 512 {
			// Buffers are always at least 512-aligned; a smaller
			// requirement is met by that.
			g.MemAlignment = 512
		}
		return g, nil
	default:
		return Geometry{}, fmt.Errorf("%s, not a regular file or block device", kindOf(st.Mode&unix.S_IFMT))
	}
}

// badKind names a file type direct I/O cannot use ("" for a regular file
// or a block device).
func badKind(m os.FileMode) string {
	switch {
	case m.IsRegular(), m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0:
		return ""
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a FIFO (named pipe)"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	default:
		return fmt.Sprintf("a file of type %v", m.Type())
	}
}

func kindOf(t uint32) string {
	switch t {
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO (named pipe)"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	default:
		return fmt.Sprintf("a file of type %o", t)
	}
}

// ReadAt reads len(dst) bytes at off (relative to the area's start) into
// dst. off and len(dst) must be multiples of the alignment.
func (d *Device) ReadAt(dst []byte, off int64, timeout time.Duration) error {
	_, err := d.do(false, dst, off, timeout)
	return err
}

// WriteAt writes src at off (relative to the area's start). off and
// len(src) must be multiples of the alignment.
func (d *Device) WriteAt(src []byte, off int64, timeout time.Duration) error {
	_, err := d.do(true, src, off, timeout)
	return err
}

func (d *Device) do(write bool, p []byte, off int64, timeout time.Duration) (int, error) {
	op := "read"
	if write {
		op = "write"
	}
	a := int64(d.geometry.Alignment)
	if off < 0 {
		// Before the area: never touch what precedes --offset.
		return 0, fmt.Errorf("%s %s: negative offset %d (before the start of the area)", op, d.path, off)
	}
	if off%a != 0 || int64(len(p))%a != 0 || len(p) == 0 {
		return 0, fmt.Errorf("%s %s: %d bytes at %d %w (alignment %d)", op, d.path, len(p), off, ErrAlignment, a)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return 0, ErrClosed
	}
	if d.busy {
		op0, since := d.busyOp, d.since
		d.mu.Unlock()
		return 0, fmt.Errorf("%s %s: %w (%s pending for %v)", op, d.path, ErrBusy, op0, time.Since(since).Round(time.Millisecond))
	}
	if cap(d.buf) < len(p) {
		d.buf = alignedBuffer(len(p), d.geometry.MemAlignment)
	}
	buf := d.buf[:len(p)]
	if write {
		copy(buf, p)
	}
	d.busy, d.busyOp, d.since = true, op, time.Now()
	d.mu.Unlock()

	done := make(chan result, 1)
	req := request{write: write, off: off, n: len(p), done: done}
	select {
	case d.reqs <- req:
	case <-d.closing:
		d.mu.Lock()
		d.busy = false
		d.mu.Unlock()
		return 0, ErrClosed
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return d.finish(op, p, buf, off, r)
	case <-timer.C:
		d.mu.Lock()
		select {
		case r := <-done: // returned just as the timer fired
			d.mu.Unlock()
			return d.finish(op, p, buf, off, r)
		default:
			d.abandoned = true
			d.mu.Unlock()
		}
		return 0, fmt.Errorf("%s %s at offset %d: %w after %v", op, d.path, d.offset+off, ErrTimeout, timeout)
	}
}

// finish takes the result of an I/O whose caller waited for it: it copies a
// read out of the worker's buffer and only then frees the device.
func (d *Device) finish(op string, p, buf []byte, off int64, r result) (int, error) {
	if r.err == nil && op == "read" {
		copy(p, buf)
	}
	d.mu.Lock()
	d.busy = false
	d.mu.Unlock()
	if r.err != nil {
		return r.n, fmt.Errorf("%s %s at offset %d: %w", op, d.path, d.offset+off, r.err)
	}
	if r.n != len(p) {
		return r.n, fmt.Errorf("%s %s at offset %d: short %s, %d of %d bytes (area truncated?): %w", op, d.path, d.offset+off, op, r.n, len(p), ErrShort)
	}
	return r.n, nil
}

func (d *Device) worker() {
	defer close(d.exited)
	fd := int(d.file.Fd())
	for {
		select {
		case <-d.closing:
			return
		case req := <-d.reqs:
			buf := d.buf[:req.n]
			var n int
			var err error
			for {
				if req.write {
					n, err = unix.Pwrite(fd, buf, d.offset+req.off)
				} else {
					n, err = unix.Pread(fd, buf, d.offset+req.off)
				}
				// A signal (Go's preemption among them) can interrupt a
				// request a FUSE or NFS server has not answered: do it
				// again, the same bytes at the same offset. The caller's
				// timeout still bounds the whole.
				if err != unix.EINTR {
					break
				}
			}
			d.mu.Lock()
			req.done <- result{n: n, err: err} // buffered: never blocks
			if d.abandoned {
				d.busy, d.abandoned = false, false
			}
			d.mu.Unlock()
		}
	}
}

// Close releases the file. It does not wait for an I/O under way: every
// later I/O fails with ErrClosed at once, and a worker stuck in a system
// call closes the file itself when the call returns (closing the
// descriptor under the call could let the kernel reuse its number).
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	busy := d.busy
	d.mu.Unlock()
	close(d.closing)
	if busy {
		go func() {
			<-d.exited
			d.file.Close()
		}()
		return nil
	}
	// No I/O under way: the worker is idle and returns at once.
	<-d.exited
	return d.file.Close()
}

// Extend grows a plain file so that the area holds size bytes from its
// offset. It is an error on a block device, whose size is fixed.
func (d *Device) Extend(size int64) error {
	if d.geometry.BlockDevice {
		return fmt.Errorf("%s is a block device of %d bytes after the offset; it cannot grow to %d", d.path, d.geometry.Size, size)
	}
	if size <= d.geometry.Size {
		return nil
	}
	if err := d.file.Truncate(d.offset + size); err != nil {
		return err
	}
	d.geometry.Size = size
	return nil
}

// alignedBuffer returns n bytes whose address is a multiple of align. Go's
// garbage collector does not move heap objects, so the address stays put.
func alignedBuffer(n, align int) []byte {
	if align < 1 {
		align = 1
	}
	raw := make([]byte, n+align)
	shift := 0
	if r := int(uintptr(unsafe.Pointer(&raw[0])) % uintptr(align)); r != 0 {
		shift = align - r
	}
	return raw[shift : shift+n : shift+n]
}
