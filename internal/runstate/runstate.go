package runstate

import (
	"github.com/hbfence/hbfence/internal/privdir"

	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FormatVersion is the version of the file's layout.
const FormatVersion = 1

// State is the content of the run-state file.
type State struct {
	Format int    `json:"format"`
	Pool   string `json:"pool"` // the pool's UUID
	Host   string `json:"host"` // this host's name in the pool
	// Generation is the newest generation this host's daemon claimed in
	// the pool on this boot (0: none yet).
	Generation uint64 `json:"generation,omitempty"`
	// Orders are the hypervisor orders issued and not yet confirmed.
	Orders []Order `json:"orders,omitempty"`
}

// Order is one hypervisor order that may still be under way.
type Order struct {
	// Guest is the guest's UUID.
	Guest string `json:"guest"`
	// Driver is the driver the order went to (xl, virsh, exec, process).
	Driver string `json:"driver"`
	// Op is what was ordered: start, stop, kill or migrate.
	Op string `json:"op"`
	// Attempt names the plan's order, for the log ("epoch.number").
	Attempt string `json:"attempt,omitempty"`
	// Generation is the incarnation that issued it.
	Generation uint64 `json:"generation"`
	// ID and PID name the order within the process that issued it (its
	// own removal matches them); a successor removes a guest's orders
	// once it has settled them.
	ID  uint64 `json:"id,omitempty"`
	PID int    `json:"pid,omitempty"`
	// Issued is the wall-clock time of the issue, for humans only.
	Issued time.Time `json:"issued"`
}

// ErrBadFile marks a run-state file that cannot be used as it is.
var ErrBadFile = errors.New("bad run-state file")

// File is the run-state file of one host in one pool.
type File struct {
	path       string
	pool, host string
	mu         sync.Mutex
}

// Open returns the run-state file of host in pool under dir, creating dir
// (mode 0700) if it is missing. It reads nothing yet.
func Open(dir, pool, host string) (*File, error) {
	if dir == "" || !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("[daemon] run_dir %q: must be an absolute directory", dir)
	}
	if pool == "" || host == "" {
		return nil, errors.New("runstate: pool and host are required")
	}
	// A file another user could replace would be a forged order list.
	if err := privdir.Ensure(dir, "[daemon] run_dir "+dir); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s-%s.state", pool, host)
	return &File{path: filepath.Join(dir, name), pool: pool, host: host}, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Load reads the state. A missing file is the empty state of this pool and
// host.
func (f *File) Load() (State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.load()
}

func (f *File) load() (State, error) {
	empty := State{Format: FormatVersion, Pool: f.pool, Host: f.host}
	b, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return empty, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("%s: %w", f.path, err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("%w %s: %v; it may hold hypervisor orders still under way: check this host's guests by hand, then remove the file", ErrBadFile, f.path, err)
	}
	switch {
	case s.Format != FormatVersion:
		return State{}, fmt.Errorf("%w %s: format %d, this build reads %d; it may hold hypervisor orders still under way: check this host's guests by hand, then remove the file", ErrBadFile, f.path, s.Format, FormatVersion)
	case s.Pool != f.pool || s.Host != f.host:
		return State{}, fmt.Errorf("%w %s: it is host %q of pool %s, not host %q of pool %s", ErrBadFile, f.path, s.Host, s.Pool, f.host, f.pool)
	}
	return s, nil
}

// Update reads the state, lets fn change it and writes it back atomically
// (temporary file, fsync, rename, fsync of the directory). If fn returns
// an error nothing is written.
func (f *File) Update(fn func(*State) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.load()
	if err != nil {
		return err
	}
	if err := fn(&s); err != nil {
		return err
	}
	s.Format, s.Pool, s.Host = FormatVersion, f.pool, f.host
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(f.path, append(b, '\n'))
}

func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return nil
}
