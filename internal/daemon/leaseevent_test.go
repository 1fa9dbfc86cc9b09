package daemon

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/rs/zerolog"
)

// A master that loses its role takes back the poison pills it sent and
// that are not yet acknowledged: they are orders of an epoch that is over
// (issue 10 item 6). An event that is no loss keeps them; a fenced lease
// also orders the fence.
func TestLostMastershipWithdrawsPoisonPills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := newMem(t, "fast")
		a := startFenced(t, mem, "a", 1, nil)
		b := startFenced(t, mem, "b", 2, nil)
		time.Sleep(4 * mem.Handle("a").Header().Timing.HostDead) // both joined, and see each other
		target := b.member.Self()
		pills := func() int {
			n := 0
			for _, o := range a.member.Outbox(time.Now()) {
				if o.Kind == heartbeat.KindFence {
					n++
				}
			}
			return n
		}
		send := func() {
			if _, err := a.member.Send(int(target.Slot), target.Generation, heartbeat.KindFence, [24]byte{}); err != nil {
				t.Fatal(err)
			}
		}
		// The fence order goes to a fencer of its own, which only this test
		// reads: a's running fencer would take it (and race on the field).
		orders := &fencing{orders: make(chan string, 1)}
		d := &Daemon{log: zerolog.Nop()}
		on := d.onLeaseEvent(&incarnation{}, a.member, orders)
		send()
		on(lease.Event{Kind: lease.Acquired})
		on(lease.Event{Kind: lease.HolderChanged})
		if n := pills(); n != 1 {
			t.Fatalf("after events that are no loss: %d pills in the outbox; want the one sent", n)
		}
		for _, k := range []lease.EventKind{lease.Lost, lease.Stepped, lease.FencedEvent} {
			if pills() == 0 {
				send()
			}
			on(lease.Event{Kind: k, Detail: "test"})
			if n := pills(); n != 0 {
				t.Errorf("after %v: %d pills still in the outbox; want them withdrawn", k, n)
			}
		}
		select {
		case why := <-orders.orders:
			if why != "master lease fenced: test" {
				t.Errorf("fence ordered for %q", why)
			}
		default:
			t.Error("a fenced lease ordered no fence")
		}
		a.cancel()
		b.cancel()
		<-a.result
		<-b.result
	})
}
