package heartbeat

import (
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// Status is a member's view of the pool at one instant: what hbfence
// status prints. Its JSON form is a stable interface for operators'
// scripts: fields are added, never renamed.
type Status struct {
	Self       string      `json:"self"`
	Slot       int         `json:"slot"` // -1 while joining
	Generation uint64      `json:"generation"`
	Joined     bool        `json:"joined"`
	PoolUUID   ondisk.UUID `json:"pool_uuid"`
	Timing     TimingJSON  `json:"timing"`
	// LastRenewalAgeSeconds is how long ago the last successful renewal
	// began; -1 before the first.
	LastRenewalAgeSeconds float64        `json:"last_renewal_age_seconds"`
	RenewalLatency        LatencySummary `json:"renewal_latency"`
	// RenewalGapMaxSeconds is the largest gap between the issues of two
	// successful renewals over the last GapWindow (0 before the second);
	// RenewalMarginSeconds is renewal_fail minus it: what was left, at
	// the worst moment, before this host would have fenced.
	RenewalGapMaxSeconds float64 `json:"renewal_gap_max_seconds"`
	RenewalMarginSeconds float64 `json:"renewal_margin_seconds"`
	LastError            string  `json:"last_error,omitempty"`
	// Messages are the messages this host sent that are still in its
	// slot, with their age and whether they were acknowledged.
	Messages []Outgoing   `json:"messages"`
	Hosts    []HostStatus `json:"hosts"`
}

// TimingJSON is the pool's timing, in seconds.
type TimingJSON struct {
	Profile     string  `json:"profile"`
	Interval    float64 `json:"interval_seconds"`
	IOTimeout   float64 `json:"io_timeout_seconds"`
	RenewalFail float64 `json:"renewal_fail_seconds"`
	Watchdog    float64 `json:"watchdog_seconds"`
	HostDead    float64 `json:"host_dead_seconds"`
}

// LatencySummary summarises the storage latency of the last renewals.
type LatencySummary struct {
	Samples  int     `json:"samples"`
	MinMS    float64 `json:"min_ms"`
	MedianMS float64 `json:"median_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// HostStatus is one slot as this host sees it.
type HostStatus struct {
	Name       string            `json:"name"`
	Slot       int               `json:"slot"`
	Generation uint64            `json:"generation"`
	Sequence   uint64            `json:"sequence"`
	State      liveness.State    `json:"state"`
	SlotState  ondisk.SlotState  `json:"slot_state"`
	Checksum   ondisk.SlotStatus `json:"checksum"`
	Reason     string            `json:"reason,omitempty"`
	// LastChangeAgeSeconds is how long ago, on this host's clock, the
	// slot last changed (or was first seen, when ChangeSeen is false).
	LastChangeAgeSeconds float64 `json:"last_change_age_seconds"`
	ChangeSeen           bool    `json:"change_seen"`
	StateAgeSeconds      float64 `json:"state_age_seconds"`
	// Unsafe: the host runs with no watchdog.
	Unsafe bool `json:"unsafe"`
	// GuestsUnknown: the host cannot list its guests (no hypervisor
	// driver, no kill hook): it never confirms them gone, so its "left"
	// frees none of its guests and its reports prove no guest absent.
	GuestsUnknown bool `json:"guests_unknown,omitempty"`
	// Fenced: the host is known to have no HA guest running: it was
	// declared dead, and it has a watchdog (see package fence).
	Fenced bool `json:"fenced"`
	// FencedHow says how it was fenced (or is fencing), and
	// FencedAgeSeconds how long ago that was learnt, here.
	FencedHow        string      `json:"fenced_how,omitempty"`
	FencedAgeSeconds float64     `json:"fenced_age_seconds,omitempty"`
	MachineID        ondisk.UUID `json:"machine_id"`
	Agent            string      `json:"agent"`
	Self             bool        `json:"self"`
}

// Status returns the member's view at now.
func (m *Member) Status(now time.Time) Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.header.Timing
	st := Status{
		Self:       m.cfg.Self.Name,
		Slot:       m.slot,
		Generation: m.record.Generation,
		Joined:     m.joined,
		PoolUUID:   m.header.PoolUUID,
		Timing: TimingJSON{
			Profile:     m.header.Profile,
			Interval:    t.Interval.Seconds(),
			IOTimeout:   t.IOTimeout.Seconds(),
			RenewalFail: t.RenewalFail.Seconds(),
			Watchdog:    t.Watchdog.Seconds(),
			HostDead:    t.HostDead.Seconds(),
		},
		LastRenewalAgeSeconds: -1,
		LastError:             m.lastErr,
		Hosts:                 []HostStatus{},
	}
	st.Messages = m.outboxLocked(now)
	lo, med, hi, n := m.latencies.summary()
	st.RenewalLatency = LatencySummary{Samples: n, MinMS: ms(lo), MedianMS: ms(med), MaxMS: ms(hi)}
	gap := m.gaps.max(now)
	// The gap still open counts too: a renewal lapsing now is the worst
	// (after the join's claim, once its read-back's wait is over).
	if !m.lastRenewal.IsZero() && (!m.sinceClaim || now.Sub(m.lastRenewal) > t.JoinWait()+t.Interval) {
		gap = max(gap, now.Sub(m.lastRenewal))
	}
	st.RenewalGapMaxSeconds = gap.Seconds()
	st.RenewalMarginSeconds = (t.RenewalFail - gap).Seconds()
	for _, p := range m.tracker.Peers() {
		st.Hosts = append(st.Hosts, HostStatus{
			Name:                 p.Name(),
			Slot:                 p.Slot,
			Generation:           p.Record.Generation,
			Sequence:             p.Record.Sequence,
			State:                p.State,
			SlotState:            p.Record.State,
			Checksum:             p.Status,
			Reason:               p.Reason,
			LastChangeAgeSeconds: p.Age(now).Seconds(),
			ChangeSeen:           !p.LastChange.IsZero(),
			StateAgeSeconds:      now.Sub(p.StateSince).Seconds(),
			Unsafe:               p.Record.Flags&ondisk.FlagNoWatchdog != 0,
			GuestsUnknown:        p.Record.Flags&ondisk.FlagGuestsUnknown != 0,
			Fenced:               p.State == liveness.Dead && p.Record.Flags&ondisk.FlagNoWatchdog == 0,
			MachineID:            p.Record.MachineID,
			Agent:                p.Record.Agent,
			Self:                 m.joined && p.Slot == m.slot,
		})
	}
	for i := range st.Hosts {
		h := &st.Hosts[i]
		switch {
		case h.Fenced:
			h.FencedHow = "declared dead after host_dead of silence: it had fenced itself or its watchdog had reset it"
			h.FencedAgeSeconds = h.StateAgeSeconds
		case h.State == liveness.Dead && h.Unsafe:
			h.FencedHow = "declared dead, but it has no watchdog: NOT known to be fenced"
		}
		for _, o := range st.Messages {
			if o.Kind == KindFence && o.TargetSlot == h.Slot && o.TargetGeneration == h.Generation && o.AckedAfterSeconds >= 0 && !h.Fenced {
				h.FencedHow = "poison pill acknowledged: fencing itself"
				h.FencedAgeSeconds = o.AgeSeconds - o.AckedAfterSeconds
			}
		}
	}
	if !m.lastRenewal.IsZero() {
		st.LastRenewalAgeSeconds = now.Sub(m.lastRenewal).Seconds()
	}
	return st
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
