package area_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// An open area notices that its path no longer names it: the file deleted,
// the file deleted and another formatted at the same path, or the file
// re-formatted where it is (issue 9, item 6: the running daemons
// heartbeated into the deleted inode for ever, without a word).
func TestVerifyNoticesAReplacedArea(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace func(t *testing.T, path string)
		inPlace bool
		says    string
	}{
		{"deleted", func(t *testing.T, path string) { os.Remove(path) }, false, "names nothing"},
		{"deleted and created again", func(t *testing.T, path string) {
			os.Remove(path)
			format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
		}, false, "another file"},
		{"renamed and another moved in", func(t *testing.T, path string) {
			other := path + ".new"
			format(t, other, 0, opts(t, ondisk.NewUUID(), slots))
			if err := os.Rename(other, path); err != nil {
				t.Fatal(err)
			}
		}, false, "another file"},
		{"re-formatted in place (init --force)", func(t *testing.T, path string) {
			o := opts(t, ondisk.NewUUID(), slots)
			o.Force = true
			format(t, path, 0, o)
		}, true, "re-formatted"},
		{"header wiped", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, ondisk.RecordSize), 0); err != nil {
				t.Fatal(err)
			}
			f.Sync()
		}, true, "no longer pool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ".server_pool_hb")
			format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
			h := openArea(t, path, 0, directio.ReadWrite)
			a, err := h.Watcher()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { a.Close() })
			if err := a.Verify(); err != nil {
				t.Fatalf("the area as opened: %v", err)
			}
			tc.replace(t, path)
			err = a.Verify()
			var re *area.ReplacedError
			if !errors.As(err, &re) || !errors.Is(err, area.ErrReplaced) {
				t.Fatalf("after the replacement Verify = %v, want a *ReplacedError", err)
			}
			if re.InPlace != tc.inPlace {
				t.Errorf("InPlace = %v, want %v (%v)", re.InPlace, tc.inPlace, err)
			}
			wantErr(t, err, "the replaced area", path, tc.says)
		})
	}
}

// Writes to the area, the slots and the lease, are no change of its
// identity.
func TestVerifyAcceptsTheAreaItsHostsWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".server_pool_hb")
	format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
	a := openArea(t, path, 0, directio.ReadWrite)
	b := openArea(t, path, 0, directio.ReadWrite)
	rec := make([]byte, ondisk.RecordSize)
	rec[0] = 1
	for i := range 3 {
		if err := b.WriteSlot(i, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Verify(); err != nil {
		t.Fatalf("after slot writes: %v", err)
	}
}

// The watch runs beside the heartbeat's I/O: on its own duplicate of the
// descriptor, a check never makes a slot write fail as busy (a device runs
// one I/O at a time and refuses a second one).
func TestWatcherNeverBlocksTheHeartbeat(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".server_pool_hb")
	format(t, path, 0, opts(t, ondisk.NewUUID(), slots))
	a := openArea(t, path, 0, directio.ReadWrite)
	w, err := a.Watcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2000 {
			if err := w.Verify(); err != nil {
				t.Errorf("Verify beside the heartbeat: %v", err)
				return
			}
		}
	}()
	rec := make([]byte, ondisk.RecordSize)
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		default:
		}
		rec[0] = byte(i)
		if err := a.WriteSlot(i%slots, rec); err != nil {
			t.Fatalf("a slot write beside the watch: %v", err)
		}
	}
}
