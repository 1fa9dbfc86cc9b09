package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/mount"
	"github.com/hbfence/hbfence/mount/validate"
	"github.com/hbfence/hbfence/restart/store"
)

// The pool's storage on every host (issue 12): each host mounts the
// repositories the pool record names, and says what it sees of the pool's
// storage (validate.Seen, its record sees/HOST) for the master to judge.

// seenEvery is how often a host says what it sees, and mounts what the
// pool's repository list names; seenMaxAge is how old a Seen the master
// still takes as current (on the writer's wall clock: generous).
const (
	seenEvery  = 15 * time.Second
	seenMaxAge = 2 * time.Minute
)

// storageLoop runs beside one incarnation's guest agent: at once, then
// every seenEvery, it mounts the pool's repositories (when the daemon
// mounts its storage) and writes what this host sees.
func (d *Daemon) storageLoop(ctx context.Context, in *incarnation) {
	for {
		d.storageRound(ctx, in)
		select {
		case <-ctx.Done():
			return
		case <-d.storageKick:
		case <-time.After(seenEvery):
		}
	}
}

// kickStorage asks for a storage round now (the repository list changed).
func (d *Daemon) kickStorage() {
	select {
	case d.storageKick <- struct{}{}:
	default:
	}
}

// storageRound mounts what the pool names, observes, and writes the Seen.
func (d *Daemon) storageRound(ctx context.Context, in *incarnation) validate.Seen {
	var pool store.PoolConfig
	if in.ar != nil {
		pool = in.ar.ag.Pool()
	}
	if d.mounts != nil {
		d.mountRepositories(ctx, pool.Storage)
	}
	return d.seenNow(ctx, in, pool)
}

// seenNow observes and writes this host's Seen.
func (d *Daemon) seenNow(ctx context.Context, in *incarnation, pool store.PoolConfig) validate.Seen {
	s := d.observe(ctx, in, pool)
	if err := d.gstore.WriteSeen(d.c.Host.Name, s); err != nil && ctx.Err() == nil {
		d.log.Warn().Err(err).Msg("writing what this host sees of the pool's storage (hbfence pool validate reads it)")
	}
	return s
}

// mountRepositories gives the Mounter the pool's repositories when the
// list changed, and runs its pass (a pass with nothing to do changes
// nothing and logs nothing).
func (d *Daemon) mountRepositories(ctx context.Context, defs []store.RepositoryDef) {
	want := make([]mount.Storage, 0, len(defs))
	for _, r := range defs {
		st, err := mount.ParseSource(r.Source)
		if err != nil {
			d.log.Error().Err(err).Str("repository", r.UUID).Msg("the pool record names a repository that cannot be mounted")
			continue
		}
		st.UUID, st.NFSVersion, st.OCFS2Heartbeat = r.UUID, r.NFSVersion, r.OCFS2Heartbeat
		want = append(want, st)
	}
	if !slices.Equal(d.mounts.Spec().Repositories, want) {
		if err := d.mounts.SetRepositories(want); err != nil {
			d.log.Error().Err(err).Msg("the pool's repositories cannot be mounted as listed")
			return
		}
		d.log.Info().Int("repositories", len(want)).Msg("the pool's repository list changed: mounting it")
	}
	ctx, cancel := context.WithTimeout(ctx, mountWithin)
	defer cancel()
	if _, err := d.mounts.Ensure(ctx); err != nil && ctx.Err() == nil {
		d.log.Error().Err(err).Msg("[storage]: the mounts are not all in place")
	}
}

// observe is what this host sees now.
func (d *Daemon) observe(ctx context.Context, in *incarnation, pool store.PoolConfig) validate.Seen {
	h := validate.Host{Name: d.c.Host.Name, Generation: in.fc.m.Self().Generation, Version: d.version, MachineID: d.self.MachineID.String(),
		Pool: d.h.PoolUUID.String(), Area: fmt.Sprintf("%s@%d", d.c.Heartbeat.Path, d.c.Heartbeat.Offset), Records: d.gstore.Root(),
		Base: d.c.Storage.MountBase, Link: d.c.Storage.OVSLink, Lab: d.c.Storage.LabPool}
	if spec, ok := d.c.MountSpec(); ok {
		h.Spec = &spec
	}
	for _, r := range pool.Storage {
		h.Repositories = append(h.Repositories, r.UUID)
	}
	if d.mounts != nil {
		ms := d.mounts.Status()
		h.Mounts = &ms
	}
	return validate.Observe(ctx, h, validate.System{})
}

// validatePool is the master's verdict on the pool (hbfence pool
// validate): its own Seen taken now, every other host's from its record.
func (d *Daemon) validatePool(ctx context.Context) (validate.Result, error) {
	in := d.current()
	ag := d.currentAgent()
	if in == nil || ag == nil || d.gstore == nil {
		return validate.Result{}, errors.New("the guest side is off on this host (see its log), or it has not joined yet")
	}
	r := in.ms.runner()
	if r == nil {
		return validate.Result{}, errors.New("this host has not joined the pool yet")
	}
	if _, ok := r.Master(clk.Now()); !ok {
		return validate.Result{}, notMaster{fmt.Errorf("the pool is validated by the master, and this host is not the master; %s", in.ms.whereMaster())}
	}
	for try := 0; ; try++ {
		r, err := d.judgePool(ctx, in, ag.Pool())
		if err != nil || r.OK || try == 3 || !onlyUnsaid(r) {
			return r, err
		}
		// A host that joined a moment ago says what it sees within
		// a second of its join: read again before refusing.
		select {
		case <-ctx.Done():
			return r, nil
		case <-time.After(time.Second):
		}
	}
}

// onlyUnsaid: every error is of a host that has not said what it sees
// (yet), or said it for its previous incarnation.
func onlyUnsaid(r validate.Result) bool {
	for _, e := range r.Errors {
		if e.Check != validate.CheckNoReport && e.Check != validate.CheckStaleReport {
			return false
		}
	}
	return true
}

// judgePool judges the pool once.
func (d *Daemon) judgePool(ctx context.Context, in *incarnation, pool store.PoolConfig) (validate.Result, error) {
	self := d.seenNow(ctx, in, pool)
	vin := validate.Input{Pool: d.h.PoolUUID.String(), Master: d.c.Host.Name, Seen: map[string]validate.Seen{self.Host: self}, Now: time.Now(), MaxAge: seenMaxAge}
	for _, r := range pool.Storage {
		vin.Repositories = append(vin.Repositories, r.UUID)
	}
	for _, h := range d.status().Hosts {
		if h.Name == "" || h.SlotState == ondisk.StateFree {
			continue
		}
		vin.Hosts = append(vin.Hosts, validate.HostInArea{Name: h.Name, Slot: h.Slot, Generation: h.Generation,
			Live: h.State == liveness.Live, Left: h.State == liveness.Left, State: h.State.String()})
	}
	names, err := d.gstore.SeenHosts()
	if err != nil {
		return validate.Result{}, fmt.Errorf("listing what the hosts see (%s/%s/sees): %w", d.gstore.Root(), store.Dir, err)
	}
	for _, name := range names {
		if name == self.Host {
			continue
		}
		var s validate.Seen
		if _, err := d.gstore.ReadSeen(name, &s); err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, store.ErrEmpty) {
				continue
			}
			vin.Seen[name] = validate.Seen{Host: name, Problems: []string{fmt.Sprintf("its record of what it sees cannot be read: %v", err)}, At: time.Now()}
			continue
		}
		vin.Seen[name] = s
	}
	return validate.Judge(vin), nil
}

// ValidationError is hbfence pool ha enable refused: every error of the
// validation, one per line.
type ValidationError struct{ Result validate.Result }

func (e ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "HA not enabled: the pool does not validate (%d errors; hbfence pool validate lists them):", len(e.Result.Errors))
	for _, x := range e.Result.Errors {
		fmt.Fprintf(&b, "\n  %s: %s: %s", x.Host, x.Check, x.Message)
	}
	return b.String()
}

// poolWithValidation is the pool command, which validates the pool first
// when it switches HA on.
func (d *Daemon) poolWithValidation(ctx context.Context, args json.RawMessage) (any, error) {
	var peek struct {
		HA *bool `json:"ha,omitempty"`
	}
	_ = json.Unmarshal(args, &peek)
	if ag := d.currentAgent(); peek.HA != nil && *peek.HA && ag != nil && !ag.Pool().HA {
		r, err := d.validatePool(ctx)
		if err != nil {
			return nil, err
		}
		if !r.OK {
			return nil, ValidationError{r}
		}
	}
	return poolCommand(d.currentAgent(), d.currentMaster(), func() []heartbeat.HostStatus { return d.status().Hosts }, args)
}
