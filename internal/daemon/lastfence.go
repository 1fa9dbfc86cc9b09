package daemon

import (
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hbfence/hbfence/internal/lastfence"
)

// lastFenceState is the last fence of this host as the state directory
// holds it ([daemon] state_dir, internal/lastfence): read at start, and
// replaced when this daemon fences.
type lastFenceState struct {
	mu  sync.Mutex
	rec *lastfence.Record
	err string
}

func (l *lastFenceState) get() (*lastfence.Record, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rec, l.err
}

// lastFenceWithin bounds the fencing loop's wait for the record's write
// (and its syncs) when a fence begins, while the guests are killed: a
// local disk that hangs delays the loop by this much at most (the record
// is then written late, or never: the journal still has the reason).
const lastFenceWithin = time.Second

// readLastFence reads the record left by an earlier fence, if any.
func (d *Daemon) readLastFence() {
	r, err := lastfence.Read(d.c.Daemon.StateDir)
	d.lastFence.mu.Lock()
	d.lastFence.rec = r
	if err != nil {
		d.lastFence.err = err.Error()
	}
	d.lastFence.mu.Unlock()
	if err != nil {
		d.log.Warn().Err(err).Msg("the last fence's record cannot be read")
	} else if r != nil {
		d.log.Info().Str("reason", r.Reason).Time("at", r.Time).Int("slot", r.Slot).Uint64("generation", r.Generation).
			Str("boot_id", r.BootID).Msg("last fence of this host (from " + lastfence.Path(d.c.Daemon.StateDir) + ")")
	}
}

// recordFence writes why this host fences, as the guests are killed and
// before the watchdog, no longer fed, can reset the machine; it waits for
// the write at most lastFenceWithin.
func (d *Daemon) recordFence(fc *fencing, reason string) {
	r := lastfence.Record{Time: time.Now(), Reason: reason, Host: d.self.Name, Pool: d.h.PoolUUID.String(), Slot: -1,
		PID: os.Getpid(), BootID: bootID()}
	if fc != nil {
		if o := fc.m.Self(); o.Name != "" {
			r.Slot, r.Generation = int(o.Slot), o.Generation
		}
	}
	d.lastFence.mu.Lock()
	d.lastFence.rec, d.lastFence.err = &r, ""
	d.lastFence.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- lastfence.Write(d.c.Daemon.StateDir, r) }()
	t := time.NewTimer(lastFenceWithin)
	defer t.Stop()
	select {
	case err := <-done:
		if err != nil {
			d.log.Error().Err(err).Msg("the fence's reason could not be written to local disk (the journal has it)")
		}
	case <-t.C:
		d.log.Error().Str("dir", d.c.Daemon.StateDir).Dur("waited_ms", lastFenceWithin).
			Msg("the fence's reason is not on local disk yet (the disk hangs?); the fence goes on")
	}
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
