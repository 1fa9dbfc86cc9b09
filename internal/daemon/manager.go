package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/hbfence/hbfence/restart/driver"
	"github.com/hbfence/hbfence/restart/store"
)

// The manager relation (issue 12, docs/pool.md): the Oracle VM manager
// may run as an HA guest, but never of the pool it manages, so two pools
// each run the other's manager. The pool record names the guest that
// manages the pool (hbfence pool managed-by, PoolConfig.ManagedBy): HA
// for a guest of that UUID is refused in this pool (guest add --ha, guest
// ha enable), placement never restarts it here whatever its record says
// (restart.Pool.ManagedBy), and recording the relation turns off the HA
// of a guest of that UUID already in the pool. The other pool's record of
// the same guest says which pool it manages (guest add --manages,
// GuestDef.Manages), never its own.

func init() { forwardable["pool.managed-by"] = true }

// ManagedByRequest is the argument of "pool.managed-by": the manager's
// UUID, or Clear to remove the relation.
type ManagedByRequest struct {
	ManagerUUID string `json:"manager_uuid,omitempty"`
	Clear       bool   `json:"clear,omitempty"`
}

// ManagedByAnswer is the relation as written.
type ManagedByAnswer struct {
	PoolUUID string `json:"pool_uuid"`
	// ManagedBy is the manager's UUID now ("" once cleared); Was the one
	// before.
	ManagedBy string `json:"managed_by"`
	Was       string `json:"was,omitempty"`
	// Guest names the guest of this pool with the manager's UUID, if
	// there is one; HATurnedOff: this command turned its HA off.
	Guest       string `json:"guest,omitempty"`
	HATurnedOff bool   `json:"ha_turned_off,omitempty"`
}

// managedBy records (or clears) which guest manages this pool, on the
// master (forwarded there from any host).
func managedBy(ag *agent.Agent, ms *masterSide, raw json.RawMessage) (any, error) {
	var req ManagedByRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("pool managed-by: bad arguments: %v", err)
	}
	u := strings.ToLower(strings.TrimSpace(req.ManagerUUID))
	switch {
	case req.Clear && u != "":
		return nil, errors.New("pool managed-by: --manager-uuid and --clear together: give the manager's UUID to record it, or --clear alone to remove it")
	case !req.Clear && u == "":
		return nil, errors.New("pool managed-by: --manager-uuid is missing: give the UUID of the guest that manages this pool (the manager VM's UUID, as its hypervisor knows it), or --clear")
	case u != "":
		if err := driver.ValidUUID(u); err != nil {
			return nil, fmt.Errorf("pool managed-by --manager-uuid: %v", err)
		}
	}
	var ans ManagedByAnswer
	err := update(ag, ms, func(c *store.PoolConfig) error {
		ans = ManagedByAnswer{PoolUUID: ag.PoolUUID().String(), ManagedBy: u, Was: c.ManagedBy}
		c.ManagedBy = u
		if u == "" {
			return nil
		}
		if i, ok := c.Find(u); ok {
			g := &c.Guests[i]
			ans.Guest = g.Name
			if g.HA {
				// It must not stay HA here: the relation turns HA off
				// in the same write (the plan refuses it anyway).
				g.HA, ans.HATurnedOff = false, true
			}
		}
		return nil
	})
	return ans, err
}

// managerHARefused is the refusal of HA in this pool for the guest that
// manages it.
func managerHARefused(c store.PoolConfig, g store.GuestDef) error {
	return fmt.Errorf("guest %s (%s) manages this pool (hbfence pool managed-by --manager-uuid %s): HA for it in the pool it manages is refused; "+
		"run it as an HA guest of another pool (hbfence guest add --manages THIS_POOL_UUID --ha there), or remove the relation first (hbfence pool managed-by --clear)",
		g.Name, g.UUID, c.ManagedBy)
}

// withManages checks a guest being added against the manager relation:
// HA is refused for this pool's manager, and --manages names another
// pool than this one. It returns the guest with Manages set.
func withManages(req GuestRequest, g store.GuestDef, c store.PoolConfig, self ondisk.UUID) (store.GuestDef, error) {
	if g.HA && c.IsManager(g.UUID) {
		return g, managerHARefused(c, g)
	}
	if req.Manages == "" {
		return g, nil
	}
	p, err := ondisk.ParseUUID(strings.TrimSpace(req.Manages))
	if err != nil {
		return g, fmt.Errorf("--manages %q: not a pool UUID (hbfence status prints a pool's UUID on its \"pool\" line): %v", req.Manages, err)
	}
	if p == self {
		return g, fmt.Errorf("--manages %s: that is this pool's own UUID, and guest %s (%s) is being added to this pool: "+
			"a manager is never an HA guest of the pool it manages. Add it on a host of the other pool (the one that is to run it), "+
			"and record it here with hbfence pool managed-by --manager-uuid %s", p, g.Name, g.UUID, g.UUID)
	}
	g.Manages = p.String()
	return g, nil
}

// managerView is what pool show says of the relation: the manager's UUID
// and, when the manager is a guest of this pool too, its name.
func managerView(c store.PoolConfig) (uuid, name string) {
	if i, ok := c.Find(c.ManagedBy); ok && c.ManagedBy != "" {
		name = c.Guests[i].Name
	}
	return c.ManagedBy, name
}
