package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/hbfence/hbfence/internal/nfsbound"
)

// Options configure a Mounter.
type Options struct {
	// Runner runs mount(8) and umount(8); default ExecRunner{}.
	Runner Runner
	// Log receives a line for every mount, unmount, link and failure.
	Log zerolog.Logger
	// InUse says whether a guest of this host uses a path (a removed
	// repository's mount point). Nil: every path is in use, so nothing
	// is ever unmounted.
	InUse func(point string) bool
	// Attempts is how many times one Ensure tries a mount (default 4);
	// Backoff the wait after the first failure (default 2s), doubled
	// after each further one up to MaxBackoff (default 30s).
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Sleep waits d or until ctx ends (tests record it); default a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Mountinfo reads the mount table; default ReadMountinfo.
	Mountinfo func() ([]nfsbound.Mount, error)
	// Now is the wall clock of the status's Changed; default time.Now.
	Now func() time.Time
}

// The defaults of Options.
const (
	DefaultAttempts   = 4
	DefaultBackoff    = 2 * time.Second
	DefaultMaxBackoff = 30 * time.Second
)

// Status is the state of this host's mounts.
type Status struct {
	// Points are the cluster root first, then the repositories in the
	// spec's order, then the mounts of removed repositories.
	Points []PointStatus `json:"points"`
	Link   LinkStatus    `json:"link"`
}

// Ready is nil when the cluster root is mounted and linked, else why not:
// a host whose cluster root is not ready does not join.
func (s Status) Ready() error {
	if len(s.Points) == 0 {
		return errors.New("the cluster root has not been mounted yet")
	}
	r := s.Points[0]
	if r.State != Mounted {
		msg := r.Message
		if msg == "" {
			msg = "not mounted yet"
		}
		return fmt.Errorf("the cluster root %s is %s at %s: %s", r.Storage, r.State, r.Point, msg)
	}
	if s.Link.State != Linked {
		return fmt.Errorf("the link %s to the cluster root %s is %s: %s", s.Link.Path, r.Point, s.Link.State, s.Link.Message)
	}
	return nil
}

// Mounter mounts the pool's storage on this host.
type Mounter struct {
	opts Options

	ensure sync.Mutex // one Ensure at a time

	mu     sync.Mutex
	spec   Spec
	status Status
}

// New validates spec and returns its Mounter. Nothing is mounted until
// Ensure.
func New(spec Spec, opts Options) (*Mounter, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if opts.Runner == nil {
		opts.Runner = ExecRunner{}
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Mountinfo == nil {
		opts.Mountinfo = ReadMountinfo
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	spec = spec.withDefaults()
	m := &Mounter{opts: opts, spec: spec}
	m.status = m.initial(spec)
	return m, nil
}

func (m *Mounter) initial(spec Spec) Status {
	var st Status
	for i, s := range append([]Storage{spec.ClusterRoot}, spec.Repositories...) {
		role := RoleRepository
		if i == 0 {
			role = RoleClusterRoot
		}
		st.Points = append(st.Points, PointStatus{Role: role, UUID: s.UUID, Storage: s.String(), Point: spec.Point(s.UUID), State: Missing})
	}
	st.Link = LinkStatus{Path: spec.Link, Target: spec.Point(spec.ClusterRoot.UUID), State: Missing}
	return st
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetRepositories replaces the pool's repository list (it changed on the
// cluster root); the next Ensure mounts the new ones and unmounts the
// removed ones that no guest of this host uses.
func (m *Mounter) SetRepositories(repos []Storage) error {
	m.mu.Lock()
	spec := m.spec
	m.mu.Unlock()
	spec.Repositories = append([]Storage(nil), repos...)
	if err := spec.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	m.spec = spec
	m.mu.Unlock()
	return nil
}

// Spec is the spec Ensure works to.
func (m *Mounter) Spec() Spec {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.spec
	s.Repositories = append([]Storage(nil), s.Repositories...)
	return s
}

// Status is the state the last Ensure left (or is leaving: it is updated
// as each step ends).
func (m *Mounter) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copyStatus(m.status)
}

func copyStatus(s Status) Status {
	s.Points = append([]PointStatus(nil), s.Points...)
	return s
}

// Ensure mounts what is missing, links the cluster root, and unmounts
// the removed repositories no guest uses; a mount that fails is tried
// again with back-off (Options.Attempts). It returns the status, and an
// error when the cluster root is not ready (Status.Ready): a repository
// that fails is only in the status. Every change is logged.
func (m *Mounter) Ensure(ctx context.Context) (Status, error) {
	m.ensure.Lock()
	defer m.ensure.Unlock()
	spec := m.Spec()
	// mountinfo shows points with every link resolved: a base under a
	// link (/var a link to /srv/var) would never be seen mounted, and be
	// mounted again at every pass.
	if b, err := resolveExisting(spec.Base); err != nil {
		m.setPoint(spec.Point(spec.ClusterRoot.UUID), Error, err.Error(), 0)
		return m.Status(), fmt.Errorf("the cluster root is not ready: %w", err)
	} else if b != spec.Base {
		m.opts.Log.Info().Str("base", spec.Base).Str("resolved", b).Msg("the mount base is under a symbolic link: its resolved path is used")
		spec.Base = b
		m.mu.Lock()
		m.spec.Base = b
		m.status = m.initial(m.spec)
		m.mu.Unlock()
	}
	obs, err := Observe(spec, m.opts.Mountinfo)
	if err != nil {
		m.setPoint(spec.Point(spec.ClusterRoot.UUID), Error, err.Error(), 0)
		m.opts.Log.Error().Err(err).Msg("cannot read this host's mounts")
		return m.Status(), fmt.Errorf("the cluster root is not ready: %w", err)
	}
	plan := PlanFor(spec, obs, m.opts.InUse)
	m.publish(plan.Points, plan.Link)
	for _, p := range plan.Points {
		switch p.State {
		case Refused:
			m.opts.Log.Error().Str("point", p.Point).Str("storage", p.Storage).Str("role", string(p.Role)).Msg("mount refused: " + p.Message)
		case InUse:
			m.opts.Log.Info().Str("point", p.Point).Str("storage", p.Storage).Msg("removed repository kept mounted: a guest of this host uses it")
		}
	}
	if plan.Link.State == Refused {
		m.opts.Log.Error().Str("link", plan.Link.Path).Str("target", plan.Link.Target).Msg("link refused: " + plan.Link.Message)
	}
	failed := map[string]bool{}
	for _, a := range plan.Actions {
		if failed[a.UUID] {
			continue
		}
		if err := m.run(ctx, spec, a); err != nil {
			failed[a.UUID] = true
		}
	}
	st := m.Status()
	return st, st.Ready()
}

// run carries out one action and records its outcome.
func (m *Mounter) run(ctx context.Context, spec Spec, a Action) error {
	log := m.opts.Log
	switch a.Kind {
	case ActMkdir:
		if err := os.MkdirAll(a.Path, 0o755); err != nil {
			m.setPoint(a.Path, Error, fmt.Sprintf("creating the mount point: %v", err), 0)
			log.Error().Err(err).Str("point", a.Path).Msg("cannot create the mount point")
			return err
		}
		log.Info().Str("point", a.Path).Msg("created the mount point")
	case ActMount:
		return m.mount(ctx, spec, a)
	case ActRmdir:
		if err := os.Remove(a.Path); err != nil {
			m.setLink(Error, fmt.Sprintf("removing the empty directory %s: %v", a.Path, err))
			log.Error().Err(err).Str("link", a.Path).Msg("cannot remove the empty directory in the link's place")
			return err
		}
		log.Info().Str("link", a.Path).Msg("removed the empty directory in the link's place")
	case ActLink:
		if err := linkAtomically(a.Target, a.Path); err != nil {
			m.setLink(Error, err.Error())
			log.Error().Err(err).Str("link", a.Path).Str("target", a.Target).Msg("cannot link the cluster root")
			return err
		}
		m.setLink(Linked, "")
		log.Info().Str("link", a.Path).Str("target", a.Target).Msg("linked the cluster root")
	case ActUnmount:
		if err := m.opts.Runner.Run(ctx, a.Argv); err != nil {
			m.setPoint(a.Path, Error, fmt.Sprintf("no longer one of the pool's repositories; unmounting failed: %v", err), 0)
			log.Error().Err(err).Str("point", a.Path).Str("storage", a.Storage).Strs("argv", a.Argv).Msg("unmount failed")
			return err
		}
		m.setPoint(a.Path, Unmounted, "no longer one of the pool's repositories", 0)
		log.Info().Str("point", a.Path).Str("storage", a.Storage).Strs("argv", a.Argv).Msg("unmounted a removed repository")
	}
	return nil
}

// mount runs a mount action, trying again with back-off, and checks the
// mount table afterwards.
func (m *Mounter) mount(ctx context.Context, spec Spec, a Action) error {
	log := m.opts.Log
	wait := m.opts.Backoff
	var err error
	for attempt := 1; attempt <= m.opts.Attempts; attempt++ {
		err = m.opts.Runner.Run(ctx, a.Argv)
		if err == nil {
			err = m.verify(spec, a)
		}
		if err == nil {
			m.setPoint(a.Path, Mounted, "", attempt)
			log.Info().Str("point", a.Path).Str("storage", a.Storage).Str("role", string(a.Role)).Strs("argv", a.Argv).Int("attempt", attempt).Msg("mounted")
			return nil
		}
		m.setPoint(a.Path, Error, err.Error(), attempt)
		ev := log.Warn()
		if attempt == m.opts.Attempts {
			ev = log.Error()
		}
		ev = ev.Err(err).Str("point", a.Path).Str("storage", a.Storage).Str("role", string(a.Role)).Strs("argv", a.Argv).Int("attempt", attempt).Int("attempts", m.opts.Attempts)
		if attempt == m.opts.Attempts {
			ev.Msg("mount failed; tried again at the next ensure")
			break
		}
		ev.Dur("retry_in", wait).Msg("mount failed; trying again")
		if serr := m.opts.Sleep(ctx, wait); serr != nil {
			err = fmt.Errorf("%w (then: %v)", err, serr)
			m.setPoint(a.Path, Error, err.Error(), attempt)
			return err
		}
		wait = min(wait*2, m.opts.MaxBackoff)
	}
	return err
}

// verify checks that the mount table shows the storage at its point now.
func (m *Mounter) verify(spec Spec, a Action) error {
	ms, err := m.opts.Mountinfo()
	if err != nil {
		return fmt.Errorf("mount(8) succeeded, and the mount table cannot be read: %w", err)
	}
	st := spec.ClusterRoot
	for _, r := range spec.Repositories {
		if spec.Point(r.UUID) == a.Path {
			st = r
		}
	}
	top, ok := topMount(ms, a.Path)
	if !ok {
		return fmt.Errorf("mount(8) succeeded, and /proc/self/mountinfo shows nothing at %s", a.Path)
	}
	if !sameStorage(st, top, map[string]string{st.Source: devNumber(st)}) {
		return fmt.Errorf("mount(8) succeeded, and /proc/self/mountinfo shows %s %s at %s, not %s", top.FSType, top.Source, a.Path, st)
	}
	return nil
}

func (m *Mounter) publish(points []PointStatus, link LinkStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	old := map[string]PointStatus{}
	for _, p := range m.status.Points {
		old[p.Point] = p
	}
	for i := range points {
		p := &points[i]
		o, had := old[p.Point]
		if had && o.State == Error && p.State == Missing {
			// Still not mounted: keep the last failure in view.
			p.State, p.Message, p.Attempts = o.State, o.Message, o.Attempts
		}
		p.Changed = now
		if had && o.State == p.State && o.Message == p.Message {
			p.Changed = o.Changed
		}
	}
	link.Changed = now
	if m.status.Link.State == link.State && m.status.Link.Message == link.Message {
		link.Changed = m.status.Link.Changed
	}
	m.status = Status{Points: points, Link: link}
}

func (m *Mounter) setPoint(point string, s State, msg string, attempts int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.status.Points {
		p := &m.status.Points[i]
		if p.Point == point {
			if p.State != s || p.Message != msg {
				p.Changed = m.opts.Now()
			}
			p.State, p.Message, p.Attempts = s, msg, attempts
		}
	}
}

func (m *Mounter) setLink(s State, msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.status.Link.State != s || m.status.Link.Message != msg {
		m.status.Link.Changed = m.opts.Now()
	}
	m.status.Link.State, m.status.Link.Message = s, msg
}

// resolveExisting resolves the symbolic links of the longest part of path
// that exists, and joins the rest to it.
func resolveExisting(path string) (string, error) {
	rest := ""
	for p := path; ; p = filepath.Dir(p) {
		r, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) || p == "/" {
			return "", fmt.Errorf("resolving the mount base %s: %w", path, err)
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// linkAtomically makes path a symbolic link to target: a link made beside
// it, renamed over it (rename(2) replaces a link or a missing name in one
// step, so no reader sees /OVS missing or half made), and the directory
// synced.
func linkAtomically(target, path string) error {
	tmp := path + ".hbfence-new"
	if fi, err := os.Lstat(tmp); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			return fmt.Errorf("%s is in the way of linking %s (hbfence makes the new link there first): move it away", tmp, path)
		}
		if err := os.Remove(tmp); err != nil {
			return err
		}
	}
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("linking %s to %s: %w", path, target, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("linking %s to %s: %w", path, target, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Lines are the status one line a mount point, then the link's, for
// hbfence status: "cluster-root nfs:filer:/pool at /var/ovs/mount/U:
// mounted".
func (s Status) Lines() []string {
	var out []string
	for _, p := range s.Points {
		l := fmt.Sprintf("%s %s at %s: %s", p.Role, p.Storage, p.Point, p.State)
		if p.Attempts > 1 {
			l += fmt.Sprintf(" (after %d tries)", p.Attempts)
		}
		if p.Message != "" {
			l += ": " + p.Message
		}
		out = append(out, l)
	}
	l := fmt.Sprintf("link %s -> %s: %s", s.Link.Path, s.Link.Target, s.Link.State)
	if s.Link.Message != "" {
		l += ": " + s.Link.Message
	}
	return append(out, l)
}

// UsedBy is an Options.InUse for the paths this host's guests use (their
// configuration files and disks): a mount point is in use when one of them
// is the point or below it. The paths are taken as written, not resolved
// (a path through /OVS names the cluster root, never a repository).
func UsedBy(paths func() []string) func(point string) bool {
	return func(point string) bool {
		for _, p := range paths() {
			p = filepath.Clean(p)
			if p == point || strings.HasPrefix(p, point+"/") {
				return true
			}
		}
		return false
	}
}
