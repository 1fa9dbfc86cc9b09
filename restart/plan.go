package restart

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/hbfence/hbfence/heartbeat/liveness"
)

// HostID names one incarnation of a host.
type HostID struct {
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
}

// IsZero reports whether id names nobody.
func (id HostID) IsZero() bool { return id == HostID{} }

func (id HostID) String() string { return fmt.Sprintf("%s/%d", id.Name, id.Generation) }

// Placement is a guest's preferred-server policy.
type Placement string

const (
	// Auto: any available host with the vm role (the default).
	Auto Placement = "auto"
	// Manual: only the guest's available preferred hosts.
	Manual Placement = "manual"
)

// Role is a host's role in the pool.
type Role string

const (
	RoleVM      Role = "vm"
	RoleUtility Role = "utility"
)

// Guest is a guest's definition, as far as placement needs it.
type Guest struct {
	UUID      string
	Name      string
	HA        bool
	Placement Placement
	Preferred []string
	// Management: the guest is the management instance of this pool; HA
	// never protects it here.
	Management bool
	// Stopped: the operator stopped it (hbfence guest stop).
	Stopped bool
	// StartSeq grows with every hbfence guest start: a guest without HA
	// that stopped because its host failed runs again only when asked.
	StartSeq uint64
	// StartOn is the host the operator's latest start asked for (hbfence
	// guest start --on HOST), "" for any: read only with a StartSeq this
	// plan has not acted on yet.
	StartOn string
	// MoveSeq grows with every hbfence guest migrate: a request the plan
	// has not acted on yet (Assignment.MoveSeq) moves the running guest
	// to MoveTo, live, or (MoveRestart) by a stop there and a start on
	// MoveTo.
	MoveSeq     uint64
	MoveTo      string
	MoveRestart bool
}

// DefaultMaxAttempts bounds the start attempts of one placement when the
// pool sets no bound.
const DefaultMaxAttempts = 3

// Pool is the pool's configuration, as far as placement needs it.
type Pool struct {
	HA bool
	// MaxAttempts bounds the start attempts of one placement (default 3).
	MaxAttempts int
	// ManagedBy is the UUID of the guest that manages this pool (hbfence
	// pool managed-by), "" for none: HA never protects that guest here,
	// whatever its record says (M5).
	ManagedBy string
}

// AttemptID names one start order: the epoch of the plan that gave it and
// a number that grows with every placement of the guest. A host starts a
// guest at most once per AttemptID (doc.go, H2); the epoch makes the
// orders of a new master new, whatever plan it knew before.
type AttemptID struct {
	Epoch uint64 `json:"epoch"`
	N     int    `json:"n"`
}

// Before orders attempt IDs: by epoch, then number.
func (a AttemptID) Before(b AttemptID) bool {
	return a.Epoch < b.Epoch || a.Epoch == b.Epoch && a.N < b.N
}

// Failure is a start attempt that failed on a host.
type Failure struct {
	Attempt AttemptID `json:"attempt"`
	Message string    `json:"message"`
}

// Report is what a host incarnation last published (see doc.go, H4).
type Report struct {
	Host HostID `json:"host"`
	// Seq grows with every report of the incarnation.
	Seq uint64 `json:"seq"`
	// Epoch is the latest leader epoch the host had read when it wrote
	// the report: it obeys no plan older than that from then on.
	Epoch   uint64             `json:"epoch"`
	Running []string           `json:"running"`
	Failed  map[string]Failure `json:"failed,omitempty"`
	Leaving bool               `json:"leaving,omitempty"`
	// Done is, per guest, the latest start order this incarnation carried
	// out successfully: a Starting guest that is done but not running
	// stopped at once, and counts as a failed try.
	Done map[string]AttemptID `json:"done,omitempty"`
	// Absent answers the plan's question about a migration to this host
	// whose source is done (Assignment.SourceDone): read after that plan,
	// this host's hypervisor does not run the guest.
	Absent map[string]AttemptID `json:"absent,omitempty"`
	// Unsettled are the guests for which an earlier incarnation of this
	// host issued a hypervisor order (start, stop, kill, migrate) that
	// this incarnation has not yet confirmed settled (running here, or
	// gone from two listings a settle time apart): the order may still
	// be carried out, so the guest is not free (restart/agent doc.go).
	Unsettled []string `json:"unsettled,omitempty"`
}

// Host is one host as the master sees it: its current incarnation, its
// liveness, its roles and its latest report.
type Host struct {
	ID     HostID
	State  liveness.State
	Unsafe bool // no watchdog: dead does not mean fenced
	// GuestsUnknown: the host cannot list its guests (no driver, no kill
	// hook): left does not mean its guests stopped, its reports show no
	// guest absent, and it is given none.
	GuestsUnknown bool
	Roles         []Role
	Report        *Report // nil when none was read
}

// gone: the host runs no guest and starts none again (doc.go, M2). Dead
// with a watchdog is gone whatever the host could list (the watchdog reset
// it, or it confirmed its guests killed); left is gone only from a host
// that could list its guests, since leaving stops what the listing shows.
func (h Host) gone() bool {
	return (h.State == liveness.Dead && !h.Unsafe) || (h.State == liveness.Left && !h.GuestsUnknown)
}

// olderThan: the master's view of the host is an older incarnation than
// id, which the plan names: a late write of an older generation read back
// over the slot, or a view that has not caught up with the plan. Nothing
// that view shows (gone, a report, an absence) is about id, which may still
// run what it was given: generations are compared here and only here
// (issue 9 item 3; liveness ignores such records too).
func (h Host) olderThan(id HostID) bool {
	return h.ID.Name == id.Name && h.ID.Generation < id.Generation
}

// caughtUp: the host's current incarnation reported on epoch or later.
func (h Host) caughtUp(epoch uint64) bool {
	return h.Report != nil && h.Report.Host == h.ID && h.Report.Epoch >= epoch
}

// report is the host's report if it is its current incarnation's.
func (h Host) report() *Report {
	if h.Report != nil && h.Report.Host == h.ID {
		return h.Report
	}
	return nil
}

// available: the host may be given a guest (M5): live, caught up, with
// the vm role and a watchdog, not leaving, not evacuated, not in
// maintenance.
func (h Host) available(epoch uint64, evac map[HostID]Evacuation, maint map[string]bool) bool {
	_, evacuated := evac[h.ID]
	return h.State == liveness.Live && !h.Unsafe && !h.GuestsUnknown && h.caughtUp(epoch) && slices.Contains(h.Roles, RoleVM) &&
		!h.Report.Leaving && !evacuated && !maint[h.ID.Name]
}

// State is a guest's state in the plan.
type State string

const (
	Running  State = "running"
	Starting State = "starting"
	Pending  State = "pending"
	Stopped  State = "stopped"
	Stopping State = "stopping"
	// Migrating: live-migrating from Host to Target (an evacuation, a
	// host in maintenance, or the operator's hbfence guest migrate).
	Migrating State = "migrating"
	Error     State = "error"
)

// Assignment is one guest's entry in the plan.
type Assignment struct {
	// Host is the incarnation that runs the guest or may start it; zero
	// when none.
	Host  HostID `json:"host"`
	State State  `json:"state"`
	// Attempt is the start order of the guest's latest placement; Tries
	// counts the placements since the last fresh start (a failover, or
	// the operator's start), bounded by MaxAttempts.
	Attempt AttemptID `json:"attempt"`
	Tries   int       `json:"tries,omitempty"`
	Tried   []string  `json:"tried,omitempty"`
	Message string    `json:"message,omitempty"`
	// StartSeq is the guest's StartSeq this entry has acted on.
	StartSeq uint64 `json:"start_seq,omitempty"`
	// ByOperator: the placement carries out the operator's request
	// (hbfence guest start, or an evacuation), not HA: its retries and
	// its wait for a host go on whatever HA says. Otherwise they go on
	// only while HA is on.
	ByOperator bool `json:"by_operator,omitempty"`
	// Target is where a Migrating guest goes.
	Target HostID `json:"target,omitempty"`
	// Restart: a Stopping guest is restarted elsewhere once stopped (an
	// evacuation without migration).
	Restart bool `json:"restart,omitempty"`
	// SourceDone: a Migrating guest no longer runs on its source; the
	// target says whether it has it (Report.Absent) before the guest may
	// be started anywhere else.
	SourceDone bool `json:"source_done,omitempty"`
	// On is the host the operator asked for: a free guest is placed
	// there while it is available (hbfence guest start --on, or a move by
	// hbfence guest migrate --restart, or after its live migration
	// failed); cleared once placed.
	On string `json:"on,omitempty"`
	// MoveSeq is the guest's MoveSeq this entry has acted on.
	MoveSeq uint64 `json:"move_seq,omitempty"`
	// AbsentSeq is the sequence of the first report of its host's
	// incarnation AbsentGen that did not show the guest: a second, later
	// one is needed before the guest counts as gone from there (a guest
	// rebooting is absent from one listing).
	AbsentSeq uint64 `json:"absent_seq,omitempty"`
	AbsentGen uint64 `json:"absent_gen,omitempty"`
	// ReportSeq is the sequence of the host's report that last showed
	// the guest running there: a later report without it means the guest
	// stopped on that host (it crashed, or was stopped by hand).
	ReportSeq uint64 `json:"report_seq,omitempty"`
}

// Plan is the master's plan: every guest's owner and state.
type Plan struct {
	Epoch  uint64                `json:"epoch"`
	Seq    uint64                `json:"seq"`
	Guests map[string]Assignment `json:"guests"`
}

// After reports whether p is newer than q: a later epoch, or a later
// sequence of the same epoch.
func (p Plan) After(q Plan) bool {
	return p.Epoch > q.Epoch || p.Epoch == q.Epoch && p.Seq > q.Seq
}

// Input is what Reconcile decides on.
type Input struct {
	Epoch       uint64 // the master's epoch
	Pool        Pool
	Guests      []Guest
	Hosts       []Host
	Prev        Plan // the latest plan on storage (any epoch); zero if none
	Evacuations []Evacuation
	// Maintenance are the hosts in maintenance, by name (any
	// incarnation): each is emptied as by an evacuation of every guest
	// (live-migrated where the driver can, else stopped and restarted
	// elsewhere) and given none until it leaves maintenance.
	Maintenance []string
}

// Evacuation is the operator's request to empty one host incarnation
// before a planned shutdown: the guests named (or all) are live-migrated,
// the others stopped and restarted on other hosts.
type Evacuation struct {
	Host    HostID
	All     bool
	Migrate []string
}

func (e Evacuation) migrates(uuid string) bool { return e.All || slices.Contains(e.Migrate, uuid) }

// Note is one thing the master should log: a placement, a guest failing
// over, an invariant broken.
type Note struct {
	Guest string
	Text  string
	Alarm bool // an invariant broke: the operator must look
}

// Reconcile computes the plan of epoch in.Epoch from the hosts' reports,
// the previous plan and the definitions (doc.go, M1–M5), in two steps:
// first, for each guest, who may still hold it (hold.go: kept where a host
// may run, start or stop it; migrating; or free, with the reason); then
// the placement policy for the migrations and the free guests (M5).
// Within an epoch the plan's sequence grows by one when the plan changes,
// and only then.
func Reconcile(in Input) (Plan, []Note) {
	p := Plan{Epoch: in.Epoch, Seq: 1, Guests: make(map[string]Assignment, len(in.Guests))}
	if in.Prev.Epoch == in.Epoch {
		p.Seq = in.Prev.Seq + 1
	}
	w := newWorld(in)
	guests := slices.Clone(in.Guests)
	slices.SortFunc(guests, func(a, b Guest) int { return cmp.Compare(a.UUID, b.UUID) })
	var notes []Note
	var free []freed
	var migrations []migration
	for _, g := range guests {
		v := w.hold(g, in.Prev.Guests[g.UUID])
		notes = append(notes, v.notes...)
		switch v.kind {
		case kept:
			p.Guests[g.UUID] = v.a
			for _, n := range v.load {
				w.load[n]++
			}
		case toMigrate:
			migrations = append(migrations, migration{g, v.a, v.manual, v.fresh})
		case released:
			free = append(free, freed{g, v.a, v.reason})
		}
	}
	pl := newPlacer(in, w.load, w.evac, w.maint)
	notes = append(notes, placeMigrations(p, pl, migrations, in.Epoch)...)
	notes = append(notes, placeFree(p, pl, free, in, w.behind)...)
	// A move asked for a guest that does not run (the daemon refuses
	// one) is dropped, not kept for later: it was about where the guest
	// ran then.
	for _, g := range guests {
		if a := p.Guests[g.UUID]; a.MoveSeq < g.MoveSeq && a.State != Running {
			a.MoveSeq = g.MoveSeq
			p.Guests[g.UUID] = a
		}
	}
	// The sequence grows only when the plan changes: hosts run a round
	// on every new sequence.
	if in.Prev.Epoch == in.Epoch && samePlan(p.Guests, in.Prev.Guests) {
		p.Seq = in.Prev.Seq
	}
	return p, notes
}

// freed is a guest no host may hold, with why (hold.go).
type freed struct {
	g      Guest
	prev   Assignment
	reason freeReason
}

// migration is a guest an evacuation (or the operator: manual) migrates
// from its host; fresh: a new request of the operator's.
type migration struct {
	g             Guest
	a             Assignment
	manual, fresh bool
}

// placeMigrations: an evacuation's migration keeps a target that is still
// available, else gets one (a new order), else waits. The operator's goes
// to its target only: a new one is ordered (move.go checked the target),
// one under way keeps its order.
func placeMigrations(p Plan, pl *placer, migrations []migration, epoch uint64) []Note {
	var notes []Note
	for _, m := range migrations {
		a := m.a
		if m.manual {
			pl.take(a.Target)
			a.State = Migrating
			if m.fresh {
				a.Attempt = AttemptID{Epoch: epoch, N: a.Attempt.N + 1}
				a.Message = fmt.Sprintf("moving to %s, live, as the operator asked", a.Target.Name)
				notes = append(notes, Note{Guest: m.g.UUID, Text: fmt.Sprintf("migrating from %s to %s (hbfence guest migrate)", a.Host, a.Target)})
			}
			p.Guests[m.g.UUID] = a
			continue
		}
		if !a.Target.IsZero() && pl.take(a.Target) {
			a.State = Migrating
		} else if t, ok := pl.choose(m.g, nil); ok {
			a.State, a.Target = Migrating, t.ID
			a.Attempt = AttemptID{Epoch: epoch, N: a.Attempt.N + 1}
			notes = append(notes, Note{Guest: m.g.UUID, Text: fmt.Sprintf("migrating from %s to %s", a.Host, t.ID)})
		} else {
			a.Target = HostID{}
			a.Message = fmt.Sprintf("evacuating %s: no available host to migrate to%s", a.Host.Name, placementNote(m.g))
		}
		p.Guests[m.g.UUID] = a
	}
	return notes
}

// placeFree is M5 for the free guests: whether each is wanted (HA, the
// operator's start or evacuation), and if so, on which available host,
// within the bound on attempts; nothing is placed while a host that is
// not gone is behind (M4).
func placeFree(p Plan, pl *placer, free []freed, in Input, behind []string) []Note {
	maxAttempts := in.Pool.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	var notes []Note
	for _, f := range free {
		g, prev := f.g, f.prev
		a := Assignment{State: Stopped, Attempt: prev.Attempt, Tries: prev.Tries, Tried: prev.Tried, Message: prev.Message,
			StartSeq: prev.StartSeq, ByOperator: prev.ByOperator, On: prev.On, MoveSeq: prev.MoveSeq}
		var want bool
		switch {
		case g.Stopped:
			a.ByOperator, a.On = false, ""
		case g.StartSeq > prev.StartSeq:
			want = true // hbfence guest start: fresh attempts
			a.Tries, a.Tried, a.StartSeq, a.Message, a.ByOperator, a.On = 0, nil, g.StartSeq, "", true, g.StartOn
		case prev.State == Error:
			a.State = Error // until the operator starts it again
		case f.reason == attemptFailed, prev.State == Pending:
			// A retry, or a wait for a host: only while what asked for
			// the guest still does (HA, or the operator's request).
			want = prev.ByOperator || haEffective(in.Pool, g)
			if !want {
				a.Message = "not started: " + haOff(in.Pool, g)
			}
		case f.reason == evacuated:
			want = true // every guest not migrated is restarted elsewhere
			a.Tries, a.Tried, a.ByOperator = 0, nil, true
		case f.reason == ownerGone:
			// A failover: fresh attempts.
			want = haEffective(in.Pool, g)
			a.Tries, a.Tried, a.ByOperator = 0, nil, false
			if !want {
				a.Message += "; not restarted: " + haOff(in.Pool, g)
			}
		case f.reason == stoppedOnHost:
			want = haEffective(in.Pool, g)
			if !want {
				a.Message += "; not restarted: " + haOff(in.Pool, g)
			}
		}
		if !want {
			a.ByOperator, a.On = false, ""
			p.Guests[g.UUID] = a
			continue
		}
		switch {
		case a.Tries >= maxAttempts:
			a.State = Error
			a.Message = fmt.Sprintf("gave up after %d start attempts; last: %s", a.Tries, prev.Message)
			notes = append(notes, Note{Guest: g.UUID, Text: a.Message})
		case len(behind) > 0:
			a.State = Pending
			a.Message = fmt.Sprintf(awaitingReports, strings.Join(behind, ", "), in.Epoch)
		default:
			h, ok := pl.chooseOn(g, a.On)
			if a.On != "" && !ok {
				a.Message = fmt.Sprintf("%s, which the operator asked for, is not available (or not allowed by its placement): placed where HA would", a.On)
			}
			if !ok {
				h, ok = pl.choose(g, a.Tried)
			}
			if !ok && len(a.Tried) > 0 {
				// Every available host was tried: try them again, within
				// the bound on attempts.
				h, ok = pl.choose(g, nil)
			}
			if !ok {
				a.State = Pending
				a.Message = "no available host" + placementNote(g)
				break
			}
			if prev.State == Pending || a.On == h.ID.Name {
				a.Message = "" // why it waited no longer holds
			}
			a.Host, a.State, a.Tries, a.On = h.ID, Starting, a.Tries+1, ""
			a.Attempt = AttemptID{Epoch: in.Epoch, N: a.Attempt.N + 1}
			notes = append(notes, Note{Guest: g.UUID, Text: fmt.Sprintf("placed on %s (try %d)", h.ID, a.Tries)})
		}
		p.Guests[g.UUID] = a
	}
	return notes
}

// samePlan compares two plans' entries.
func samePlan(a, b map[string]Assignment) bool {
	if len(a) != len(b) {
		return false
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// targetGone reports whether the target of a migration is gone.
func targetGone(hosts map[string]Host, a Assignment) bool {
	dst, ok := hosts[a.Target.Name]
	return !ok || dst.gone() && !dst.olderThan(a.Target)
}

// targetAnswered reports whether the target of a migration (by name, any
// incarnation) answered that it does not have the guest (Report.Absent).
func targetAnswered(hosts map[string]Host, a Assignment, uuid string) bool {
	dst, ok := hosts[a.Target.Name]
	return ok && dst.report() != nil && dst.report().Absent[uuid] == a.Attempt
}

// freeReason is why a guest has no host that may run it.
type freeReason int

const (
	notAssigned       freeReason = iota // stopped, pending, in error, or new
	ownerGone                           // its host is dead (fenced) or left
	attemptFailed                       // its host reported the start failed
	stoppedByOperator                   // hbfence guest stop, done
	stoppedOnHost                       // it no longer runs on its live host
	evacuated                           // stopped for an evacuation: start it elsewhere
)

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(slices.Clone(list), s)
}

func haEffective(p Pool, g Guest) bool { return p.HA && g.HA && !g.Management && !p.IsManager(g.UUID) }

func haOff(p Pool, g Guest) string {
	switch {
	case p.IsManager(g.UUID):
		// First: the relation also turned the guest's own HA off, and
		// "enable it" is what the operator must not be told.
		return "it manages this pool (hbfence pool managed-by): it is an HA guest of another pool, never of this one"
	case !p.HA:
		return "HA is disabled on the pool"
	case !g.HA:
		return "HA is disabled on the guest"
	case g.Management:
		return "it is the management instance of this pool"
	}
	return ""
}

func placementNote(g Guest) string {
	if g.Placement == Manual {
		return fmt.Sprintf(" among its preferred hosts %v", g.Preferred)
	}
	return ""
}

// placer picks hosts for free guests: the least loaded available host
// (then by name), among a manual guest's preferred hosts, not yet tried. It
// keeps the available hosts in a heap by load, so that placing G guests
// over H hosts costs O((G + H) log H).
type placer struct {
	hosts []Host         // available hosts
	load  []int          // by index into hosts
	index map[string]int // name → index
	heap  []int          // indices, a min-heap by (load, name)
	pos   []int          // index → position in heap
}

func newPlacer(in Input, load map[string]int, evac map[HostID]Evacuation, maint map[string]bool) *placer {
	p := &placer{index: map[string]int{}}
	for _, h := range in.Hosts {
		if h.available(in.Epoch, evac, maint) {
			p.index[h.ID.Name] = len(p.hosts)
			p.hosts = append(p.hosts, h)
			p.load = append(p.load, load[h.ID.Name])
		}
	}
	p.pos = make([]int, len(p.hosts))
	for i := range p.hosts {
		p.heap = append(p.heap, i)
		p.pos[i] = i
	}
	for i := len(p.heap)/2 - 1; i >= 0; i-- {
		p.down(i)
	}
	return p
}

func (p *placer) less(a, b int) bool {
	return p.load[a] < p.load[b] || p.load[a] == p.load[b] && p.hosts[a].ID.Name < p.hosts[b].ID.Name
}

func (p *placer) swap(i, j int) {
	p.heap[i], p.heap[j] = p.heap[j], p.heap[i]
	p.pos[p.heap[i]], p.pos[p.heap[j]] = i, j
}

func (p *placer) down(i int) {
	for {
		l, small := 2*i+1, i
		if l < len(p.heap) && p.less(p.heap[l], p.heap[small]) {
			small = l
		}
		if r := l + 1; r < len(p.heap) && p.less(p.heap[r], p.heap[small]) {
			small = r
		}
		if small == i {
			return
		}
		p.swap(i, small)
		i = small
	}
}

// take counts one more guest on host id if it is available, and reports
// whether it is.
func (p *placer) take(id HostID) bool {
	i, ok := p.index[id.Name]
	if !ok || p.hosts[i].ID != id {
		return false
	}
	p.load[i]++
	p.down(p.pos[i])
	return true
}

// chooseOn takes host name for g if it is available and g's placement
// allows it; false for "" (no host asked for).
func (p *placer) chooseOn(g Guest, name string) (Host, bool) {
	i, ok := p.index[name]
	if name == "" || !ok || !allowedOn(g, name) {
		return Host{}, false
	}
	p.load[i]++
	p.down(p.pos[i])
	return p.hosts[i], true
}

// choose picks a host for g, or reports none.
func (p *placer) choose(g Guest, tried []string) (Host, bool) {
	best := -1
	consider := func(i int) {
		if !slices.Contains(tried, p.hosts[i].ID.Name) && (best < 0 || p.less(i, best)) {
			best = i
		}
	}
	if g.Placement == Manual {
		for _, n := range g.Preferred {
			if i, ok := p.index[n]; ok {
				consider(i)
			}
		}
	} else {
		// Walk the heap in order of load until a host not tried: tried
		// is short, so this visits few nodes.
		var walk func(pos int)
		walk = func(pos int) {
			if pos >= len(p.heap) || best >= 0 && !p.less(p.heap[pos], best) {
				return
			}
			consider(p.heap[pos])
			walk(2*pos + 1)
			walk(2*pos + 2)
		}
		walk(0)
	}
	if best < 0 {
		return Host{}, false
	}
	p.load[best]++
	p.down(p.pos[best])
	return p.hosts[best], true
}

// A guest the master holds pending until every live host has reported
// on its epoch has the message awaitingPrefix + hosts + awaitingMiddle +
// epoch; AwaitingReports recognises it from the same two parts.
const (
	awaitingPrefix  = "waiting for "
	awaitingMiddle  = " to report on epoch "
	awaitingReports = awaitingPrefix + "%s" + awaitingMiddle + "%d"
)

// AwaitingReports says whether message is that of a guest held pending
// until every live host has reported on the master's epoch: a hold of a
// round or so, after which the guest is placed — not a guest that no
// host can take.
func AwaitingReports(message string) bool {
	rest, ok := strings.CutPrefix(message, awaitingPrefix)
	return ok && strings.Contains(rest, awaitingMiddle)
}
