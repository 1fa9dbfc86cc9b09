package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/runstate"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/hbfence/hbfence/restart/driver"
	"github.com/hbfence/hbfence/restart/store"
	"github.com/rs/zerolog"
)

// guestsRoot is the cluster root of the guest records: [guests] root, or
// the directory of the heartbeat file. Empty when neither applies (a
// block-device pool without [guests] root): the guest side is off.
func guestsRoot(c *config.Config) string {
	if c.Guests.Root != "" {
		return c.Guests.Root
	}
	if fi, err := os.Stat(c.Heartbeat.Path); err == nil && fi.Mode().IsRegular() {
		return filepath.Dir(c.Heartbeat.Path)
	}
	return ""
}

// drivers builds this host's hypervisor drivers from [guests] drivers.
func drivers(c *config.Config, host string) map[string]driver.Driver {
	out := map[string]driver.Driver{}
	for _, n := range c.Guests.Drivers {
		switch n {
		case "process":
			out[n] = &driver.Process{StateDir: c.Guests.StateDir, Host: host}
		case "xl":
			out[n] = &driver.Xl{Path: c.Guests.XlPath}
		case "virsh":
			out[n] = &driver.Virsh{Path: c.Guests.VirshPath, URI: c.Guests.VirshURI, MigrateURI: c.Guests.VirshMigrateURI}
		case "exec":
			out[n] = &driver.Exec{Argv: c.Guests.Exec}
		}
	}
	return out
}

// driverKiller kills every guest this host's drivers run, and confirms
// they are gone: the fencing path of a host with drivers and no
// [fence] kill_guests hook. Every guest, not only the HA ones: once this
// host is dead to the pool, nothing of the pool may run here.
type driverKiller struct {
	drivers map[string]driver.Driver
	// rs records the kills ahead (restart/agent doc.go); nil: none.
	rs  *runstate.File
	log zerolog.Logger
}

func (k driverKiller) KillHAGuests(ctx context.Context, reason string) error {
	var errs []error
	for name, d := range k.drivers {
		run, err := d.Running(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: listing guests: %w", name, err))
			continue
		}
		if err := agent.RecordKills(k.rs, name, run); err != nil {
			// The kill goes on: it can only take guests away.
			k.log.Error().Err(err).Str("driver", name).Msg("recording the fence's kills; they are made all the same")
		}
		for _, u := range run {
			if err := d.Destroy(ctx, driver.Spec{UUID: u, Name: u}); err != nil {
				errs = append(errs, fmt.Errorf("%s: destroying %s: %w", name, u, err))
			}
		}
		if err := driver.ConfirmGone(ctx, d, run...); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		if len(run) == 0 {
			// Nothing listed yet: a create the fence cut off may
			// still land. Clean only when a listing a settle time
			// later shows nothing either (ConfirmGone settles only
			// for the guests it names).
			if err := driver.WaitSettle(ctx, d); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
		if still, err := d.Running(ctx); err != nil || len(still) > 0 {
			errs = append(errs, fmt.Errorf("%s: guests still listed after destroy: %v (%v)", name, still, err))
		} else if err := agent.ForgetKills(k.rs, run); err != nil {
			k.log.Error().Err(err).Str("driver", name).Msg("removing the fence's confirmed kills from the run-state file")
		}
	}
	return errors.Join(errs...)
}

// bothKillers runs two killers in turn; both must confirm.
type bothKillers [2]fence.GuestKiller

func (b bothKillers) KillHAGuests(ctx context.Context, reason string) error {
	return errors.Join(b[0].KillHAGuests(ctx, reason), b[1].KillHAGuests(ctx, reason))
}

// cluster adapts one incarnation's member and lease runner for the agent.
type cluster struct {
	m  *heartbeat.Member
	r  *master.Runner
	t  timing.Params
	fc *fencing
}

// Fresh: renewals are recent and the host is not fencing. The fence is
// latched; a renewal that lands after it does not make the host fresh.
func (c cluster) Fresh(now time.Time) bool {
	last := c.m.LastRenewal()
	return !last.IsZero() && now.Sub(last) < c.t.RenewalFail && c.fc.status().State <= fence.Healthy
}

func (c cluster) Now() time.Time       { return clk.Now() }
func (c cluster) Self() ondisk.Owner   { return c.m.Self() }
func (c cluster) Leader() lease.Holder { return c.r.Holder() }
func (c cluster) Master(now time.Time) (lease.Mastership, bool) {
	return c.r.Master(now)
}
func (c cluster) Peers() []agent.Peer {
	st := c.m.Status(clk.Now())
	out := make([]agent.Peer, 0, len(st.Hosts))
	for _, h := range st.Hosts {
		if h.Name == "" && (h.State == liveness.Dead || h.State == liveness.Left) {
			continue
		}
		out = append(out, agent.Peer{Name: h.Name, Slot: h.Slot, Generation: h.Generation, State: h.State, Unsafe: h.Unsafe, GuestsUnknown: h.GuestsUnknown})
	}
	return out
}

// openGuestStore opens the guest records, or says why the guest side is
// off.
func openGuestStore(c *config.Config, t timing.Params) (*store.Store, string, error) {
	root := guestsRoot(c)
	if root == "" {
		return nil, "no cluster root: set [guests] root to the OCFS2 cluster root's mount point", nil
	}
	st, err := store.Open(root, true, t.IOTimeout)
	if err != nil {
		return nil, "", fmt.Errorf("%s: [guests] root: %w", c.Path, err)
	}
	return st, "", nil
}

// ---------------------------------------------------------- commands

// GuestRequest is the argument of the guest commands.
type GuestRequest struct {
	Op string `json:"op"` // add, remove, ha, start, stop, migrate
	// Guest is a name or UUID (all but add).
	Guest string `json:"guest,omitempty"`
	// For add.
	Name      string   `json:"name,omitempty"`
	UUID      string   `json:"uuid,omitempty"`
	Driver    string   `json:"driver,omitempty"`
	Config    string   `json:"config,omitempty"`
	Placement string   `json:"placement,omitempty"`
	Preferred []string `json:"preferred,omitempty"`
	// HA for add and ha.
	HA         bool `json:"ha"`
	Management bool `json:"management,omitempty"`
	// Manages is the pool UUID the guest manages (add --manages: never
	// this pool's own).
	Manages string `json:"manages,omitempty"`
	// On is the host of start --on and of migrate; Restart: migrate by
	// a stop and a start (--restart).
	On      string `json:"on,omitempty"`
	Restart bool   `json:"restart,omitempty"`
}

func update(ag *agent.Agent, ms *masterSide, f func(*store.PoolConfig) error) error {
	if ag == nil {
		return errors.New("the guest side is off on this host (see its log), or it has not joined yet")
	}
	err := ag.Update(f)
	if errors.Is(err, agent.ErrNotMaster) {
		return notMaster{fmt.Errorf("guests and the pool are changed on the master, and this host is not the master; %s", ms.whereMaster())}
	}
	return err
}

// PoolView is hbfence pool show: the pool record as this host last read
// it, with every host's roles beside its state in the heartbeat area.
type PoolView struct {
	PoolUUID string `json:"pool_uuid"`
	// ManagedBy is the UUID of the guest that manages this pool (pool
	// managed-by), "" for none; Manager its name when it is a guest of
	// this pool too (never HA here).
	ManagedBy string `json:"managed_by,omitempty"`
	Manager   string `json:"manager,omitempty"`
	// Record is the pool record's epoch, sequence and time of writing
	// (zero: this host has read none).
	Record struct {
		Epoch   uint64    `json:"epoch"`
		Seq     uint64    `json:"seq"`
		Written time.Time `json:"written"`
	} `json:"record"`
	HA           bool                        `json:"ha"`
	MaxAttempts  int                         `json:"max_attempts"`
	Hosts        []PoolHost                  `json:"hosts"`
	Repositories []string                    `json:"repositories"`
	Guests       int                         `json:"guests"`
	HAGuests     int                         `json:"ha_guests"`
	Evacuations  map[string]store.Evacuation `json:"evacuations,omitempty"`
	// Maintenance are the hosts in maintenance (hbfence host
	// maintenance), by name.
	Maintenance map[string]store.Maintenance `json:"maintenance,omitempty"`
	Alarms      []Alarm                      `json:"alarms"`
}

// PoolHost is one host of PoolView: its roles, and its state in the
// heartbeat area ("" for a host given roles but not in the area).
type PoolHost struct {
	Name  string         `json:"name"`
	Roles []restart.Role `json:"roles"`
	State string         `json:"state"`
	// Maintenance: the host is in maintenance (since when: the pool
	// view's Maintenance).
	Maintenance bool `json:"maintenance,omitempty"`
}

// poolView builds hbfence pool show's answer; it works on any host.
func poolView(ag *agent.Agent, st Status) (PoolView, error) {
	if ag == nil {
		return PoolView{}, errors.New("the guest side is off on this host (see its log), or it has not joined yet")
	}
	c, h := ag.Pool(), ag.PoolHeader()
	v := PoolView{PoolUUID: st.PoolUUID.String(), HA: c.HA, MaxAttempts: c.MaxAttempts, Repositories: append([]string{}, c.Repositories...),
		Guests: len(c.Guests), Evacuations: c.Evacuations, Maintenance: c.Maintenance, Alarms: st.Alarms}
	v.Record.Epoch, v.Record.Seq, v.Record.Written = h.Epoch, h.Seq, h.Written
	v.ManagedBy, v.Manager = managerView(c)
	if v.MaxAttempts == 0 {
		v.MaxAttempts = restart.DefaultMaxAttempts
	}
	for _, g := range c.Guests {
		if g.HA {
			v.HAGuests++
		}
	}
	seen := map[string]bool{}
	for _, hs := range st.Hosts {
		if hs.Name == "" || seen[hs.Name] {
			continue
		}
		seen[hs.Name] = true
		v.Hosts = append(v.Hosts, PoolHost{Name: hs.Name, Roles: c.RolesOf(hs.Name), State: hs.State.String()})
	}
	for name := range c.Roles {
		if !seen[name] {
			seen[name] = true
			v.Hosts = append(v.Hosts, PoolHost{Name: name, Roles: c.RolesOf(name)})
		}
	}
	for name := range c.Maintenance {
		if !seen[name] {
			v.Hosts = append(v.Hosts, PoolHost{Name: name, Roles: c.RolesOf(name)})
		}
	}
	for i := range v.Hosts {
		_, v.Hosts[i].Maintenance = c.Maintenance[v.Hosts[i].Name]
	}
	slices.SortFunc(v.Hosts, func(a, b PoolHost) int { return strings.Compare(a.Name, b.Name) })
	return v, nil
}

// repairPool writes a good pool record over one that cannot be read, on
// the master (agent.RepairPool).
func repairPool(ag *agent.Agent, ms *masterSide) (agent.Repaired, error) {
	if ag == nil {
		return agent.Repaired{}, errors.New("the guest side is off on this host (see its log), or it has not joined yet")
	}
	r, err := ag.RepairPool()
	if errors.Is(err, agent.ErrNotMaster) {
		return r, notMaster{fmt.Errorf("the pool record is repaired on the master, and this host is not the master; %s", ms.whereMaster())}
	}
	return r, err
}

// GuestAnswer is the answer of the guest commands: the guest's definition
// as written, and, for a start that cannot be carried out now, why and
// until when (Deferred).
type GuestAnswer struct {
	store.GuestDef
	Deferred string `json:"deferred,omitempty"`
}

// startDeferred says why a start of the guest (as status shows it) cannot
// be carried out now, or "": the master never starts a guest that a host
// not yet known gone may run (restart doc.go, M3), so a start of a guest
// whose host hangs waits until that host is declared dead and known
// fenced, or comes back (issue 11: the start returned 0 and then started
// nothing, silently).
func startDeferred(gs agent.GuestStatus, hosts []heartbeat.HostStatus) string {
	if gs.Host == "" {
		return ""
	}
	var h *heartbeat.HostStatus
	for i := range hosts {
		if hosts[i].Name == gs.Host {
			h = &hosts[i]
		}
	}
	switch {
	case h == nil:
		return fmt.Sprintf("its host %s is not in this host's view of the pool: the master starts it once %s is known gone", gs.Host, gs.Host)
	case h.State == liveness.Suspect || h.State == liveness.Unknown:
		return fmt.Sprintf("its host %s is %s, not yet dead: the master starts it elsewhere only once %s is declared dead and known fenced (host_dead after its last renewal), and it runs on if %s comes back", gs.Host, h.State, gs.Host, gs.Host)
	case h.State == liveness.Dead && !h.Fenced:
		return fmt.Sprintf("its host %s is dead but not known fenced (%s): it is not started elsewhere; stop it there by hand, then start it again", gs.Host, gs.Message)
	case h.State == liveness.Live && gs.State == restart.Running:
		return fmt.Sprintf("it already runs on %s: nothing to start", gs.Host)
	}
	return ""
}

func guestCommand(ag *agent.Agent, ms *masterSide, hosts func() []heartbeat.HostStatus, raw json.RawMessage) (any, error) {
	var req GuestRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("guest: bad arguments: %v", err)
	}
	var result store.GuestDef
	deferred := ""
	err := update(ag, ms, func(c *store.PoolConfig) error {
		if req.Op == "add" {
			g, err := newGuest(req, *c, ag.MountBase())
			if err != nil {
				return err
			}
			if g, err = withManages(req, g, *c, ag.PoolUUID()); err != nil {
				return err
			}
			c.Guests = append(c.Guests, g)
			result = g
			return nil
		}
		i, ok := c.Find(req.Guest)
		if !ok {
			return fmt.Errorf("no guest %q in the pool (see hbfence guest list)", req.Guest)
		}
		g := &c.Guests[i]
		switch req.Op {
		case "remove":
			// Only a guest known to run nowhere may leave the pool's
			// records: one in error may still run somewhere (two hosts
			// reported it), and would then run untracked.
			if st := guestState(ag, g.UUID); st != restart.Stopped && st != restart.Pending && st != "" {
				return fmt.Errorf("guest %s is %s: stop it first (hbfence guest stop %s), and remove it once it is stopped", g.Name, st, g.Name)
			}
			result = *g
			c.Guests = slices.Delete(c.Guests, i, i+1)
			return nil
		case "ha":
			if req.HA && g.Management {
				return fmt.Errorf("guest %s is the management instance of this pool: HA for it on the pool it manages is refused (run it as an HA guest of another pool)", g.Name)
			}
			if req.HA && c.IsManager(g.UUID) {
				return managerHARefused(*c, *g)
			}
			g.HA = req.HA
		case "start":
			var cur agent.GuestStatus
			for _, gs := range ag.Guests() {
				if gs.UUID == g.UUID {
					cur = gs
					deferred = startDeferred(gs, hosts())
				}
			}
			if req.On != "" {
				switch cur.State {
				case restart.Running, restart.Starting, restart.Migrating, restart.Stopping:
					return fmt.Errorf("guest %s is %s on %s: start --on is for a stopped guest; move a running one with hbfence guest migrate %s %s", g.Name, cur.State, cur.Host, g.Name, req.On)
				}
				if why := unavailableFor(*c, *g, req.On, hosts()); why != "" {
					return fmt.Errorf("guest %s is not started on %s: %s", g.Name, req.On, why)
				}
			}
			g.Stopped = false
			g.StartSeq++
			g.StartOn = req.On
		case "migrate":
			var cur agent.GuestStatus
			for _, gs := range ag.Guests() {
				if gs.UUID == g.UUID {
					cur = gs
				}
			}
			if err := moveGuest(g, *c, cur, req.On, req.Restart, hosts()); err != nil {
				return err
			}
		case "stop":
			g.Stopped = true
		default:
			return fmt.Errorf("unknown guest operation %q", req.Op)
		}
		result = *g
		return nil
	})
	return GuestAnswer{GuestDef: result, Deferred: deferred}, err
}

// inPool refuses a host the heartbeat area does not know (issue 11: pool
// role was accepted for any name, and a typo gave roles to nobody).
func inPool(name string, hosts []heartbeat.HostStatus) error {
	var names []string
	for _, h := range hosts {
		if h.Name == name {
			return nil
		}
		if h.Name != "" {
			names = append(names, h.Name)
		}
	}
	slices.Sort(names)
	return fmt.Errorf("pool role: no host %q in the pool's heartbeat area (its hosts: %s); a host is in the pool once its daemon has joined", name, strings.Join(names, ", "))
}

// hostRoles checks hbfence pool role HOST ROLES: the host name by the one
// host-name rule, each role known.
func hostRoles(host string, roles []string) ([]restart.Role, error) {
	if err := ondisk.ValidHostName(host); err != nil {
		return nil, fmt.Errorf("pool role: %v", err)
	}
	var rs []restart.Role
	for _, r := range roles {
		if r != string(restart.RoleVM) && r != string(restart.RoleUtility) {
			return nil, fmt.Errorf("role %q of %s: use vm or utility", r, host)
		}
		rs = append(rs, restart.Role(r))
	}
	return rs, nil
}

func guestState(ag *agent.Agent, uuid string) restart.State {
	for _, g := range ag.Guests() {
		if g.UUID == uuid {
			return g.State
		}
	}
	return ""
}

// mountBase is where the pool's repositories are mounted ([storage]
// mount_base).
func newGuest(req GuestRequest, c store.PoolConfig, mountBase string) (store.GuestDef, error) {
	g := store.GuestDef{UUID: strings.ToLower(req.UUID), Name: req.Name, Driver: req.Driver, Config: req.Config, HA: req.HA,
		Placement: restart.Placement(req.Placement), Preferred: req.Preferred, Management: req.Management, Stopped: true}
	// For xl and virsh the configuration names the UUID: take it, or
	// check that --uuid agrees.
	var reader driver.ConfigReader
	switch g.Driver {
	case "xl":
		reader = &driver.Xl{}
	case "virsh":
		reader = &driver.Virsh{}
	}
	if reader != nil {
		u, err := reader.ConfigUUID(g.Config)
		if err != nil {
			return g, fmt.Errorf("--config: %w", err)
		}
		if g.UUID == "" {
			g.UUID = u
		} else if u != g.UUID {
			return g, fmt.Errorf("--uuid %s, but the configuration %s gives the guest UUID %s", g.UUID, g.Config, u)
		}
	}
	if g.UUID == "" {
		g.UUID = ondisk.NewUUID().String()
	}
	if err := driver.ValidUUID(g.UUID); err != nil {
		return g, fmt.Errorf("--uuid: %v", err)
	}
	if err := store.ValidGuestName(g.Name); err != nil {
		return g, fmt.Errorf("--name: %v", err)
	}
	for _, h := range g.Preferred {
		if err := ondisk.ValidHostName(h); err != nil {
			return g, fmt.Errorf("--preferred: %v", err)
		}
	}
	if !slices.Contains(config.DriverNames, g.Driver) {
		return g, fmt.Errorf("--driver %q: use one of %s", g.Driver, strings.Join(config.DriverNames, ", "))
	}
	if g.Placement == "" {
		g.Placement = restart.Auto
	}
	if g.Placement != restart.Auto && g.Placement != restart.Manual {
		return g, fmt.Errorf("--placement %q: use auto or manual", g.Placement)
	}
	if g.Placement == restart.Manual && len(g.Preferred) == 0 {
		return g, errors.New("--placement manual needs --preferred HOST,...")
	}
	if g.HA && g.Management {
		return g, errors.New("a guest that is the management instance of this pool cannot have HA here: run it as an HA guest of another pool")
	}
	repos := c.RepositoryDirs(mountBase)
	if len(repos) == 0 {
		return g, errors.New("the pool has no repository: guest configurations must lie inside one (hbfence repository add KIND:SOURCE --uuid UUID, or hbfence pool repository add DIR)")
	}
	if err := agent.InsideRepository(g.Config, repos); err != nil {
		return g, fmt.Errorf("--config: %w", err)
	}
	for _, o := range c.Guests {
		if o.UUID == g.UUID || o.Name == g.Name {
			return g, fmt.Errorf("guest %s (%s) is already in the pool", o.Name, o.UUID)
		}
	}
	return g, nil
}

func poolCommand(ag *agent.Agent, ms *masterSide, hosts func() []heartbeat.HostStatus, raw json.RawMessage) (any, error) {
	var req struct {
		HA         *bool               `json:"ha,omitempty"`
		Roles      map[string][]string `json:"roles,omitempty"`
		Repository string              `json:"repository,omitempty"`
	}
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("pool: bad arguments: %v", err)
	}
	var out store.PoolConfig
	err := update(ag, ms, func(c *store.PoolConfig) error {
		if req.HA != nil {
			c.HA = *req.HA
		}
		for h, roles := range req.Roles {
			rs, err := hostRoles(h, roles)
			if err != nil {
				return err
			}
			if err := inPool(h, hosts()); err != nil {
				return err
			}
			if c.Roles == nil {
				c.Roles = map[string][]restart.Role{}
			}
			c.Roles[h] = rs
		}
		if req.Repository != "" {
			fi, err := os.Stat(req.Repository)
			if err != nil || !fi.IsDir() || !filepath.IsAbs(req.Repository) {
				return fmt.Errorf("repository %q: not an absolute path to a directory on this host (%v)", req.Repository, err)
			}
			if !slices.Contains(c.Repositories, req.Repository) {
				c.Repositories = append(c.Repositories, req.Repository)
			}
		}
		out = *c
		return nil
	})
	return out, err
}

// agentRun is one incarnation's running agent.
type agentRun struct {
	ag   *agent.Agent
	stop context.CancelFunc
	done chan struct{}
	// adopted is closed once the first round is over: the guests that
	// run here are listed and reported (systemd's READY=1 waits for it).
	adopted chan struct{}
}

func startAgent(ag *agent.Agent) *agentRun {
	ctx, cancel := context.WithCancel(context.Background())
	ar := &agentRun{ag: ag, stop: cancel, done: make(chan struct{}), adopted: make(chan struct{})}
	go func() {
		defer close(ar.done)
		// The first round, on its own, so that its end is known; Run
		// then rounds on (its first round follows at once).
		ag.Round(ctx)
		close(ar.adopted)
		ag.Run(ctx)
	}()
	return ar
}

// halt stops the agent's rounds and waits (at most ctx) until the round
// under way has ended.
func (ar *agentRun) halt(ctx context.Context) error {
	if ar == nil {
		return nil
	}
	ar.stop()
	select {
	case <-ar.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the guest agent did not stop (a hypervisor command or the storage hangs?): %w", ctx.Err())
	}
}

// haltingKiller forbids the guest agent every further start, and waits
// for a start under way, before it kills the guests: no start can bring a
// guest back after the kill. It does not wait for the agent's storage I/O,
// which may hang on the very storage that made the host fence.
type haltingKiller struct {
	ar    *agentRun
	inner fence.GuestKiller
}

func (k haltingKiller) KillHAGuests(ctx context.Context, reason string) error {
	k.ar.stop()
	if err := k.ar.ag.Halt(ctx); err != nil {
		return err
	}
	return k.inner.KillHAGuests(ctx, reason)
}

// poolWarnings are the pool-wide conditions status warns about.
func poolWarnings(c store.PoolConfig, st heartbeat.Status) []string {
	var w []string
	utility := 0
	for _, h := range st.Hosts {
		if slices.Contains(c.RolesOf(h.Name), restart.RoleUtility) {
			utility++
		}
	}
	if utility == 1 {
		// Only where the role is used: a pool that gives it to nobody
		// does not use it.
		w = append(w, "the pool has 1 host with the utility role: the utility role never fails over with the master, so a pool that needs it after a failure must give it to at least two hosts (hbfence pool role HOST vm,utility)")
	}
	for _, h := range slices.Sorted(maps.Keys(c.Maintenance)) {
		w = append(w, maintenanceWarning(h, c.Maintenance[h]))
	}
	return w
}

// EvacuateRequest is the argument of "host.evacuate".
type EvacuateRequest struct {
	Host       string   `json:"host"`
	Migrate    []string `json:"migrate,omitempty"` // guest names or UUIDs
	MigrateAll bool     `json:"migrate_all,omitempty"`
	// Cancel ends the evacuation of Host: the guests not moved yet stay.
	Cancel bool `json:"cancel,omitempty"`
}

// evacuate records an evacuation of HOST's current incarnation in the pool
// record; the master's plan then migrates or moves its guests.
func evacuate(ag *agent.Agent, ms *masterSide, fc *fencing, raw json.RawMessage) (any, error) {
	var req EvacuateRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("host evacuate: bad arguments: %v", err)
	}
	if fc == nil {
		return nil, errors.New("host evacuate: this host has not joined the pool yet")
	}
	if req.Cancel {
		// The guests already moved stay where they went; a migration
		// under way finishes (the plan carries it to its end).
		var out store.Evacuation
		err := update(ag, ms, func(c *store.PoolConfig) error {
			e, ok := c.Evacuations[req.Host]
			if !ok {
				return fmt.Errorf("host evacuate --cancel: %s is not being evacuated", req.Host)
			}
			delete(c.Evacuations, req.Host)
			out = e
			return nil
		})
		return out, err
	}
	h, err := findHost(fc.m.Status(clk.Now()), "host evacuate", req.Host)
	if err != nil {
		return nil, err
	}
	if h.State != liveness.Live {
		return nil, fmt.Errorf("host evacuate: %s is %s: only a live host can be evacuated (a dead host's HA guests are restarted without it)", req.Host, h.State)
	}
	gen := h.Generation
	var out store.Evacuation
	err = update(ag, ms, func(c *store.PoolConfig) error {
		e := store.Evacuation{Generation: gen, All: req.MigrateAll}
		for _, n := range req.Migrate {
			i, ok := c.Find(n)
			if !ok {
				return fmt.Errorf("--migrate %s: no such guest in the pool", n)
			}
			e.Migrate = append(e.Migrate, c.Guests[i].UUID)
		}
		if c.Evacuations == nil {
			c.Evacuations = map[string]store.Evacuation{}
		}
		c.Evacuations[req.Host] = e
		out = e
		return nil
	})
	return out, err
}
