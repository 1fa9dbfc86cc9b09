package restart

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hbfence/hbfence/heartbeat/liveness"
)

var simSeeds = flag.Int("restart.seeds", 500, "schedules of the randomized placement simulation")

// The simulation runs Reconcile (on whoever is master) and Decide (on every
// host) over thousands of random schedules: hosts crash, hang and get
// fenced, restart their daemon (keeping their guests), leave cleanly and
// come back; masters change, and hosts learn a new epoch late; hosts read
// stale plans and the master reads stale reports; starts fail; the operator
// stops and starts guests. Checked at every step: no guest runs on two
// hosts. Checked after a calm phase: every HA guest that is not in error
// (or stopped by the operator) runs.
//
// Time is in rounds. A host that stops writing is fenced (its guests die)
// after fenceAt rounds of silence and declared dead by the others after
// deadAt > fenceAt rounds: the timing rule of package liveness.
const (
	fenceAt = 4
	deadAt  = 6
)

type simHost struct {
	name      string
	gen       uint64
	state     string // up, hung, down, left
	silent    int    // rounds since its last write
	running   []string
	attempted map[string]AttemptID
	failed    map[string]Failure
	epochSeen uint64
	plan      Plan
	seq       uint64
	reports   []Report // every report written, newest last
}

type sim struct {
	t       *testing.T
	rng     *rand.Rand
	hosts   []*simHost
	guests  []Guest
	pool    Pool
	epoch   uint64
	master  int // index into hosts, -1 when none
	plans   []Plan
	round   int
	failPct int
	stats   map[string]int
}

func (s *sim) view(h *simHost) liveness.State {
	switch {
	case h.state == "left":
		return liveness.Left
	case h.silent >= deadAt:
		return liveness.Dead
	case h.silent > 1:
		return liveness.Suspect
	}
	return liveness.Live
}

func (s *sim) step(calm bool) {
	s.round++
	if !calm {
		s.chaos()
	}
	for _, i := range s.rng.Perm(len(s.hosts)) {
		h := s.hosts[i]
		switch h.state {
		case "up":
			s.hostRound(h)
			h.silent = 0
		case "hung":
			h.silent++
			if h.silent == fenceAt {
				h.running = nil // fenced: its guests are killed, or it is reset
				s.stats["fenced"]++
			}
		case "down":
			h.silent++
		}
	}
	if s.master >= 0 && s.hosts[s.master].state == "up" {
		s.masterRound(s.hosts[s.master])
	}
	s.checkOnce()
}

func (s *sim) chaos() {
	r := s.rng
	for _, h := range s.hosts {
		switch {
		case h.state == "up" && r.IntN(200) == 0:
			h.state, h.running = "down", nil // power loss: guests die at once
			s.stats["crash"]++
		case h.state == "up" && r.IntN(200) == 0:
			h.state = "hung"
			s.stats["hang"]++
		case h.state == "hung" && h.silent < fenceAt && r.IntN(3) == 0:
			h.state = "up" // a short stall: not fenced, guests kept
			s.stats["stall"]++
		case h.state == "up" && r.IntN(300) == 0:
			// The daemon restarts: a new generation adopts the guests.
			s.newIncarnation(h, true)
			s.stats["daemon-restart"]++
		case h.state == "up" && r.IntN(300) == 0:
			h.running = nil // a clean leave stops every guest
			s.report(h)
			h.state = "left"
			s.stats["leave"]++
		case (h.state == "down" || h.state == "hung" && h.silent >= deadAt || h.state == "left") && r.IntN(20) == 0:
			// A reset or returning host joins as a new incarnation;
			// nothing of the pool runs on it.
			h.running = nil
			s.newIncarnation(h, false)
			s.stats["rejoin"]++
		}
	}
	// The master changes: when its host is gone in the pool's view, or
	// now and then (a move). The lease guarantees one at a time; the new
	// master's epoch is the next one.
	if s.master < 0 || s.view(s.hosts[s.master]) == liveness.Dead || s.view(s.hosts[s.master]) == liveness.Left || r.IntN(100) == 0 {
		var up []int
		for i, h := range s.hosts {
			if h.state == "up" {
				up = append(up, i)
			}
		}
		if len(up) > 0 && (s.master < 0 || s.hosts[s.master].state != "up" || r.IntN(100) == 0 || s.view(s.hosts[s.master]) == liveness.Dead) {
			s.master = up[r.IntN(len(up))]
			s.epoch++
			s.stats["master-change"]++
		}
	}
	if r.IntN(40) == 0 {
		g := &s.guests[r.IntN(len(s.guests))]
		if g.Stopped || r.IntN(2) == 0 {
			g.Stopped, g.StartSeq = false, g.StartSeq+1
			s.stats["guest-start"]++
		} else {
			g.Stopped = true
			s.stats["guest-stop"]++
		}
	}
}

func (s *sim) newIncarnation(h *simHost, keepGuests bool) {
	h.gen++
	h.state, h.silent = "up", 0
	h.attempted, h.failed = map[string]AttemptID{}, map[string]Failure{}
	h.plan, h.epochSeen = Plan{}, 0
	if !keepGuests {
		h.running = nil
	}
}

func (s *sim) hostRound(h *simHost) {
	// The lease's read of the leader record may lag a round or two.
	if h.epochSeen < s.epoch && s.rng.IntN(3) != 0 {
		h.epochSeen = s.epoch
	}
	// Read a plan: the newest, or (a stale read) an older one.
	if len(s.plans) > 0 {
		p := s.plans[len(s.plans)-1]
		if s.rng.IntN(5) == 0 {
			p = s.plans[s.rng.IntN(len(s.plans))]
		}
		if p.Epoch == h.epochSeen && (p.Epoch > h.plan.Epoch || p.Seq > h.plan.Seq) {
			h.plan = p
		}
	}
	for _, a := range Decide(HostInput{Self: HostID{h.name, h.gen}, Epoch: h.epochSeen, Plan: h.plan, Running: h.running, Attempted: h.attempted}) {
		switch a.Kind {
		case Start:
			h.attempted[a.Guest] = a.Attempt
			if s.rng.IntN(100) < s.failPct {
				h.failed[a.Guest] = Failure{Attempt: a.Attempt, Message: "simulated failure"}
				s.stats["start-failed"]++
				continue
			}
			h.running = append(h.running, a.Guest)
			s.stats["start"]++
		case Stop:
			h.running = slices.DeleteFunc(h.running, func(u string) bool { return u == a.Guest })
			s.stats["stop"]++
		}
	}
	s.report(h)
}

func (s *sim) report(h *simHost) {
	h.seq++
	failed := map[string]Failure{}
	for u, f := range h.failed {
		if !slices.Contains(h.running, u) {
			failed[u] = f
		}
	}
	h.reports = append(h.reports, Report{Host: HostID{h.name, h.gen}, Seq: h.seq, Epoch: h.epochSeen,
		Running: slices.Clone(h.running), Failed: failed})
}

func (s *sim) masterRound(m *simHost) {
	if m.epochSeen != s.epoch {
		return // it acts once its own record is on storage and read
	}
	in := Input{Epoch: s.epoch, Pool: s.pool, Guests: slices.Clone(s.guests)}
	if len(s.plans) > 0 {
		in.Prev = s.plans[len(s.plans)-1]
		if in.Prev.Epoch != s.epoch && s.rng.IntN(3) == 0 {
			// A new master that could not read the latest plan of
			// the old one: an older plan, or none.
			in.Prev = Plan{}
			if i := s.rng.IntN(len(s.plans) + 1); i < len(s.plans) {
				in.Prev = s.plans[i]
			}
		}
	}
	for _, h := range s.hosts {
		hv := Host{ID: HostID{h.name, h.gen}, State: s.view(h), Roles: []Role{RoleVM}}
		if n := len(h.reports); n > 0 {
			r := h.reports[n-1]
			if s.rng.IntN(5) == 0 {
				r = h.reports[max(0, n-1-s.rng.IntN(3))] // a stale read
			}
			hv.Report = &r
		}
		in.Hosts = append(in.Hosts, hv)
	}
	p, notes := Reconcile(in)
	for _, n := range notes {
		if n.Alarm {
			s.t.Fatalf("round %d: alarm: %s: %s", s.round, n.Guest, n.Text)
		}
	}
	s.plans = append(s.plans, p)
}

func (s *sim) checkOnce() {
	for _, g := range s.guests {
		var on []string
		for _, h := range s.hosts {
			if slices.Contains(h.running, g.UUID) {
				on = append(on, fmt.Sprintf("%s/%d(%s)", h.name, h.gen, h.state))
			}
		}
		if len(on) > 1 {
			s.t.Fatalf("round %d: guest %s runs on %v", s.round, g.UUID, on)
		}
	}
}

func runSim(t *testing.T, seed uint64) map[string]int {
	rng := rand.New(rand.NewPCG(seed, seed*7919+1))
	s := &sim{t: t, rng: rng, master: -1, stats: map[string]int{}, pool: Pool{HA: true, MaxAttempts: 3}, failPct: 10}
	nh := 3 + rng.IntN(6)
	for i := range nh {
		s.hosts = append(s.hosts, &simHost{name: fmt.Sprintf("h%d", i), gen: 1, state: "up", attempted: map[string]AttemptID{}, failed: map[string]Failure{}})
	}
	for i := range 5 + rng.IntN(20) {
		g := Guest{UUID: fmt.Sprintf("g%02d", i), HA: rng.IntN(5) != 0, Placement: Auto, StartSeq: 1}
		if rng.IntN(4) == 0 {
			g.Placement = Manual
			g.Preferred = []string{s.hosts[rng.IntN(nh)].name, s.hosts[rng.IntN(nh)].name}
		}
		s.guests = append(s.guests, g)
	}
	for range 300 {
		s.step(false)
	}
	// Calm: every host comes back, starts succeed, nobody fails.
	s.failPct = 0
	for _, h := range s.hosts {
		if h.state != "up" {
			h.running = nil
			s.newIncarnation(h, false)
		}
	}
	for range 3 * deadAt {
		s.step(true)
	}
	// Every HA guest that is neither in error nor stopped runs.
	p := s.plans[len(s.plans)-1]
	for _, g := range s.guests {
		if !g.HA || g.Stopped || p.Guests[g.UUID].State == Error {
			continue
		}
		running := false
		for _, h := range s.hosts {
			running = running || slices.Contains(h.running, g.UUID)
		}
		if !running {
			t.Fatalf("seed %d: after the calm, HA guest %s does not run: %+v", seed, g.UUID, p.Guests[g.UUID])
		}
	}
	return s.stats
}

func TestPlacementSimulation(t *testing.T) {
	total := map[string]int{}
	for seed := range uint64(*simSeeds) {
		t.Run("", func(t *testing.T) {
			for k, v := range runSim(t, seed) {
				total[k] += v
			}
		})
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
	t.Logf("%d schedules of 300 chaotic and %d calm rounds: %v", *simSeeds, 3*deadAt, total)
}
