package area

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"golang.org/x/sys/unix"
)

// ErrReplaced: the area's path names another file or device than the one
// this Area opened, or the area's header changed under it (re-formatted
// with hbfence init). Test with errors.Is; the error is a *ReplacedError.
var ErrReplaced = errors.New("the heartbeat area was replaced")

// ReplacedError says how the area was replaced.
type ReplacedError struct {
	Path string
	// InPlace: the file or device is the same, but its header is
	// another one (re-formatted where it is): this host's writes would
	// now land in another pool's area.
	InPlace bool
	Reason  string
}

func (e *ReplacedError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Path, ErrReplaced, e.Reason)
}

func (e *ReplacedError) Unwrap() error { return ErrReplaced }

// Watcher returns a second Area on the same open file (a duplicated
// descriptor with a direct-I/O worker of its own), for Verify beside the
// heartbeat: a device runs one I/O at a time and refuses a second one
// (directio.ErrBusy), so a check on the heartbeat's own Area could fail a
// renewal. Close it when done.
func (a *Area) Watcher() (*Area, error) {
	fd, err := unix.FcntlInt(a.dev.File().Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: duplicating the area's descriptor: %w", a.dev.Path(), err)
	}
	dev, err := directio.FromFile(os.NewFile(uintptr(fd), a.dev.Path()), a.dev.Path(), a.dev.Offset())
	if err != nil {
		return nil, err
	}
	return &Area{dev: dev, header: a.header, sector: make([]byte, a.header.SectorSize)}, nil
}

// Verify checks that the area is still the one this Area opened: its path
// still names the same file or device (device, inode and, for a device,
// its number), and its header, read again with O_DIRECT, is unchanged.
// It returns a *ReplacedError when either changed, another error when it
// cannot tell (the header read failed: the storage is the renewals'
// business), and nil when the area is the same.
//
// Delete .server_pool_hb and create a new one at the same path, and a
// daemon that opened the old file writes into the deleted inode for ever:
// nobody reads it, and the new file's pool does not know this host. Verify
// sees the path name another inode. An init --force over the file where
// it is keeps the inode: Verify sees the header change.
func (a *Area) Verify() error {
	path := a.dev.Path()
	fi, err := a.dev.File().Stat()
	if err != nil {
		return fmt.Errorf("%s: checking the open area: %w", path, err)
	}
	held, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: checking the open area: no device and inode", path)
	}
	pi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return &ReplacedError{Path: path, Reason: "the path names nothing any more: the file this daemon opened was deleted or renamed; this host now heartbeats where no other host reads"}
	case err != nil:
		return fmt.Errorf("%s: checking the path: %w", path, err)
	}
	now, ok := pi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: checking the path: no device and inode", path)
	}
	if now.Dev != held.Dev || now.Ino != held.Ino || now.Rdev != held.Rdev {
		return &ReplacedError{Path: path, Reason: fmt.Sprintf("the path names another file now (device %d inode %d, this daemon opened device %d inode %d): the file was deleted or moved and another created there; this host now heartbeats where no other host reads",
			now.Dev, now.Ino, held.Dev, held.Ino)}
	}
	buf := make([]byte, roundUp(ondisk.RecordSize, a.dev.Geometry().Alignment))
	if err := a.dev.ReadAt(buf, 0, a.header.Timing.IOTimeout); err != nil {
		return fmt.Errorf("%s: reading the header again: %w", path, err)
	}
	h, err := ondisk.DecodeHeader(buf)
	if err != nil {
		return &ReplacedError{Path: path, InPlace: true, Reason: fmt.Sprintf("the header is no longer pool %s's: %v (overwritten or wiped under the running daemon)", a.header.PoolUUID, err)}
	}
	if !bytes.Equal(h.Encode(), a.header.Encode()) {
		return &ReplacedError{Path: path, InPlace: true, Reason: fmt.Sprintf("re-formatted under the running daemon: the header is now pool %s created %s, this daemon joined pool %s created %s",
			h.PoolUUID, h.CreatedWall.UTC().Format(time.RFC3339), a.header.PoolUUID, a.header.CreatedWall.UTC().Format(time.RFC3339))}
	}
	return nil
}
