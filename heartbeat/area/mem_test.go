package area_test

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

func memArea(t *testing.T) (*area.Mem, ondisk.Header) {
	t.Helper()
	h, err := ondisk.NewHeader(ondisk.NewUUID(), 512, 8, fast(t), "fast", created)
	if err != nil {
		t.Fatal(err)
	}
	return area.NewMem(h), h
}

func slotBytes(m *area.Mem, h ondisk.Header, i int) []byte {
	off := h.SlotOffset(i)
	return m.Bytes()[off : off+int64(h.SectorSize)]
}

func TestMemRoundTrip(t *testing.T) {
	m, h := memArea(t)
	b := m.Bytes()
	if len(b) != int(h.AreaSize) || !bytes.Equal(b[:ondisk.RecordSize], h.Encode()) || !ondisk.IsZero(b[ondisk.RecordSize:]) {
		t.Fatal("a new Mem is not a freshly formatted area")
	}
	a, c := m.Handle("a"), m.Handle("c")
	if a.Header() != h {
		t.Error("Handle.Header differs")
	}
	rec := record(h, 2, "a", 1)
	if err := a.WriteSlot(2, rec); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, h.SlotsLen())
	if err := c.ReadSlots(raw); err != nil {
		t.Fatal(err)
	}
	d := ondisk.DecodeSlots(raw, h)
	if d[2].Status != ondisk.SlotOK || d[2].Slot.HostName != "a" {
		t.Errorf("slot 2 read by another host: %v %q", d[2].Status, d[2].Slot.HostName)
	}
	if err := a.WriteSlot(int(h.SlotCount), rec); err == nil {
		t.Error("WriteSlot past the last slot succeeded")
	}
	if err := a.ReadSlots(raw[1:]); err == nil {
		t.Error("ReadSlots into a short buffer succeeded")
	}
	// Poke corrupts; readers see it.
	m.Poke(int(h.SlotOffset(2))+100, []byte{0xFF})
	if err := c.ReadSlots(raw); err != nil {
		t.Fatal(err)
	}
	if d := ondisk.DecodeSlots(raw, h); d[2].Status != ondisk.SlotCorrupt {
		t.Errorf("poked slot: %v, want corrupt", d[2].Status)
	}
}

// The hook sees every I/O, labelled with its host.
func TestMemFaultHookSees(t *testing.T) {
	m, h := memArea(t)
	var mu sync.Mutex
	var ops []area.Op
	m.SetFault(func(op area.Op) area.Fault {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
		return area.Fault{}
	})
	if err := m.Handle("h1").WriteSlot(5, record(h, 5, "h1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := m.Handle("h2").ReadSlots(make([]byte, h.SlotsLen())); err != nil {
		t.Fatal(err)
	}
	m.SetFault(nil)
	if err := m.Handle("h3").ReadSlots(make([]byte, h.SlotsLen())); err != nil {
		t.Fatal(err)
	}
	want := []area.Op{{Host: "h1", Write: true, Slot: 5}, {Host: "h2", Slot: -1}}
	if len(ops) != len(want) || ops[0] != want[0] || ops[1] != want[1] {
		t.Errorf("hook saw %+v, want %+v (and nothing after SetFault(nil))", ops, want)
	}
}

func TestMemDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, h := memArea(t)
		const delay = 300 * time.Millisecond // below io_timeout
		m.SetFault(func(op area.Op) area.Fault { return area.Fault{Delay: delay} })
		hd := m.Handle("a")
		rec := record(h, 1, "a", 1)

		start := time.Now()
		done := make(chan error, 1)
		go func() { done <- hd.WriteSlot(1, rec) }()
		synctest.Wait()
		// Under way: not yet returned, not yet landed.
		select {
		case err := <-done:
			t.Fatalf("the delayed write returned at once: %v", err)
		default:
		}
		if !ondisk.IsZero(slotBytes(m, h, 1)) {
			t.Error("the delayed write landed before its delay")
		}
		if err := <-done; err != nil {
			t.Fatalf("delayed write: %v", err)
		}
		if took := time.Since(start); took != delay {
			t.Errorf("the write took %v, want exactly %v", took, delay)
		}
		if !bytes.Equal(slotBytes(m, h, 1)[:ondisk.RecordSize], rec) {
			t.Error("the delayed write did not land")
		}

		start = time.Now()
		raw := make([]byte, h.SlotsLen())
		if err := hd.ReadSlots(raw); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took != delay {
			t.Errorf("the read took %v, want exactly %v", took, delay)
		}
		if !bytes.Equal(raw[h.SectorSize:int(h.SectorSize)+ondisk.RecordSize], rec) {
			t.Error("the delayed read did not return the slot")
		}
	})
}

func TestMemError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, h := memArea(t)
		eio := errors.New("EIO")
		m.SetFault(func(op area.Op) area.Fault { return area.Fault{Delay: 100 * time.Millisecond, Err: eio} })
		hd := m.Handle("a")
		before := m.Bytes()

		start := time.Now()
		if err := hd.WriteSlot(1, record(h, 1, "a", 1)); !errors.Is(err, eio) {
			t.Errorf("WriteSlot: %v, want the injected error", err)
		}
		if took := time.Since(start); took != 100*time.Millisecond {
			t.Errorf("the failed write returned after %v, want its delay", took)
		}
		raw := bytes.Repeat([]byte{0xEE}, h.SlotsLen())
		if err := hd.ReadSlots(raw); !errors.Is(err, eio) {
			t.Errorf("ReadSlots: %v, want the injected error", err)
		}
		if !bytes.Equal(raw, bytes.Repeat([]byte{0xEE}, h.SlotsLen())) {
			t.Error("the failed read wrote into the buffer")
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if !bytes.Equal(before, m.Bytes()) {
			t.Error("the failed write took effect")
		}
	})
}

func TestMemTimeoutLateWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, h := memArea(t)
		io := h.Timing.IOTimeout
		late := 2 * time.Second
		delay := io + late
		m.SetFault(func(op area.Op) area.Fault {
			if op.Write {
				return area.Fault{Delay: delay}
			}
			return area.Fault{}
		})
		hd := m.Handle("a")
		rec := record(h, 1, "a", 1)

		start := time.Now()
		err := hd.WriteSlot(1, rec)
		if !errors.Is(err, area.ErrTimeout) || !errors.Is(err, directio.ErrTimeout) {
			t.Fatalf("WriteSlot delayed past io_timeout: %v, want ErrTimeout (the same as directio's)", err)
		}
		if took := time.Since(start); took != io {
			t.Errorf("the timed-out write returned after %v, want io_timeout %v", took, io)
		}
		// Stuck, not lost: it lands when its delay is over, and not
		// before.
		time.Sleep(late - time.Nanosecond)
		synctest.Wait()
		if !ondisk.IsZero(slotBytes(m, h, 1)) {
			t.Fatalf("the late write landed %v early", time.Nanosecond)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if !bytes.Equal(slotBytes(m, h, 1)[:ondisk.RecordSize], rec) {
			t.Fatalf("the late write had not landed %v after it was issued", time.Since(start))
		}
	})
}

func TestMemTimeoutRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, h := memArea(t)
		io := h.Timing.IOTimeout
		m.SetFault(func(op area.Op) area.Fault { return area.Fault{Delay: 10 * io} })
		raw := bytes.Repeat([]byte{0xEE}, h.SlotsLen())
		start := time.Now()
		if err := m.Handle("a").ReadSlots(raw); !errors.Is(err, area.ErrTimeout) {
			t.Fatalf("ReadSlots delayed past io_timeout: %v, want ErrTimeout", err)
		}
		if took := time.Since(start); took != io {
			t.Errorf("returned after %v, want %v", took, io)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if !bytes.Equal(raw, bytes.Repeat([]byte{0xEE}, h.SlotsLen())) {
			t.Error("a timed-out read wrote into the buffer")
		}
	})
}

// A write that is both delayed past io_timeout and failed is lost, not
// late.
func TestMemTimeoutFailedWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, h := memArea(t)
		io := h.Timing.IOTimeout
		m.SetFault(func(op area.Op) area.Fault {
			return area.Fault{Delay: 2 * io, Err: errors.New("EIO")}
		})
		if err := m.Handle("a").WriteSlot(1, record(h, 1, "a", 1)); !errors.Is(err, area.ErrTimeout) {
			t.Fatalf("WriteSlot: %v, want ErrTimeout", err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if !ondisk.IsZero(slotBytes(m, h, 1)) {
			t.Error("a failed write landed late")
		}
	})
}
