package master

import (
	"time"

	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Status is the master role as this host sees it: what `hbfence master`
// prints and the `master` object of `hbfence status --json`. Fields are
// added, never renamed.
type Status struct {
	// Known is false until this host has read a valid leader record.
	Known bool `json:"known"`
	// Name, Slot and Generation name the current master: the owner of
	// the latest epoch, unless it released it (then Name is empty and
	// Slot is -1).
	Name       string `json:"name"`
	Slot       int    `json:"slot"`
	Generation uint64 `json:"generation"`
	// Epoch is the latest epoch of the leader record (0: never held).
	Epoch uint64 `json:"epoch"`
	// Released: the owner of Epoch gave it up; Successor names the host
	// it was handed over to, if any.
	Released  bool   `json:"released"`
	Successor string `json:"successor,omitempty"`
	// SinceAgeSeconds is how long ago this host first read this record,
	// on its own clock.
	SinceAgeSeconds float64 `json:"since_age_seconds"`
	// Self is this host's part.
	Self SelfStatus `json:"self"`
	// LastChange is the last change of master this host saw, and
	// LastHandOver the last hand-over it took part in or saw.
	LastChange   *Change   `json:"last_change,omitempty"`
	LastHandOver *HandOver `json:"last_handover,omitempty"`
}

// SelfStatus is this host's side of the lease.
type SelfStatus struct {
	Role lease.Role `json:"role"`
	// Acting: this host acts as master now (Master says so), with epoch
	// Epoch, for at most ActingForSeconds more without a renewal.
	Acting           bool    `json:"acting"`
	Epoch            uint64  `json:"epoch,omitempty"`
	ActingForSeconds float64 `json:"acting_for_seconds,omitempty"`
	// ActingSinceAgeSeconds is how long ago this host began to act as
	// master of Epoch (its record write returned).
	ActingSinceAgeSeconds float64 `json:"acting_since_age_seconds,omitempty"`
	Waiting               string  `json:"waiting,omitempty"`
	LastAbort             string  `json:"last_abort,omitempty"`
	LastError             string  `json:"last_error,omitempty"`
	Fenced                string  `json:"fenced,omitempty"`
}

// Change is one change of the leader record, as this host read it.
type Change struct {
	AgeSeconds float64 `json:"age_seconds"`
	Epoch      uint64  `json:"epoch"`
	Name       string  `json:"name"`
	Released   bool    `json:"released"`
	Successor  string  `json:"successor,omitempty"`
	PrevEpoch  uint64  `json:"prev_epoch"`
	PrevName   string  `json:"prev_name"`
	at         time.Time
}

// HandOver is a hand-over of the master role.
type HandOver struct {
	AgeSeconds float64 `json:"age_seconds"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	Epoch      uint64  `json:"epoch"` // the epoch handed over
	// Outcome: "handed-over" (the old master's record is released for
	// To), "taken" (To holds Epoch + 1), "failed" or "failed-resumed".
	Outcome string `json:"outcome"`
	Detail  string `json:"detail,omitempty"`
	at      time.Time
}

// history keeps what the lease's events told, for Status and the log.
type history struct {
	holder   lease.Holder // the record as last known here (read, or our own acquisition)
	change   *Change
	handOver *HandOver
}

// record notes that the leader record now reads rec (at). It reports
// whether that is a change from what was known, and the owner known
// before.
func (h *history) record(rec lease.Holder, at time.Time) (changed bool, prev lease.Holder) {
	prev = h.holder
	if prev.Known && prev.Epoch == rec.Epoch && prev.Owner == rec.Owner && prev.Released == rec.Released && prev.Successor == rec.Successor {
		return false, prev
	}
	h.holder = rec
	if rec.Epoch > 0 {
		h.change = &Change{Epoch: rec.Epoch, Name: rec.Owner.Name, Released: rec.Released, Successor: rec.Successor.Name,
			PrevEpoch: prev.Epoch, PrevName: prev.Owner.Name, at: at}
	}
	if !rec.Successor.IsZero() && (h.handOver == nil || h.handOver.Epoch != rec.Epoch) {
		// A hand-over this host took no part in.
		h.handOver = &HandOver{From: rec.Owner.Name, To: rec.Successor.Name, Epoch: rec.Epoch, Outcome: "handed-over", at: at}
	}
	return true, prev
}

// add records one of this host's own events.
func (h *history) add(e lease.Event, self ondisk.Owner) {
	switch e.Kind {
	case lease.Acquired:
		if ho := h.handOver; ho != nil && ho.To == self.Name && ho.Epoch+1 == e.Epoch {
			h.handOver = &HandOver{From: ho.From, To: self.Name, Epoch: ho.Epoch, Outcome: "taken", at: e.At}
		}
		// Our record is on storage: it is the holder, before we read it.
		h.record(lease.Holder{Known: true, Epoch: e.Epoch, Owner: self, Since: e.At}, e.At)
	case lease.HandedOver:
		h.handOver = &HandOver{From: self.Name, To: e.Owner.Name, Epoch: e.Epoch, Outcome: "handed-over", Detail: e.Detail, at: e.At}
	case lease.HandOverFailed:
		o := "failed"
		if e.Resumed {
			o = "failed-resumed"
		}
		h.handOver = &HandOver{From: self.Name, To: e.Owner.Name, Epoch: e.Epoch, Outcome: o, Detail: e.Detail, at: e.At}
	}
}

// Status reports the role as this host sees it at now.
func (r *Runner) Status(now time.Time) Status {
	defer r.poke() // asking Master may latch the fence: publish it
	r.mu.Lock()
	defer r.mu.Unlock()
	hd := r.holder() // our own acquisition counts before we read it back
	ls := r.l.Status()
	st := Status{Known: hd.Known, Slot: -1, Epoch: hd.Epoch, Released: hd.Released, Successor: hd.Successor.Name}
	if hd.Known {
		st.SinceAgeSeconds = now.Sub(hd.Since).Seconds()
	}
	if hd.Known && hd.Epoch > 0 && !hd.Released {
		st.Name, st.Slot, st.Generation = hd.Owner.Name, int(hd.Owner.Slot), hd.Owner.Generation
	}
	st.Self = SelfStatus{Role: ls.Role, Waiting: ls.Waiting, LastAbort: ls.LastAbort, LastError: ls.LastError, Fenced: ls.Fenced}
	if ms, ok := r.l.Master(now); ok {
		st.Self.Acting, st.Self.Epoch, st.Self.ActingForSeconds = true, ms.Epoch, ms.Until.Sub(now).Seconds()
		st.Self.ActingSinceAgeSeconds = now.Sub(ms.Since).Seconds()
	}
	if c := r.hist.change; c != nil {
		cc := *c
		cc.AgeSeconds = now.Sub(c.at).Seconds()
		st.LastChange = &cc
	}
	if ho := r.hist.handOver; ho != nil {
		hh := *ho
		hh.AgeSeconds = now.Sub(ho.at).Seconds()
		st.LastHandOver = &hh
	}
	return st
}
