package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// waitHostDead waits between the two reads of refuseLiveArea. Tests
// replace it so that they need not wait host_dead; the command waits for
// real.
var waitHostDead = func(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refuseLiveArea refuses to format over an hbfence area that daemons are
// still using, --force or not: it reads the slot region, waits the old
// pool's host_dead, reads it again, and names every host whose slot
// changed. A path with no decodable hbfence area has nothing to check.
// A live host writes its slot every interval, and host_dead is more than
// renewal_fail + watchdog, so a host whose slot did not change in
// host_dead is fenced or gone by the pool's own rule.
func refuseLiveArea(ctx context.Context, path string, offset int64, stderr io.Writer) error {
	a, err := area.Open(path, offset, directio.ReadOnly)
	if err != nil {
		return nil // not an area (Format says what it is), or missing
	}
	defer a.Close()
	h := a.Header()
	first := make([]byte, h.SlotsLen())
	if err := a.ReadSlots(first); err != nil {
		return fmt.Errorf("%s at offset %d: reading the slots to see whether daemons still use the area: %w; nothing was written", path, offset, err)
	}
	fmt.Fprintf(stderr, "hbfence init: %s holds pool %s; reading its slots again in %s (its host_dead) to make sure no daemon still uses it\n",
		path, h.PoolUUID, h.Timing.HostDead)
	if err := waitHostDead(ctx, h.Timing.HostDead); err != nil {
		return fmt.Errorf("%s: %w; nothing was written", path, err)
	}
	second := make([]byte, h.SlotsLen())
	if err := a.ReadSlots(second); err != nil {
		return fmt.Errorf("%s at offset %d: reading the slots again: %w; nothing was written", path, offset, err)
	}
	if live := changedSlots(h, first, second); len(live) > 0 {
		return fmt.Errorf("%s at offset %d: pool %s is in use: the slots of %s changed within %s (host_dead); stop hbfence on those hosts first (even --force does not format a live area); nothing was written",
			path, offset, h.PoolUUID, strings.Join(live, ", "), h.Timing.HostDead)
	}
	return nil
}

// changedSlots names the slots whose bytes differ between two reads of
// the slot region: "host (slot i)", or "slot i" when the record does not
// decode.
func changedSlots(h ondisk.Header, first, second []byte) []string {
	var live []string
	ss := int(h.SectorSize)
	for i := range int(h.SlotCount) {
		a, b := first[i*ss:(i+1)*ss], second[i*ss:(i+1)*ss]
		if bytes.Equal(a, b) {
			continue
		}
		s, st, _ := ondisk.DecodeSlot(b, h.PoolUUID, i)
		if st == ondisk.SlotOK {
			live = append(live, fmt.Sprintf("%s (slot %d)", s.HostName, i))
		} else {
			live = append(live, fmt.Sprintf("slot %d", i))
		}
	}
	return live
}
