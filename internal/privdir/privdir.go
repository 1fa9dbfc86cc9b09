// Package privdir checks that a directory the root daemon creates files in
// (the control socket's, the run-state file's) cannot be changed under it
// by another local user: a user who can write in it, or in one of its
// parents without the sticky bit, can replace a socket or a lock with a
// symbolic link, bind the socket first and answer root's commands, or
// rename the directory away.
//
// The rule, like OpenSSH's StrictModes: the directory and every parent up
// to / are owned by root or by the daemon's own user; the directory is not
// writable by group or others; a parent is not writable by group or
// others unless it has the sticky bit (as /tmp does), where only a file's
// owner can rename or remove it.
package privdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Ensure creates dir (mode 0700, parents 0755) if it is missing, then
// checks it by the package's rule. key names the configuration key the
// directory comes from, for the error.
func Ensure(dir, key string) error {
	dir = filepath.Clean(dir)
	if !filepath.IsAbs(dir) {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return fmt.Errorf("%s: directory %s: %w", key, dir, err)
		}
		dir = abs
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("%s: creating %s: %w", key, filepath.Dir(dir), err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: creating %s: %w", key, dir, err)
		}
	}
	return Check(dir, key)
}

// Check checks dir (absolute) and its parents by the package's rule.
func Check(dir, key string) error {
	euid := uint32(os.Geteuid())
	for p, first := filepath.Clean(dir), true; ; p, first = filepath.Dir(p), false {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("%s: %s: %w", key, p, err)
		}
		if err := judge(p, st.Mode, st.Uid, euid, first); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if p == "/" {
			return nil
		}
	}
}

// judge is the rule for one path component: mode and owner as lstat gives
// them, euid the daemon's user, leaf whether p is the directory itself.
func judge(p string, mode, uid, euid uint32, leaf bool) error {
	switch {
	case mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("%s is a symbolic link: name the directory it points to instead", p)
	case mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%s is not a directory", p)
	case uid != 0 && uid != euid:
		return fmt.Errorf("%s is owned by uid %d, not root: another user could replace what the daemon creates there (chown root %s, or choose a directory root owns)", p, uid, p)
	case mode&0o022 != 0 && (leaf || mode&unix.S_ISVTX == 0):
		return fmt.Errorf("%s is writable by group or others (mode %04o): another user could replace what the daemon creates there (chmod go-w %s, or choose another directory)", p, mode&0o7777, p)
	}
	return nil
}
