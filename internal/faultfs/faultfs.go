package faultfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Op is a class of operations a fault applies to.
type Op string

const (
	// OpRead is read(2), pread(2) and their O_DIRECT forms.
	OpRead Op = "read"
	// OpWrite is write(2), pwrite(2) and fsync(2) / fdatasync(2).
	OpWrite Op = "write"
	// OpOpen is open(2) and creat(2) of files in the mount.
	OpOpen Op = "open"
)

// Ops are all the classes, in a stable order.
var Ops = []Op{OpRead, OpWrite, OpOpen}

// Fault is what happens to an operation: first it hangs while Hang is
// set, then it waits Delay, then it fails with Errno (0: it is carried
// out). The zero Fault passes.
type Fault struct {
	Hang  bool
	Delay time.Duration
	Errno syscall.Errno
}

// Pass is the fault that does nothing.
var Pass = Fault{}

// String writes the fault as ParseFault reads it.
func (f Fault) String() string {
	var w []string
	if f.Hang {
		w = append(w, "hang")
	}
	if f.Delay > 0 {
		w = append(w, "delay", f.Delay.String())
	}
	if f.Errno != 0 {
		if f.Errno == syscall.EIO {
			w = append(w, "eio")
		} else {
			w = append(w, "errno", errnoName(f.Errno))
		}
	}
	if len(w) == 0 {
		return "pass"
	}
	return strings.Join(w, " ")
}

// ParseFault reads a fault: "pass", "hang", "eio", "errno NAME|NUMBER",
// "delay DURATION", or a combination such as "delay 200ms eio".
func ParseFault(words []string) (Fault, error) {
	var f Fault
	if len(words) == 0 {
		return f, errors.New("no fault: want pass, hang, eio, errno NAME, delay DURATION")
	}
	for i := 0; i < len(words); i++ {
		switch w := strings.ToLower(words[i]); w {
		case "pass":
		case "hang":
			f.Hang = true
		case "eio":
			f.Errno = syscall.EIO
		case "errno", "error":
			if i+1 >= len(words) {
				return f, fmt.Errorf("%s needs a name or number (EIO, ENOSPC, 5)", w)
			}
			i++
			e, err := parseErrno(words[i])
			if err != nil {
				return f, err
			}
			f.Errno = e
		case "delay", "latency":
			if i+1 >= len(words) {
				return f, fmt.Errorf("%s needs a duration (200ms)", w)
			}
			i++
			d, err := time.ParseDuration(words[i])
			if err != nil || d < 0 {
				return f, fmt.Errorf("%s %q: not a duration (write it like 200ms or 2s)", w, words[i])
			}
			f.Delay = d
		default:
			return f, fmt.Errorf("unknown fault %q: want pass, hang, eio, errno NAME, delay DURATION", words[i])
		}
	}
	return f, nil
}

func parseErrno(s string) (syscall.Errno, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 4096 {
		return syscall.Errno(n), nil
	}
	name := strings.ToUpper(s)
	for e := syscall.Errno(1); e < 256; e++ {
		if unix.ErrnoName(e) == name {
			return e, nil
		}
	}
	return 0, fmt.Errorf("unknown errno %q", s)
}

func errnoName(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return strconv.Itoa(int(e))
}

// Options of a mount.
type Options struct {
	// Backing is the directory the mount shows.
	Backing string
	// Mountpoint is an existing empty directory.
	Mountpoint string
	// Control, if set, is a unix socket path on which the faults can be
	// set by another process (see Control and the doc).
	Control string
	// Name tells mounts apart in /proc/mounts and logs (e.g. the host).
	Name string
	// Debug logs every FUSE request.
	Debug bool
	// Logger receives go-fuse's diagnostics; nil: discarded.
	Logger *log.Logger
}

// Stats counts operations since the mount.
type Stats struct {
	Reads, Writes, Opens int64 // operations that reached the file system
	Failed               int64 // returned an injected error
	Hung                 int   // hung now
}

// FS is one mounted view of a backing directory with its faults.
type FS struct {
	opts   Options
	server *fuse.Server
	connID uint64 // the FUSE connection (minor of the mount's st_dev)

	mu      sync.Mutex
	faults  map[Op]Fault
	changed chan struct{} // closed and replaced at every change
	closing chan struct{} // closed by Unmount
	closed  bool
	stats   Stats

	ctl     *controlServer
	unmount sync.Once
	umErr   error
}

// Mount mounts a view of o.Backing at o.Mountpoint (root only: it calls
// mount(2) itself) with every fault at Pass.
func Mount(o Options) (*FS, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("faultfs: mounting needs root (it calls mount(2) itself)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("faultfs: %w", err)
	}
	backing, err := filepath.Abs(o.Backing)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("faultfs: backing %w", err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return nil, fmt.Errorf("faultfs: backing %s is not a directory", backing)
	}
	o.Backing = backing
	if o.Name == "" {
		o.Name = filepath.Base(o.Mountpoint)
	}
	f := &FS{opts: o, faults: map[Op]Fault{}, changed: make(chan struct{}), closing: make(chan struct{})}

	root := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	root.NewNode = func(rd *fs.LoopbackRoot, parent *fs.Inode, name string, st *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: rd}, ffs: f}
	}
	root.RootNode = root.NewNode(root, nil, "", &st)

	logger := o.Logger
	if logger == nil {
		logger = log.New(io.Discard, "", 0)
	}
	zero := time.Duration(0)
	server, err := fs.Mount(o.Mountpoint, root.RootNode, &fs.Options{
		// No kernel caching of names or attributes: several mounts of
		// one backing directory must agree at once, as the hosts of a
		// pool sharing storage do.
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		Logger:          logger,
		MountOptions: fuse.MountOptions{
			DirectMountStrict: true,
			AllowOther:        true,
			FsName:            "faultfs:" + backing,
			Name:              "faultfs",
			MaxWrite:          1 << 20,
			Debug:             o.Debug,
			Logger:            logger,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("faultfs: mount %s on %s: %w", backing, o.Mountpoint, err)
	}
	f.server = server
	var mst syscall.Stat_t
	if err := syscall.Stat(o.Mountpoint, &mst); err == nil {
		f.connID = uint64(unix.Minor(mst.Dev))
	}
	if o.Control != "" {
		ctl, err := listenControl(o.Control, f)
		if err != nil {
			f.Unmount()
			return nil, err
		}
		f.ctl = ctl
	}
	return f, nil
}

// Mountpoint is where the view is mounted.
func (f *FS) Mountpoint() string { return f.opts.Mountpoint }

// Set sets the fault of one class of operations; OpAll sets all. An
// operation hung when the fault changes looks at the new fault: it goes on
// with it (released by Pass or a delay, failed by an errno).
func (f *FS) Set(op Op, fault Fault) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch op {
	case OpAll:
		for _, o := range Ops {
			f.faults[o] = fault
		}
	case OpRead, OpWrite, OpOpen:
		f.faults[op] = fault
	default:
		return fmt.Errorf("faultfs: unknown operation %q: want read, write, open or all", op)
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

// OpAll names every class in Set.
const OpAll Op = "all"

// Clear sets every fault to Pass, releasing hung operations.
func (f *FS) Clear() { f.Set(OpAll, Pass) }

// Faults returns the current faults.
func (f *FS) Faults() map[Op]Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[Op]Fault{}
	for _, o := range Ops {
		out[o] = f.faults[o]
	}
	return out
}

// Stats returns the counters.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// inject applies the fault of op to one operation.
func (f *FS) inject(ctx context.Context, op Op) syscall.Errno {
	f.mu.Lock()
	switch op {
	case OpRead:
		f.stats.Reads++
	case OpWrite:
		f.stats.Writes++
	case OpOpen:
		f.stats.Opens++
	}
	for {
		if f.closed {
			f.mu.Unlock()
			return syscall.EIO
		}
		fault, changed, closing := f.faults[op], f.changed, f.closing
		if !fault.Hang {
			f.mu.Unlock()
			if fault.Delay > 0 {
				t := time.NewTimer(fault.Delay)
				select {
				case <-t.C:
				case <-ctx.Done(): // the caller was interrupted (killed)
					t.Stop()
					return syscall.EINTR
				case <-closing:
					t.Stop()
					return syscall.EIO
				}
			}
			if fault.Errno != 0 {
				f.mu.Lock()
				f.stats.Failed++
				f.mu.Unlock()
				return fault.Errno
			}
			return 0
		}
		f.stats.Hung++
		f.mu.Unlock()
		var errno syscall.Errno
		select {
		case <-changed:
		case <-closing:
			errno = syscall.EIO
		case <-ctx.Done():
			errno = syscall.EINTR
		}
		f.mu.Lock()
		f.stats.Hung--
		if errno != 0 {
			f.mu.Unlock()
			return errno
		}
	}
}

// Unmount releases every hung or delayed operation (they fail with EIO),
// closes the control socket and unmounts. If files are still open in the
// mount it detaches it (lazy unmount) and aborts the FUSE connection, so
// that the file system is gone and the server stopped even then: callers
// still holding files get ENOTCONN. It is safe to call more than once.
func (f *FS) Unmount() error {
	f.unmount.Do(func() { f.umErr = f.doUnmount() })
	return f.umErr
}

func (f *FS) doUnmount() error {
	f.mu.Lock()
	f.closed = true
	close(f.closing)
	f.mu.Unlock()
	if f.ctl != nil {
		f.ctl.close()
	}
	mnt := f.opts.Mountpoint
	err := syscall.Unmount(mnt, 0)
	if err == nil {
		f.server.Wait()
		return nil
	}
	if !errors.Is(err, syscall.EBUSY) {
		return fmt.Errorf("faultfs: unmount %s: %w", mnt, err)
	}
	// Busy: files are open. Detach, then abort the connection so that
	// nothing waits on this server any more.
	if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("faultfs: lazy unmount %s: %w", mnt, err)
	}
	if err := abortConnection(f.connID); err != nil {
		return fmt.Errorf("faultfs: %s detached, but its FUSE connection %d still serves open files: %w", mnt, f.connID, err)
	}
	done := make(chan struct{})
	go func() { f.server.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("faultfs: %s detached and its connection aborted, but the server has not stopped", mnt)
	}
}

// abortConnection writes to fusectl's abort file of the connection,
// mounting fusectl in a temporary directory if it is not mounted.
func abortConnection(id uint64) error {
	if id == 0 {
		return errors.New("unknown connection")
	}
	dir := fusectlMount()
	cleanup := func() {}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "fusectl-")
		if err != nil {
			return err
		}
		if err := syscall.Mount("fusectl", tmp, "fusectl", 0, ""); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("mount fusectl: %w", err)
		}
		dir = tmp
		cleanup = func() {
			syscall.Unmount(tmp, syscall.MNT_DETACH)
			os.Remove(tmp)
		}
	}
	defer cleanup()
	err := os.WriteFile(filepath.Join(dir, strconv.FormatUint(id, 10), "abort"), []byte("1"), 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil // the connection ended meanwhile: its last file was closed
	}
	return err
}

func fusectlMount() string {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[2] == "fusectl" {
			return f[1]
		}
	}
	return ""
}

// node is a loopback node whose files carry the faults.
type node struct {
	fs.LoopbackNode
	ffs *FS
}

var (
	_ fs.NodeOpener  = (*node)(nil)
	_ fs.NodeCreater = (*node)(nil)
)

// Open opens the backing file without O_DIRECT (the server's buffers are
// not aligned; the kernel side is direct anyway, below) and returns a
// handle with FOPEN_DIRECT_IO: no page cache in the mount, every read and
// write reaches the server, and through it the backing file, which all
// mounts share.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.ffs.inject(ctx, OpOpen); errno != 0 {
		return nil, 0, errno
	}
	fh, _, errno := n.LoopbackNode.Open(ctx, flags&^syscall.O_DIRECT)
	if errno != 0 {
		return nil, 0, errno
	}
	return n.wrap(fh), fuse.FOPEN_DIRECT_IO, 0
}

// Create is Open for a new file.
func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if errno := n.ffs.inject(ctx, OpOpen); errno != 0 {
		return nil, nil, 0, errno
	}
	in, fh, _, errno := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_DIRECT, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	return in, n.wrap(fh), fuse.FOPEN_DIRECT_IO, 0
}

func (n *node) wrap(fh fs.FileHandle) fs.FileHandle {
	return &file{lf: fh.(*fs.LoopbackFile), ffs: n.ffs}
}

// file forwards to a loopback file after the fault. It does not
// implement FilePassthroughFder: with kernel passthrough the reads and
// writes would bypass the server and its faults.
type file struct {
	lf  *fs.LoopbackFile
	ffs *FS
}

var (
	_ fs.FileReader    = (*file)(nil)
	_ fs.FileWriter    = (*file)(nil)
	_ fs.FileFsyncer   = (*file)(nil)
	_ fs.FileFlusher   = (*file)(nil)
	_ fs.FileReleaser  = (*file)(nil)
	_ fs.FileGetattrer = (*file)(nil)
	_ fs.FileSetattrer = (*file)(nil)
	_ fs.FileLseeker   = (*file)(nil)
	_ fs.FileAllocater = (*file)(nil)
)

func (f *file) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if errno := f.ffs.inject(ctx, OpRead); errno != 0 {
		return nil, errno
	}
	return f.lf.Read(ctx, dest, off)
}

func (f *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if errno := f.ffs.inject(ctx, OpWrite); errno != 0 {
		return 0, errno
	}
	return f.lf.Write(ctx, data, off)
}

func (f *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if errno := f.ffs.inject(ctx, OpWrite); errno != 0 {
		return errno
	}
	return f.lf.Fsync(ctx, flags)
}

func (f *file) Flush(ctx context.Context) syscall.Errno   { return f.lf.Flush(ctx) }
func (f *file) Release(ctx context.Context) syscall.Errno { return f.lf.Release(ctx) }
func (f *file) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Getattr(ctx, out)
}
func (f *file) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return f.lf.Setattr(ctx, in, out)
}
func (f *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	return f.lf.Lseek(ctx, off, whence)
}
func (f *file) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	return f.lf.Allocate(ctx, off, size, mode)
}

// sortedOps is Ops as strings, for messages.
func sortedOps() []string {
	var s []string
	for _, o := range Ops {
		s = append(s, string(o))
	}
	sort.Strings(s)
	return s
}
