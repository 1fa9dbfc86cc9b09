package area

import (
	"fmt"
	"sync"
	"time"

	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Mem is an in-memory heartbeat area shared by the hosts of a simulation.
// It behaves like Area, including the timeout: an I/O whose injected delay
// exceeds io_timeout fails with ErrTimeout after io_timeout, and a write
// that timed out still lands when its delay is over, as a write stuck in
// an NFS client can. Tests use it with testing/synctest, where the delays
// run on the bubble's fake clock.
//
// Mem is real code, not a test helper: issue-level simulations of the
// master lease and the restart engine build on it.
type Mem struct {
	mu     sync.Mutex
	header ondisk.Header
	data   []byte // the whole area

	// fault, if set, is consulted before every I/O of every host.
	fault func(op Op) Fault
}

// SetFault installs a hook consulted before every I/O of every host (nil
// removes it).
func (m *Mem) SetFault(f func(op Op) Fault) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

// Op describes one I/O for a fault hook.
type Op struct {
	Host  string // set by the Handle that issued it
	Write bool
	Slot  int // for writes; -1 for a read of all slots
}

// Fault is what happens to one I/O.
type Fault struct {
	Delay time.Duration // before the I/O takes effect and returns
	Err   error         // returned after Delay, and the I/O does not take effect
}

// ErrTimeout is the error of an I/O that took longer than io_timeout. It is
// directio.ErrTimeout, so that code written against a real Area tests for
// the same error in a simulation.
var ErrTimeout = directio.ErrTimeout

// NewMem makes a zeroed area with the given header.
func NewMem(h ondisk.Header) *Mem {
	m := &Mem{header: h, data: make([]byte, h.AreaSize)}
	copy(m.data, h.Encode())
	return m
}

// Handle returns a view of the area for one host, which labels its I/O.
func (m *Mem) Handle(host string) *MemHandle { return &MemHandle{mem: m, host: host} }

// Bytes returns a copy of the area.
func (m *Mem) Bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.data...)
}

// Poke overwrites bytes of the area directly (to inject corruption).
func (m *Mem) Poke(off int, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	copy(m.data[off:], b)
}

// MemHandle is one host's view of a Mem.
type MemHandle struct {
	mem  *Mem
	host string
}

// Header is the area's header.
func (h *MemHandle) Header() ondisk.Header { return h.mem.header }

// ReadSlots copies the slot region into dst.
func (h *MemHandle) ReadSlots(dst []byte) error {
	m := h.mem
	if len(dst) != m.header.SlotsLen() {
		return fmt.Errorf("ReadSlots: buffer of %d bytes, slot region is %d", len(dst), m.header.SlotsLen())
	}
	return h.do(Op{Host: h.host, Slot: -1}, func() {
		m.mu.Lock()
		copy(dst, m.data[m.header.SlotsOffset:])
		m.mu.Unlock()
	}, false)
}

// WriteSlot writes one record into its sector.
func (h *MemHandle) WriteSlot(index int, rec []byte) error {
	m := h.mem
	if index < 0 || index >= int(m.header.SlotCount) {
		return fmt.Errorf("WriteSlot: slot %d out of range", index)
	}
	sector := make([]byte, m.header.SectorSize)
	copy(sector, rec)
	return h.do(Op{Host: h.host, Write: true, Slot: index}, func() {
		m.mu.Lock()
		copy(m.data[m.header.SlotOffset(index):], sector)
		m.mu.Unlock()
	}, true)
}

func (h *MemHandle) do(op Op, apply func(), write bool) error {
	var f Fault
	h.mem.mu.Lock()
	hook := h.mem.fault
	h.mem.mu.Unlock()
	if hook != nil {
		f = hook(op)
	}
	timeout := h.mem.header.Timing.IOTimeout
	if f.Delay > timeout {
		if write && f.Err == nil {
			// The write is stuck, not lost: it lands later.
			time.AfterFunc(f.Delay, apply)
		}
		time.Sleep(timeout)
		return fmt.Errorf("%s of slot %d by %s: %w after %v", opName(write), op.Slot, op.Host, ErrTimeout, timeout)
	}
	if f.Delay > 0 {
		time.Sleep(f.Delay)
	}
	if f.Err != nil {
		return f.Err
	}
	apply()
	return nil
}

func opName(write bool) string {
	if write {
		return "write"
	}
	return "read"
}
