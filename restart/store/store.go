package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/restart"
)

// Dir is the directory under the cluster root that holds the records.
const Dir = ".hbfence"

// PoolConfig is the pool's configuration and its guests' definitions.
type PoolConfig struct {
	// HA is the pool's HA switch: a guest is protected only when both
	// the pool and the guest have HA on.
	HA bool `json:"ha"`
	// ManagedBy is the UUID of the guest that manages this pool (hbfence
	// pool managed-by), "" for none: HA for that guest is refused in
	// this pool, and placement never restarts it here (restart.Pool).
	// Added after version 1's first records: absent reads as none.
	ManagedBy string `json:"managed_by,omitempty"`
	// MaxAttempts bounds the start attempts of one placement (default 3).
	MaxAttempts int `json:"max_attempts,omitempty"`
	// Roles gives hosts their roles; a host not listed has the vm role.
	Roles map[string][]restart.Role `json:"roles,omitempty"`
	// Repositories are the directories (on the shared storage) a guest's
	// configuration must resolve inside; empty: the cluster root.
	Repositories []string `json:"repositories,omitempty"`
	// Storage are the repositories every host of the pool mounts
	// (hbfence repository add): NFS exports or OCFS2 devices, each at
	// [storage] mount_base/UUID. A guest's configuration may resolve
	// inside any of them as well as inside Repositories.
	Storage []RepositoryDef `json:"repository_storage,omitempty"`
	Guests  []GuestDef      `json:"guests"`
	// Evacuations are the hosts being emptied before a planned
	// shutdown, by name (hbfence host evacuate).
	Evacuations map[string]Evacuation `json:"evacuations,omitempty"`
	// Maintenance are the hosts in maintenance, by name (hbfence host
	// maintenance enter): emptied as by an evacuation of every guest and
	// given none, whatever their incarnation, until hbfence host
	// maintenance exit.
	Maintenance map[string]Maintenance `json:"maintenance,omitempty"`
}

// RepositoryDirs are the directories a guest's configuration may resolve
// inside: Repositories, and each repository of Storage at base/UUID (base:
// [storage] mount_base; empty leaves Storage out).
func (c PoolConfig) RepositoryDirs(base string) []string {
	dirs := append([]string(nil), c.Repositories...)
	if base != "" {
		for _, r := range c.Storage {
			dirs = append(dirs, filepath.Join(base, strings.ToLower(r.UUID)))
		}
	}
	return dirs
}

// RepositoryDef is one repository on shared storage that every host of the
// pool mounts at [storage] mount_base/UUID (package mount).
type RepositoryDef struct {
	// UUID names the repository and its mount point.
	UUID string `json:"uuid"`
	// Source is KIND:SOURCE (mount.ParseSource): nfs:server:/export,
	// ocfs2:/dev/mapper/repo, or, for labs, ext4: or xfs: a device.
	Source string `json:"source"`
	// NFSVersion and OCFS2Heartbeat as in mount.Storage.
	NFSVersion     string    `json:"nfs_version,omitempty"`
	OCFS2Heartbeat string    `json:"ocfs2_heartbeat,omitempty"`
	Added          time.Time `json:"added"`
}

// Maintenance is one host's maintenance: since when, and who asked (the
// host whose hbfence command entered it).
type Maintenance struct {
	Since time.Time `json:"since"`
	By    string    `json:"by,omitempty"`
}

// Evacuation empties one incarnation of a host: the guests in Migrate (or
// all) are live-migrated, the others stopped and restarted elsewhere. It
// ends with that incarnation: a host back as a new generation is not
// evacuated.
type Evacuation struct {
	Generation uint64   `json:"generation"`
	All        bool     `json:"all,omitempty"`
	Migrate    []string `json:"migrate,omitempty"`
}

// GuestDef is one guest's definition.
type GuestDef struct {
	UUID   string `json:"uuid"`
	Name   string `json:"name"`
	Driver string `json:"driver"`
	// Config is the path of the guest's configuration on the shared
	// storage, inside a repository of the pool.
	Config     string            `json:"config"`
	HA         bool              `json:"ha"`
	Placement  restart.Placement `json:"placement"`
	Preferred  []string          `json:"preferred,omitempty"`
	Management bool              `json:"management,omitempty"`
	Stopped    bool              `json:"stopped,omitempty"`
	StartSeq   uint64            `json:"start_seq,omitempty"`
	// StartOn is the host the latest hbfence guest start --on asked for
	// ("" for any); read with a StartSeq the plan has not acted on.
	StartOn string `json:"start_on,omitempty"`
	// MoveSeq grows with every hbfence guest migrate; MoveTo is the host
	// asked for, MoveRestart a move by a stop and a start (--restart).
	MoveSeq     uint64 `json:"move_seq,omitempty"`
	MoveTo      string `json:"move_to,omitempty"`
	MoveRestart bool   `json:"move_restart,omitempty"`
	// Manages is the UUID of the pool this guest manages (hbfence guest
	// add --manages), "" for none; never this pool's own. Absent in
	// older records: reads as none.
	Manages string `json:"manages,omitempty"`
}

// Guest is the definition as placement needs it.
func (g GuestDef) Guest() restart.Guest {
	return restart.Guest{UUID: g.UUID, Name: g.Name, HA: g.HA, Placement: g.Placement, Preferred: g.Preferred,
		Management: g.Management, Stopped: g.Stopped, StartSeq: g.StartSeq, StartOn: g.StartOn,
		MoveSeq: g.MoveSeq, MoveTo: g.MoveTo, MoveRestart: g.MoveRestart}
}

// RolesOf is a host's roles (vm when not listed).
func (c PoolConfig) RolesOf(host string) []restart.Role {
	if r, ok := c.Roles[host]; ok {
		return r
	}
	return []restart.Role{restart.RoleVM}
}

// Find returns the guest named by a name or UUID.
func (c PoolConfig) Find(nameOrUUID string) (int, bool) {
	for i, g := range c.Guests {
		if g.UUID == nameOrUUID || g.Name == nameOrUUID {
			return i, true
		}
	}
	return -1, false
}

// Store is the records of one pool under its cluster root.
type Store struct {
	root    string
	dir     string
	timeout time.Duration

	mu    sync.Mutex
	files map[string]*File
	pool  ondisk.UUID
}

// BindPool makes the store one pool's: every record written names pool,
// and a record that names another pool is refused with an
// *OtherPoolError (ErrOtherPool). A record that names no pool (written
// before records named theirs) is read as before; the next write names
// the pool. Call it before the first read or write.
func (s *Store) BindPool(pool ondisk.UUID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pool = pool
	for _, f := range s.files {
		f.mu.Lock()
		f.pool = pool
		f.mu.Unlock()
	}
}

// Pool is the pool the store is bound to (zero: none).
func (s *Store) Pool() ondisk.UUID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pool
}

// Open opens (and creates, if create) the records directory under the
// cluster root. Every I/O is bounded by ioTimeout.
func Open(root string, create bool, ioTimeout time.Duration) (*Store, error) {
	dir := filepath.Join(root, Dir)
	if create {
		for _, sub := range []string{"hosts", "requests", "answers", "sees"} {
			if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
				return nil, fmt.Errorf("guest records under the cluster root %s: %w", root, err)
			}
		}
	} else if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("guest records under the cluster root %s: %w", root, err)
	}
	return &Store{root: root, dir: dir, timeout: ioTimeout, files: map[string]*File{}}, nil
}

// Root is the cluster root.
func (s *Store) Root() string { return s.root }

// Close closes every open record file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.files = map[string]*File{}
	return first
}

func (s *Store) file(rel string, write bool) (*File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := rel
	if write {
		key = "w:" + rel
	}
	if f, ok := s.files[key]; ok {
		return f, nil
	}
	f, err := OpenFile(filepath.Join(s.dir, rel), write, s.timeout)
	if err != nil {
		return nil, err
	}
	f.pool = s.pool
	if write {
		// A new writer continues the file's sequence.
		if h, _, err := f.readAny(); err == nil {
			f.SetSeq(h.Seq)
		}
	}
	s.files[key] = f
	return f, nil
}

func (f *File) readAny() (Header, []byte, error) {
	for _, k := range []Kind{KindPool, KindPlan, KindReport, KindRequest, KindAnswer, KindSeen} {
		h, p, err := f.Read(k)
		if err == nil || !errors.Is(err, ErrCorrupt) {
			return h, p, err
		}
	}
	return Header{}, nil, ErrCorrupt
}

func (s *Store) write(rel string, h Header, v any) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	f, err := s.file(rel, true)
	if err != nil {
		return 0, err
	}
	return f.Write(h, b)
}

func (s *Store) read(rel string, k Kind, v any) (Header, error) {
	f, err := s.file(rel, false)
	if err != nil {
		return Header{}, err
	}
	h, b, err := f.Read(k)
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return h, fmt.Errorf("record %s: %v: %w", f.Path(), err, ErrCorrupt)
	}
	return h, nil
}

// ReadPool reads the pool's configuration. With no record yet, it returns
// ErrEmpty and the zero configuration (HA off, no guests).
func (s *Store) ReadPool() (Header, PoolConfig, error) {
	var c PoolConfig
	h, err := s.read("pool", KindPool, &c)
	return h, c, err
}

// WritePool writes the pool's configuration, stamped with the master's
// epoch, then its backup copy (pool.backup, the same configuration with
// the pool record's epoch and sequence), from which a pool record that
// can no longer be read is repaired (RepairPool). A failed backup write
// after a good one of the record returns an error wrapping
// ErrBackupFailed: the change itself is made.
func (s *Store) WritePool(epoch uint64, c PoolConfig) error {
	seq, err := s.write("pool", Header{Kind: KindPool, Epoch: epoch}, c)
	if err != nil {
		return err
	}
	if _, err := s.write(backupName, Header{Kind: KindPool, Epoch: epoch}, poolBackup{Config: c, Epoch: epoch, Seq: seq}); err != nil {
		return fmt.Errorf("%w (%s): %v", ErrBackupFailed, filepath.Join(s.dir, backupName), err)
	}
	return nil
}

// ErrBackupFailed: the pool record was written, its backup copy was not.
var ErrBackupFailed = errors.New("the pool record was written, but not its backup copy")

const backupName = "pool.backup"

// poolBackup is the backup copy of the pool record: its configuration and
// the epoch and sequence of the pool record it copies.
type poolBackup struct {
	Config PoolConfig `json:"config"`
	Epoch  uint64     `json:"epoch"`
	Seq    uint64     `json:"seq"`
}

// ReadPoolBackup reads the backup copy of the pool record: its header
// (Epoch and Seq those of the pool record it copies) and configuration.
func (s *Store) ReadPoolBackup() (Header, PoolConfig, error) {
	var b poolBackup
	h, err := s.read(backupName, KindPool, &b)
	if err != nil {
		return h, PoolConfig{}, err
	}
	h.Epoch, h.Seq = b.Epoch, b.Seq
	return h, b.Config, nil
}

// KeepUnreadablePool copies the pool record's file, which cannot be read,
// to pool.unreadable-TIME before a repair writes over it, and returns the
// copy's path: a repair loses nothing.
func (s *Store) KeepUnreadablePool(now time.Time) (string, error) {
	src := filepath.Join(s.dir, "pool")
	b, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("keeping a copy of %s before the repair: %w", src, err)
	}
	dst := filepath.Join(s.dir, "pool.unreadable-"+now.UTC().Format("20060102T150405.000000000Z"))
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		_, err = f.Write(b)
		if serr := f.Sync(); err == nil {
			err = serr
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return "", fmt.Errorf("keeping a copy of %s before the repair: %w", src, err)
	}
	return dst, nil
}

// WritePlan writes the plan of the master's epoch. Writer names the
// master (slot, generation, name), so that readers can check that the
// writer owns the epoch.
func (s *Store) WritePlan(p restart.Plan, writer ondisk.Owner) error {
	_, err := s.write("plan", Header{Kind: KindPlan, Epoch: p.Epoch}, planRecord{Plan: p, Writer: writer})
	return err
}

// planRecord is the plan with its writer.
type planRecord struct {
	restart.Plan
	Writer ondisk.Owner `json:"writer"`
}

// ReadPlan reads the master's plan and who wrote it.
func (s *Store) ReadPlan() (Header, restart.Plan, ondisk.Owner, error) {
	var r planRecord
	h, err := s.read("plan", KindPlan, &r)
	if err == nil && h.Epoch != r.Epoch {
		return h, r.Plan, r.Writer, fmt.Errorf("record %s: header epoch %d, plan epoch %d: %w", filepath.Join(s.dir, "plan"), h.Epoch, r.Epoch, ErrCorrupt)
	}
	return h, r.Plan, r.Writer, err
}

// ReadReport reads host's report.
func (s *Store) ReadReport(host string) (Header, restart.Report, error) {
	var r restart.Report
	if err := validName(host); err != nil {
		return Header{}, r, err
	}
	h, err := s.read(filepath.Join("hosts", host), KindReport, &r)
	if err == nil && r.Host.Name != host {
		return h, r, fmt.Errorf("record %s: a report of host %q: %w", filepath.Join(s.dir, "hosts", host), r.Host.Name, ErrCorrupt)
	}
	return h, r, err
}

// WriteReport writes this host's report.
func (s *Store) WriteReport(r restart.Report) error {
	if err := validName(r.Host.Name); err != nil {
		return err
	}
	_, err := s.write(filepath.Join("hosts", r.Host.Name), Header{Kind: KindReport}, r)
	return err
}

// Hosts lists the hosts that have a report.
func (s *Store) Hosts() ([]string, error) { return s.names("hosts") }

// names lists the records of the directory sub that are named by a valid
// host name.
func (s *Store) names(sub string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, sub))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Type().IsRegular() && validName(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

func validName(host string) error { return ondisk.ValidHostName(host) }

// Request is a command that a host that is not the master forwards to the
// master: the control method and its arguments, as the CLI sent them.
type Request struct {
	// ID names the request; the master's answer carries it.
	ID uint64 `json:"id"`
	// Epoch is the master's epoch the request is for: a master of
	// another epoch refuses it.
	Epoch  uint64          `json:"epoch"`
	From   string          `json:"from"`
	Method string          `json:"method"`
	Args   json.RawMessage `json:"args,omitempty"`
}

// Answer is the master's answer to a Request: the result the method
// returned, or its error.
type Answer struct {
	ID     uint64          `json:"id"`
	Epoch  uint64          `json:"epoch"`
	Master string          `json:"master"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// WriteRequest writes host's request (requests/HOST, one writer: the host).
func (s *Store) WriteRequest(r Request) error {
	if err := validName(r.From); err != nil {
		return err
	}
	_, err := s.write(filepath.Join("requests", r.From), Header{Kind: KindRequest, Epoch: r.Epoch}, r)
	return err
}

// ReadRequest reads host's request.
func (s *Store) ReadRequest(host string) (Request, error) {
	var r Request
	if err := validName(host); err != nil {
		return r, err
	}
	_, err := s.read(filepath.Join("requests", host), KindRequest, &r)
	if err == nil && r.From != host {
		return r, fmt.Errorf("record %s: a request of host %q: %w", filepath.Join(s.dir, "requests", host), r.From, ErrCorrupt)
	}
	return r, err
}

// WriteAnswer writes the master's answer to host's request (answers/HOST),
// stamped with the master's epoch.
func (s *Store) WriteAnswer(host string, a Answer) error {
	if err := validName(host); err != nil {
		return err
	}
	_, err := s.write(filepath.Join("answers", host), Header{Kind: KindAnswer, Epoch: a.Epoch}, a)
	return err
}

// ReadAnswer reads the master's answer to host's request.
func (s *Store) ReadAnswer(host string) (Answer, error) {
	var a Answer
	if err := validName(host); err != nil {
		return a, err
	}
	_, err := s.read(filepath.Join("answers", host), KindAnswer, &a)
	return a, err
}

// WriteSeen writes what host sees of the pool's storage (sees/HOST, one
// writer: the host). The record is opaque here: package mount/validate
// gives it its shape.
func (s *Store) WriteSeen(host string, v any) error {
	if err := validName(host); err != nil {
		return err
	}
	_, err := s.write(filepath.Join("sees", host), Header{Kind: KindSeen}, v)
	return err
}

// ReadSeen reads what host sees of the pool's storage into v; the header
// tells when it was written. ErrEmpty or a *os.PathError (fs.ErrNotExist)
// when the host never wrote it.
func (s *Store) ReadSeen(host string, v any) (Header, error) {
	if err := validName(host); err != nil {
		return Header{}, err
	}
	return s.read(filepath.Join("sees", host), KindSeen, v)
}

// SeenHosts lists the hosts that wrote what they see.
// A cluster root written by an older version has no sees directory.
func (s *Store) SeenHosts() ([]string, error) {
	names, err := s.names("sees")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return names, err
}
