package lease_test

import (
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

var testPool = ondisk.UUID{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x47, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01}

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func profile(t testing.TB, name string) timing.Params {
	t.Helper()
	p, err := timing.Profile(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func header(t testing.TB, slots int, p timing.Params) ondisk.Header {
	t.Helper()
	h, err := ondisk.NewHeader(testPool, 512, slots, p, "test", t0)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func owner(slot int, gen uint64) ondisk.Owner {
	return ondisk.Owner{Slot: uint32(slot), Generation: gen, Name: hostName(slot)}
}

func hostName(slot int) string { return string(rune('a'+slot)) + "-host" }

// host is one lease over a shared MemStorage, driven by hand with explicit
// times: every I/O takes effect at once and returns lat later.
type host struct {
	t   testing.TB
	l   *lease.Lease
	d   *lease.Driver
	now time.Time
	lat time.Duration
	ev  []lease.Event
}

func newHost(t testing.TB, st lease.Storage, slot int, gen uint64, now time.Time) *host {
	t.Helper()
	hd := st.Header()
	l, err := lease.New(lease.Config{Self: owner(slot, gen), Pool: hd.PoolUUID, Slots: int(hd.SlotCount), Timing: hd.Timing,
		FirstRenewalBy: now.Add(hd.Timing.HostDead - hd.Timing.IOTimeout - hd.Timing.Margin()),
		Jitter:         func(d time.Duration) time.Duration { return d / 2 }})
	if err != nil {
		t.Fatal(err)
	}
	h := &host{t: t, l: l, now: now, lat: time.Millisecond}
	h.d = lease.NewDriver(l, st, func() time.Time { return h.now })
	h.d.Wall = func() time.Time { return t0 }
	return h
}

// renew reports a successful renewal issued now.
func (h *host) renew() { h.l.Renewed(h.now, h.now.Add(h.lat)) }

// view sets a liveness view: every slot given is live unless states says
// otherwise.
func (h *host) view(states map[int]liveness.State, gens map[int]uint64) {
	v := lease.Static{}
	for s, st := range states {
		g := gens[s]
		if g == 0 {
			g = 1
		}
		v[s] = lease.Peer{State: st, Generation: g, Name: hostName(s)}
	}
	h.l.SetView(h.now, v)
}

// step performs the next action if it is due by until; it returns false
// if none is (or the lease asks for nothing).
func (h *host) step(until time.Time) bool {
	a := h.l.Next()
	if a.Kind == lease.None || a.NotBefore.After(until) {
		return false
	}
	if a.NotBefore.After(h.now) {
		h.now = a.NotBefore
	}
	d := h.d
	orig := d.Now
	issued := h.now
	d.Now = func() time.Time { return h.now }
	h.now = issued
	// The driver reads Now before and after the I/O: make the second
	// call lat later.
	calls := 0
	d.Now = func() time.Time {
		calls++
		if calls == 2 {
			h.now = issued.Add(h.lat)
		}
		return h.now
	}
	d.Do(a)
	d.Now = orig
	h.ev = append(h.ev, h.l.Events()...)
	return true
}

// run steps until the lease asks for nothing due by until, at most n steps.
func (h *host) run(until time.Time, n int) int {
	i := 0
	for ; i < n && h.step(until); i++ {
	}
	return i
}

func (h *host) events(k lease.EventKind) []lease.Event {
	var out []lease.Event
	for _, e := range h.ev {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}
