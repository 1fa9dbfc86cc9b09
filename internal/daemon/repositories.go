package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/mount"
	"github.com/hbfence/hbfence/mount/validate"
	"github.com/hbfence/hbfence/restart/store"
)

// RepositoryRequest is the argument of hbfence repository add|remove.
type RepositoryRequest struct {
	Op string `json:"op"` // add, remove
	// Source is KIND:SOURCE (add); UUID names the repository.
	Source         string `json:"source,omitempty"`
	UUID           string `json:"uuid"`
	NFSVersion     string `json:"nfs_version,omitempty"`
	OCFS2Heartbeat string `json:"ocfs2_heartbeat,omitempty"`
}

// repositoryCommand adds or removes one of the pool's repositories on
// shared storage (the master carries it out; every host mounts the list
// within seenEvery). It returns the pool's list.
func (d *Daemon) repositoryCommand(_ context.Context, raw json.RawMessage) (any, error) {
	var req RepositoryRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("repository: bad arguments: %v", err)
	}
	ag := d.currentAgent()
	var out []store.RepositoryDef
	err := update(ag, d.currentMaster(), func(c *store.PoolConfig) error {
		switch req.Op {
		case "add":
			def, err := d.newRepository(req, *c)
			if err != nil {
				return err
			}
			c.Storage = append(c.Storage, def)
		case "remove":
			i := slices.IndexFunc(c.Storage, func(r store.RepositoryDef) bool { return strings.EqualFold(r.UUID, req.UUID) })
			if i < 0 {
				return fmt.Errorf("repository %s is not in the pool (hbfence repository list)", req.UUID)
			}
			point := filepath.Join(d.c.Storage.MountBase, strings.ToLower(c.Storage[i].UUID))
			var users []string
			for _, g := range c.Guests {
				if g.Config == point || strings.HasPrefix(filepath.Clean(g.Config), point+"/") {
					users = append(users, g.Name)
				}
			}
			if len(users) > 0 {
				return fmt.Errorf("repository %s holds the configuration of guest %s: remove those guests from the pool, or move their files, first", req.UUID, strings.Join(users, ", "))
			}
			c.Storage = slices.Delete(c.Storage, i, i+1)
		default:
			return fmt.Errorf("repository: unknown operation %q (add, remove)", req.Op)
		}
		out = append([]store.RepositoryDef{}, c.Storage...)
		return nil
	})
	if err == nil {
		d.kickStorage()
	}
	return out, err
}

// newRepository checks an added repository: a valid source, a UUID of
// its own, a source no other storage of the pool has.
func (d *Daemon) newRepository(req RepositoryRequest, c store.PoolConfig) (store.RepositoryDef, error) {
	st, err := mount.ParseSource(req.Source)
	if err != nil {
		return store.RepositoryDef{}, fmt.Errorf("repository source: %w", err)
	}
	u, err := ondisk.ParseUUID(req.UUID)
	if err != nil {
		return store.RepositoryDef{}, fmt.Errorf("repository --uuid %q: %v (the repository's UUID names its mount point, %s/UUID)", req.UUID, err, d.c.Storage.MountBase)
	}
	st.UUID, st.NFSVersion, st.OCFS2Heartbeat = u.String(), req.NFSVersion, req.OCFS2Heartbeat
	if err := st.Validate("repository"); err != nil {
		return store.RepositoryDef{}, err
	}
	if strings.EqualFold(st.UUID, d.c.Storage.ClusterRootUUID) {
		return store.RepositoryDef{}, fmt.Errorf("repository %s: that is the cluster root's UUID ([storage] cluster_root_uuid); a repository has its own", st.UUID)
	}
	if st.Source == strings.TrimPrefix(d.c.Storage.ClusterRoot, string(st.Kind)+":") {
		return store.RepositoryDef{}, fmt.Errorf("repository %s: %s is the cluster root ([storage] cluster_root); a repository is other storage", st.UUID, st)
	}
	for _, r := range c.Storage {
		if strings.EqualFold(r.UUID, st.UUID) {
			return store.RepositoryDef{}, fmt.Errorf("repository %s is already in the pool (source %s)", r.UUID, r.Source)
		}
		if r.Source == st.String() {
			return store.RepositoryDef{}, fmt.Errorf("%s is already the pool's repository %s", r.Source, r.UUID)
		}
	}
	return store.RepositoryDef{UUID: st.UUID, Source: st.String(), NFSVersion: st.NFSVersion, OCFS2Heartbeat: st.OCFS2Heartbeat, Added: time.Now().UTC()}, nil
}

// RepositoryList is hbfence repository list: the pool's repositories and
// each one's state on every host, as the hosts said (their sees/HOST
// records); and the plain directories of hbfence pool repository add.
type RepositoryList struct {
	Repositories []RepositoryState `json:"repositories"`
	Directories  []string          `json:"directories"`
}

// RepositoryState is one repository and its state on every host.
type RepositoryState struct {
	store.RepositoryDef
	Hosts []RepositoryOnHost `json:"hosts"`
}

// RepositoryOnHost is a repository on one host: mounted, missing, error
// (the message), or unknown (the host has not said yet).
type RepositoryOnHost struct {
	Host    string    `json:"host"`
	State   string    `json:"state"`
	Message string    `json:"message,omitempty"`
	SeenAt  time.Time `json:"seen_at,omitzero"`
}

// repositoryList answers on any host: the records are on the cluster root.
func (d *Daemon) repositoryList(context.Context, json.RawMessage) (any, error) {
	ag := d.currentAgent()
	if ag == nil || d.gstore == nil {
		return nil, errors.New("the guest side is off on this host (see its log), or it has not joined yet")
	}
	pool := ag.Pool()
	names, err := d.gstore.SeenHosts()
	if err != nil {
		return nil, fmt.Errorf("listing what the hosts see (%s/%s/sees): %w", d.gstore.Root(), store.Dir, err)
	}
	seen := map[string]validate.Seen{}
	for _, n := range names {
		var s validate.Seen
		if _, err := d.gstore.ReadSeen(n, &s); err == nil {
			seen[n] = s
		} else if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, store.ErrEmpty) {
			seen[n] = validate.Seen{Host: n, Problems: []string{err.Error()}}
		}
	}
	out := RepositoryList{Repositories: []RepositoryState{}, Directories: append([]string{}, pool.Repositories...)}
	for _, r := range pool.Storage {
		rs := RepositoryState{RepositoryDef: r, Hosts: []RepositoryOnHost{}}
		for _, n := range names {
			s, ok := seen[n]
			if !ok {
				continue
			}
			on := RepositoryOnHost{Host: n, State: "unknown", Message: "this host has not said since the repository was added", SeenAt: s.At}
			if len(s.Problems) > 0 && s.At.IsZero() {
				on.Message = "its record of what it sees cannot be read: " + s.Problems[0]
			}
			for _, x := range s.Repositories {
				if strings.EqualFold(x.UUID, r.UUID) {
					on.State, on.Message = x.State, x.Message
				}
			}
			rs.Hosts = append(rs.Hosts, on)
		}
		out.Repositories = append(out.Repositories, rs)
	}
	return out, nil
}
