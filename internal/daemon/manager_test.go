package daemon

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/hbfence/hbfence/restart/store"
	"github.com/rs/zerolog"
)

// masterCluster is a one-host pool whose host is always the master of
// epoch 1: enough for the commands that change the pool record.
type masterCluster struct{}

func (masterCluster) Self() ondisk.Owner { return ondisk.Owner{Slot: 0, Generation: 1} }
func (masterCluster) Leader() lease.Holder {
	return lease.Holder{Known: true, Epoch: 1, Owner: ondisk.Owner{Slot: 0, Generation: 1}}
}
func (masterCluster) Master(now time.Time) (lease.Mastership, bool) {
	return lease.Mastership{Epoch: 1, Since: now, Until: now.Add(time.Hour)}, true
}
func (masterCluster) Peers() []agent.Peer {
	return []agent.Peer{{Name: "h1", Slot: 0, Generation: 1, State: liveness.Live}}
}
func (masterCluster) Fresh(time.Time) bool { return true }
func (masterCluster) Now() time.Time       { return time.Now() }

// managerPool is an agent, master of a pool on a temporary cluster root
// with one repository and the guest configuration file cfg inside it.
func managerPool(t *testing.T) (ag *agent.Agent, pool ondisk.UUID, cfg string) {
	t.Helper()
	root := t.TempDir()
	st, err := store.Open(root, true, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pool = ondisk.NewUUID()
	st.BindPool(pool)
	p, _ := timing.Profile("fast")
	ag = agent.New(agent.Config{Cluster: masterCluster{}, Store: st, Timing: p, Log: zerolog.Nop()})
	repo := filepath.Join(root, "Repositories", "r1")
	if err := os.MkdirAll(repo, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(repo, "guest.json")
	if err := os.WriteFile(cfg, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := poolCommand(ag, nil, nil, mustJSON(t, map[string]any{"repository": repo})); err != nil {
		t.Fatal(err)
	}
	return ag, pool, cfg
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const mgrUUID = "0004fb00-0006-0000-0000-00000000a001"

// pool managed-by: HA for the manager of this pool is refused by guest
// add --ha and guest ha enable, with the relation and the fix named; an
// HA guest of that UUID already in the pool has its HA turned off by the
// relation; pool-wide HA does not make it HA (status's effective HA);
// --clear lifts the refusal.
func TestHAIsRefusedForTheManagerOfThisPool(t *testing.T) {
	ag, _, cfg := managerPool(t)
	guest := func(req GuestRequest) error {
		_, err := guestCommand(ag, nil, nil, mustJSON(t, req))
		return err
	}
	setManager := func(req ManagedByRequest) ManagedByAnswer {
		t.Helper()
		ans, err := managedBy(ag, nil, mustJSON(t, req))
		if err != nil {
			t.Fatal(err)
		}
		return ans.(ManagedByAnswer)
	}
	if _, err := poolCommand(ag, nil, nil, mustJSON(t, map[string]any{"ha": true})); err != nil {
		t.Fatal(err)
	}
	if err := guest(GuestRequest{Op: "add", Name: "mgr", UUID: mgrUUID, Driver: "process", Config: cfg, HA: true}); err != nil {
		t.Fatal(err)
	}

	ans := setManager(ManagedByRequest{ManagerUUID: strings.ToUpper(mgrUUID)})
	if ans.ManagedBy != mgrUUID || ans.Guest != "mgr" || !ans.HATurnedOff {
		t.Fatalf("managed-by answered %+v; want the UUID in lower case, guest mgr named, its HA turned off", ans)
	}
	c := ag.Pool()
	if c.ManagedBy != mgrUUID || c.Guests[0].HA {
		t.Fatalf("pool record: managed_by %q, mgr HA %v", c.ManagedBy, c.Guests[0].HA)
	}

	err := guest(GuestRequest{Op: "ha", Guest: "mgr", HA: true})
	if err == nil || !strings.Contains(err.Error(), "manages this pool") || !strings.Contains(err.Error(), "--clear") {
		t.Errorf("guest ha enable of the manager: %v; want a refusal naming the relation and the fix", err)
	}
	if ag.Pool().Guests[0].HA {
		t.Error("the refused guest ha enable was written")
	}

	// The same UUID added again (another name) with --ha: refused.
	if _, err := poolCommand(ag, nil, nil, mustJSON(t, map[string]any{"ha": true})); err != nil {
		t.Fatal(err)
	}
	if err := guest(GuestRequest{Op: "remove", Guest: "mgr"}); err != nil {
		t.Fatal(err)
	}
	err = guest(GuestRequest{Op: "add", Name: "mgr2", UUID: strings.ToUpper(mgrUUID), Driver: "process", Config: cfg, HA: true})
	if err == nil || !strings.Contains(err.Error(), "manages this pool") {
		t.Errorf("guest add --ha of the manager: %v", err)
	}
	// Without --ha it may run here, never as HA.
	if err := guest(GuestRequest{Op: "add", Name: "mgr2", UUID: mgrUUID, Driver: "process", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	for _, gs := range ag.Guests() {
		if gs.Name == "mgr2" && (gs.HA || !gs.ManagesThisPool) {
			t.Errorf("status of the manager: %+v; want HA off and manages_this_pool", gs)
		}
	}

	if ans := setManager(ManagedByRequest{Clear: true}); ans.ManagedBy != "" || ans.Was != mgrUUID {
		t.Fatalf("--clear answered %+v", ans)
	}
	if err := guest(GuestRequest{Op: "ha", Guest: "mgr2", HA: true}); err != nil {
		t.Errorf("guest ha enable once the relation is cleared: %v", err)
	}
}

// pool managed-by refuses what it cannot record, naming the flag.
func TestManagedByRefusals(t *testing.T) {
	ag, _, _ := managerPool(t)
	for _, c := range []struct {
		req  ManagedByRequest
		want string
	}{
		{ManagedByRequest{}, "--manager-uuid is missing"},
		{ManagedByRequest{ManagerUUID: mgrUUID, Clear: true}, "--manager-uuid and --clear together"},
		{ManagedByRequest{ManagerUUID: "web01"}, "--manager-uuid: guest UUID \"web01\""},
	} {
		if _, err := managedBy(ag, nil, mustJSON(t, c.req)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v; want %q", c.req, err, c.want)
		}
	}
	if c := ag.Pool(); c.ManagedBy != "" {
		t.Errorf("a refused managed-by was written: %q", c.ManagedBy)
	}
}

// guest add --manages records the pool a guest manages, and is refused
// for this pool's own UUID, naming the guest, the pool and the fix.
func TestGuestManagesAnotherPoolOnly(t *testing.T) {
	ag, pool, cfg := managerPool(t)
	add := func(name, uuid, manages string) error {
		_, err := guestCommand(ag, nil, nil, mustJSON(t, GuestRequest{Op: "add", Name: name, UUID: uuid, Driver: "process", Config: cfg, HA: true, Manages: manages}))
		return err
	}
	err := add("mgr-self", mgrUUID, strings.ToUpper(pool.String()))
	if err == nil || !strings.Contains(err.Error(), pool.String()) || !strings.Contains(err.Error(), "mgr-self") || !strings.Contains(err.Error(), "this pool's own UUID") ||
		!strings.Contains(err.Error(), "pool managed-by --manager-uuid "+mgrUUID) {
		t.Errorf("--manages of this pool: %v; want a refusal naming the guest, the pool and the fix", err)
	}
	if err := add("mgr-bad", mgrUUID, "pool-b"); err == nil || !strings.HasPrefix(err.Error(), "--manages \"pool-b\": not a pool UUID") {
		t.Errorf("--manages pool-b: %v", err)
	}
	if n := len(ag.Pool().Guests); n != 0 {
		t.Fatalf("refused adds wrote %d guests", n)
	}
	other := ondisk.NewUUID()
	if err := add("mgr-b", mgrUUID, strings.ToUpper(other.String())); err != nil {
		t.Fatal(err)
	}
	gs := ag.Guests()
	if len(gs) != 1 || gs[0].Manages != other.String() || !gs[0].HAGuest || gs[0].ManagesThisPool {
		t.Fatalf("the manager of another pool reads %+v; want manages %s, HA on", gs, other)
	}
}
