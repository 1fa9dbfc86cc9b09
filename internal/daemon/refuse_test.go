package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/fence/watchdog"
	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/config"
	"github.com/rs/zerolog"
)

type failingKiller struct{}

func (failingKiller) KillHAGuests(context.Context, string) error {
	return errors.New("xl destroy: timed out")
}

// A new image that refuses to go on after an upgrade's exec, whose guests
// are not confirmed gone and which never took the watchdog over, marks the
// handed-over slot unsafe (issue 10: the refusal said "the watchdog resets
// this machine" with no watchdog taken over, and the slot read fenced
// once dead). With the watchdog taken over, the slot is left as it is:
// the unfed watchdog resets the machine.
func TestRefusedUpgradeMarksSlotUnsafe(t *testing.T) {
	for _, adopted := range []bool{false, true} {
		p, _ := timing.Profile("fast")
		path := filepath.Join(t.TempDir(), ".server_pool_hb")
		pool := ondisk.NewUUID()
		if _, err := area.Format(path, 0, area.FormatOptions{Create: true, Build: func(ss int) (ondisk.Header, error) {
			return ondisk.NewHeader(pool, ss, 8, p, "fast", time.Now())
		}}); err != nil {
			t.Fatal(err)
		}
		a, err := area.Open(path, 0, directio.ReadWrite)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		rec := ondisk.Slot{Version: ondisk.SlotVersion, PoolUUID: pool, Index: 2, State: ondisk.StateLive, HostName: "v1", Generation: 4, Sequence: 100}
		if err := a.WriteSlot(2, rec.Encode()); err != nil {
			t.Fatal(err)
		}
		c := &config.Config{Path: filepath.Join(t.TempDir(), "h.toml")}
		c.Heartbeat.Path = path
		c.Daemon.StateDir = t.TempDir()
		d := &Daemon{c: c, a: a, h: a.Header(), t: p, log: zerolog.Nop(), killer: failingKiller{}, adopted: adopted,
			self: join.Identity{Name: "v1"},
			hv:   &handover{Watchdog: &watchdog.Handed{FD: -1}, Member: heartbeat.ResumeState{Slot: 2, Record: rec.Encode()}}}
		err = d.refuse(errors.New("the pool's timing rule fails"))
		if err == nil || !strings.Contains(err.Error(), "upgrade refused") {
			t.Fatalf("refuse: %v", err)
		}
		raw := make([]byte, a.Header().SlotsLen())
		if err := a.ReadSlots(raw); err != nil {
			t.Fatal(err)
		}
		got := ondisk.DecodeSlotsInto(nil, raw, a.Header())[2]
		unsafe := got.Slot.Flags&ondisk.FlagNoWatchdog != 0
		if unsafe == adopted || (!adopted && got.Slot.Sequence != 101) {
			t.Errorf("adopted %v: the slot reads %+v (unsafe %v); want it marked unsafe only without the watchdog taken over", adopted, got.Slot, unsafe)
		}
	}
}
