package lease_test

import (
	"fmt"
	"time"

	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// The driver loop of one host, on an in-memory area and a fake clock. A
// daemon runs the same loop on lease.NewAreaStorage(area) with time.Now,
// sleeping until each action's NotBefore, and feeds Renewed and SetView
// from its heartbeat.
func Example() {
	p, _ := timing.Profile("default")
	hdr, _ := ondisk.NewHeader(ondisk.UUID{1}, 512, 8, p, "default", time.Time{})
	st := lease.NewMemStorage(hdr)

	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	self := ondisk.Owner{Slot: 3, Generation: 1, Name: "hv-03"}
	l, err := lease.New(lease.Config{Self: self, Pool: hdr.PoolUUID, Slots: int(hdr.SlotCount), Timing: p,
		FirstRenewalBy: now.Add(p.HostDead - p.IOTimeout - p.Margin()), // join.Joined's Deadline
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	d := lease.NewDriver(l, st, clock)

	// From the heartbeat: a renewal succeeded; the liveness view.
	l.Renewed(now, now)
	l.SetView(now, lease.Static{3: {State: liveness.Live, Generation: 1, Name: "hv-03"}})

	l.Acquire(now)
	for i := 0; i < 10; i++ {
		if m, ok := l.Master(clock()); ok {
			fmt.Printf("master of epoch %d\n", m.Epoch)
			break
		}
		a := l.Next()
		if a.NotBefore.After(now) {
			now = a.NotBefore // a daemon sleeps here
		}
		d.Do(a)
	}
	for _, e := range l.Events() {
		fmt.Println(e)
	}
	fmt.Println(l.Holder())
	// Output:
	// master of epoch 1
	// holder-changed epoch 0: never held
	// decided epoch 1 hv-03 (slot 3, generation 1)
	// acquired epoch 1 hv-03 (slot 3, generation 1)
	// never held
}
