package join_test

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Two joiners race. Each one's first three actions (scan read, claim
// write, read-back, or whatever it does instead) are split into issue and
// completion: twelve steps, six per joiner, interleaved in every one of the
// C(12,6) = 924 orders. (In the last case the first joiner's claim write
// fails but lands, and it takes five actions: ten steps against six,
// C(16,6) = 8008 orders.) A read samples the region when it completes, a
// write lands when it completes. Each step happens 1 ms after the previous
// one, or at the action's NotBefore; so an order in which a claim write
// comes after the other joiner's JoinWait is one where the write missed
// its deadline (ErrDeadline), and an I/O spanning more than io_timeout
// fails. After the twelve steps the simulation runs on (members renew,
// losers retry) until both are done. Every order must satisfy the
// simulation's invariants: never two members in one slot or of one name,
// nobody else's write in a member's slot, both joiners done.
func TestRaceEveryOrder(t *testing.T) {
	type spec struct {
		name string
		m    byte
	}
	cases := []struct {
		name    string
		slots   int
		joiners [2]spec
		preset  func(*sim)
		// wantJoined is how many of the two must end joined.
		wantJoined int
		// aSteps is how many steps of the first joiner are ordered (6
		// if zero); failFirst makes its first claim write fail, having
		// landed.
		aSteps    int
		failFirst bool
	}{
		{name: "one free slot", slots: 1, joiners: [2]spec{{"a", 1}, {"b", 2}}, wantJoined: 1},
		{name: "two free slots", slots: 2, joiners: [2]spec{{"a", 1}, {"b", 2}}, wantJoined: 2},
		{name: "same name, one free slot", slots: 1, joiners: [2]spec{{"a", 1}, {"a", 2}}, wantJoined: -1},
		{name: "same name, two free slots", slots: 2, joiners: [2]spec{{"a", 1}, {"a", 2}}, wantJoined: -1},
		{name: "a's own unproven claim, and b", slots: 2, joiners: [2]spec{{"a", 1}, {"b", 2}}, wantJoined: 2,
			preset: func(s *sim) {
				s.preset(0, -time.Second, ok(slot(0, "a", 1, 1, 3, 1, ondisk.StateJoining)))
			}},
		{name: "another's left slot", slots: 1, joiners: [2]spec{{"a", 1}, {"b", 2}}, wantJoined: 1,
			preset: func(s *sim) {
				s.preset(0, -time.Hour, ok(slot(0, "z", 9, 9, 5, 40, ondisk.StateLeft)))
			}},
		// Before the fix, a's retry found its own claim ("joining",
		// this machine and boot) and took the fast path: it read back
		// at once, before b's claim, based on a read that saw the slot
		// free, had landed; both joined slot 0.
		{name: "a's claim fails but lands, one free slot", slots: 1, joiners: [2]spec{{"a", 1}, {"b", 2}}, wantJoined: 1,
			aSteps: 10, failFirst: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			aSteps := c.aSteps
			if aSteps == 0 {
				aSteps = 6
			}
			total := aSteps + 6
			orders, deadlines, joined := 0, 0, map[int]int{}
			for order := uint(0); order < 1<<total; order++ {
				if bits.OnesCount(order) != 6 {
					continue
				}
				orders++
				s := newSim(params, rand.New(rand.NewPCG(uint64(order), 7)), c.slots)
				s.tear, s.ioFail, s.slowIO, s.late = 0, 0, 0, 0
				if c.preset != nil {
					c.preset(s)
				}
				var hs [2]*simHost
				for i, sp := range c.joiners {
					cfg := config(sp.name, sp.m, sp.m)
					hs[i] = &simHost{id: i, name: sp.name, cfg: cfg, slot: -1, joiner: true, j: join.New(cfg, t0), origin: t0}
					s.hosts = append(s.hosts, hs[i])
				}
				clock := time.Duration(0)
				writes := 0
				for k := range total {
					h := hs[order>>k&1]
					if h.done {
						continue
					}
					a := h.j.Next()
					step := clock + time.Millisecond
					if !h.busy && a.Kind == join.Read {
						step = max(step, a.NotBefore.Sub(t0))
					}
					s.run(step)
					s.now, clock = step, step
					switch {
					case !h.busy && a.Kind == join.Write && t0.Add(step).After(a.Deadline):
						deadlines++
						h.j.WriteDone(t0.Add(step), t0.Add(step), join.ErrDeadline)
					case !h.busy:
						h.busy, h.op, h.issued = true, a.Kind, step
						continue
					case step-h.issued > s.p.IOTimeout:
						h.busy = false
						if h.op == join.Read {
							h.j.ReadDone(t0.Add(h.issued), t0.Add(step), nil, fmt.Errorf("timed out"))
						} else {
							h.j.WriteDone(t0.Add(h.issued), t0.Add(step), fmt.Errorf("timed out"))
						}
					case h.op == join.Read:
						h.busy = false
						view := make([]ondisk.Decoded, c.slots)
						for i := range view {
							view[i] = s.content(i, step)
						}
						h.j.ReadDone(t0.Add(h.issued), t0.Add(step), view, nil)
					default:
						h.busy = false
						s.land(h, a.Slot, a.Record)
						var err error
						if writes++; c.failFirst && h == hs[0] && writes == 1 {
							err = fmt.Errorf("EIO, having landed")
						}
						h.j.WriteDone(t0.Add(h.issued), t0.Add(step), err)
					}
					switch a := h.j.Next(); a.Kind {
					case join.Joined:
						s.joined(h, a)
					case join.Failed:
						s.failed(h, a.Err)
					}
				}
				// The rest of the race runs on its own.
				for _, h := range hs {
					switch {
					case h.done:
					case h.busy:
						h.busy = false
						s.at(clock+time.Millisecond, func() { h.busy = true; s.complete(h) })
						if h.op == join.Write {
							a := h.j.Next()
							s.at(clock+time.Millisecond, func() { s.land(h, a.Slot, a.Record) })
						}
					default:
						s.schedule(h)
					}
				}
				s.run(100 * s.p.HostDead)
				s.check()
				n := 0
				for _, h := range hs {
					if h.joined {
						n++
					}
				}
				joined[n]++
				if c.wantJoined >= 0 && n != c.wantJoined {
					s.fail("%d joined, want %d", n, c.wantJoined)
				}
				for _, e := range s.errs {
					t.Errorf("order %012b: %s", order, e)
				}
				if t.Failed() {
					t.FailNow()
				}
			}
			t.Logf("%d orders: joined (how many: orders) %v; %d claim writes past their deadline", orders, joined, deadlines)
		})
	}
}
