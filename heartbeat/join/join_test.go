package join_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// The default profile: interval 2 s, io_timeout 5 s (JoinWait 10 s),
// renewal_fail 15 s, watchdog 10 s, host_dead 27 s.
var params = timing.Params{
	Interval:    2 * time.Second,
	IOTimeout:   5 * time.Second,
	RenewalFail: 15 * time.Second,
	Watchdog:    10 * time.Second,
	HostDead:    27 * time.Second,
}

var pool = ondisk.UUID{0xaa, 0xbb, 1}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func sec(f float64) time.Duration { return time.Duration(math.Round(f * float64(time.Second))) }

func at(f float64) time.Time { return t0.Add(sec(f)) }

func machine(b byte) ondisk.UUID { return ondisk.UUID{0x11, b} }
func boot(b byte) ondisk.UUID    { return ondisk.UUID{0x22, b} }

// config is a joiner named name on machine m, boot b. Its nonces count up
// from m<<32; its jitter is a quarter of the maximum.
func config(name string, m, b byte) join.Config {
	n := uint64(m) << 32
	return join.Config{
		Self:   join.Identity{Name: name, MachineID: machine(m), BootID: boot(b), Agent: "test"},
		Pool:   pool,
		Timing: params,
		Nonce: func() uint64 {
			n++
			return n
		},
		Jitter:      func(max time.Duration) time.Duration { return max / 4 },
		MaxAttempts: 4,
	}
}

// slot is a valid record of host name from machine m (boot b).
func slot(i int, name string, m, b byte, gen, seq uint64, st ondisk.SlotState) ondisk.Slot {
	return ondisk.Slot{Version: ondisk.SlotVersion, State: st, Index: uint32(i), PoolUUID: pool,
		Generation: gen, Sequence: seq, JoinNonce: uint64(m)<<40 | gen, MachineID: machine(m), BootID: boot(b),
		Agent: "test", HostName: name}
}

// disk is an in-memory slot region, as reads decode it.
type disk []ondisk.Decoded

func newDisk(n int) disk {
	d := make(disk, n)
	for i := range d {
		d[i] = ondisk.Decoded{Index: i, Status: ondisk.SlotUnused}
	}
	return d
}

func (d disk) put(s ondisk.Slot) disk {
	d[s.Index] = ondisk.Decoded{Index: int(s.Index), Slot: s, Status: ondisk.SlotOK}
	return d
}

func (d disk) bad(i int, st ondisk.SlotStatus) disk {
	d[i] = ondisk.Decoded{Index: i, Status: st, Reason: "test: " + st.String()}
	return d
}

func (d disk) view() []ondisk.Decoded { return append([]ondisk.Decoded(nil), d...) }

// read performs the read Next asks for, issued and done at the given
// times, and returns the next action.
func read(t *testing.T, j *join.Joiner, d disk, issued, done float64) join.Action {
	t.Helper()
	a := j.Next()
	if a.Kind != join.Read {
		t.Fatalf("at %vs: next is %v (%+v), want read", issued, a.Kind, a)
	}
	if at(issued).Before(a.NotBefore) {
		t.Fatalf("test bug: read issued at %vs, before NotBefore %v", issued, a.NotBefore.Sub(t0))
	}
	j.ReadDone(at(issued), at(done), d.view(), nil)
	return j.Next()
}

// write performs the write Next asks for; it lands in d when err is nil.
func write(t *testing.T, j *join.Joiner, d disk, issued, done float64, err error) join.Action {
	t.Helper()
	a := j.Next()
	if a.Kind != join.Write {
		t.Fatalf("at %vs: next is %v (%+v), want write", issued, a.Kind, a)
	}
	if err == nil {
		d.put(a.Record)
	}
	j.WriteDone(at(issued), at(done), err)
	return j.Next()
}

func wantRead(t *testing.T, a join.Action, notBefore float64) {
	t.Helper()
	if a.Kind != join.Read || !a.NotBefore.Equal(at(notBefore)) {
		t.Fatalf("next %v not before %v, want read not before %vs", a.Kind, a.NotBefore.Sub(t0), notBefore)
	}
}

func wantWrite(t *testing.T, a join.Action, slot int, gen uint64, deadline float64) {
	t.Helper()
	if a.Kind != join.Write || a.Slot != slot || int(a.Record.Index) != slot || a.Record.Generation != gen ||
		!a.Deadline.Equal(at(deadline)) {
		t.Fatalf("next %v slot %d generation %d deadline %v, want write of slot %d generation %d deadline %vs",
			a.Kind, a.Slot, a.Record.Generation, a.Deadline.Sub(t0), slot, gen, deadline)
	}
}

func wantJoined(t *testing.T, a join.Action, slot int) {
	t.Helper()
	if a.Kind != join.Joined || a.Slot != slot {
		t.Fatalf("next %v slot %d (err %v), want joined slot %d", a.Kind, a.Slot, a.Err, slot)
	}
}

func TestEmptyPool(t *testing.T) {
	c := config("a", 1, 1)
	d := newDisk(4)
	j := join.New(c, at(0))
	wantRead(t, j.Next(), 0)
	a := read(t, j, d, 0, 0.1)
	wantWrite(t, a, 0, 1, 5)
	want := ondisk.Slot{Version: ondisk.SlotVersion, State: ondisk.StateJoining, Index: 0, PoolUUID: pool,
		Generation: 1, Sequence: 1, JoinNonce: 1<<32 + 1, MachineID: machine(1), BootID: boot(1), Agent: "test", HostName: "a"}
	if a.Record != want {
		t.Fatalf("claim %+v\nwant %+v", a.Record, want)
	}
	// The read-back waits JoinWait after the claim write returned.
	a = write(t, j, d, 0.2, 0.3, nil)
	wantRead(t, a, 10.3)
	a = read(t, j, d, 10.3, 10.4)
	wantJoined(t, a, 0)
	if a.Record != want || j.Attempts() != 1 {
		t.Fatalf("joined with %+v after %d attempts", a.Record, j.Attempts())
	}
	// Reports nobody asked for change nothing.
	j.ReadDone(at(11), at(11), d.view(), nil)
	j.WriteDone(at(11), at(11), nil)
	wantJoined(t, j.Next(), 0)
}

// Only unused slots and slots in state "left" are free: never a slot that
// reads corrupt, foreign, misplaced or newer, nor one of another host, even
// one silent for ever.
func TestFreeSlots(t *testing.T) {
	d := newDisk(6).
		bad(0, ondisk.SlotForeign).bad(1, ondisk.SlotMisplaced).bad(2, ondisk.SlotNewer).
		put(slot(3, "b", 2, 2, 3, 9, ondisk.StateLive)).
		put(slot(4, "c", 3, 3, 1, 1, ondisk.StateJoining)).
		put(slot(5, "d", 4, 4, 7, 2, ondisk.StateLeft))
	j := join.New(config("a", 1, 1), at(0))
	a := read(t, j, d, 0, 0.1)
	wantWrite(t, a, 5, 8, 5)
	write(t, j, d, 1, 1.1, nil)
	wantJoined(t, read(t, j, d, 11.1, 11.2), 5)

	// Once slot 5 is taken, nothing is free.
	j = join.New(config("e", 5, 5), at(20))
	a = read(t, j, d, 20, 20.1)
	var nf *join.NoFreeSlotError
	if a.Kind != join.Failed || !errors.As(a.Err, &nf) || nf.Slots != 6 || nf.Unreadable != 3 {
		t.Fatalf("next %v err %v, want NoFreeSlotError of 6 slots, 3 unreadable", a.Kind, a.Err)
	}
	for _, s := range []string{"of 6 slots, 3 hold other hosts", "3 are unreadable", "hbfence dump", "--slots"} {
		if !strings.Contains(a.Err.Error(), s) {
			t.Errorf("error %q does not say %q", a.Err, s)
		}
	}
}

// A slot that reads corrupt may be a torn read of a live host bearing our
// name: no slot is chosen, and no claim proven, until it has read corrupt
// renewal_fail / interval + 1 = 8 times in a row (a scribbled slot), or
// reads valid.
func TestCorruptSlotDelaysChoice(t *testing.T) {
	d := newDisk(3).bad(0, ondisk.SlotCorrupt)
	j := join.New(config("a", 1, 1), at(0))
	a := j.Next()
	now := 0.0
	for i := 1; i < 8; i++ {
		wantRead(t, a, now)
		a = read(t, j, d, now, now+0.1)
		now += 2
	}
	wantRead(t, a, now)
	a = read(t, j, d, now, now+0.1) // the 8th corrupt read
	wantWrite(t, a, 1, 1, now+5)
	write(t, j, d, now+0.2, now+0.3, nil)
	// Scribbled: it reads corrupt still at the read-back, which decides.
	wantJoined(t, read(t, j, d, now+10.3, now+10.4), 1)

	// Torn once: the next read shows a live host of our name there.
	d = newDisk(3).bad(0, ondisk.SlotCorrupt)
	j = join.New(config("a", 1, 1), at(0))
	a = read(t, j, d, 0, 0.1)
	wantRead(t, a, 2)
	d.put(slot(0, "a", 9, 9, 2, 5, ondisk.StateLive))
	a = read(t, j, d, 2, 2.1) // watching slot 0
	wantRead(t, a, 4)
	d.put(slot(0, "a", 9, 9, 2, 6, ondisk.StateLive))
	if a = read(t, j, d, 4, 4.1); a.Kind != join.Failed {
		t.Fatalf("next %v, want failed: name in use", a.Kind)
	}

	// Torn at the read-back: read again; the host of our name shows.
	d = newDisk(3)
	j = join.New(config("a", 1, 1), at(0))
	read(t, j, d, 0, 0.1)
	write(t, j, d, 0.2, 0.3, nil)
	d.bad(2, ondisk.SlotCorrupt)
	a = read(t, j, d, 10.3, 10.4)
	wantRead(t, a, 12.3)
	d.put(slot(2, "a", 9, 9, 2, 6, ondisk.StateLive))
	a = read(t, j, d, 12.3, 12.4)
	var inUse *join.NameInUseError
	if a.Kind != join.Failed || !errors.As(a.Err, &inUse) || inUse.Slot != 2 || inUse.Claiming {
		t.Fatalf("next %v err %v, want NameInUseError naming live slot 2", a.Kind, a.Err)
	}
}

// A claim proven too late to be renewed before host_dead - io_timeout -
// margin after it was written (27 - 5 - 1.027 = 20.973 s after the write
// issued at 0.2 s) is not a join: a host of the same name watching the
// slot may judge it dead and claim it.
func TestReadBackTooLate(t *testing.T) {
	renewBy := at(0.2).Add(params.HostDead - params.IOTimeout - params.Margin())
	if !renewBy.Equal(at(21.173)) {
		t.Fatalf("timing changed: renew by %v, the test's instants assume 21.173 s", renewBy.Sub(t0))
	}
	d := newDisk(2)
	j := join.New(config("a", 1, 1), at(0))
	read(t, j, d, 0, 0.1)
	write(t, j, d, 0.2, 0.3, nil)
	eio := errors.New("EIO")
	// Reads fail from 10.3 s to 16.3 s; the next completes at 21.2 s, just
	// after the limit.
	for issued := 10.3; issued < 16; issued += 4 {
		j.ReadDone(at(issued), at(issued+2), nil, eio)
	}
	a := read(t, j, d, 18.3, 21.2)
	if a.Kind != join.Read {
		t.Fatalf("read-back done at 21.2 s: next %v, want a retry", a.Kind)
	}
	// In time (done at 21.1 s), the join is proven, and the member told
	// when to renew.
	d = newDisk(2)
	j = join.New(config("a", 1, 1), at(0))
	read(t, j, d, 0, 0.1)
	write(t, j, d, 0.2, 0.3, nil)
	a = read(t, j, d, 20, 21.1)
	wantJoined(t, a, 0)
	if !a.Deadline.Equal(renewBy) {
		t.Errorf("joined: renew by %v, want %v", a.Deadline.Sub(t0), renewBy.Sub(t0))
	}
}

// This host's own slot in state "left" is taken back by the normal path,
// with the wait, even when it was left by another machine of this name.
func TestOwnLeftSlot(t *testing.T) {
	for _, m := range []byte{1, 9} {
		d := newDisk(4).put(slot(2, "a", m, 1, 4, 30, ondisk.StateLeft))
		j := join.New(config("a", 1, 1), at(0))
		a := read(t, j, d, 0, 0.1)
		wantWrite(t, a, 2, 5, 5)
		a = write(t, j, d, 0.5, 0.6, nil)
		wantRead(t, a, 10.6)
		wantJoined(t, read(t, j, d, 10.6, 10.7), 2)
	}
}

// A restarted daemon finds its slot live, written by this machine in this
// boot: it claims it at once and reads it back without JoinWait.
func TestFastPath(t *testing.T) {
	for _, st := range []ondisk.SlotState{ondisk.StateLive, ondisk.StateLeaving} {
		d := newDisk(4).put(slot(0, "b", 2, 2, 1, 1, ondisk.StateLive)).put(slot(3, "a", 1, 1, 6, 500, st))
		j := join.New(config("a", 1, 1), at(0))
		a := read(t, j, d, 0, 0.1)
		wantWrite(t, a, 3, 7, 5)
		a = write(t, j, d, 0.2, 0.3, nil)
		wantRead(t, a, 0.3)
		wantJoined(t, read(t, j, d, 0.3, 0.4), 3)
	}
}

// The fast path is for a daemon restarted in the same boot, over a slot its
// earlier incarnation joined. Anything else takes the wait:
//   - a record in state "joining": a claim that may never have been proven
//     (this Joiner's own failed claim that landed, or a join that crashed),
//     which a competitor that read the slot free may be overwriting;
//   - a record of an earlier boot: the machine was reset; its slot may have
//     been silent for host_dead, and a host of the same name on another
//     machine may be claiming it as dead;
//   - no boot id to compare.
func TestNoFastPath(t *testing.T) {
	cases := []struct {
		name   string
		rec    ondisk.Slot
		selfBt byte
	}{
		{"joining", slot(3, "a", 1, 1, 6, 1, ondisk.StateJoining), 1},
		{"earlier boot", slot(3, "a", 1, 7, 6, 500, ondisk.StateLive), 1},
		{"no boot id", slot(3, "a", 1, 0, 6, 500, ondisk.StateLive), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newDisk(4).put(c.rec)
			cfg := config("a", 1, c.selfBt)
			if c.selfBt == 0 {
				cfg.Self.BootID = ondisk.UUID{}
			}
			j := join.New(cfg, at(0))
			a := read(t, j, d, 0, 0.1)
			wantWrite(t, a, 3, 7, 5)
			a = write(t, j, d, 0.2, 0.3, nil)
			wantRead(t, a, 10.3)
			wantJoined(t, read(t, j, d, 10.3, 10.4), 3)
		})
	}
}

// A slot bearing this host's name, written by another machine, is watched:
// it changes, so the name is in use, and the error names the slot.
func TestNameInUse(t *testing.T) {
	d := newDisk(6).put(slot(4, "a", 9, 9, 3, 10, ondisk.StateLive))
	j := join.New(config("a", 1, 1), at(0))
	a := read(t, j, d, 0, 0.1)
	wantRead(t, a, 2)
	a = read(t, j, d, 2, 2.1)
	wantRead(t, a, 4)
	d.put(slot(4, "a", 9, 9, 3, 11, ondisk.StateLive))
	a = read(t, j, d, 4, 4.2)
	var inUse *join.NameInUseError
	if a.Kind != join.Failed || !errors.As(a.Err, &inUse) {
		t.Fatalf("next %v err %v, want NameInUseError", a.Kind, a.Err)
	}
	if inUse.Slot != 4 || inUse.Name != "a" || inUse.Generation != 3 || inUse.MachineID != machine(9) || inUse.Silence != 0 {
		t.Errorf("error %+v", inUse)
	}
	for _, s := range []string{"slot 4", `"a"`, machine(9).String(), "[host] name"} {
		if !strings.Contains(a.Err.Error(), s) {
			t.Errorf("error %q does not say %s", a.Err, s)
		}
	}
	if j.Attempts() != 0 {
		t.Errorf("%d claims written", j.Attempts())
	}
}

// The same slot, silent: claimed on the first read issued host_dead after
// the first read, not before, with a deadline counted from that read.
func TestSilentSameNameClaimedAfterHostDead(t *testing.T) {
	d := newDisk(6).put(slot(4, "a", 9, 9, 3, 10, ondisk.StateLive))
	j := join.New(config("a", 1, 1), at(0))
	a := read(t, j, d, 0, 0.5)
	issued := 0.0
	for issued = 2; issued < 27.5; issued += 2 {
		wantRead(t, a, issued)
		a = read(t, j, d, issued, issued+0.4)
	}
	// The last read was issued at 26 s, before first sight + host_dead
	// = 27.5 s; the next, at 28 s, decides.
	wantRead(t, a, 28)
	a = read(t, j, d, 28, 28.4)
	wantWrite(t, a, 4, 4, 28+5)
	a = write(t, j, d, 29, 29.5, nil)
	wantRead(t, a, 39.5)
	wantJoined(t, read(t, j, d, 39.5, 39.6), 4)
}

// While it is watched, the same-name slot is taken by another host: our
// name is free, and a free slot is claimed.
func TestWatchedSlotTakenByAnother(t *testing.T) {
	d := newDisk(3).put(slot(0, "a", 9, 9, 3, 10, ondisk.StateLive))
	j := join.New(config("a", 1, 1), at(0))
	read(t, j, d, 0, 0.1)
	d.put(slot(0, "z", 8, 8, 4, 1, ondisk.StateJoining))
	a := read(t, j, d, 2, 2.1)
	wantWrite(t, a, 1, 1, 7)
}

// The watched slot reads corrupt: it is not claimed. The host keeps
// watching while it reads valid again within host_dead, and gives up,
// naming the slot, when it stays unreadable for longer.
func TestWatchedSlotCorrupt(t *testing.T) {
	d := newDisk(3).put(slot(0, "a", 9, 9, 3, 10, ondisk.StateLive))
	j := join.New(config("a", 1, 1), at(0))
	a := read(t, j, d, 0, 0.1)
	d.bad(0, ondisk.SlotCorrupt)
	for issued := 2.0; issued < 27; issued += 2 {
		wantRead(t, a, issued)
		a = read(t, j, d, issued, issued+0.1)
	}
	d.put(slot(0, "a", 9, 9, 3, 10, ondisk.StateLive))
	a = read(t, j, d, 28, 28.1)
	wantWrite(t, a, 0, 4, 33)

	d = newDisk(3).put(slot(0, "a", 9, 9, 3, 10, ondisk.StateLive))
	j = join.New(config("a", 1, 1), at(0))
	a = read(t, j, d, 0, 0.1)
	d.bad(0, ondisk.SlotCorrupt)
	for issued := 2.0; issued <= 28; issued += 2 {
		wantRead(t, a, issued)
		a = read(t, j, d, issued, issued+0.1)
	}
	// Unreadable from 2 s to 28.1 s: 26.1 s. One more read passes
	// host_dead.
	wantRead(t, a, 30)
	a = read(t, j, d, 30, 30.1)
	if a.Kind != join.Failed {
		t.Fatalf("next %v, want failed", a.Kind)
	}
	for _, s := range []string{"slot 0", "corrupt", "hbfence dump", "[host] name"} {
		if !strings.Contains(a.Err.Error(), s) {
			t.Errorf("error %q does not say %s", a.Err, s)
		}
	}
}

// A claim write that fails is retried after interval plus jitter, from a
// new read. If the failed write landed all the same, the new read shows
// this host's own claim in state "joining": it is claimed again with the
// wait, not by the fast path, because a competitor that read the slot free
// before it landed may be claiming it too.
func TestWriteErrorRetries(t *testing.T) {
	for _, landed := range []bool{false, true} {
		d := newDisk(2)
		j := join.New(config("a", 1, 1), at(0))
		a := read(t, j, d, 0, 0.1)
		wantWrite(t, a, 0, 1, 5)
		if landed {
			d.put(a.Record)
		}
		a = write(t, j, d, 0.2, 0.3, errors.New("EIO"))
		wantRead(t, a, 0.3+2+1) // interval + Jitter(2 × interval) = 2 s + 1 s
		a = read(t, j, d, 3.3, 3.4)
		gen := uint64(1)
		if landed {
			gen = 2
		}
		wantWrite(t, a, 0, gen, 8.3)
		if a.Record.JoinNonce != 1<<32+2 {
			t.Errorf("second claim has nonce %d, want a fresh one", a.Record.JoinNonce)
		}
		a = write(t, j, d, 3.5, 3.6, nil)
		wantRead(t, a, 13.6)
		wantJoined(t, read(t, j, d, 13.6, 13.7), 0)
		if j.Attempts() != 2 {
			t.Errorf("%d attempts, want 2", j.Attempts())
		}
	}
}

// The driver could not issue the claim before its deadline: start over.
func TestDeadlineRetries(t *testing.T) {
	d := newDisk(2)
	j := join.New(config("a", 1, 1), at(0))
	read(t, j, d, 0, 0.1)
	a := write(t, j, d, 5.5, 5.5, join.ErrDeadline)
	wantRead(t, a, 8.5)
	wantWrite(t, read(t, j, d, 8.5, 8.6), 0, 1, 13.5)
}

// A write reported successful but issued after its deadline, or slower
// than io_timeout, breaks the assumption competitors rely on (their claims
// land within 2 × io_timeout of their read): it is not a proven claim.
func TestLateOrSlowWriteIsNotAClaim(t *testing.T) {
	for _, c := range []struct {
		name         string
		issued, done float64
	}{{"issued after its deadline", 5.2, 5.3}, {"slower than io_timeout", 1, 6.1}} {
		t.Run(c.name, func(t *testing.T) {
			d := newDisk(2)
			j := join.New(config("a", 1, 1), at(0))
			read(t, j, d, 0, 0.1)
			a := write(t, j, d, c.issued, c.done, nil)
			wantRead(t, a, c.done+3)
			// The retry sees its own claim, "joining": the normal path.
			wantWrite(t, read(t, j, d, c.done+3, c.done+3.1), 0, 2, c.done+8)
		})
	}
}

// A read-back issued before JoinWait is over proves nothing: the joiner
// still waits for one issued at NotBefore.
func TestEarlyReadBackIgnored(t *testing.T) {
	d := newDisk(2)
	j := join.New(config("a", 1, 1), at(0))
	read(t, j, d, 0, 0.1)
	a := write(t, j, d, 0.2, 0.3, nil)
	wantRead(t, a, 10.3)
	j.ReadDone(at(10.2), at(10.4), d.view(), nil)
	wantRead(t, j.Next(), 10.3)
	wantJoined(t, read(t, j, d, 10.3, 10.4), 0)
}

// Another claim is read back each time: after MaxAttempts claims the join
// fails, and says why the last attempt failed.
func TestMaxAttempts(t *testing.T) {
	d := newDisk(1)
	j := join.New(config("a", 1, 1), at(0))
	now := 0.0
	for i := 1; i <= 4; i++ {
		a := read(t, j, d, now, now+0.1)
		if a.Kind != join.Write {
			t.Fatalf("attempt %d: next %v", i, a.Kind)
		}
		claim := a.Record
		write(t, j, d, now+0.2, now+0.3, nil)
		// A competitor's claim lands over ours before the read-back,
		// and it leaves at once: the slot is free again.
		d.put(slot(0, "z", 8, 8, claim.Generation, 1, ondisk.StateLeft))
		now += 10.3
		a = read(t, j, d, now, now+0.1)
		now += 0.1
		if i < 4 {
			wantRead(t, a, now+3)
			now += 3
		} else if a.Kind != join.Failed {
			t.Fatalf("after 4 lost races: next %v", a.Kind)
		} else {
			for _, s := range []string{"4 claims", "slot 0", `"z"`} {
				if !strings.Contains(a.Err.Error(), s) {
					t.Errorf("error %q does not say %s", a.Err, s)
				}
			}
		}
	}
}

// Two hosts configured with the same name, on two machines, join at the
// same moment. Host 1 reads the pool empty and claims slot 0; host 2 reads
// it after another host's claim landed in slot 0, and claims slot 1. Each
// read-back shows its own claim, and the other's, which neither read saw:
// the name is being claimed twice at once. Neither may join (before the
// fix both did, and the name was live in two slots).
func TestSameNameClaimedConcurrently(t *testing.T) {
	d := newDisk(3)
	j1 := join.New(config("a", 1, 1), at(0))
	j2 := join.New(config("a", 2, 2), at(0))
	wantWrite(t, read(t, j1, d, 0, 0.1), 0, 1, 5)
	d.put(slot(0, "z", 8, 8, 1, 1, ondisk.StateJoining))
	wantWrite(t, read(t, j2, d, 0.05, 0.15), 1, 1, 5.05)
	write(t, j1, d, 0.3, 0.4, nil)
	write(t, j2, d, 0.35, 0.45, nil)
	for i, j := range []*join.Joiner{j1, j2} {
		a := read(t, j, d, 10.5, 10.6)
		var inUse *join.NameInUseError
		if a.Kind != join.Failed || !errors.As(a.Err, &inUse) {
			t.Fatalf("host %d: next %v (err %v), want NameInUseError", i+1, a.Kind, a.Err)
		}
		if other := 1 - i; inUse.Slot != other || inUse.MachineID != machine(byte(other+1)) || !inUse.Claiming {
			t.Errorf("host %d: %+v, want the claim in slot %d", i+1, inUse, other)
		}
		for _, s := range []string{"at the same moment", "[host] name"} {
			if !strings.Contains(a.Err.Error(), s) {
				t.Errorf("error %q does not say %s", a.Err, s)
			}
		}
	}
}

// A record of this name written by this machine in an earlier boot is not
// taken while another machine's record of the name, not left, may be live:
// that one is watched first (before the fix, this machine's slot was
// taken at once and the name was live in two slots).
//
// A restart in the same boot is different: the fast path comes first. The
// other record cannot be a host that joined while this daemon's earlier
// incarnation held the name (it would have found the name in use), and
// watching it for host_dead would let the watchdog reset this machine and
// kill its guests.
func TestOwnSlotButNameLiveElsewhere(t *testing.T) {
	d := newDisk(4).put(slot(0, "a", 1, 7, 2, 40, ondisk.StateLive)).put(slot(2, "a", 9, 9, 5, 7, ondisk.StateLive))
	j := join.New(config("a", 1, 1), at(0))
	a := read(t, j, d, 0, 0.1)
	wantRead(t, a, 2)
	d.put(slot(2, "a", 9, 9, 5, 8, ondisk.StateLive))
	a = read(t, j, d, 2, 2.1)
	var inUse *join.NameInUseError
	if a.Kind != join.Failed || !errors.As(a.Err, &inUse) || inUse.Slot != 2 {
		t.Fatalf("next %v (err %v), want NameInUseError naming slot 2", a.Kind, a.Err)
	}

	d = newDisk(4).put(slot(0, "a", 1, 1, 2, 40, ondisk.StateLive)).put(slot(2, "a", 9, 9, 5, 7, ondisk.StateLive))
	j = join.New(config("a", 1, 1), at(0))
	wantWrite(t, read(t, j, d, 0, 0.1), 0, 3, 5)
	a = write(t, j, d, 0.2, 0.3, nil)
	wantJoined(t, read(t, j, d, 0.3, 0.4), 0)
}

// Reads that fail are retried every interval; they end the join only after
// failing for longer than renewal_fail, and a read that succeeds resets the
// count.
func TestReadErrors(t *testing.T) {
	d := newDisk(2)
	eio := errors.New("EIO")
	j := join.New(config("a", 1, 1), at(0))
	fail := func(issued, done float64) join.Action {
		t.Helper()
		j.ReadDone(at(issued), at(done), nil, eio)
		return j.Next()
	}
	a := fail(0, 5)
	wantRead(t, a, 7)
	a = fail(7, 12)
	a = fail(14, 15) // 15 s since the first failing read was issued
	wantRead(t, a, 17)
	// A successful read in between resets the count: the join goes on.
	d.put(slot(0, "a", 9, 9, 1, 1, ondisk.StateLive)).put(slot(1, "b", 8, 8, 1, 1, ondisk.StateLive))
	a = read(t, j, d, 17, 17.1) // watching slot 0
	wantRead(t, a, 19)
	for issued := 19.0; issued <= 31; issued += 3 {
		a = fail(issued, issued+1)
		if a.Kind != join.Read {
			t.Fatalf("after a read failing at %vs: %v %v", issued, a.Kind, a.Err)
		}
	}
	// Done 34 s: 15 s since the first failing read, not more.
	wantRead(t, fail(33, 34), 36)
	a = fail(34.1, 34.2)
	if a.Kind != join.Failed || !errors.Is(a.Err, eio) {
		t.Fatalf("next %v err %v, want failed wrapping EIO", a.Kind, a.Err)
	}
	for _, s := range []string{"cannot read the heartbeat area for 15.2s", "renewal_fail 15s", "[heartbeat] path"} {
		if !strings.Contains(a.Err.Error(), s) {
			t.Errorf("error %q does not say %s", a.Err, s)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[join.Kind]string{join.Read: "read", join.Write: "write", join.Joined: "joined", join.Failed: "failed"} {
		if k.String() != want {
			t.Errorf("%d: %q", int(k), k.String())
		}
	}
}
