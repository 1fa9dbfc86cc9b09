package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/restart/agent"
)

// poolManagedBy is hbfence pool managed-by --manager-uuid U | --clear:
// which guest manages this pool (docs/pool.md, "The manager relation").
func poolManagedBy(ctx context.Context, socket string, req daemon.ManagedByRequest, asJSON bool, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	var raw json.RawMessage
	if err := control.Call(ctx, socket, "pool.managed-by", req, &raw); err != nil {
		return err
	}
	if asJSON {
		_, err := stdout.Write(append(raw, '\n'))
		return err
	}
	var a daemon.ManagedByAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return err
	}
	if a.ManagedBy == "" {
		if a.Was == "" {
			fmt.Fprintf(stdout, "pool %s names no manager (nothing to clear)\n", a.PoolUUID)
		} else {
			fmt.Fprintf(stdout, "pool %s is no longer managed by guest %s: HA for that guest is allowed here again\n", a.PoolUUID, a.Was)
		}
		return nil
	}
	fmt.Fprintf(stdout, "pool %s is managed by guest %s: HA for it in this pool is refused from now on\n", a.PoolUUID, a.ManagedBy)
	switch {
	case a.HATurnedOff:
		fmt.Fprintf(stdout, "guest %s of this pool has that UUID: its HA is turned off (it keeps running where it runs, and is not restarted here if its host fails)\n", shown(a.Guest))
	case a.Guest != "":
		fmt.Fprintf(stdout, "guest %s of this pool has that UUID; it had no HA, and can have none here\n", shown(a.Guest))
	}
	return nil
}

// managerLine is what guest show says of the manager relation ("" when
// the guest has none).
func managerLine(g agent.GuestStatus) string {
	switch {
	case g.ManagesThisPool && g.Manages != "":
		return fmt.Sprintf("manages this pool (pool managed-by) and pool %s", g.Manages)
	case g.ManagesThisPool:
		return "manages this pool (pool managed-by): never HA here"
	case g.Manages != "":
		return fmt.Sprintf("manages pool %s", g.Manages)
	}
	return ""
}

// printManagers is status's part of the relation: which guest manages
// this pool, and which pool each manager guest of this pool manages.
func printManagers(w io.Writer, st daemon.Status) {
	var lines []string
	if st.ManagedBy != "" {
		name := ""
		for _, g := range st.Guests {
			if g.ManagesThisPool {
				name = " (" + shown(g.Name) + " here, never HA in this pool)"
			}
		}
		lines = append(lines, fmt.Sprintf("this pool is managed by guest %s%s", st.ManagedBy, name))
	}
	for _, g := range st.Guests {
		if g.Manages != "" {
			lines = append(lines, fmt.Sprintf("guest %s manages pool %s", shown(g.Name), g.Manages))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(w)
	}
	for _, l := range lines {
		fmt.Fprintf(w, "manager  %s\n", l)
	}
}

// printPoolManager is pool show's manager line.
func printPoolManager(w io.Writer, v daemon.PoolView) {
	switch {
	case v.ManagedBy == "":
		fmt.Fprintf(w, "manager  none recorded (hbfence pool managed-by --manager-uuid UUID)\n")
	case v.Manager != "":
		fmt.Fprintf(w, "manager  guest %s (%s in this pool: never HA here)\n", v.ManagedBy, shown(v.Manager))
	default:
		fmt.Fprintf(w, "manager  guest %s (an HA guest of another pool)\n", v.ManagedBy)
	}
}
