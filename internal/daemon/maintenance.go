package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/hbfence/hbfence/restart/store"
)

// Maintenance (hbfence host maintenance enter|exit HOST) and moving a
// guest by hand (hbfence guest migrate, hbfence guest start --on): the
// requests are written in the pool record on the master; the master's
// plan carries them out (restart/move.go, and Input.Maintenance).

// MaintenanceRequest is the argument of "host.maintenance".
type MaintenanceRequest struct {
	Op   string `json:"op"` // enter, exit
	Host string `json:"host"`
}

// MaintenanceAnswer is its answer.
type MaintenanceAnswer struct {
	Host string `json:"host"`
	// Maintenance is the host's maintenance as written (nil after exit).
	Maintenance *store.Maintenance `json:"maintenance,omitempty"`
	// Already: the host was already in maintenance (enter) or not in it
	// (exit); nothing was changed.
	Already bool `json:"already,omitempty"`
	// Master says what became of the master role when the master itself
	// entered maintenance: moved (MasterMove), or why it stays.
	Master     string      `json:"master,omitempty"`
	MasterMove *MoveResult `json:"master_move,omitempty"`
}

// maintenanceCommand enters or ends a host's maintenance, on the master.
// A master that enters maintenance hands the role to another live host
// (the first by name that is not in maintenance, else any), as hbfence
// master move would; with no other live host it stays master, and the
// answer says so. The maintenance itself stands either way.
func maintenanceCommand(ctx context.Context, ag *agent.Agent, ms *masterSide, fc *fencing, t timing.Params, raw json.RawMessage) (any, error) {
	var req MaintenanceRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("host maintenance: bad arguments: %v", err)
	}
	if fc == nil {
		return nil, errors.New("host maintenance: this host has not joined the pool yet")
	}
	st := fc.m.Status(clk.Now())
	out := MaintenanceAnswer{Host: req.Host}
	switch req.Op {
	case "enter":
		if _, err := findHost(st, "host maintenance enter", req.Host); err != nil {
			return nil, err
		}
	case "exit":
	default:
		return nil, fmt.Errorf("host maintenance: unknown operation %q (use enter or exit)", req.Op)
	}
	err := update(ag, ms, func(c *store.PoolConfig) error {
		m, in := c.Maintenance[req.Host]
		switch {
		case req.Op == "enter" && in:
			out.Already, out.Maintenance = true, &m
		case req.Op == "enter":
			if c.Maintenance == nil {
				c.Maintenance = map[string]store.Maintenance{}
			}
			m = store.Maintenance{Since: clk.Now().UTC().Truncate(time.Second), By: st.Self}
			c.Maintenance[req.Host] = m
			out.Maintenance = &m
		case !in:
			out.Already = true
		default:
			delete(c.Maintenance, req.Host)
			if len(c.Maintenance) == 0 {
				c.Maintenance = nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if req.Op == "enter" && req.Host == st.Self {
		// This host is the master (the update succeeded here).
		to := masterSuccessor(st, ag.Pool())
		if to == "" {
			out.Master = fmt.Sprintf("%s stays master: no other host is live to take the role", st.Self)
			return out, nil
		}
		arg, _ := json.Marshal(MoveRequest{Host: to})
		res, merr := moveMaster(ctx, fc, ms, t, arg)
		if merr != nil {
			out.Master = fmt.Sprintf("%s stays master: moving the role to %s failed (%v); move it by hand: hbfence master move HOST", st.Self, to, merr)
			return out, nil
		}
		out.MasterMove = &res
		out.Master = fmt.Sprintf("the master role moved from %s to %s (epoch %d)", res.From, res.To, res.NewEpoch)
	}
	return out, nil
}

// masterSuccessor is the host a master entering maintenance hands the
// role to: a live host other than this one, not in maintenance if there
// is one, the first by name; "" when there is none.
func masterSuccessor(st heartbeat.Status, c store.PoolConfig) string {
	var free, busy []string
	for _, h := range st.Hosts {
		if h.Self || h.Name == "" || h.State != liveness.Live {
			continue
		}
		if _, in := c.Maintenance[h.Name]; in {
			busy = append(busy, h.Name)
		} else {
			free = append(free, h.Name)
		}
	}
	slices.Sort(free)
	slices.Sort(busy)
	if all := append(free, busy...); len(all) > 0 {
		return all[0]
	}
	return ""
}

// maintenanceWarning is status's line for a host in maintenance; Check
// recognises it (maintenancePrefix) and warns.
func maintenanceWarning(host string, m store.Maintenance) string {
	return fmt.Sprintf("%s%s in maintenance since %s: it is given no guest until hbfence host maintenance exit %s",
		maintenancePrefix, host, m.Since.UTC().Format(time.RFC3339), host)
}

const maintenancePrefix = "host "

// inMaintenance reports which host a status warning says is in
// maintenance, if it is such a warning.
func inMaintenance(w string) (string, bool) {
	rest, ok := strings.CutPrefix(w, maintenancePrefix)
	if !ok {
		return "", false
	}
	host, _, ok := strings.Cut(rest, " in maintenance since ")
	return host, ok && host != ""
}

// unavailableFor says why host cannot be given guest g now (the daemon's
// check before it writes a move or a start on a host; the plan checks
// again when it acts: restart M5), or "".
func unavailableFor(c store.PoolConfig, g store.GuestDef, host string, hosts []heartbeat.HostStatus) string {
	var h *heartbeat.HostStatus
	for i := range hosts {
		if hosts[i].Name == host {
			h = &hosts[i]
		}
	}
	_, inMaint := c.Maintenance[host]
	e, evac := c.Evacuations[host]
	switch {
	case h == nil:
		return fmt.Sprintf("no host %q in the pool (see hbfence status)", host)
	case h.State != liveness.Live:
		return fmt.Sprintf("%s is %s, not live", host, h.State)
	case inMaint:
		return fmt.Sprintf("%s is in maintenance (hbfence host maintenance exit %s ends it)", host, host)
	case evac && e.Generation == h.Generation:
		return fmt.Sprintf("%s is being evacuated", host)
	case !slices.Contains(c.RolesOf(host), restart.RoleVM):
		return fmt.Sprintf("%s lacks the vm role (hbfence pool role %s vm)", host, host)
	case h.Unsafe:
		return fmt.Sprintf("%s runs with no watchdog: it is given no guest", host)
	case h.GuestsUnknown:
		return fmt.Sprintf("%s cannot list its guests (no driver, no kill hook): it is given no guest", host)
	case g.Placement == restart.Manual && !slices.Contains(g.Preferred, host):
		return fmt.Sprintf("guest %s has manual placement and %s is not among its preferred hosts %s", g.Name, host, strings.Join(g.Preferred, ", "))
	}
	return ""
}

// liveMigrates reports whether a driver can live-migrate a running guest:
// the process driver cannot (its Migrate returns driver.ErrNoMigration);
// an exec script may say it cannot (exit 3), and the move then falls back
// to a stop and a start on the host asked for.
func liveMigrates(driverName string) bool { return driverName != "process" }

// moveGuest checks hbfence guest migrate GUEST HOST [--restart] against
// the guest's state as this master's last plan shows it, and writes the
// request (GuestDef.MoveSeq).
func moveGuest(g *store.GuestDef, c store.PoolConfig, gs agent.GuestStatus, to string, restartIt bool, hosts []heartbeat.HostStatus) error {
	switch {
	case gs.State == restart.Migrating:
		return fmt.Errorf("guest %s is already migrating from %s to %s: wait until it lands", g.Name, gs.Host, gs.Target)
	case gs.State != restart.Running:
		return fmt.Errorf("guest %s is %s, not running: only a running guest is migrated (start a stopped one on a host: hbfence guest start %s --on %s)", g.Name, gs.State, g.Name, to)
	case gs.Host == to:
		return fmt.Errorf("guest %s already runs on %s", g.Name, to)
	}
	if why := unavailableFor(c, *g, to, hosts); why != "" {
		return fmt.Errorf("guest %s is not moved to %s: %s", g.Name, to, why)
	}
	if _, inMaint := c.Maintenance[gs.Host]; inMaint {
		return fmt.Errorf("guest %s runs on %s, which is in maintenance: the maintenance moves it", g.Name, gs.Host)
	}
	if !restartIt && !liveMigrates(g.Driver) {
		return fmt.Errorf("guest %s: the %s driver cannot live-migrate a running guest; hbfence guest migrate %s %s --restart stops it on %s and starts it on %s", g.Name, g.Driver, g.Name, to, gs.Host, to)
	}
	g.MoveSeq++
	g.MoveTo, g.MoveRestart = to, restartIt
	return nil
}
