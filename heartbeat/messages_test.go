package heartbeat_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/internal/safeclock"
	"github.com/rs/zerolog"
)

type inbox struct {
	mu     sync.Mutex
	got    []heartbeat.Incoming
	ack    bool
	answer byte
	defers int // defer the first deliveries
}

func (b *inbox) handle(in heartbeat.Incoming) heartbeat.Reply {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, in)
	if b.defers > 0 {
		b.defers--
		return heartbeat.Reply{Defer: true}
	}
	return heartbeat.Reply{Ack: b.ack, Answer: b.answer}
}

func (b *inbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

func startWithInbox(t *testing.T, mem *area.Mem, name string, id byte, box *inbox) (*heartbeat.Member, context.CancelFunc, chan error) {
	m, err := heartbeat.New(mem.Handle(name), heartbeat.Config{
		Self:      join.Identity{Name: name, MachineID: machine(id)},
		Log:       zerolog.New(io.Discard),
		OnMessage: box.handle,
		Clock:     safeclock.Go(), // synctest's fake time
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		if err := m.Join(ctx); err != nil {
			done <- err
			return
		}
		done <- m.Run(ctx)
	}()
	return m, cancel, done
}

// A message rides in the sender's slot, is delivered once to its target,
// and the target's Ack rides back in the target's slot.
func TestMessageDeliveredOnceAndAcked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8)
		boxA, boxB := &inbox{}, &inbox{ack: true}
		a, stopA, doneA := startWithInbox(t, mem, "a", 1, boxA)
		b, stopB, doneB := startWithInbox(t, mem, "b", 2, boxB)
		waitAllLive(t, []*heartbeat.Member{a, b}, "a", "b")
		sb := b.Status(time.Now())
		var arg [24]byte
		arg[0] = 7
		sent := time.Now()
		seq, err := a.Send(sb.Slot, sb.Generation, heartbeat.KindFence, arg)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		if n := boxB.count(); n != 1 {
			t.Fatalf("b got the message %d times, want once", n)
		}
		in := boxB.got[0]
		if in.FromName != "a" || in.Message.Kind != heartbeat.KindFence || in.Message.Seq != seq || in.Message.Arg[0] != 7 {
			t.Errorf("b got %+v", in)
		}
		at, ok := a.Acked(seq)
		if !ok || at.IsZero() {
			t.Fatal("a never saw the ack")
		}
		p := mem.Handle("").Header().Timing
		// One round of b to read and ack, one of a to read the ack.
		if took := at.Sub(sent); took > 2*p.Interval+2*p.IOTimeout {
			t.Errorf("ack after %v", took)
		}
		if boxA.count() != 0 {
			t.Errorf("a got messages %+v: an Ack is not delivered to the handler", boxA.got)
		}
		// A message to an older generation of b is ignored.
		if _, err := a.Send(sb.Slot, sb.Generation-1, heartbeat.KindFence, arg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		if n := boxB.count(); n != 1 {
			t.Errorf("b got %d messages; one was to an older generation", n)
		}
		// Acknowledged messages free their cells: more can be sent
		// than there are cells.
		// A message goes out with the sender's next write, is read at
		// the target's next round and acknowledged in its write, and
		// the ack is read at the sender's next round: three intervals
		// at most.
		for i := 0; i < 6; i++ {
			seq, err := a.Send(sb.Slot, sb.Generation, heartbeat.KindFence, arg)
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			deadline := time.Now().Add(3*p.Interval + 100*time.Millisecond)
			for {
				if at, _ := a.Acked(seq); !at.IsZero() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("message %d not acknowledged within three intervals", i)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		stopA()
		stopB()
		<-doneA
		<-doneB
	})
}

// A message the target does not acknowledge stays unacknowledged for as
// long as its sender carries it (it is not acknowledged at the next round
// because it was handled once), and an answer rides in the Ack.
func TestMessageRefusedStaysUnacknowledged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8)
		boxA, boxB, boxC := &inbox{}, &inbox{ack: false}, &inbox{ack: true, answer: heartbeat.AnswerNotMaster}
		a, stopA, doneA := startWithInbox(t, mem, "a", 1, boxA)
		b, stopB, doneB := startWithInbox(t, mem, "b", 2, boxB)
		c, stopC, doneC := startWithInbox(t, mem, "c", 3, boxC)
		waitAllLive(t, []*heartbeat.Member{a, b, c}, "a", "b", "c")
		p := mem.Handle("").Header().Timing
		sb, sc := b.Status(time.Now()), c.Status(time.Now())
		var arg [24]byte
		toB, err := a.Send(sb.Slot, sb.Generation, heartbeat.KindHandOver, arg)
		if err != nil {
			t.Fatal(err)
		}
		toC, err := a.Send(sc.Slot, sc.Generation, heartbeat.KindHandOver, arg)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * p.Interval)
		if n := boxB.count(); n != 1 {
			t.Fatalf("b got the message %d times, want once", n)
		}
		if at, ok := a.Acked(toB); !ok || !at.IsZero() {
			t.Fatalf("message refused by b: known %v, acknowledged at %v; want known and never acknowledged", ok, at)
		}
		at, answer, ok := a.Answered(toC)
		if !ok || at.IsZero() || answer != heartbeat.AnswerNotMaster {
			t.Fatalf("message to c: acknowledged at %v with answer %d (known %v); want acknowledged with answer %d", at, answer, ok, heartbeat.AnswerNotMaster)
		}
		stopA()
		stopB()
		stopC()
		<-doneA
		<-doneB
		<-doneC
	})
}

// A deferred message is delivered again at the next rounds, and answered
// once the handler stops deferring it.
func TestMessageDeferredIsDeliveredAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8)
		boxA, boxB := &inbox{}, &inbox{ack: true, defers: 2}
		a, stopA, doneA := startWithInbox(t, mem, "a", 1, boxA)
		b, stopB, doneB := startWithInbox(t, mem, "b", 2, boxB)
		waitAllLive(t, []*heartbeat.Member{a, b}, "a", "b")
		p := mem.Handle("").Header().Timing
		sb := b.Status(time.Now())
		var arg [24]byte
		seq, err := a.Send(sb.Slot, sb.Generation, heartbeat.KindFence, arg)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(6 * p.Interval)
		if n := boxB.count(); n != 3 {
			t.Errorf("b got the message %d times; want 3 (deferred twice, then answered)", n)
		}
		if at, ok := a.Acked(seq); !ok || at.IsZero() {
			t.Errorf("never acknowledged after the deferrals")
		}
		stopA()
		stopB()
		<-doneA
		<-doneB
	})
}

// A withdrawn message leaves its sender's slot: its target, which had not
// answered it, is not handed it again (issue 10 item 6: a master that
// lost its role takes back its unacknowledged poison pills).
func TestWithdrawnMessageIsNotDeliveredAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 8)
		boxA, boxB := &inbox{}, &inbox{ack: true, defers: 1 << 30}
		a, stopA, doneA := startWithInbox(t, mem, "a", 1, boxA)
		b, stopB, doneB := startWithInbox(t, mem, "b", 2, boxB)
		waitAllLive(t, []*heartbeat.Member{a, b}, "a", "b")
		p := mem.Handle("").Header().Timing
		sb := b.Status(time.Now())
		var arg [24]byte
		seq, err := a.Send(sb.Slot, sb.Generation, heartbeat.KindFence, arg)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * p.Interval)
		if boxB.count() == 0 {
			t.Fatal("b never read the message")
		}
		if got := a.Withdraw(heartbeat.KindHandOver); len(got) != 0 {
			t.Fatalf("withdrawing another kind took %v", got)
		}
		if got := a.Withdraw(heartbeat.KindFence); len(got) != 1 || got[0] != seq {
			t.Fatalf("withdrew %v, want [%d]", got, seq)
		}
		if _, ok := a.Acked(seq); ok {
			t.Error("a withdrawn message is still in the outbox")
		}
		time.Sleep(2 * p.Interval) // a's write without it, b's read of it
		n := boxB.count()
		time.Sleep(6 * p.Interval)
		if m := boxB.count(); m != n {
			t.Errorf("b was handed the withdrawn message %d more times", m-n)
		}
		stopA()
		stopB()
		<-doneA
		<-doneB
	})
}
