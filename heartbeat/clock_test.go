package heartbeat_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/join"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/internal/safeclock"
	"github.com/rs/zerolog"
)

// clockedStorage records, on the raw clock, when each I/O is issued.
type clockedStorage struct {
	heartbeat.Storage
	clk    safeclock.Clock
	mu     sync.Mutex
	events []ioEvent
}

type ioEvent struct {
	write       bool
	issued, end time.Time
}

func (s *clockedStorage) ReadSlots(dst []byte) error {
	issued := s.clk.Now()
	err := s.Storage.ReadSlots(dst)
	s.mu.Lock()
	s.events = append(s.events, ioEvent{false, issued, s.clk.Now()})
	s.mu.Unlock()
	return err
}

func (s *clockedStorage) WriteSlot(i int, rec []byte) error {
	issued := s.clk.Now()
	err := s.Storage.WriteSlot(i, rec)
	s.mu.Lock()
	s.events = append(s.events, ioEvent{true, issued, s.clk.Now()})
	s.mu.Unlock()
	return err
}

// With CLOCK_MONOTONIC (Go's timers) slewed 10 % fast, the kernel's
// maximum, a join still waits JoinWait on the raw clock between its claim
// and the read-back: the member waits with safeclock, not on Go timers.
func TestJoinWaitOnRawClockWithFastSlew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memPool(t, 4)
		clk := safeclock.NewSlewed(safeclock.FromNanos(1e12), +100_000)
		st := &clockedStorage{Storage: mem.Handle("a"), clk: clk}
		m, err := heartbeat.New(st, heartbeat.Config{
			Self:  join.Identity{Name: "a", MachineID: ondisk.UUID{9}, Agent: "test"},
			Log:   zerolog.New(io.Discard),
			Clock: clk,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Join(context.Background()); err != nil {
			t.Fatal(err)
		}
		wait := m.Header().Timing.JoinWait()
		st.mu.Lock()
		defer st.mu.Unlock()
		var claim *ioEvent
		for i := range st.events {
			e := &st.events[i]
			if e.write {
				claim = e
				continue
			}
			if claim != nil {
				if got := e.issued.Sub(claim.end); got < wait {
					t.Fatalf("read-back issued %v after the claim returned on the raw clock, want at least JoinWait %v", got, wait)
				}
				return
			}
		}
		t.Fatalf("no claim followed by a read-back in %d I/Os", len(st.events))
	})
}
