package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/driver"
	"github.com/hbfence/hbfence/restart/store"
	"github.com/rs/zerolog"
)

// world is the pool's shared facts in a test: who is master with which
// epoch, and every host's liveness.
type world struct {
	mu     sync.Mutex
	epoch  uint64
	master string
	slots  map[string]uint32
	states map[string]liveness.State
}

type fakeCluster struct {
	w    *world
	name string
}

func (c fakeCluster) Now() time.Time { return time.Now() } // synctest's fake time

func (c fakeCluster) Self() ondisk.Owner {
	return ondisk.Owner{Slot: c.w.slots[c.name], Generation: 1, Name: c.name}
}

func (c fakeCluster) Leader() lease.Holder {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return lease.Holder{Known: true, Epoch: c.w.epoch, Owner: ondisk.Owner{Slot: c.w.slots[c.w.master], Generation: 1, Name: c.w.master}}
}

func (c fakeCluster) Master(time.Time) (lease.Mastership, bool) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	return lease.Mastership{Epoch: c.w.epoch}, c.w.master == c.name && c.w.states[c.name] == liveness.Live
}

func (c fakeCluster) Fresh(time.Time) bool { return true }

func (c fakeCluster) Peers() []Peer {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	var out []Peer
	for n, s := range c.w.states {
		out = append(out, Peer{Name: n, Generation: 1, State: s})
	}
	return out
}

// memDriver is a hypervisor in memory; fail makes starts fail.
type memDriver struct {
	mu   sync.Mutex
	run  []string
	fail bool
}

func (d *memDriver) Name() string { return "mem" }
func (d *memDriver) Start(_ context.Context, g driver.Spec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail {
		return errors.New("no memory for " + g.Name)
	}
	if !slices.Contains(d.run, g.UUID) {
		d.run = append(d.run, g.UUID)
	}
	return nil
}
func (d *memDriver) Stop(ctx context.Context, g driver.Spec) error { return d.Destroy(ctx, g) }
func (d *memDriver) Destroy(_ context.Context, g driver.Spec) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.run = slices.DeleteFunc(d.run, func(u string) bool { return u == g.UUID })
	return nil
}
func (d *memDriver) Running(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.run), nil
}
func (d *memDriver) Migrate(context.Context, driver.Spec, string) error { return driver.ErrNoMigration }

const g1 = "11111111-2222-3333-4444-555555555555"

type node struct {
	a *Agent
	d *memDriver
}

func setup(t *testing.T, names ...string) (*world, map[string]*node, string) {
	t.Helper()
	root := t.TempDir()
	cfg := filepath.Join(root, "g1.json")
	os.WriteFile(cfg, []byte(`{}`), 0o600)
	tm, _ := timing.Profile("fast")
	w := &world{epoch: 1, master: names[0], slots: map[string]uint32{}, states: map[string]liveness.State{}}
	nodes := map[string]*node{}
	for i, n := range names {
		w.slots[n] = uint32(i)
		w.states[n] = liveness.Live
		st, err := store.Open(root, true, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		d := &memDriver{}
		nodes[n] = &node{d: d, a: New(Config{Cluster: fakeCluster{w, n}, Store: st, Drivers: map[string]driver.Driver{"mem": d},
			Timing: tm, Log: zerolog.New(io.Discard)})}
	}
	return w, nodes, cfg
}

func rounds(nodes map[string]*node, n int) {
	for range n {
		for _, name := range []string{"a", "b", "c"} {
			if nd, ok := nodes[name]; ok {
				nd.a.Round(context.Background())
			}
		}
	}
}

func where(nodes map[string]*node) []string {
	var out []string
	for _, name := range []string{"a", "b", "c"} {
		if nd, ok := nodes[name]; ok {
			if run, _ := nd.d.Running(context.Background()); slices.Contains(run, g1) {
				out = append(out, name)
			}
		}
	}
	return out
}

// A guest added and started through the master runs on one host; when that
// host dies (and is fenced: its guests are gone), the next master restarts
// it on another host, once.
func TestAgentsFailOver(t *testing.T) {
	w, nodes, cfg := setup(t, "a", "b", "c")
	rounds(nodes, 1)
	err := nodes["a"].a.Update(func(c *store.PoolConfig) error {
		c.HA = true
		c.Guests = append(c.Guests, store.GuestDef{UUID: g1, Name: "web", Driver: "mem", Config: cfg, HA: true, Placement: restart.Auto, StartSeq: 1})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes["b"].a.Update(func(*store.PoolConfig) error { return nil }); !errors.Is(err, ErrNotMaster) {
		t.Fatalf("update on a host that is not master: %v", err)
	}
	rounds(nodes, 3)
	on := where(nodes)
	if len(on) != 1 {
		t.Fatalf("after a start the guest runs on %v, want one host", on)
	}
	gs := nodes["b"].a.Guests()
	if len(gs) != 1 || gs[0].Host != on[0] || gs[0].State != restart.Running || !gs[0].HA {
		t.Fatalf("guests as b sees them: %+v", gs)
	}
	// Its host dies: fenced, its guests are gone; the master is replaced.
	victim := on[0]
	w.mu.Lock()
	w.states[victim] = liveness.Dead
	if w.master == victim {
		w.master = map[string]string{"a": "b", "b": "c", "c": "a"}[victim]
	}
	w.epoch++
	w.mu.Unlock()
	nodes[victim].d.Destroy(context.Background(), driver.Spec{UUID: g1})
	delete(nodes, victim)
	for i := 0; i < 4; i++ {
		rounds(nodes, 1)
		if n := len(where(nodes)); n > 1 {
			t.Fatalf("round %d: the guest runs on %v", i, where(nodes))
		}
	}
	on2 := where(nodes)
	if len(on2) != 1 || on2[0] == victim {
		t.Fatalf("after %s died the guest runs on %v", victim, on2)
	}
}

// A start that fails is tried on the other hosts, then the guest is in
// error with the hypervisor's message: no hot loop.
func TestAgentsStartFailures(t *testing.T) {
	_, nodes, cfg := setup(t, "a", "b")
	for _, n := range nodes {
		n.d.fail = true
	}
	rounds(nodes, 1)
	if err := nodes["a"].a.Update(func(c *store.PoolConfig) error {
		c.HA, c.MaxAttempts = true, 2
		c.Guests = append(c.Guests, store.GuestDef{UUID: g1, Name: "web", Driver: "mem", Config: cfg, HA: true, Placement: restart.Auto, StartSeq: 1})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rounds(nodes, 8)
	gs := nodes["a"].a.Guests()
	if gs[0].State != restart.Error || !strings.Contains(gs[0].Message, "no memory for web") {
		t.Fatalf("guest after failing starts: %+v", gs[0])
	}
}

// A guest configuration must resolve inside a repository of the pool.
func TestInsideRepository(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "repo")
	os.MkdirAll(repo, 0o700)
	inside := filepath.Join(repo, "vm.cfg")
	os.WriteFile(inside, nil, 0o600)
	outside := filepath.Join(root, "secret")
	os.WriteFile(outside, nil, 0o600)
	link := filepath.Join(repo, "link.cfg")
	os.Symlink(outside, link)
	if err := InsideRepository(inside, []string{repo}); err != nil {
		t.Errorf("inside: %v", err)
	}
	for _, p := range []string{link, repo + "/../secret", "vm.cfg"} {
		if err := InsideRepository(p, []string{repo}); err == nil {
			t.Errorf("%s: accepted", p)
		}
	}
}

// uuidDriver is a memDriver whose configurations name another UUID.
type uuidDriver struct {
	*memDriver
	uuid string
}

func (d uuidDriver) ConfigUUID(string) (string, error) { return d.uuid, nil }

// A guest whose configuration names another UUID is never started: it
// would run unseen by the pool.
func TestStartRefusesAConfigOfAnotherUUID(t *testing.T) {
	_, nodes, cfg := setup(t, "a")
	n := nodes["a"]
	n.a.cfg.Drivers["mem"] = uuidDriver{n.d, "99999999-2222-3333-4444-555555555555"}
	rounds(nodes, 1)
	if err := n.a.Update(func(c *store.PoolConfig) error {
		c.HA, c.MaxAttempts = true, 1
		c.Guests = append(c.Guests, store.GuestDef{UUID: g1, Name: "web", Driver: "mem", Config: cfg, HA: true, Placement: restart.Auto, StartSeq: 1})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rounds(nodes, 4)
	if run, _ := n.d.Running(context.Background()); len(run) != 0 {
		t.Fatalf("started %v", run)
	}
	gs := n.a.Guests()
	if gs[0].State != restart.Error || !strings.Contains(gs[0].Message, "would run unseen") {
		t.Fatalf("guest: %+v", gs[0])
	}
}

// A pool record that cannot be read is not edited: the edit alone would
// be written over every guest definition.
func TestUpdateRefusesAnUnreadablePool(t *testing.T) {
	_, nodes, cfg := setup(t, "a")
	a := nodes["a"].a
	if err := a.Update(func(c *store.PoolConfig) error {
		c.Guests = append(c.Guests, store.GuestDef{UUID: g1, Name: "web", Driver: "mem", Config: cfg, Placement: restart.Auto})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(filepath.Dir(cfg), store.Dir, "pool")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(before)
	for i := 64; i < 128 && i < len(bad); i++ {
		bad[i] ^= 0xff
	}
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	err = a.Update(func(c *store.PoolConfig) error { c.HA = true; return nil })
	if err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("update of an unreadable pool record: %v, want a refusal", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(after, bad) {
		t.Fatal("the refused update wrote the pool record")
	}
}

// lateDriver is a hypervisor whose destroys fail while cut, and whose
// create of g1 lands right after the listing number lands.
type lateDriver struct {
	memDriver
	cut   bool
	lands int
}

func (d *lateDriver) Destroy(ctx context.Context, g driver.Spec) error {
	d.mu.Lock()
	cut := d.cut
	d.mu.Unlock()
	if cut {
		return errors.New("destroy cut off")
	}
	return d.memDriver.Destroy(ctx, g)
}

func (d *lateDriver) Running(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := slices.Clone(d.run)
	if d.lands > 0 {
		if d.lands--; d.lands == 0 {
			d.run = append(d.run, g1)
		}
	}
	return out, nil
}

// Leave destroys and confirms gone a guest whose start failed and whose
// cleanup did not succeed, even when no listing of Leave's shows it yet:
// it may still come up.
func TestLeaveConfirmsAFailedStartsGuestGone(t *testing.T) {
	_, nodes, cfg := setup(t, "a")
	a := nodes["a"].a
	d := &lateDriver{cut: true}
	d.fail = true
	a.cfg.Drivers["mem"] = d
	if err := a.Update(func(c *store.PoolConfig) error {
		c.HA = true
		c.Guests = append(c.Guests, store.GuestDef{UUID: g1, Name: "web", Driver: "mem", Config: cfg, HA: true, Placement: restart.Auto, StartSeq: 1})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rounds(nodes, 3)
	a.mu.Lock()
	_, pending := a.cleanup[g1]
	a.mu.Unlock()
	if !pending {
		t.Fatal("the failed start's cleanup did not fail as the driver says")
	}
	d.mu.Lock()
	d.cut, d.lands = false, 1 // the create lands after Leave's first listing
	d.mu.Unlock()
	if err := a.Leave(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if run, _ := d.Running(context.Background()); len(run) != 0 {
		t.Fatalf("after Leave returned nil, %v still run", run)
	}
}
