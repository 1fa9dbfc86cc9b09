// Package lastfence keeps the reason of this host's last fence on local
// disk ([daemon] state_dir, default /var/lib/hbfence, file last-fence),
// written and synced (the file, then its directory) when a fence begins,
// while the guests are killed and before the watchdog, no longer fed,
// resets the machine: after the reset, the file says why, and hbfence
// status shows it.
package lastfence

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// FileName is the file in the state directory.
const FileName = "last-fence"

// Record is one fence.
type Record struct {
	// Time is when the fence began (wall clock).
	Time   time.Time `json:"time"`
	Reason string    `json:"reason"`
	Host   string    `json:"host"`
	Pool   string    `json:"pool,omitempty"`
	// Slot and Generation are the incarnation that fenced (-1 and 0
	// when it had not joined).
	Slot       int    `json:"slot"`
	Generation uint64 `json:"generation"`
	PID        int    `json:"pid"`
	// BootID is the machine's boot when it fenced: another boot id than
	// the current one means that the machine was reset since (or
	// rebooted).
	BootID string `json:"boot_id,omitempty"`
}

// Path is the file in dir.
func Path(dir string) string { return filepath.Join(dir, FileName) }

// Write replaces the file in dir with r, durably: a temporary file is
// written and synced, renamed over the file, and the directory synced.
func Write(dir string, r Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp := Path(dir) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_SYNC, 0o644)
	if err != nil {
		return fmt.Errorf("last fence: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, Path(dir))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("last fence: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("last fence: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("last fence: syncing %s: %w", dir, err)
	}
	return nil
}

// Read reads the file in dir; nil and no error when there is none.
func Read(dir string) (*Record, error) {
	b, err := os.ReadFile(Path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("last fence: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("last fence: %s: %w (remove it if it is damaged)", Path(dir), err)
	}
	return &r, nil
}

// Line is how hbfence status shows r: "last fence: REASON at TIME", and
// whether it happened before the daemon's start (started; zero: unknown)
// or in another boot (bootID: this boot's, empty: unknown).
func Line(r Record, started time.Time, bootID string) string {
	s := fmt.Sprintf("last fence: %s at %s", r.Reason, r.Time.Local().Format("2006-01-02 15:04:05 MST"))
	if r.Slot >= 0 {
		s += fmt.Sprintf(" (slot %d, generation %d)", r.Slot, r.Generation)
	}
	switch {
	case bootID != "" && r.BootID != "" && r.BootID != bootID:
		s += ", in an earlier boot (the machine was reset or rebooted since)"
	case !started.IsZero() && r.Time.Before(started):
		s += ", before this daemon started"
	}
	return s
}
