package heartbeat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Message kinds. A message rides in a cell of its sender's slot (one
// writer per sector) and names its target by slot and generation; a
// message to an older generation of the target is ignored. The target
// answers from its own slot with an Ack cell.
const (
	// KindAck acknowledges a message: its target is the original sender,
	// Arg holds the acknowledged sequence (bytes 0..7), kind (8..9) and
	// the answer (10): 0 accepted, anything else a refusal whose meaning
	// depends on the kind.
	KindAck ondisk.MessageKind = 1
	// KindFence orders the target to fence itself (a poison pill); Arg[0]
	// is the FenceAction.
	KindFence ondisk.MessageKind = 2
	// KindHandOver asks the target to take the master lease over from
	// the sender: Arg bytes 0..7 hold the sender's epoch. The target
	// accepts (answer 0) only if it can take the lease and its own view
	// of the leader record shows the sender as the owner of that epoch.
	KindHandOver ondisk.MessageKind = 3
	// KindRequest tells the master that the sender forwarded a command
	// (its requests/NAME record on the cluster root): Arg bytes 0..7 hold
	// the request's id, 8..15 the master's epoch it is for. The master
	// accepts (answer 0) only while it is the master of that epoch, and
	// writes its answer to answers/NAME.
	KindRequest ondisk.MessageKind = 4
	// Kinds 5 and up are kept.
)

// Answers in an Ack (Arg[10]) to a hand-over request.
const (
	AnswerAccepted byte = 0
	// AnswerCannotTake: the target cannot take the lease now (it is
	// fencing, stopping, or already master).
	AnswerCannotTake byte = 1
	// AnswerNotMaster: the target's leader record does not show the
	// sender as the owner of the epoch it claims.
	AnswerNotMaster byte = 2
)

// Reply is a handler's answer to a message.
type Reply struct {
	// Ack: acknowledge the message (the Ack goes out with this round's
	// write). A message not acknowledged is delivered again when its
	// sender still carries it and this host restarts; otherwise it is
	// left unanswered and its sender reports it as such.
	Ack bool
	// Answer goes into the Ack (0 accepted; see the kind's answers).
	Answer byte
	// After, if set, runs once this round's write has been attempted.
	After func()
	// Defer: do not answer yet; deliver the message again at the next
	// round (while its sender carries it). For an order whose epoch is
	// newer than the leader record this host has read.
	Defer bool
}

// FenceAction is what a poison pill asks.
type FenceAction byte

const (
	// FenceReset: stop feeding the watchdog and kill the HA guests; the
	// machine is reset even if the kill is confirmed.
	FenceReset FenceAction = 1
	// FenceOff: kill the HA guests and, once they are confirmed gone,
	// disarm and stay out of the pool (the daemon stops).
	FenceOff FenceAction = 2
)

func (a FenceAction) String() string {
	switch a {
	case FenceReset:
		return "reset"
	case FenceOff:
		return "off"
	}
	return fmt.Sprintf("action(%d)", byte(a))
}

// Incoming is a message delivered to this host.
type Incoming struct {
	FromSlot       int
	FromName       string
	FromGeneration uint64
	Message        ondisk.Message
}

// Handler is told of each new message to this host, once, during a round,
// after the read and before the write.
type Handler func(in Incoming) Reply

// Outgoing is a message this host sent, as status reports it.
type Outgoing struct {
	Seq              uint64             `json:"seq"`
	Kind             ondisk.MessageKind `json:"kind"`
	TargetSlot       int                `json:"target_slot"`
	TargetName       string             `json:"target_name"`
	TargetGeneration uint64             `json:"target_generation"`
	// AgeSeconds is how long ago it was sent; AckedAfterSeconds how long
	// after sending the Ack was seen (-1 while none has been).
	AgeSeconds        float64 `json:"age_seconds"`
	AckedAfterSeconds float64 `json:"acked_after_seconds"`
	// Answer is the target's answer in its Ack (0: accepted).
	Answer      byte `json:"answer"`
	sent, acked time.Time
}

// ErrNoFreeCell: every message cell of this host's slot is in use.
var ErrNoFreeCell = errors.New("every message cell of this host's slot is in use; wait for an acknowledgement")

// mailbox is the member's message state, guarded by Member.mu.
type mailbox struct {
	seq      uint64
	out      []*Outgoing       // sent, in cells until acked or expired
	handled  map[msgID]handled // messages to us already delivered
	ackCells []ondisk.Message  // acks we are publishing
}

// handled is a message delivered to the handler: whether, and with which
// answer, it is acknowledged while its sender carries it.
type handled struct {
	at     time.Time
	ack    bool
	answer byte
}

type msgID struct {
	slot int
	gen  uint64
	seq  uint64
}

// Send queues a message to the host in slot target with generation gen; it
// goes out with the next round's write. It returns the message's sequence.
func (m *Member) Send(target int, gen uint64, kind ondisk.MessageKind, arg [24]byte) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.joined {
		return 0, errors.New("not joined yet")
	}
	inCells := len(m.box.ackCells)
	for _, o := range m.box.out {
		if o.acked.IsZero() {
			inCells++ // an acknowledged message no longer takes a cell
		}
	}
	if inCells >= ondisk.MessageCells {
		return 0, ErrNoFreeCell
	}
	m.box.seq++
	name := ""
	if p, ok := m.tracker.Peer(target); ok {
		name = p.Name()
	}
	o := &Outgoing{Seq: m.box.seq, Kind: kind, TargetSlot: target, TargetName: name, TargetGeneration: gen, sent: m.clk.Now(), AckedAfterSeconds: -1}
	m.box.out = append(m.box.out, o)
	m.outArgs[o.Seq] = arg
	m.fillCells()
	// Write it now rather than at the next round.
	select {
	case m.kick <- struct{}{}:
	default:
	}
	return o.Seq, nil
}

// Withdraw takes back every message of kind this host sent that is not
// acknowledged yet: its cell is emptied at once and the slot written again
// without waiting for the next round, so a target that has not read it
// yet never does. A master that loses its role withdraws its poison pills
// (KindFence): a pill is an order of its epoch, and a target that has not
// read the newer leader record would still obey it (issue 10 item 6). A
// target that read it before still acts on it: it was an order of the
// master then. It returns the sequences withdrawn.
func (m *Member) Withdraw(kind ondisk.MessageKind) []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var gone []uint64
	keep := m.box.out[:0]
	for _, o := range m.box.out {
		if o.Kind == kind && o.acked.IsZero() {
			gone = append(gone, o.Seq)
			delete(m.outArgs, o.Seq)
			continue
		}
		keep = append(keep, o)
	}
	m.box.out = keep
	if len(gone) > 0 {
		m.fillCells()
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	return gone
}

// awaitingAck reports whether a message of ours, sent less than three
// intervals ago, waits for its acknowledgement.
func (m *Member) awaitingAck(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.box.out {
		if o.acked.IsZero() && now.Sub(o.sent) < 3*m.header.Timing.Interval {
			return true
		}
	}
	return false
}

// Acked reports when the message seq was acknowledged (zero if not yet)
// and whether it is still known.
func (m *Member) Acked(seq uint64) (time.Time, bool) {
	at, _, ok := m.Answered(seq)
	return at, ok
}

// Answered is Acked with the answer the Ack carried.
func (m *Member) Answered(seq uint64) (at time.Time, answer byte, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.box.out {
		if o.Seq == seq {
			return o.acked, o.Answer, true
		}
	}
	return time.Time{}, 0, false
}

// Outbox returns the messages this host has sent and not yet dropped.
func (m *Member) Outbox(now time.Time) []Outgoing {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.outboxLocked(now)
}

func (m *Member) outboxLocked(now time.Time) []Outgoing {
	out := make([]Outgoing, 0, len(m.box.out))
	for _, o := range m.box.out {
		c := *o
		c.AgeSeconds = now.Sub(o.sent).Seconds()
		if !o.acked.IsZero() {
			c.AckedAfterSeconds = o.acked.Sub(o.sent).Seconds()
		}
		out = append(out, c)
	}
	return out
}

// fillCells rebuilds the record's message cells from the mailbox. Called
// with m.mu held.
func (m *Member) fillCells() {
	var cells [ondisk.MessageCells]ondisk.Message
	i := 0
	for _, o := range m.box.out {
		if !o.acked.IsZero() || i == len(cells) {
			continue
		}
		cells[i] = ondisk.Message{Kind: o.Kind, TargetSlot: uint32(o.TargetSlot), TargetGeneration: o.TargetGeneration,
			Seq: o.Seq, Arg: m.outArgs[o.Seq]}
		i++
	}
	for _, a := range m.box.ackCells {
		if i == len(cells) {
			break
		}
		cells[i] = a
		i++
	}
	m.record.Messages = cells
}

// exchange reads the messages in the slots just read: it delivers new
// messages to this host to the handler and collects acks of ours. It
// returns what to run after this round's write. Called without m.mu.
func (m *Member) exchange(now time.Time) []func() {
	m.mu.Lock()
	self, gen := m.slot, m.record.Generation
	m.mu.Unlock()
	var after []func()
	var acks []ondisk.Message
	seen := map[msgID]bool{}
	for _, d := range m.decoded {
		if d.Status != ondisk.SlotOK || d.Index == self {
			continue
		}
		for _, c := range d.Slot.Messages {
			if c.Empty() || int(c.TargetSlot) != self || c.TargetGeneration != gen {
				continue
			}
			if c.Kind == KindAck {
				m.mu.Lock()
				ackedSeq := binary.LittleEndian.Uint64(c.Arg[0:8])
				for _, o := range m.box.out {
					if o.Seq == ackedSeq && o.acked.IsZero() && d.Index == o.TargetSlot && d.Slot.Generation == o.TargetGeneration {
						o.acked, o.Answer = now, c.Arg[10]
						m.log.Info().Int("peer_slot", d.Index).Str("peer", d.Slot.HostName).Uint64("seq", o.Seq).
							Dur("after_ms", now.Sub(o.sent)).Msg("message acknowledged")
					}
				}
				m.mu.Unlock()
				continue
			}
			id := msgID{slot: d.Index, gen: d.Slot.Generation, seq: c.Seq}
			seen[id] = true
			ack := ondisk.Message{Kind: KindAck, TargetSlot: uint32(d.Index), TargetGeneration: d.Slot.Generation, Seq: c.Seq}
			binary.LittleEndian.PutUint64(ack.Arg[0:8], c.Seq)
			binary.LittleEndian.PutUint16(ack.Arg[8:10], uint16(c.Kind))
			m.mu.Lock()
			h, done := m.box.handled[id]
			m.mu.Unlock()
			if done {
				if h.ack {
					// Keep acknowledging, with the same answer, while
					// the sender carries it.
					ack.Arg[10] = h.answer
					acks = append(acks, ack)
				}
				continue
			}
			m.log.Info().Int("peer_slot", d.Index).Str("peer", d.Slot.HostName).Uint64("seq", c.Seq).
				Uint16("kind", uint16(c.Kind)).Msg("message received")
			var r Reply
			if m.cfg.OnMessage != nil {
				r = m.cfg.OnMessage(Incoming{FromSlot: d.Index, FromName: d.Slot.HostName, FromGeneration: d.Slot.Generation, Message: c})
			}
			if r.Defer {
				continue
			}
			m.mu.Lock()
			m.box.handled[id] = handled{at: now, ack: r.Ack, answer: r.Answer}
			m.mu.Unlock()
			if r.Ack {
				ack.Arg[10] = r.Answer
				acks = append(acks, ack)
			}
			if r.After != nil {
				after = append(after, r.After)
			}
		}
	}
	m.mu.Lock()
	// Forget handled messages their senders no longer carry.
	for id := range m.box.handled {
		if !seen[id] {
			delete(m.box.handled, id)
		}
	}
	// Drop our messages once acked, or once their target is gone or
	// another incarnation.
	keep := m.box.out[:0]
	for _, o := range m.box.out {
		d := m.decoded[o.TargetSlot]
		stale := d.Status == ondisk.SlotOK && d.Slot.Generation != o.TargetGeneration
		expired := now.Sub(o.sent) > m.header.Timing.HostDead
		if stale || (expired && o.acked.IsZero()) || (!o.acked.IsZero() && now.Sub(o.acked) > m.header.Timing.HostDead) {
			delete(m.outArgs, o.Seq)
			continue
		}
		keep = append(keep, o)
	}
	m.box.out = keep
	m.box.ackCells = acks
	m.fillCells()
	m.mu.Unlock()
	return after
}
