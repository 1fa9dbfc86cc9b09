package lease_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// BenchmarkFreeAcquisitionIO counts the I/O of acquiring a free lease on
// an area of 64 slots of 512 bytes: the first acquisition of an
// incarnation (which reads the ballots before phase 1, to learn its own
// block), and a later one (a host that released and takes it again, or
// took part in an earlier ballot).
func BenchmarkFreeAcquisitionIO(b *testing.B) {
	p := mustProfile("default")
	for _, first := range []bool{true, false} {
		name := "later"
		if first {
			name = "first"
		}
		b.Run(name, func(b *testing.B) {
			var total lease.IOStats
			n := 0
			for b.Loop() {
				st := lease.NewMemStorage(header(b, 64, p))
				h := newHost(b, st, 5, 1, t0)
				h.renew()
				h.view(allLive(5), nil)
				if !first {
					acquireAloneB(b, h)
					h.l.Release(h.now)
					h.run(h.now.Add(time.Second), 5)
				}
				before := st.Stats()
				acquireAloneB(b, h)
				total = addStats(total, st.Stats().Sub(before))
				n++
			}
			reportIO(b, total, n)
		})
	}
}

// BenchmarkContendedAcquisitionIO: N hosts ask for a free lease at the same
// moment (TryAcquire). Counted: all I/O of all hosts until every one has
// acquired or learnt that another did, per acquisition. "timed": every
// I/O takes 1 ms and hosts act in time order, each waiting out its
// backoff; "adversarial": the next host to act is drawn at random, backoff
// ignored (dueling proposers, the worst case for Paxos).
func BenchmarkContendedAcquisitionIO(b *testing.B) {
	p := mustProfile("default")
	for _, n := range []int{2, 4, 8, 12} {
		for _, timed := range []bool{true, false} {
			mode := "adversarial"
			if timed {
				mode = "timed"
			}
			b.Run(fmt.Sprintf("hosts=%d/%s", n, mode), func(b *testing.B) {
				var total lease.IOStats
				runs, ballots := 0, 0
				var slowest time.Duration
				seed := uint64(0)
				for b.Loop() {
					seed++
					r := rand.New(rand.NewPCG(seed, 7))
					st := lease.NewMemStorage(header(b, 64, p))
					var hs []*host
					slots := make([]int, n)
					for i := range slots {
						slots[i] = i
					}
					for i := 0; i < n; i++ {
						h := newHost(b, st, i, 1, t0)
						h.renew()
						h.view(allLive(slots...), nil)
						h.l.TryAcquire(h.now)
						hs = append(hs, h)
					}
					for steps := 0; ; steps++ {
						if steps > 10000 {
							b.Fatal("no outcome after 10000 I/Os")
						}
						var pending []*host
						for _, h := range hs {
							if _, ok := h.l.Master(h.now); !ok && h.l.Role() != lease.Follower {
								pending = append(pending, h)
							}
						}
						if len(pending) == 0 {
							break
						}
						h := pending[r.IntN(len(pending))]
						if timed {
							// The host whose next I/O is due first.
							r.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
							for _, x := range pending {
								if due(x).Before(due(h)) {
									h = x
								}
							}
						}
						h.step(h.now.Add(time.Hour))
						h.renew()
					}
					for _, h := range hs {
						ballots += h.l.Status().Attempts
						if d := h.now.Sub(t0); d > slowest {
							slowest = d
						}
					}
					total = addStats(total, st.Stats())
					runs++
				}
				reportIO(b, total, runs)
				b.ReportMetric(float64(ballots)/float64(runs), "ballots/acquisition")
				if timed {
					b.ReportMetric(float64(slowest)/1e6, "ms-max-until-all-know")
				}
			})
		}
	}
}

func due(h *host) time.Time {
	if nb := h.l.Next().NotBefore; nb.After(h.now) {
		return nb
	}
	return h.now
}

func addStats(a, b lease.IOStats) lease.IOStats {
	return lease.IOStats{Reads: a.Reads + b.Reads, Writes: a.Writes + b.Writes,
		BytesRead: a.BytesRead + b.BytesRead, BytesWritten: a.BytesWritten + b.BytesWritten}
}

func reportIO(b *testing.B, s lease.IOStats, n int) {
	if n == 0 {
		return
	}
	f := float64(n)
	b.ReportMetric(float64(s.IOs())/f, "ios/acquisition")
	b.ReportMetric(float64(s.Reads)/f, "reads/acquisition")
	b.ReportMetric(float64(s.Writes)/f, "writes/acquisition")
	b.ReportMetric(float64(s.BytesRead+s.BytesWritten)/f, "bytes/acquisition")
}

func acquireAloneB(b *testing.B, h *host) {
	h.l.Acquire(h.now)
	for i := 0; i < 30; i++ {
		if _, ok := h.l.Master(h.now); ok {
			return
		}
		h.step(h.now.Add(time.Hour))
	}
	b.Fatalf("not master: %+v", h.l.Status())
}

func mustProfile(name string) timing.Params {
	p, err := timing.Profile(name)
	if err != nil {
		panic(err)
	}
	return p
}

// realArea formats an area in a file of the test's temporary directory
// and opens it for O_DIRECT|O_DSYNC I/O, once per host (each host has its
// own device, as separate processes would).
func realArea(tb testing.TB, slots, hosts int) ([]*area.Area, ondisk.Header) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), ".server_pool_hb")
	h, err := area.Format(path, 0, area.FormatOptions{SectorSize: 512, Create: true, Build: func(ss int) (ondisk.Header, error) {
		return ondisk.NewHeader(ondisk.NewUUID(), ss, slots, mustProfile("default"), "default", time.Now())
	}})
	if err != nil {
		tb.Fatal(err)
	}
	var as []*area.Area
	for i := 0; i < hosts; i++ {
		a, err := area.Open(path, 0, directio.ReadWrite)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { a.Close() })
		as = append(as, a)
	}
	return as, h
}

// realLease makes a lease for slot on a real area, driven with the real
// clock; its renewal is reported as just done.
func realLease(tb testing.TB, a *area.Area, slot int, view lease.View) (*lease.Lease, *lease.Driver) {
	tb.Helper()
	h := a.Header()
	now := time.Now()
	l, err := lease.New(lease.Config{Self: ondisk.Owner{Slot: uint32(slot), Generation: 1, Name: hostName(slot)},
		Pool: h.PoolUUID, Slots: int(h.SlotCount), Timing: h.Timing,
		FirstRenewalBy: now.Add(h.Timing.HostDead - h.Timing.IOTimeout - h.Timing.Margin())})
	if err != nil {
		tb.Fatal(err)
	}
	l.Renewed(now, now)
	l.SetView(now, view)
	return l, lease.NewDriver(l, lease.NewAreaStorage(a), time.Now)
}

// drive performs l's actions, sleeping until each is due, until stop says
// so or limit passes.
func drive(l *lease.Lease, d *lease.Driver, limit time.Duration, stop func() bool) error {
	end := time.Now().Add(limit)
	for !stop() {
		if time.Now().After(end) {
			return fmt.Errorf("no outcome after %v: %+v", limit, l.Status())
		}
		a := l.Next()
		if a.Kind == lease.None {
			return fmt.Errorf("the lease asks for nothing: %+v", l.Status())
		}
		if w := time.Until(a.NotBefore); w > 0 {
			time.Sleep(w)
		}
		d.Do(a)
	}
	return nil
}

// BenchmarkFreeAcquisitionFile measures acquiring a free lease on a real
// file through O_DIRECT|O_DSYNC (64 slots of 512 bytes): the first
// acquisition of an incarnation, then release and acquire again. The
// median is reported as ms/acquisition-median.
func BenchmarkFreeAcquisitionFile(b *testing.B) {
	as, _ := realArea(b, 64, 1)
	view := lease.Static{3: {State: liveness.Live, Generation: 1, Name: hostName(3)}}
	for _, first := range []bool{true, false} {
		name := "later"
		if first {
			name = "first"
		}
		b.Run(name, func(b *testing.B) {
			var ds []time.Duration
			var l *lease.Lease
			var d *lease.Driver
			if !first {
				l, d = realLease(b, as[0], 3, view)
			}
			for b.Loop() {
				if first {
					// A new incarnation each time, on a fresh
					// leader record: release what the last one took.
					l, d = realLease(b, as[0], 3, view)
				}
				start := time.Now()
				l.Acquire(start)
				if err := drive(l, d, 10*time.Second, func() bool { _, ok := l.Master(time.Now()); return ok }); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
				l.Renewed(time.Now(), time.Now())
				l.Release(time.Now())
				if err := drive(l, d, 10*time.Second, func() bool { return l.Role() == lease.Follower }); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			b.ReportMetric(float64(ds[len(ds)/2])/1e6, "ms/acquisition-median")
			b.ReportMetric(float64(ds[len(ds)-1])/1e6, "ms/acquisition-max")
		})
	}
}

// TestRealFileRace: hosts on separate O_DIRECT devices of one real file,
// each on its own goroutine with the real clock, all TryAcquire a free
// lease at once: exactly one acquires epoch 1, and the leader record names
// it.
func TestRealFileRace(t *testing.T) {
	for round := 0; round < 5; round++ {
		const n = 4
		as, _ := realArea(t, 8, n)
		view := lease.Static{}
		for i := 0; i < n; i++ {
			view[i] = lease.Peer{State: liveness.Live, Generation: 1, Name: hostName(i)}
		}
		var wg sync.WaitGroup
		won := make([]bool, n)
		errs := make([]error, n)
		var ls []*lease.Lease
		var ds []*lease.Driver
		for i := 0; i < n; i++ {
			l, d := realLease(t, as[i], i, view)
			ls, ds = append(ls, l), append(ds, d)
		}
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				l := ls[i]
				l.TryAcquire(time.Now())
				errs[i] = drive(l, ds[i], 20*time.Second, func() bool {
					_, ok := l.Master(time.Now())
					return ok || l.Role() == lease.Follower
				})
				_, won[i] = l.Master(time.Now())
			}(i)
		}
		close(start)
		wg.Wait()
		winner := -1
		for i := 0; i < n; i++ {
			if errs[i] != nil {
				t.Fatalf("host %d: %v", i, errs[i])
			}
			if won[i] {
				if winner >= 0 {
					t.Fatalf("hosts %d and %d both acquired", winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("nobody acquired")
		}
		buf := make([]byte, 512)
		if err := lease.NewAreaStorage(as[0]).ReadLeader(buf); err != nil {
			t.Fatal(err)
		}
		d := ondisk.DecodeLeaderSector(buf, as[0].Header().PoolUUID)
		if d.Status != ondisk.RecordOK || d.Leader.Epoch != 1 || int(d.Leader.Owner.Slot) != winner {
			t.Fatalf("leader record %+v, winner %d", d, winner)
		}
	}
}
