package liveness_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// The default profile: interval 2 s, io_timeout 5 s, renewal_fail 15 s,
// watchdog 10 s, host_dead 27 s. The figures below are written against it.
var params = timing.Params{
	Interval:    2 * time.Second,
	IOTimeout:   5 * time.Second,
	RenewalFail: 15 * time.Second,
	Watchdog:    10 * time.Second,
	HostDead:    27 * time.Second,
}

// t0 is the observer's monotonic origin; every time in a table is an
// offset from it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func sec(f float64) time.Duration { return time.Duration(math.Round(f * float64(time.Second))) }

// rec is a valid record of host name in slot, generation gen, sequence seq.
func rec(slot int, name string, gen, seq uint64) ondisk.Decoded {
	return ondisk.Decoded{Index: slot, Status: ondisk.SlotOK, Slot: ondisk.Slot{
		Version: ondisk.SlotVersion, State: ondisk.StateLive, Index: uint32(slot),
		Generation: gen, Sequence: seq, JoinNonce: 1000 + gen, HostName: name,
	}}
}

func left(slot int, name string, gen, seq uint64) ondisk.Decoded {
	d := rec(slot, name, gen, seq)
	d.Slot.State = ondisk.StateLeft
	return d
}

func unused(slot int) ondisk.Decoded {
	return ondisk.Decoded{Index: slot, Status: ondisk.SlotUnused}
}

func corrupt(slot int) ondisk.Decoded {
	return ondisk.Decoded{Index: slot, Status: ondisk.SlotCorrupt, Reason: "checksum mismatch"}
}

// step is one input to the tracker: an Observe (a successful read issued
// and completed at the given offsets) or, when eval is set, an Evaluate at
// now (a read failed, or time passed).
type step struct {
	eval         bool
	issued, done time.Duration
	now          time.Duration
	slots        []ondisk.Decoded
	want         []ev                   // the events, in order; nil means none
	states       map[int]liveness.State // slot -> state after the step
}

// ev is an expected event; At and Silence are offsets / durations.
type ev struct {
	kind     liveness.EventKind
	slot     int
	name     string
	gen      uint64
	from, to liveness.State
	at       time.Duration
	silence  time.Duration
}

func obs(issued, done time.Duration, slots ...ondisk.Decoded) step {
	return step{issued: issued, done: done, slots: slots}
}

func eval(now time.Duration) step { return step{eval: true, now: now} }

func (s step) events(e ...ev) step { s.want = e; return s }

func (s step) state(slot int, st liveness.State) step {
	m := map[int]liveness.State{}
	for k, v := range s.states {
		m[k] = v
	}
	m[slot] = st
	s.states = m
	return s
}

func tr(slot int, name string, gen uint64, from, to liveness.State, at, silence time.Duration) ev {
	return ev{kind: liveness.Transition, slot: slot, name: name, gen: gen, from: from, to: to, at: at, silence: silence}
}

func other(kind liveness.EventKind, slot int, name string, gen uint64, at time.Duration) ev {
	return ev{kind: kind, slot: slot, name: name, gen: gen, at: at}
}

func (e ev) String() string {
	return fmt.Sprintf("{%v slot %d %q gen %d %v->%v at %v silence %v}", e.kind, e.slot, e.name, e.gen, e.from, e.to, e.at, e.silence)
}

func got(e liveness.Event) ev {
	return ev{kind: e.Kind, slot: e.Slot, name: e.Name, gen: e.Generation, from: e.From, to: e.To,
		at: e.At.Sub(t0), silence: e.Silence}
}

func runSteps(t *testing.T, steps []step) *liveness.Tracker {
	t.Helper()
	tk := liveness.New(params)
	for i, s := range steps {
		var evs []liveness.Event
		if s.eval {
			evs = tk.Evaluate(at(s.now))
		} else {
			evs = tk.Observe(at(s.issued), at(s.done), s.slots)
		}
		var gotEv []string
		for _, e := range evs {
			gotEv = append(gotEv, got(e).String())
			if e.Kind != liveness.Transition && e.Detail == "" {
				t.Errorf("step %d: %v event with no detail", i, e.Kind)
			}
		}
		var wantEv []string
		for _, e := range s.want {
			wantEv = append(wantEv, e.String())
		}
		if strings.Join(gotEv, "\n") != strings.Join(wantEv, "\n") {
			t.Fatalf("step %d (%s): events\n got: %s\nwant: %s", i, describe(s),
				strings.Join(gotEv, "\n      "), strings.Join(wantEv, "\n      "))
		}
		for slot, want := range s.states {
			p, ok := tk.Peer(slot)
			if !ok {
				t.Fatalf("step %d: slot %d not tracked", i, slot)
			}
			if p.State != want {
				t.Fatalf("step %d (%s): slot %d is %v, want %v", i, describe(s), slot, p.State, want)
			}
		}
	}
	return tk
}

func describe(s step) string {
	if s.eval {
		return fmt.Sprintf("evaluate at %v", s.now)
	}
	return fmt.Sprintf("read issued %v done %v", s.issued, s.done)
}

const (
	unknown = liveness.Unknown
	live    = liveness.Live
	suspect = liveness.Suspect
	dead    = liveness.Dead
	lft     = liveness.Left
)

func TestTransitions(t *testing.T) {
	hd, rf := params.HostDead, params.RenewalFail
	cases := []struct {
		name  string
		steps []step
	}{{
		// A record present at the first read has an unknown age: it is
		// unknown, never live, and dead once a read issued host_dead
		// after that first read still shows it unchanged.
		name: "unknown to dead with no change",
		steps: []step{
			obs(0, sec(0.1), rec(0, "a", 1, 7)).state(0, unknown),
			obs(sec(2), sec(2.1), rec(0, "a", 1, 7)).state(0, unknown),
			// Unknown never turns suspect, however long the silence.
			eval(sec(0.1)+rf+time.Second).state(0, unknown),
			// Issued 1 ns before first sight + host_dead: not yet,
			// though it completes well after the deadline.
			obs(sec(0.1)+hd-1, sec(0.1)+hd+sec(4), rec(0, "a", 1, 7)).state(0, unknown),
			// No read, no death: Evaluate alone never declares dead.
			eval(sec(60)).state(0, unknown),
			// Issued exactly at the deadline: dead, with the silence
			// measured at the issue of the deciding read.
			obs(sec(0.1)+hd, sec(0.1)+hd+sec(0.2), rec(0, "a", 1, 7)).
				events(tr(0, "a", 1, unknown, dead, sec(0.1)+hd+sec(0.2), hd)).state(0, dead),
		},
	}, {
		name: "unknown to live on the first change",
		steps: []step{
			obs(0, sec(0.1), rec(0, "a", 1, 7)),
			obs(sec(2), sec(2.3), rec(0, "a", 1, 8)).
				events(tr(0, "a", 1, unknown, live, sec(2.3), 0)).state(0, live),
		},
	}, {
		name: "live to suspect exactly after renewal_fail, dead on a read issued at the deadline",
		steps: []step{
			obs(0, sec(0.1), rec(0, "a", 1, 1)),
			obs(sec(2), sec(2.1), rec(0, "a", 1, 2)).events(tr(0, "a", 1, unknown, live, sec(2.1), 0)),
			// Silence of exactly renewal_fail is not more than it.
			eval(sec(2.1)+rf).state(0, live),
			eval(sec(2.1)+rf+1).events(tr(0, "a", 1, live, suspect, sec(2.1)+rf+1, rf+1)).state(0, suspect),
			eval(sec(2.1) + rf + sec(5)),
			// A read that shows no change but was issued before
			// LastChange + host_dead does not kill, even completing
			// io_timeout later.
			obs(sec(2.1)+hd-time.Millisecond, sec(2.1)+hd+sec(4.9), rec(0, "a", 1, 2)).state(0, suspect),
			obs(sec(2.1)+hd+sec(5), sec(2.1)+hd+sec(5.1), rec(0, "a", 1, 2)).
				events(tr(0, "a", 1, suspect, dead, sec(2.1)+hd+sec(5.1), hd+sec(5))).state(0, dead),
		},
	}, {
		name: "suspect back to live on a change",
		steps: []step{
			obs(0, sec(0.1), rec(0, "a", 1, 1)),
			obs(sec(1), sec(1.1), rec(0, "a", 1, 2)).events(tr(0, "a", 1, unknown, live, sec(1.1), 0)),
			eval(sec(20)).events(tr(0, "a", 1, live, suspect, sec(20), sec(18.9))),
			obs(sec(21), sec(21.5), rec(0, "a", 1, 3)).events(tr(0, "a", 1, suspect, live, sec(21.5), 0)),
		},
	}, {
		name: "left at the first read and after being live",
		steps: []step{
			obs(0, sec(0.1), left(0, "a", 3, 9), rec(1, "b", 1, 1)).
				events(tr(0, "a", 3, unknown, lft, sec(0.1), 0)).state(0, lft).state(1, unknown),
			obs(sec(2), sec(2.1), left(0, "a", 3, 9), rec(1, "b", 1, 2)).
				events(tr(1, "b", 1, unknown, live, sec(2.1), 0)),
			obs(sec(4), sec(4.1), left(0, "a", 3, 9), left(1, "b", 1, 3)).
				events(tr(1, "b", 1, live, lft, sec(4.1), 0)).state(1, lft),
			// Left never decays to suspect or dead.
			obs(sec(100), sec(100.1), left(0, "a", 3, 9), left(1, "b", 1, 3)).state(0, lft).state(1, lft),
		},
	}, {
		name: "a revenant stays dead; a new generation is live again",
		steps: []step{
			obs(0, sec(0.1), rec(0, "a", 4, 1)),
			obs(sec(30), sec(30.1), rec(0, "a", 4, 1)).events(tr(0, "a", 4, unknown, dead, sec(30.1), sec(29.9))),
			obs(sec(32), sec(32.1), rec(0, "a", 4, 2)).
				events(other(liveness.Revenant, 0, "a", 4, sec(32.1))).state(0, dead),
			// Even writing "left", the dead generation stays dead.
			obs(sec(34), sec(34.1), left(0, "a", 4, 3)).
				events(other(liveness.Revenant, 0, "a", 4, sec(34.1))).state(0, dead),
			obs(sec(36), sec(36.1), left(0, "a", 4, 3)).state(0, dead),
			obs(sec(38), sec(38.1), rec(0, "a", 5, 1)).
				events(other(liveness.NewIncarnation, 0, "a", 5, sec(38.1)),
					tr(0, "a", 5, dead, live, sec(38.1), 0)).state(0, live),
		},
	}, {
		name: "a new generation while live is a new incarnation",
		steps: []step{
			obs(0, sec(0.1), rec(0, "a", 1, 1)),
			obs(sec(2), sec(2.1), rec(0, "a", 2, 1)).
				events(other(liveness.NewIncarnation, 0, "a", 2, sec(2.1)), tr(0, "a", 2, unknown, live, sec(2.1), 0)),
			obs(sec(4), sec(4.1), rec(0, "b", 2, 1)).
				events(other(liveness.NewIncarnation, 0, "b", 2, sec(4.1))).state(0, live),
		},
	}, {
		// A corrupt read is no change: it does not refresh the host.
		// Nor does it decide death: a read that showed the slot torn
		// may have raced a write that is landing.
		name: "corrupt reads do not refresh and do not decide death",
		steps: []step{
			obs(0, sec(0.1), rec(0, "a", 1, 1)),
			obs(sec(2), sec(2.1), rec(0, "a", 1, 2)).events(tr(0, "a", 1, unknown, live, sec(2.1), 0)),
			obs(sec(4), sec(4.1), corrupt(0)).events(other(liveness.Corrupt, 0, "a", 1, sec(4.1))),
			obs(sec(6), sec(6.1), corrupt(0)),
			obs(sec(18), sec(18.1), corrupt(0)).events(tr(0, "a", 1, live, suspect, sec(18.1), sec(16))),
			obs(sec(2.1)+hd, sec(2.1)+hd+sec(0.1), corrupt(0)).state(0, suspect),
			obs(sec(40), sec(40.1), corrupt(0)).state(0, suspect),
			// The unchanged record shows again: that read decides.
			obs(sec(42), sec(42.1), rec(0, "a", 1, 2)).events(tr(0, "a", 1, suspect, dead, sec(42.1), sec(39.9))),
		},
	}, {
		name: "corrupt then a changed record is a change",
		steps: []step{
			obs(0, sec(0.1), rec(0, "a", 1, 1)),
			obs(sec(2), sec(2.1), corrupt(0)).events(other(liveness.Corrupt, 0, "a", 1, sec(2.1))),
			obs(sec(4), sec(4.1), rec(0, "a", 1, 2)).events(tr(0, "a", 1, unknown, live, sec(4.1), 0)),
		},
	}, {
		// Corrupt at the first reads, valid later: the record may be as
		// old as the corrupt reads, so it is a first sight, not a change,
		// and host_dead counts from its first sight.
		name: "corrupt then valid is a first sight",
		steps: []step{
			obs(0, sec(0.1), corrupt(0)).events(other(liveness.Corrupt, 0, "", 0, sec(0.1))).state(0, unknown),
			obs(sec(10), sec(10.1), corrupt(0)),
			// Corrupt for host_dead: no record, nobody to declare dead.
			obs(sec(30), sec(30.1), corrupt(0)).state(0, unknown),
			obs(sec(32), sec(32.1), rec(0, "a", 1, 5)).state(0, unknown),
			obs(sec(32.1)+hd-1, sec(32.1)+hd, rec(0, "a", 1, 5)).state(0, unknown),
			obs(sec(32.1)+hd, sec(32.1)+hd+sec(1), rec(0, "a", 1, 5)).
				events(tr(0, "a", 1, unknown, dead, sec(32.1)+hd+sec(1), hd)),
		},
	}, {
		// Unused at every earlier read, a record appears: a write this
		// observer saw happen. Live at once.
		name: "unused then a record is a change",
		steps: []step{
			obs(0, sec(0.1), unused(0), rec(1, "b", 1, 1)),
			obs(sec(2), sec(2.2), rec(0, "a", 1, 1), rec(1, "b", 1, 1)).
				events(tr(0, "a", 1, unknown, live, sec(2.2), 0)).state(0, live).state(1, unknown),
			eval(sec(2.2) + rf + 1).events(tr(0, "a", 1, live, suspect, sec(2.2)+rf+1, rf+1)),
		},
	}, {
		// A zeroed slot: no writer of it can do that. No change seen,
		// and no death decided on it either; the record coming back
		// unchanged decides.
		name: "a zeroed slot is no change",
		steps: []step{
			obs(0, sec(0.1), rec(0, "a", 1, 1)),
			obs(sec(2), sec(2.1), rec(0, "a", 1, 2)).events(tr(0, "a", 1, unknown, live, sec(2.1), 0)),
			obs(sec(4), sec(4.1), unused(0)).state(0, live),
			obs(sec(20), sec(20.1), unused(0)).events(tr(0, "a", 1, live, suspect, sec(20.1), sec(18))),
			obs(sec(40), sec(40.1), unused(0)).state(0, suspect),
			obs(sec(42), sec(42.1), rec(0, "a", 1, 2)).events(tr(0, "a", 1, suspect, dead, sec(42.1), sec(39.9))),
		},
	}, {
		// Reads fail (the driver calls Evaluate): live turns suspect on
		// time, but without a read nothing is ever declared dead.
		name: "read failures: evaluate moves to suspect, never to dead",
		steps: []step{
			obs(0, sec(0.1), rec(0, "a", 1, 1), rec(1, "b", 1, 1)),
			obs(sec(2), sec(2.1), rec(0, "a", 1, 2), rec(1, "b", 1, 1)).events(tr(0, "a", 1, unknown, live, sec(2.1), 0)),
			eval(sec(10)),
			eval(sec(17.2)).events(tr(0, "a", 1, live, suspect, sec(17.2), sec(15.1))),
			eval(sec(29.2)),
			eval(sec(200)).state(0, suspect).state(1, unknown),
			// The first read after the outage decides both.
			obs(sec(200), sec(204), rec(0, "a", 1, 2), rec(1, "b", 1, 1)).
				events(tr(0, "a", 1, suspect, dead, sec(204), sec(197.9)),
					tr(1, "b", 1, unknown, dead, sec(204), sec(199.9))),
		},
	}, {
		// The slots of one read are judged each on its own record.
		name: "independent slots",
		steps: []step{
			obs(0, sec(0.5), rec(0, "a", 1, 1), unused(1), rec(2, "c", 1, 1)),
			obs(sec(2), sec(2.5), rec(0, "a", 1, 2), rec(1, "b", 1, 1), rec(2, "c", 1, 1)).
				events(tr(0, "a", 1, unknown, live, sec(2.5), 0), tr(1, "b", 1, unknown, live, sec(2.5), 0)),
			obs(sec(4), sec(4.5), rec(0, "a", 1, 3), rec(1, "b", 1, 1), rec(2, "c", 1, 1)),
			obs(sec(18), sec(18.5), rec(0, "a", 1, 4), rec(1, "b", 1, 1), rec(2, "c", 1, 1)).
				events(tr(1, "b", 1, live, suspect, sec(18.5), sec(16))),
			obs(sec(27.5), sec(28), rec(0, "a", 1, 5), rec(1, "b", 1, 1), rec(2, "c", 1, 1)).
				events(tr(2, "c", 1, unknown, dead, sec(28), sec(27))),
			obs(sec(29.5), sec(30), rec(0, "a", 1, 6), rec(1, "b", 1, 1), rec(2, "c", 1, 1)).
				events(tr(1, "b", 1, suspect, dead, sec(30), sec(27))).
				state(0, live).state(1, dead).state(2, dead),
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runSteps(t, c.steps) })
	}
}

// The peer's times are the completion of the reads that showed its record
// first and showed it change.
func TestPeerTimes(t *testing.T) {
	tk := runSteps(t, []step{
		obs(0, sec(0.1), rec(0, "a", 1, 1), unused(1)),
		obs(sec(2), sec(2.1), rec(0, "a", 1, 1), rec(1, "b", 1, 1)).events(tr(1, "b", 1, unknown, live, sec(2.1), 0)),
		obs(sec(4), sec(4.1), rec(0, "a", 1, 2), rec(1, "b", 1, 1)).events(tr(0, "a", 1, unknown, live, sec(4.1), 0)),
		obs(sec(6), sec(6.1), rec(0, "a", 1, 2), corrupt(1)).events(other(liveness.Corrupt, 1, "b", 1, sec(6.1))),
	})
	a, _ := tk.Peer(0)
	if a.FirstSeen != at(sec(0.1)) || a.LastChange != at(sec(4.1)) || a.Baseline() != at(sec(4.1)) {
		t.Errorf("a: first seen %v, last change %v, baseline %v", a.FirstSeen.Sub(t0), a.LastChange.Sub(t0), a.Baseline().Sub(t0))
	}
	if a.Age(at(sec(10))) != sec(5.9) || a.StateSince != at(sec(4.1)) {
		t.Errorf("a: age %v, state since %v", a.Age(at(sec(10))), a.StateSince.Sub(t0))
	}
	b, _ := tk.Peer(1)
	if b.LastChange != at(sec(2.1)) || b.Status != ondisk.SlotCorrupt || b.Reason == "" || !b.HaveRecord || b.Name() != "b" {
		t.Errorf("b: %+v", b)
	}
	if ps := tk.Peers(); len(ps) != 2 || ps[0].Slot != 0 || ps[1].Slot != 1 {
		t.Errorf("peers: %+v", ps)
	}
	if _, ok := tk.Peer(2); ok {
		t.Error("slot 2 was never seen, yet tracked")
	}
	if _, ok := tk.Peer(-1); ok {
		t.Error("slot -1 tracked")
	}
	if tk.Reads() != 4 {
		t.Errorf("reads %d, want 4", tk.Reads())
	}
}

// A torn read can race a write that is landing. If every read of a slot
// tears while its host keeps renewing, the observer sees no change for
// host_dead although the host is alive and renewing: it must not declare
// it dead. (Before the fix, a corrupt read issued after the deadline
// declared it dead.)
func TestTornReadsNeverDecideDeath(t *testing.T) {
	tk := liveness.New(params)
	tk.Observe(at(0), at(sec(0.1)), []ondisk.Decoded{rec(0, "a", 1, 1)})
	tk.Observe(at(sec(2)), at(sec(2.1)), []ondisk.Decoded{rec(0, "a", 1, 2)})
	// The host renews every 2 s and each of its writes lands while the
	// observer's read of its sector is in flight: every read tears.
	for r := sec(4); r < sec(60); r += sec(2) {
		for _, e := range tk.Observe(at(r), at(r+sec(0.1)), []ondisk.Decoded{corrupt(0)}) {
			if e.Kind == liveness.Transition && e.To == liveness.Dead {
				t.Fatalf("declared dead at %v on a torn read, its host renewing every 2 s", e.At.Sub(t0))
			}
		}
	}
}

func TestStateText(t *testing.T) {
	for s := liveness.Unknown; s <= liveness.Left; s++ {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back liveness.State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v: round trip gave %v, %v", s, back, err)
		}
	}
	var s liveness.State
	if err := s.UnmarshalText([]byte("alive")); err == nil || !strings.Contains(err.Error(), "alive") {
		t.Errorf("unknown state text: %v", err)
	}
	if got := liveness.State(9).String(); got != "state(9)" {
		t.Errorf("State(9) = %q", got)
	}
	for k, want := range map[liveness.EventKind]string{liveness.Transition: "transition",
		liveness.NewIncarnation: "new-incarnation", liveness.Revenant: "revenant", liveness.Corrupt: "corrupt", 7: "event(7)"} {
		if k.String() != want {
			t.Errorf("%d: %q, want %q", int(k), k.String(), want)
		}
	}
}

func TestNextDeadline(t *testing.T) {
	p := params
	tr := liveness.New(p)
	t0 := time.Unix(1000, 0)
	if _, ok := tr.NextDeadline(time.Time{}); ok {
		t.Fatal("a tracker with no peers has a deadline")
	}
	rec := func(i int, name string, seq uint64, st ondisk.SlotState) ondisk.Decoded {
		return ondisk.Decoded{Index: i, Status: ondisk.SlotOK, Slot: ondisk.Slot{Version: 1, Index: uint32(i), HostName: name, Generation: 1, Sequence: seq, State: st}}
	}
	unused := ondisk.Decoded{Index: 2, Status: ondisk.SlotUnused}
	tr.Observe(t0, t0.Add(time.Millisecond), []ondisk.Decoded{rec(0, "a", 1, ondisk.StateLive), rec(1, "b", 1, ondisk.StateLeft), unused})
	// a is unknown: its baseline is its first sight.
	if d, ok := tr.NextDeadline(time.Time{}); !ok || !d.Equal(t0.Add(time.Millisecond+p.HostDead)) {
		t.Fatalf("deadline %v %v, want first sight + host_dead", d, ok)
	}
	t1 := t0.Add(5 * time.Second)
	tr.Observe(t1, t1.Add(time.Millisecond), []ondisk.Decoded{rec(0, "a", 2, ondisk.StateLive), rec(1, "b", 1, ondisk.StateLeft), rec(2, "c", 1, ondisk.StateJoining)})
	// a and c changed at t1+1ms; b left and has no deadline.
	if d, ok := tr.NextDeadline(time.Time{}); !ok || !d.Equal(t1.Add(time.Millisecond+p.HostDead)) {
		t.Fatalf("deadline %v %v, want last change + host_dead", d, ok)
	}
	// A read issued at the deadline declares both dead; then none is left.
	dl, _ := tr.NextDeadline(time.Time{})
	tr.Observe(dl, dl.Add(time.Millisecond), []ondisk.Decoded{rec(0, "a", 2, ondisk.StateLive), rec(1, "b", 1, ondisk.StateLeft), rec(2, "c", 1, ondisk.StateJoining)})
	for _, i := range []int{0, 2} {
		if pe, _ := tr.Peer(i); pe.State != liveness.Dead {
			t.Errorf("slot %d is %v after a read issued at its deadline, want dead", i, pe.State)
		}
	}
	if d, ok := tr.NextDeadline(time.Time{}); ok {
		t.Errorf("deadline %v with every host dead or left", d)
	}
}

// A deadline that passed during a read issued before it is still
// returned: a read issued at once decides it. One that a successful read
// issued at or after it could not decide (the slot read zeroed) is not:
// it must not hold back another host's deadline.
func TestNextDeadlinePassedAndUndecidable(t *testing.T) {
	p := params
	tr := liveness.New(p)
	t0 := time.Unix(1000, 0)
	rec := func(i int, name string, seq uint64) ondisk.Decoded {
		return ondisk.Decoded{Index: i, Status: ondisk.SlotOK, Slot: ondisk.Slot{Version: 1, Index: uint32(i), HostName: name, Generation: 1, Sequence: seq, State: ondisk.StateLive}}
	}
	tr.Observe(t0, t0.Add(time.Millisecond), []ondisk.Decoded{rec(0, "a", 1), rec(1, "b", 1)})
	t1 := t0.Add(time.Second)
	tr.Observe(t1, t1.Add(time.Millisecond), []ondisk.Decoded{rec(0, "a", 2), rec(1, "b", 1)})
	aDeadline := t1.Add(time.Millisecond + p.HostDead) // a changed at t1+1ms
	bDeadline := t0.Add(time.Millisecond + p.HostDead) // b first seen at t0+1ms
	// A read issued just before b's deadline, returning after it: it
	// cannot decide b, and b's deadline, now past, is still the next.
	before := bDeadline.Add(-time.Millisecond)
	tr.Observe(before, bDeadline.Add(time.Millisecond), []ondisk.Decoded{rec(0, "a", 2), rec(1, "b", 1)})
	if pe, _ := tr.Peer(1); pe.State == liveness.Dead {
		t.Fatal("b dead by a read issued before its deadline")
	}
	if d, ok := tr.NextDeadline(time.Time{}); !ok || !d.Equal(bDeadline) {
		t.Fatalf("deadline %v %v, want b's %v, passed but not yet read", d, ok, bDeadline)
	}
	// A read at b's deadline that failed (the driver passes its issue):
	// b waits for the next round, and a's deadline is the next.
	if d, ok := tr.NextDeadline(bDeadline); !ok || !d.Equal(aDeadline) {
		t.Fatalf("deadline %v %v after a failed read at b's, want a's %v", d, ok, aDeadline)
	}
	// A read issued after b's deadline shows b's slot zeroed: it proves
	// nothing, b stays undecided, and its deadline gives way to a's.
	after := bDeadline.Add(2 * time.Millisecond)
	tr.Observe(after, after.Add(time.Millisecond), []ondisk.Decoded{rec(0, "a", 2), {Index: 1, Status: ondisk.SlotUnused}})
	if pe, _ := tr.Peer(1); pe.State == liveness.Dead {
		t.Fatal("b dead by a read that showed its slot zeroed")
	}
	if d, ok := tr.NextDeadline(time.Time{}); !ok || !d.Equal(aDeadline) {
		t.Fatalf("deadline %v %v, want a's %v: b's was read and could not be decided", d, ok, aDeadline)
	}
	// A read issued at a's deadline decides a; b has no deadline left
	// until a read decides it or it writes.
	tr.Observe(aDeadline, aDeadline.Add(time.Millisecond), []ondisk.Decoded{rec(0, "a", 2), rec(1, "b", 1)})
	if pe, _ := tr.Peer(0); pe.State != liveness.Dead {
		t.Errorf("a is %v after a read issued at its deadline, want dead", pe.State)
	}
	if pe, _ := tr.Peer(1); pe.State != liveness.Dead {
		t.Errorf("b is %v after a read issued after its deadline showed it valid and unchanged, want dead", pe.State)
	}
	if d, ok := tr.NextDeadline(time.Time{}); ok {
		t.Errorf("deadline %v with every host dead", d)
	}
}

// A late write of an older generation (a killed incarnation's "left", or a
// renewal, landing over its successor's record) is never taken as the
// slot's record: the host stays live in the newer generation. Its
// appearance counts as a change (it may hide the successor's writes made
// before it landed); the same stale record unchanged is evidence of
// silence, so a successor that died under it is still declared dead,
// host_dead after the stale record was first seen.
func TestOlderGenerationIsStale(t *testing.T) {
	tk := runSteps(t, []step{
		obs(0, sec(0.001), rec(0, "a", 5, 10)),
		obs(sec(2), sec(2.001), rec(0, "a", 6, 1)).events(
			other(liveness.NewIncarnation, 0, "a", 6, sec(2.001)),
			tr(0, "a", 6, unknown, live, sec(2.001), 0)),
		obs(sec(4), sec(4.001), rec(0, "a", 6, 2)).state(0, live),
		// a/5's timed-out "left" lands late.
		obs(sec(6), sec(6.001), left(0, "a", 5, 11)).events(
			other(liveness.Stale, 0, "a", 5, sec(6.001))).state(0, live),
		// Unchanged: silence of generation 6 from 6.001 s.
		obs(sec(8), sec(8.001), left(0, "a", 5, 11)).state(0, live),
		eval(sec(21.002)).events(tr(0, "a", 6, live, suspect, sec(21.002), sec(15.001))),
		obs(sec(33.001), sec(33.002), left(0, "a", 5, 11)).events(
			tr(0, "a", 6, suspect, dead, sec(33.002), sec(27))),
	})
	p, _ := tk.Peer(0)
	if p.Record.Generation != 6 || p.Record.State != ondisk.StateLive || !p.HaveStale || p.Stale.Generation != 5 {
		t.Fatalf("held record %+v stale %v %+v: want generation 6 live held, generation 5 stale", p.Record, p.HaveStale, p.Stale)
	}

	// The successor renews over the stale record: it is forgotten.
	tk = runSteps(t, []step{
		obs(0, sec(0.001), rec(0, "a", 6, 1)),
		obs(sec(2), sec(2.001), left(0, "a", 5, 11)).events(
			other(liveness.Stale, 0, "a", 5, sec(2.001)),
			tr(0, "a", 6, unknown, live, sec(2.001), 0)),
		obs(sec(4), sec(4.001), rec(0, "a", 6, 2)).state(0, live),
	})
	if p, _ = tk.Peer(0); p.HaveStale || p.Record.Sequence != 2 {
		t.Fatalf("after a renewal: stale %v, record %+v; want no stale, sequence 2", p.HaveStale, p.Record)
	}

	// A claim over a slot that read corrupt or zeroed starts again at
	// generation 1: it is a new incarnation, not a stale record.
	runSteps(t, []step{
		obs(0, sec(0.001), rec(0, "a", 6, 1)),
		obs(sec(2), sec(2.001), corrupt(0)).events(other(liveness.Corrupt, 0, "a", 6, sec(2.001))),
		obs(sec(4), sec(4.001), rec(0, "b", 1, 1)).events(
			other(liveness.NewIncarnation, 0, "b", 1, sec(4.001)),
			tr(0, "b", 1, unknown, live, sec(4.001), 0)),
	})
}

// GenerationSince is the return of the read that first showed the current
// generation: renewals of it keep it, a late write of an older generation
// does not move it, a new generation resets it (the lease takes a later
// generation as proof that its predecessor is gone only a quarantine after
// this).
func TestGenerationSince(t *testing.T) {
	tk := runSteps(t, []step{
		obs(0, sec(0.001), rec(0, "a", 5, 10)),
		obs(sec(2), sec(2.001), rec(0, "a", 5, 11)).events(
			tr(0, "a", 5, unknown, live, sec(2.001), 0)),
		obs(sec(4), sec(4.001), rec(0, "a", 6, 1)).events(
			other(liveness.NewIncarnation, 0, "a", 6, sec(4.001))),
		obs(sec(6), sec(6.001), rec(0, "a", 6, 2)).state(0, live),
		obs(sec(8), sec(8.001), left(0, "a", 5, 12)).events(
			other(liveness.Stale, 0, "a", 5, sec(8.001))).state(0, live),
		obs(sec(10), sec(10.001), rec(0, "a", 6, 3)).state(0, live),
	})
	p, _ := tk.Peer(0)
	if want := t0.Add(sec(4.001)); !p.GenerationSince.Equal(want) {
		t.Fatalf("GenerationSince %v, want %v (the read that first showed generation 6)", p.GenerationSince.Sub(t0), want.Sub(t0))
	}
}
