package lease

import (
	"fmt"
	"sync"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Storage is what the lease's driver needs of the heartbeat area: the
// leader sector and the ballot region. *AreaStorage implements it on a real
// file or device, *MemStorage in memory.
type Storage interface {
	Header() ondisk.Header
	// ReadLeader reads the leader sector (SectorSize bytes) into dst.
	ReadLeader(dst []byte) error
	// WriteLeader writes one encoded record into the leader sector.
	WriteLeader(rec []byte) error
	// ReadBallots reads the whole ballot region in one I/O into dst.
	ReadBallots(dst []byte) error
	// WriteBallot writes one encoded record into slot's ballot block.
	WriteBallot(slot int, rec []byte) error
}

// AreaStorage reads and writes the lease's sectors of an area opened with
// heartbeat/area, through its O_DIRECT device, each I/O bounded by the
// pool's io_timeout. The device does one I/O at a time: an I/O issued while
// another is under way (or stuck after a timeout) fails at once with
// directio.ErrBusy, which keeps this host's writes in order. So either
// drive the lease from the goroutine that does the heartbeat's I/O on the
// same area (between its rounds), or give the lease an area of its own
// (area.Open again): the lease itself waits LateWrite after a write of its
// own that timed out.
type AreaStorage struct {
	a      *area.Area
	h      ondisk.Header
	sector []byte
}

// NewAreaStorage adapts an open area.
func NewAreaStorage(a *area.Area) *AreaStorage {
	h := a.Header()
	return &AreaStorage{a: a, h: h, sector: make([]byte, h.SectorSize)}
}

// Header is the area's header.
func (s *AreaStorage) Header() ondisk.Header { return s.h }

// ReadLeader reads the leader sector.
func (s *AreaStorage) ReadLeader(dst []byte) error {
	if len(dst) != int(s.h.SectorSize) {
		return fmt.Errorf("ReadLeader: buffer of %d bytes, sector is %d", len(dst), s.h.SectorSize)
	}
	return s.a.Device().ReadAt(dst, int64(s.h.LeaderOffset), s.h.Timing.IOTimeout)
}

// WriteLeader writes the leader record; the rest of the sector is zero.
func (s *AreaStorage) WriteLeader(rec []byte) error {
	clear(s.sector)
	copy(s.sector, rec)
	return s.a.Device().WriteAt(s.sector, int64(s.h.LeaderOffset), s.h.Timing.IOTimeout)
}

// ReadBallots reads the ballot region.
func (s *AreaStorage) ReadBallots(dst []byte) error {
	if len(dst) != s.h.BallotsLen() {
		return fmt.Errorf("ReadBallots: buffer of %d bytes, ballot region is %d", len(dst), s.h.BallotsLen())
	}
	return s.a.Device().ReadAt(dst, int64(s.h.BallotOffset), s.h.Timing.IOTimeout)
}

// WriteBallot writes slot's ballot block; the rest of the sector is zero.
func (s *AreaStorage) WriteBallot(slot int, rec []byte) error {
	if slot < 0 || slot >= int(s.h.SlotCount) {
		return fmt.Errorf("WriteBallot: slot %d out of range (0..%d)", slot, s.h.SlotCount-1)
	}
	clear(s.sector)
	copy(s.sector, rec)
	return s.a.Device().WriteAt(s.sector, s.h.BallotOffsetOf(slot), s.h.Timing.IOTimeout)
}

// MemStorage is an in-memory leader sector and ballot region shared by the
// hosts of a test, with I/O counters and an optional fault hook. Every I/O
// takes effect at once (the randomized simulation in this package's tests
// models delays, reordering and late writes itself).
type MemStorage struct {
	mu      sync.Mutex
	h       ondisk.Header
	leader  []byte
	ballots []byte
	stats   IOStats
	fault   func(op MemOp) error
}

// MemOp describes one I/O for a fault hook.
type MemOp struct {
	Write  bool
	Leader bool // the leader sector; otherwise the ballot region or a block
	Slot   int  // for ballot writes
}

// IOStats counts I/O.
type IOStats struct {
	Reads, Writes           int
	BytesRead, BytesWritten int64
}

// IOs is Reads + Writes.
func (s IOStats) IOs() int { return s.Reads + s.Writes }

// Sub is s − o.
func (s IOStats) Sub(o IOStats) IOStats {
	return IOStats{s.Reads - o.Reads, s.Writes - o.Writes, s.BytesRead - o.BytesRead, s.BytesWritten - o.BytesWritten}
}

// NewMemStorage makes zeroed lease sectors for an area with header h.
func NewMemStorage(h ondisk.Header) *MemStorage {
	return &MemStorage{h: h, leader: make([]byte, h.SectorSize), ballots: make([]byte, h.BallotsLen())}
}

// SetFault installs a hook consulted before every I/O; a non-nil error
// fails the I/O, which then does not take effect.
func (m *MemStorage) SetFault(f func(MemOp) error) {
	m.mu.Lock()
	m.fault = f
	m.mu.Unlock()
}

// Stats returns the I/O counted so far.
func (m *MemStorage) Stats() IOStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Header is the area's header.
func (m *MemStorage) Header() ondisk.Header { return m.h }

func (m *MemStorage) do(op MemOp, n int, f func()) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if op.Write {
		m.stats.Writes++
		m.stats.BytesWritten += int64(n)
	} else {
		m.stats.Reads++
		m.stats.BytesRead += int64(n)
	}
	if m.fault != nil {
		if err := m.fault(op); err != nil {
			return err
		}
	}
	f()
	return nil
}

// ReadLeader copies the leader sector.
func (m *MemStorage) ReadLeader(dst []byte) error {
	if len(dst) != len(m.leader) {
		return fmt.Errorf("ReadLeader: buffer of %d bytes, sector is %d", len(dst), len(m.leader))
	}
	return m.do(MemOp{Leader: true}, len(dst), func() { copy(dst, m.leader) })
}

// WriteLeader writes the leader sector.
func (m *MemStorage) WriteLeader(rec []byte) error {
	return m.do(MemOp{Write: true, Leader: true}, len(m.leader), func() {
		clear(m.leader)
		copy(m.leader, rec)
	})
}

// ReadBallots copies the ballot region.
func (m *MemStorage) ReadBallots(dst []byte) error {
	if len(dst) != len(m.ballots) {
		return fmt.Errorf("ReadBallots: buffer of %d bytes, ballot region is %d", len(dst), len(m.ballots))
	}
	return m.do(MemOp{Slot: -1}, len(dst), func() { copy(dst, m.ballots) })
}

// WriteBallot writes one ballot block.
func (m *MemStorage) WriteBallot(slot int, rec []byte) error {
	if slot < 0 || slot >= int(m.h.SlotCount) {
		return fmt.Errorf("WriteBallot: slot %d out of range", slot)
	}
	ss := int(m.h.SectorSize)
	return m.do(MemOp{Write: true, Slot: slot}, ss, func() {
		b := m.ballots[slot*ss : (slot+1)*ss]
		clear(b)
		copy(b, rec)
	})
}

// Driver performs a Lease's I/O on a Storage, one action at a time, with
// the times from Now. It is the thin edge around the pure Lease; a daemon
// calls Do from the goroutine that owns the Lease, after sleeping until the
// action's NotBefore.
type Driver struct {
	L  *Lease
	St Storage
	// Now is the monotonic clock (time.Now); Wall stamps records for
	// humans (time.Now if nil).
	Now  func() time.Time
	Wall func() time.Time

	h       ondisk.Header
	sector  []byte
	region  []byte
	rec     []byte
	decoded []ondisk.BallotDecoded
}

// NewDriver makes a driver for l on st.
func NewDriver(l *Lease, st Storage, now func() time.Time) *Driver {
	h := st.Header()
	return &Driver{L: l, St: st, Now: now, h: h,
		sector: make([]byte, h.SectorSize), region: make([]byte, h.BallotsLen()), rec: make([]byte, ondisk.RecordSize)}
}

// Done is the result of one I/O of the lease, performed by Perform and not
// yet reported: the driver of a lease shared between goroutines performs
// the I/O without holding the lease's lock and reports it with it.
type Done struct {
	Action         Action
	Issued, Return time.Time
	Err            error
	leader         ondisk.LeaderDecoded
}

// Do performs action a (normally l.Next(), once its NotBefore has passed)
// and reports the result to the lease. It returns the I/O error, if any.
func (d *Driver) Do(a Action) error {
	r := d.Perform(a)
	d.Report(r)
	return r.Err
}

// Perform does the I/O of action a without touching the lease. The ballot
// region it read stays in the driver until Report.
func (d *Driver) Perform(a Action) Done {
	wall := d.Wall
	if wall == nil {
		wall = time.Now
	}
	r := Done{Action: a}
	switch a.Kind {
	case ReadLeader:
		r.Issued = d.Now()
		r.Err = d.St.ReadLeader(d.sector)
		r.Return = d.Now()
		if r.Err == nil {
			r.leader = ondisk.DecodeLeaderSector(d.sector, d.h.PoolUUID)
		}
	case ReadBallots:
		r.Issued = d.Now()
		r.Err = d.St.ReadBallots(d.region)
		r.Return = d.Now()
		if r.Err == nil {
			d.decoded = ondisk.DecodeBallotsInto(d.decoded, d.region, d.h)
		}
	case WriteBallot:
		b := a.Ballot
		b.Wall = wall()
		b.EncodeInto(d.rec)
		r.Issued = d.Now()
		r.Err = d.St.WriteBallot(int(b.Index), d.rec)
		r.Return = d.Now()
	case WriteLeader:
		l := a.Leader
		l.Wall = wall()
		l.EncodeInto(d.rec)
		r.Issued = d.Now()
		if r.Issued.After(a.Deadline) {
			r.Err = ErrDeadline
		} else {
			r.Err = d.St.WriteLeader(d.rec)
		}
		r.Return = d.Now()
	}
	return r
}

// Report tells the lease the result of Perform.
func (d *Driver) Report(r Done) {
	switch r.Action.Kind {
	case ReadLeader:
		d.L.ReadLeaderDone(r.Issued, r.Return, r.leader, r.Err)
	case ReadBallots:
		d.L.ReadBallotsDone(r.Issued, r.Return, d.decoded, r.Err)
	case WriteBallot, WriteLeader:
		d.L.WriteDone(r.Issued, r.Return, r.Err)
	}
}
