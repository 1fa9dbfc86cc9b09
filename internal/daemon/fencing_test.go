package daemon

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/config"
	"github.com/rs/zerolog"
)

// fakeWatchdog records what the fencing loop does to it, on the bubble's
// clock.
type fakeWatchdog struct {
	mu        sync.Mutex
	effective time.Duration
	armed     bool
	lastFeed  time.Time
	disarmed  time.Time
	feedErr   error
	armErr    error
}

func (w *fakeWatchdog) Arm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.armErr != nil {
		return w.armErr
	}
	w.armed, w.lastFeed = true, time.Now()
	return nil
}

func (w *fakeWatchdog) Feed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.feedErr != nil {
		return w.feedErr
	}
	w.lastFeed = time.Now()
	return nil
}

// failFeeds makes every later Feed fail with err.
func (w *fakeWatchdog) failFeeds(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.feedErr = err
}

func (w *fakeWatchdog) Disarm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.disarmed = time.Now()
	return nil
}

func (w *fakeWatchdog) Effective() time.Duration { return w.effective }
func (w *fakeWatchdog) Info() WatchdogInfo       { return WatchdogInfo{Backend: "fake"} }

// fires is when the watchdog would reset the machine (zero if disarmed or
// never armed).
func (w *fakeWatchdog) fires() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.armed || !w.disarmed.IsZero() {
		return time.Time{}
	}
	return w.lastFeed.Add(w.effective)
}

type recordingKiller struct {
	mu     sync.Mutex
	called time.Time
	err    error
}

func (k *recordingKiller) KillHAGuests(context.Context, string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.called = time.Now()
	return k.err
}

func (k *recordingKiller) at() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.called
}

type testHost struct {
	name   string
	member *heartbeat.Member
	fc     *fencing
	wd     *fakeWatchdog
	killer *recordingKiller
	result chan outcome
	cancel context.CancelFunc
	// armErr and feedErr are the fencer's, once result is sent.
	armErr, feedErr error
}

func startFenced(t *testing.T, mem *area.Mem, name string, id byte, killErr error) *testHost {
	return startFencedWith(t, mem, name, id, killErr, nil)
}

func startFencedWith(t *testing.T, mem *area.Mem, name string, id byte, killErr, armErr error) *testHost {
	t.Helper()
	tm := mem.Handle(name).Header().Timing
	m, err := heartbeat.New(mem.Handle(name), heartbeat.Config{
		Self:  join.Identity{Name: name, MachineID: ondisk.UUID{id, 9}, BootID: ondisk.UUID{id, 8}},
		Log:   zerolog.New(io.Discard),
		Clock: clk,
	})
	if err != nil {
		t.Fatal(err)
	}
	wd := &fakeWatchdog{effective: tm.Watchdog, armErr: armErr}
	f, err := fence.New(tm, wd.effective)
	if err != nil {
		t.Fatal(err)
	}
	k := &recordingKiller{err: killErr}
	h := &testHost{name: name, member: m, wd: wd, killer: k, result: make(chan outcome, 1),
		fc: &fencing{m: m, wd: wd, killer: k, log: zerolog.New(io.Discard), f: f}}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		if err := m.Join(ctx); err != nil {
			t.Errorf("%s join: %v", name, err)
			return
		}
		o, _ := h.fc.run(ctx)
		h.armErr, h.feedErr = h.fc.armErr, h.fc.feedErr
		h.result <- o
	}()
	return h
}

func newMem(t *testing.T, profile string) *area.Mem {
	p, _ := timing.Profile(profile)
	h, err := ondisk.NewHeader(ondisk.NewUUID(), 512, 8, p, profile, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return area.NewMem(h)
}

func stateOf(m *heartbeat.Member, peer string) (liveness.State, float64) {
	for _, h := range m.Status(time.Now()).Hosts {
		if h.Name == peer {
			return h.State, h.StateAgeSeconds
		}
	}
	return -1, 0
}

// The whole timeline of a host cut off from its storage: last good write,
// suspect at the observer, guest kill and watchdog stop at renewal_fail,
// then dead at the observer, after the watchdog would have reset the
// machine. With the kill confirmed the host is fenced without a reset.
func TestStorageLossTimeline(t *testing.T) {
	for _, killErr := range []error{nil, errors.New("guest vm3 still running")} {
		synctest.Test(t, func(t *testing.T) {
			mem := newMem(t, "default")
			p := mem.Handle("").Header().Timing
			a := startFenced(t, mem, "a", 1, nil)
			b := startFenced(t, mem, "b", 2, killErr)
			waitAllLive(t, []*heartbeat.Member{a.member, b.member}, "a", "b")
			if s, _ := stateOf(a.member, "b"); s != liveness.Live {
				t.Fatalf("b is %v before the fault", s)
			}
			mem.SetFault(func(op area.Op) area.Fault {
				if op.Host == "b" {
					return area.Fault{Err: errors.New("EIO")}
				}
				return area.Fault{}
			})
			cut := time.Now()
			var deadAt time.Time
			for i := 0; i < 600 && deadAt.IsZero(); i++ {
				time.Sleep(100 * time.Millisecond)
				if s, _ := stateOf(a.member, "b"); s == liveness.Dead {
					deadAt = time.Now()
				}
			}
			if deadAt.IsZero() {
				t.Fatal("b never declared dead")
			}
			last := b.member.LastRenewal()
			kill := b.killer.at()
			if kill.IsZero() || kill.Sub(last) < p.RenewalFail || kill.Sub(last) > p.RenewalFail+p.Interval {
				t.Errorf("guests killed %v after the last renewal, want renewal_fail %v", kill.Sub(last), p.RenewalFail)
			}
			if fed := b.wd.lastFeed; !fed.Before(last.Add(p.RenewalFail)) {
				t.Errorf("fed %v after the last renewal, past renewal_fail", fed.Sub(last))
			}
			var o outcome
			select {
			case o = <-b.result:
			case <-time.After(time.Minute):
				t.Fatal("b's fencing did not end")
			}
			if killErr == nil {
				if o != fenced || b.wd.disarmed.IsZero() {
					t.Errorf("confirmed kill: outcome %v, disarmed %v", o, b.wd.disarmed)
				}
				if !kill.Before(deadAt) {
					t.Errorf("guests killed at %v, after b was declared dead at %v", kill.Sub(cut), deadAt.Sub(cut))
				}
			} else {
				reset := b.wd.fires()
				if o != resetting || reset.IsZero() {
					t.Fatalf("unconfirmed kill: outcome %v, watchdog fires %v", o, reset)
				}
				if margin := deadAt.Sub(reset); margin < p.Margin() {
					t.Errorf("reset at %v, dead at %v: margin %v < %v", reset.Sub(cut), deadAt.Sub(cut), margin, p.Margin())
				}
			}
			a.cancel()
			<-a.result
		})
	}
}

// Storage stalls shorter than renewal_fail, repeated, never fence.
func TestShortStallsDoNotFence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := newMem(t, "default")
		p := mem.Handle("").Header().Timing
		a := startFenced(t, mem, "a", 1, nil)
		time.Sleep(30 * time.Second)
		stall := time.Duration(0.8 * float64(p.RenewalFail))
		var mu sync.Mutex
		stalled := false
		mem.SetFault(func(op area.Op) area.Fault {
			mu.Lock()
			defer mu.Unlock()
			if stalled {
				return area.Fault{Err: errors.New("NFS server not responding")}
			}
			return area.Fault{}
		})
		for i := 0; i < 10; i++ {
			mu.Lock()
			stalled = true
			mu.Unlock()
			time.Sleep(stall - p.Interval) // the last renewal began up to an interval before
			mu.Lock()
			stalled = false
			mu.Unlock()
			time.Sleep(3 * p.Interval)
		}
		if k := a.killer.at(); !k.IsZero() {
			t.Fatalf("a 0.8 × renewal_fail stall fenced the host")
		}
		if st := a.fc.status(); st.State != fence.Healthy {
			t.Fatalf("fence state %v after short stalls", st.State)
		}
		a.cancel()
		if o := <-a.result; o != leftCleanly {
			t.Errorf("outcome %v", o)
		}
	})
}

// A host whose slot is taken by another host fences at once.
func TestSlotLostFences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := newMem(t, "fast")
		a := startFenced(t, mem, "a", 1, nil)
		time.Sleep(10 * time.Second)
		// Let the member finish its round: a record landing between
		// its read and its write would be overwritten unseen (the
		// residual window heartbeat/doc.go names).
		synctest.Wait()
		st := a.member.Status(time.Now())
		thief := ondisk.Slot{Version: 1, State: ondisk.StateLive, Index: uint32(st.Slot), PoolUUID: st.PoolUUID,
			Generation: 99, Sequence: 1, HostName: "thief"}
		mem.Poke(int(mem.Handle("").Header().SlotOffset(st.Slot)), thief.Encode())
		select {
		case o := <-a.result:
			if o != fenced {
				t.Fatalf("outcome %v", o)
			}
		case <-time.After(time.Minute):
			t.Fatal("a host whose slot was taken did not fence within a minute")
		}
		if a.killer.at().IsZero() {
			t.Error("guests not killed")
		}
		if r := a.fc.status().Reason; r == "" {
			t.Error("no reason")
		}
	})
}

// waitAllLive waits, on the bubble's clock, until every member has joined
// and sees every named host live. Hosts joining at once race for slots and
// retry; ten minutes covers every attempt a join may make.
func waitAllLive(t *testing.T, members []*heartbeat.Member, names ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		all := true
		for _, m := range members {
			st := m.Status(time.Now())
			live := 0
			for _, h := range st.Hosts {
				for _, n := range names {
					if h.Name == n && h.State == liveness.Live {
						live++
					}
				}
			}
			all = all && st.Joined && live == len(names)
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v not all joined and live after ten minutes", names)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A feed that fails (a FIFO whose supervisor is gone: EPIPE) fences at
// once: nothing may reset the machine any more, and the daemon can still
// kill its guests. Before issue 10 item 2 it was only logged.
func TestFailedFeedFences(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := newMem(t, "fast")
		a := startFenced(t, mem, "a", 1, nil)
		time.Sleep(10 * time.Second)
		if st := a.fc.status(); st.State != fence.Healthy {
			t.Fatalf("fence state %v before the feed fails", st.State)
		}
		a.wd.failFeeds(errors.New("watchdog wd.fifo: no supervisor is reading it any more: broken pipe"))
		select {
		case <-a.result:
		case <-time.After(time.Minute):
			t.Fatal("a host whose watchdog feed fails did not fence within a minute")
		}
		if a.killer.at().IsZero() {
			t.Error("guests not killed after the feed failed")
		}
		if r := a.fc.status().Reason; !strings.Contains(r, "feed failed") {
			t.Errorf("reason %q does not say the feed failed", r)
		}
	})
}

// A restarted daemon whose arm fails (after the support ioctl: the
// predecessor's countdown must go on) and whose guests are not confirmed
// gone must not leave a slot that reads as fenced once dead: the
// lifecycle stays alive and marks the slot unsafe, and every other host
// then sees it unsafe, never fenced (issue 10 item 3).
func TestArmFailedUnconfirmedMarksSlotUnsafe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := newMem(t, "fast")
		a := startFenced(t, mem, "a", 1, nil)
		b := startFencedWith(t, mem, "b", 2, errors.New("vm3 still listed"), errors.New("WDIOC_GETTIMEOUT: timeout unknown"))
		var o outcome
		select {
		case o = <-b.result:
		case <-time.After(time.Minute):
			t.Fatal("b did not fence after its arm failed")
		}
		e := ending{outcome: o, armErr: b.armErr, feedErr: b.feedErr, markUnsafe: b.member.MarkUnsafe}
		p, _ := timing.Profile("fast")
		s := next(e, durationsOf(p, &config.Config{}), "c.toml", "area")
		if o != resetting || s.kind != stepStayUnsafe {
			t.Fatalf("outcome %v, step %d; want resetting and stepStayUnsafe", o, s.kind)
		}
		if err := e.markUnsafe(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * p.HostDead)
		for _, h := range a.member.Status(time.Now()).Hosts {
			if h.Name == "b" {
				if h.State != liveness.Dead || !h.Unsafe || h.Fenced {
					t.Fatalf("a sees b %v unsafe %v fenced %v; want dead, unsafe, not fenced", h.State, h.Unsafe, h.Fenced)
				}
				a.cancel()
				<-a.result
				return
			}
		}
		t.Fatal("a does not see b")
	})
}
