package restart

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/hbfence/hbfence/heartbeat/liveness"
)

var simSeeds = flag.Int("restart.seeds", 500, "schedules of the randomized placement simulation")

// The simulation runs Reconcile (on whoever is master) and Decide (on every
// host) over thousands of random schedules: hosts crash, hang and get
// fenced, restart their daemon (keeping their guests), leave cleanly and
// come back, crash during a start whose create lands after the daemon
// died (or never; the successor lists the guest unsettled); masters
// change, and hosts learn a new epoch late; hosts read stale plans and the
// master reads stale reports, reports of an older incarnation landed late
// over the newer one's, and views that still show the older incarnation;
// starts fail; the operator stops and starts
// guests, puts hosts in maintenance and takes them out, moves guests by
// hand (live or by restart, to any host, available or not) and starts
// them on a host of their choice. Checked at every step: no guest runs on
// two hosts, and no plan orders a start or a migration to a host in
// maintenance. Checked after a calm phase: every HA guest that
// is not in error (or stopped by the operator) runs, and none on a host
// still in maintenance.
//
// Time is in rounds. A host that stops writing is fenced (its guests die)
// after fenceAt rounds of silence and declared dead by the others after
// deadAt > fenceAt rounds: the timing rule of package liveness.
const (
	fenceAt = 4
	deadAt  = 6
	// landWithin bounds, in rounds, how long after its daemon crashed a
	// start order (an xl create whose client outlived it) may still make
	// its guest run: the drivers' settle time.
	landWithin = 4
)

type simHost struct {
	name      string
	gen       uint64
	state     string // up, hung, down, left
	silent    int    // rounds since its last write
	running   []string
	attempted map[string]AttemptID
	done      map[string]AttemptID
	failed    map[string]Failure
	epochSeen uint64
	plan      Plan
	seq       uint64
	reports   []Report // every report written, newest last
	// lateMig: migrations that failed for their client but go on, and
	// land at the host's next round if the guest still runs here.
	lateMig map[string]*simHost
	// inflight: starts a crashed daemon left under way, by the round at
	// which the guest appears (at most landWithin rounds later).
	inflight map[string]int
	// unsettled: as the agent (package agent, O3), the guests an
	// earlier incarnation ordered and this one has not seen settled, by
	// the round of the first listing without them (0: none yet).
	unsettled map[string]int
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
	calm    bool // nothing fails: no start dies, no daemon crashes
	stats   map[string]int
	evacs   []Evacuation
	seen    map[HostID]Report // the master's newest report read per incarnation
	// maint are the hosts in maintenance.
	maint map[string]bool
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
				// Fenced: its guests are killed, confirmed gone a settle
				// time later, or the machine is reset.
				h.running, h.inflight = nil, nil
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
			h.state, h.running, h.inflight = "down", nil, nil // power loss: guests die at once
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
	if r.IntN(8) == 0 {
		// A guest crashes on its host (the host lives on).
		h := s.hosts[r.IntN(len(s.hosts))]
		if h.state == "up" && len(h.running) > 0 {
			i := r.IntN(len(h.running))
			h.running = slices.Delete(h.running, i, i+1)
			s.stats["guest-crash"]++
		}
	}
	if r.IntN(60) == 0 {
		// The operator evacuates a host: some guests (or all) to
		// migrate, the others to stop and restart elsewhere.
		h := s.hosts[r.IntN(len(s.hosts))]
		e := Evacuation{Host: HostID{h.name, h.gen}, All: r.IntN(3) == 0}
		for _, g := range s.guests {
			if r.IntN(2) == 0 {
				e.Migrate = append(e.Migrate, g.UUID)
			}
		}
		s.evacs = append(s.evacs, e)
		s.stats["evacuate"]++
	}
	if r.IntN(50) == 0 {
		// The operator puts a host in maintenance, or ends one.
		h := s.hosts[r.IntN(len(s.hosts))]
		if s.maint[h.name] {
			delete(s.maint, h.name)
			s.stats["maintenance-exit"]++
		} else if len(s.maint) < len(s.hosts)-1 {
			s.maint[h.name] = true
			s.stats["maintenance-enter"]++
		}
	}
	if r.IntN(30) == 0 {
		// The operator moves a guest by hand (the daemon would refuse
		// an unavailable host; the plan must cope with one anyway), or
		// starts it on a host of its choice.
		g := &s.guests[r.IntN(len(s.guests))]
		to := s.hosts[r.IntN(len(s.hosts))].name
		if r.IntN(3) == 0 {
			g.Stopped, g.StartSeq, g.StartOn = false, g.StartSeq+1, to
			s.stats["guest-start-on"]++
		} else {
			g.MoveSeq, g.MoveTo, g.MoveRestart = g.MoveSeq+1, to, r.IntN(2) == 0
			s.stats["guest-migrate"]++
		}
	}
	if r.IntN(40) == 0 {
		g := &s.guests[r.IntN(len(s.guests))]
		if g.Stopped || r.IntN(2) == 0 {
			g.Stopped, g.StartSeq, g.StartOn = false, g.StartSeq+1, ""
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
	h.attempted, h.failed, h.done = map[string]AttemptID{}, map[string]Failure{}, map[string]AttemptID{}
	h.plan, h.epochSeen = Plan{}, 0
	if !keepGuests {
		h.running, h.inflight, h.unsettled = nil, nil, nil
	}
}

// settle lands the starts under way whose time has come, then settles the
// unsettled guests as the agent does: running here, adopted; absent from
// listings landWithin rounds apart, confirmed gone.
func (s *sim) settle(h *simHost) {
	for _, u := range slices.Sorted(maps.Keys(h.inflight)) { // in order: a seed replays
		if at := h.inflight[u]; at <= s.round {
			if !slices.Contains(h.running, u) {
				h.running = append(h.running, u)
			}
			delete(h.inflight, u)
			s.stats["start-landed-late"]++
		}
	}
	for u, first := range h.unsettled {
		switch {
		case slices.Contains(h.running, u):
			delete(h.unsettled, u)
		case first == 0:
			h.unsettled[u] = s.round
		case s.round-first >= landWithin:
			delete(h.unsettled, u)
		}
	}
}

func (s *sim) hostRound(h *simHost) {
	for _, u := range slices.Sorted(maps.Keys(h.lateMig)) {
		dst := h.lateMig[u]
		if slices.Contains(h.running, u) && dst.state == "up" {
			h.running = slices.DeleteFunc(h.running, func(r string) bool { return r == u })
			dst.running = append(dst.running, u)
			s.stats["migrate-landed-late"]++
		}
	}
	h.lateMig = nil
	s.settle(h)
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
			if _, ok := h.unsettled[a.Guest]; ok {
				continue // the agent orders nothing for an unsettled guest
			}
			h.attempted[a.Guest] = a.Attempt
			if s.rng.IntN(100) < s.failPct {
				h.failed[a.Guest] = Failure{Attempt: a.Attempt, Message: "simulated failure"}
				s.stats["start-failed"]++
				continue
			}
			if !s.calm && s.rng.IntN(40) == 0 {
				// The daemon crashes while the create is under way: it
				// lands within landWithin rounds, or never. The new
				// incarnation reads the order from the run-state file.
				if s.rng.IntN(3) != 0 {
					if h.inflight == nil {
						h.inflight = map[string]int{}
					}
					h.inflight[a.Guest] = s.round + 1 + s.rng.IntN(landWithin)
				}
				if h.unsettled == nil {
					h.unsettled = map[string]int{}
				}
				h.unsettled[a.Guest] = 0
				s.newIncarnation(h, true)
				s.stats["crash-during-start"]++
				return
			}
			h.running = append(h.running, a.Guest)
			delete(h.failed, a.Guest)
			h.done[a.Guest] = a.Attempt
			s.stats["start"]++
			if !s.calm && s.rng.IntN(50) == 0 {
				// It dies at once, before the host lists it.
				h.running = h.running[:len(h.running)-1]
				s.stats["died-at-start"]++
			}
		case Stop:
			h.running = slices.DeleteFunc(h.running, func(u string) bool { return u == a.Guest })
			s.stats["stop"]++
		case Migrate:
			// A live migration moves the guest at once, or fails and
			// leaves it where it is.
			h.attempted[a.Guest] = a.Attempt
			var dst *simHost
			for _, o := range s.hosts {
				if o.name == a.Target {
					dst = o
				}
			}
			if dst == nil || dst.state != "up" || s.rng.IntN(100) < 20 {
				h.failed[a.Guest] = Failure{Attempt: a.Attempt, Message: "simulated migration failure"}
				s.stats["migrate-failed"]++
				if dst != nil && dst.state == "up" && s.rng.IntN(2) == 0 {
					if h.lateMig == nil {
						h.lateMig = map[string]*simHost{}
					}
					h.lateMig[a.Guest] = dst
				}
				continue
			}
			h.running = slices.DeleteFunc(h.running, func(u string) bool { return u == a.Guest })
			dst.running = append(dst.running, a.Guest)
			delete(h.failed, a.Guest)
			s.stats["migrate"]++
		}
	}
	s.report(h)
}

func (s *sim) report(h *simHost) {
	h.seq++
	// As the agent: a failure stays reported until a later order for the
	// guest succeeds here, also while the guest runs (a failed migration).
	h.reports = append(h.reports, Report{Host: HostID{h.name, h.gen}, Seq: h.seq, Epoch: h.epochSeen,
		Running: slices.Clone(h.running), Failed: maps.Clone(h.failed), Done: maps.Clone(h.done), Absent: Absent(HostID{h.name, h.gen}, h.epochSeen, h.plan, h.running),
		Unsettled: slices.Sorted(maps.Keys(h.unsettled))})
}

func (s *sim) masterRound(m *simHost) {
	if m.epochSeen != s.epoch {
		return // it acts once its own record is on storage and read
	}
	in := Input{Epoch: s.epoch, Pool: s.pool, Guests: slices.Clone(s.guests), Evacuations: slices.Clone(s.evacs),
		Maintenance: slices.Sorted(maps.Keys(s.maint))}
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
			if !s.calm && s.rng.IntN(20) == 0 {
				// A late write of an older incarnation landed over the
				// host's report file (one per host name): the master
				// reads that incarnation's last report.
				if old, ok := lastReportBefore(h.reports, h.gen); ok {
					r = old
					s.stats["late-report"]++
				}
			}
			// The master never goes back to an older report than one
			// it has read (as the agent does).
			if old, ok := s.seen[r.Host]; ok && old.Seq > r.Seq {
				r = old
			}
			s.seen[r.Host] = r
			hv.Report = &r
			if !s.calm && s.rng.IntN(30) == 0 && r.Host.Generation < h.gen {
				// The master's view has not caught up with the host's
				// new incarnation either (a new master's first reads,
				// or a late slot write of the old one read back): it
				// shows the older incarnation, live, while the plan may
				// already name the newer one.
				hv.ID, hv.State = r.Host, liveness.Live
				s.stats["lagging-view"]++
			}
		}
		in.Hosts = append(in.Hosts, hv)
	}
	p, notes := Reconcile(in)
	for u, a := range p.Guests {
		// No new start order (nor migration) to a host in maintenance:
		// one given before it entered may still be carried out, and the
		// guest is then moved off again.
		if old := in.Prev.Guests[u]; (a.State == Starting && s.maint[a.Host.Name] || a.State == Migrating && s.maint[a.Target.Name]) && old.Attempt != a.Attempt {
			s.t.Fatalf("round %d: plan %d.%d orders %s %s on %s (attempt %v), in maintenance", s.round, p.Epoch, p.Seq, u, a.State, a.Host, a.Attempt)
		}
	}
	for _, n := range notes {
		if n.Alarm {
			// Two hosts report one guest. With stale reads of reports
			// (stronger than the O_DIRECT records allow) a finished
			// migration can look like that for a round; the guest is
			// then placed nowhere until the reports agree. What must
			// never happen — two copies running — is checked on the
			// hosts themselves (checkOnce).
			s.stats["alarm"]++
		}
	}
	s.plans = append(s.plans, p)
}

// lastReportBefore is the last report of an incarnation older than gen.
func lastReportBefore(reports []Report, gen uint64) (Report, bool) {
	for i := len(reports) - 1; i >= 0; i-- {
		if reports[i].Host.Generation < gen {
			return reports[i], true
		}
	}
	return Report{}, false
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
	s := &sim{t: t, rng: rng, master: -1, stats: map[string]int{}, pool: Pool{HA: true, MaxAttempts: 3}, failPct: 10, seen: map[HostID]Report{},
		maint: map[string]bool{}}
	nh := 3 + rng.IntN(6)
	for i := range nh {
		s.hosts = append(s.hosts, &simHost{name: fmt.Sprintf("h%d", i), gen: 1, state: "up", attempted: map[string]AttemptID{}, done: map[string]AttemptID{}, failed: map[string]Failure{}})
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
	// Calm: every host comes back, starts succeed, nobody fails, the
	// evacuations are over, no late write of an older incarnation lands
	// (one can bring back, for a round, a guest in error that the late
	// migration it warns of did land: placed again only after the calm).
	s.failPct, s.calm = 0, true
	s.evacs = nil
	// One host (at most) stays in maintenance through the calm: it must
	// be emptied, and given nothing.
	kept := ""
	for _, n := range slices.Sorted(maps.Keys(s.maint)) {
		if kept == "" && rng.IntN(2) == 0 {
			kept = n
			continue
		}
		delete(s.maint, n)
	}
	for _, h := range s.hosts {
		if h.state != "up" {
			h.running = nil
			s.newIncarnation(h, false)
		}
	}
	for range 4 * deadAt {
		s.step(true)
	}
	for _, h := range s.hosts {
		// A manual guest whose preferred hosts are all in maintenance
		// has nowhere to go: it stays (the evacuation waits for a host).
		stuck := func(u string) bool {
			for _, g := range s.guests {
				if g.UUID == u {
					return g.Placement == Manual && !slices.ContainsFunc(g.Preferred, func(n string) bool { return !s.maint[n] })
				}
			}
			return false
		}
		if s.maint[h.name] && slices.ContainsFunc(h.running, func(u string) bool { return !stuck(u) }) {
			t.Fatalf("seed %d: after the calm, %s is in maintenance and runs %v; plan %+v", seed, h.name, h.running, s.plans[len(s.plans)-1].Guests)
		}
	}
	// Every HA guest that is neither in error nor stopped runs.
	p := s.plans[len(s.plans)-1]
	for _, g := range s.guests {
		if !g.HA || g.Stopped || p.Guests[g.UUID].State == Error {
			continue
		}
		if g.Placement == Manual && !slices.ContainsFunc(g.Preferred, func(n string) bool { return !s.maint[n] }) {
			continue // its only preferred hosts are in maintenance
		}
		running := false
		for _, h := range s.hosts {
			running = running || slices.Contains(h.running, g.UUID)
		}
		if !running {
			var hs []string
			for _, h := range s.hosts {
				hs = append(hs, fmt.Sprintf("%s/%d %s %v attempted=%v done=%v failed=%v plan=%d.%d epochSeen=%d", h.name, h.gen, h.state, h.running, h.attempted[g.UUID], h.done[g.UUID], h.failed[g.UUID], h.plan.Epoch, h.plan.Seq, h.epochSeen))
			}
			t.Fatalf("seed %d: after the calm, HA guest %s does not run: %+v; hosts %v", seed, g.UUID, p.Guests[g.UUID], hs)
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
	t.Logf("%d schedules of 300 chaotic and %d calm rounds: %v", *simSeeds, 4*deadAt, total)
}
