package heartbeat_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// readFailing fails every read of the slots while fail is set; writes
// pass.
type readFailing struct {
	heartbeat.Storage
	fail   atomic.Bool
	writes atomic.Int64
}

func (s *readFailing) ReadSlots(dst []byte) error {
	if s.fail.Load() {
		return errors.New("injected read error")
	}
	return s.Storage.ReadSlots(dst)
}

func (s *readFailing) WriteSlot(i int, rec []byte) error {
	s.writes.Add(1)
	return s.Storage.WriteSlot(i, rec)
}

// A host that can write its slot but not read the area renews nothing: it
// sees no peer and cannot check its slot before overwriting it, so its
// writes are not renewals and it fences after renewal_fail (its fencer
// counts from LastRenewal). Before, every such write counted, and the host
// stayed healthy, and master, for ever (issue 10 item 7).
func TestWritesWithoutReadsAreNoRenewals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 4)
		st := &readFailing{Storage: mem.Handle("a")}
		h := startHostOn(t, st, "a", 1)
		p, _ := timing.Profile("default")
		for i := 0; i < 100 && h.member.LastRenewal().IsZero(); i++ {
			time.Sleep(p.Interval) // fake time: the join, then a round
		}
		if h.member.LastRenewal().IsZero() {
			t.Fatal("no renewal before the reads fail")
		}
		st.fail.Store(true)
		time.Sleep(p.Interval) // a round under way finishes
		before, writes := h.member.LastRenewal(), st.writes.Load()
		time.Sleep(p.RenewalFail + p.Interval)
		if got := h.member.LastRenewal(); !got.Equal(before) {
			t.Errorf("reads failing: the last renewal moved %v; want none counted", got.Sub(before))
		}
		if n := st.writes.Load() - writes; n == 0 {
			t.Error("reads failing: the slot was not written at all; want the writes to go on")
		}
		st.fail.Store(false)
		time.Sleep(2 * p.Interval)
		if !h.member.LastRenewal().After(before) {
			t.Error("reads back: no renewal counted again")
		}
		h.cancel()
		<-h.done
	})
}
