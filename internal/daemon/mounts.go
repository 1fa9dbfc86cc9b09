package daemon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/mount"
	"github.com/hbfence/hbfence/restart"
	"github.com/rs/zerolog"
)

// mountStorage mounts the pool's cluster root ([storage], package mount)
// before the daemon opens the heartbeat area: a host whose cluster root is
// not mounted does not join (docs/pool.md). It returns nil and no error
// when [storage] names no cluster root (the daemon mounts nothing).
//
// The error is not one of the configuration: the storage may come back,
// and systemd's Restart= tries again.
func mountStorage(c *config.Config, log zerolog.Logger, inUse func(string) bool) (*mount.Mounter, error) {
	m, err := newMounter(c, log, inUse)
	if m == nil || err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), mountWithin)
	defer cancel()
	if _, err := m.Ensure(ctx); err != nil {
		return m, fmt.Errorf("%s: [storage] cluster_root %s: not mounted, so this host does not join: %w", c.Path, c.Storage.ClusterRoot, err)
	}
	return m, nil
}

// newMounter is the Mounter of [storage], or nil when it names no cluster
// root. inUse says whether a guest of this host uses a path: a repository
// the pool no longer names is unmounted only when none does.
func newMounter(c *config.Config, log zerolog.Logger, inUse func(string) bool) (*mount.Mounter, error) {
	spec, ok := c.MountSpec()
	if !ok {
		return nil, nil
	}
	attempts, backoff := c.MountRetries()
	m, err := mount.New(spec, mount.Options{Log: log, Attempts: attempts, Backoff: backoff, InUse: inUse})
	if err != nil {
		return nil, config.Invalid(fmt.Errorf("%s: [storage]: %w", c.Path, err))
	}
	return m, nil
}

// mountWithin bounds the mounts at start: the retries of every mount and
// each command's own timeout.
const mountWithin = 5 * time.Minute

// ensureMountsLater runs the mounts again beside a running daemon (after
// an upgrade's exec, whose image must feed the watchdog first): nothing
// changes when everything is in place.
func (d *Daemon) ensureMountsLater() {
	if d.mounts == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), mountWithin)
		defer cancel()
		if _, err := d.mounts.Ensure(ctx); err != nil {
			d.log.Error().Err(err).Msg("[storage]: the mounts are not all in place")
		}
	}()
}

// repositoryInUse says whether a guest that runs on this host, or is
// starting or stopping here, has its configuration under point: a removed
// repository is unmounted only when none has. Unknown (no guest side yet)
// is in use.
func (d *Daemon) repositoryInUse(point string) bool {
	ag := d.currentAgent()
	if ag == nil {
		return true
	}
	var paths []string
	for _, g := range ag.Guests() {
		if g.Host == d.c.Host.Name || g.Host == "" && g.State != restart.Stopped {
			paths = append(paths, g.Config)
		}
	}
	return mount.UsedBy(func() []string { return paths })(point)
}

// hardRepositoryGuard is the fence's killer on a host that mounts NFS
// repositories. They are mounted hard (package mount: a soft timeout would
// fail a guest's disk write on a server fail-over), so the client
// retransmits a killed guest's O_DIRECT writes for as long as the server
// does not answer, and they may land after the guest started on another
// host. A kill is then never a confirmation: the guests are killed, and
// the watchdog's reset, which ends the client's retransmissions with the
// machine, is what makes them gone (with no watchdog the daemon marks its
// slot unsafe, as for any fence it cannot confirm).
type hardRepositoryGuard struct {
	inner   fence.GuestKiller
	mounted func() mount.Status
}

func (g hardRepositoryGuard) KillHAGuests(ctx context.Context, reason string) error {
	err := g.inner.KillHAGuests(ctx, reason)
	var hard []string
	for _, p := range g.mounted().Points {
		if p.Role == mount.RoleRepository && (p.State == mount.Mounted || p.State == mount.InUse) && strings.HasPrefix(p.Storage, string(mount.NFS)+":") {
			hard = append(hard, p.Storage)
		}
	}
	if len(hard) == 0 {
		return err
	}
	return errors.Join(err, fmt.Errorf("%w: the guests' disks may be on the NFS repositories %s, mounted hard, whose client retransmits a killed guest's writes until the server answers; only the machine's reset stops them", errHardRepository, strings.Join(hard, ", ")))
}

// errHardRepository: a fence with NFS repositories mounted is confirmed
// by the reset only.
var errHardRepository = errors.New("the guests cannot be confirmed gone without a reset")
