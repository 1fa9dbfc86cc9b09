package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/hbfence/hbfence/restart/store"
)

// cmdGuest: hbfence guest add|remove|list|show|ha|start|stop|migrate.
func cmdGuest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("guest", "add|remove|list|show|ha enable|ha disable|start [--on HOST]|stop [GUEST] | migrate GUEST HOST [--restart]", stderr)
	// --config is the daemon's configuration, as in every command
	// (issue 11: it was the guest's file here); --daemon-config stays as
	// its older name, and the guest's file is --guest-config.
	daemonCfg := fs.String("config", config.DefaultPath, "configuration file naming the control socket")
	fs.StringVar(daemonCfg, "daemon-config", config.DefaultPath, "the same as --config (its older name)")
	socketFlag := fs.String("socket", "", "control socket (overrides --config)")
	sock := func() (string, error) {
		if *socketFlag != "" {
			return *socketFlag, nil
		}
		c, err := config.Load(*daemonCfg)
		if err != nil {
			return "", fmt.Errorf("%w (the guest's own configuration file is --guest-config)", err)
		}
		return c.Control.Socket, nil
	}
	asJSON := fs.Bool("json", false, "print JSON")
	name := fs.String("name", "", "add: the guest's name (its domain name for xl)")
	uuid := fs.String("uuid", "", "add: the guest's UUID (default: the one its xl or virsh configuration names, else a new one)")
	drv := fs.String("driver", "", "add: process, xl, virsh or exec")
	cfg := fs.String("guest-config", "", "add: the path of the guest's configuration on the shared storage, inside a repository of the pool")
	ha := fs.Bool("ha", false, "add: protect it with HA (the pool's HA must be on too)")
	placement := fs.String("placement", "auto", "add: auto (any available host) or manual (only its preferred hosts)")
	preferred := fs.String("preferred", "", "add: preferred hosts, comma-separated")
	mgmt := fs.Bool("management", false, "add: it is the management instance of this pool (never HA here)")
	manages := fs.String("manages", "", "add: the UUID of the other pool this guest manages (never this pool's own)")
	on := fs.String("on", "", "start: start the stopped guest on this host (refused when it is not available or its placement does not allow it)")
	restartIt := fs.Bool("restart", false, "migrate: stop the guest on its host and start it on HOST (for a driver that cannot live-migrate)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return fmt.Errorf("%w: hbfence guest add|remove|list|show|ha|start|stop|migrate", errUsage)
	}
	socket, err := sock()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	op, rest := pos[0], pos[1:]
	switch op {
	case "list", "show":
		var st daemon.Status
		if err := control.Call(ctx, socket, "status", nil, &st); err != nil {
			return err
		}
		if st.GuestsOff != "" {
			return fmt.Errorf("the guest side is off on %s: %s", st.Self, st.GuestsOff)
		}
		if op == "list" {
			if *asJSON {
				return json.NewEncoder(stdout).Encode(st.Guests)
			}
			printGuests(stdout, st.Guests)
			return nil
		}
		g, err := oneArg(rest, "GUEST (name or UUID)")
		if err != nil {
			return err
		}
		for _, s := range st.Guests {
			if s.Name == g || s.UUID == g {
				if *asJSON {
					return json.NewEncoder(stdout).Encode(s)
				}
				printGuest(stdout, s)
				return nil
			}
		}
		return fmt.Errorf("no guest %q in the pool (see hbfence guest list)", g)
	}
	req := daemon.GuestRequest{Op: op}
	if *on != "" && op != "start" {
		return fmt.Errorf("%w: --on is a flag of guest start (move a running guest with hbfence guest migrate GUEST HOST)", errUsage)
	}
	if *restartIt && op != "migrate" {
		return fmt.Errorf("%w: --restart is a flag of guest migrate", errUsage)
	}
	if *manages != "" && op != "add" {
		return fmt.Errorf("%w: --manages is a flag of guest add (the pool a guest manages is recorded when it is added)", errUsage)
	}
	switch op {
	case "add":
		if len(rest) != 0 {
			return fmt.Errorf("%w: guest add takes flags only (--name, --driver, --guest-config, ...)", errUsage)
		}
		req.Name, req.UUID, req.Driver, req.Config, req.HA, req.Placement, req.Management = *name, *uuid, *drv, *cfg, *ha, *placement, *mgmt
		if req.Config != "" && !filepath.IsAbs(req.Config) {
			// A path typed relative to where the operator stands, as
			// every other command takes one (issue 11: it was refused).
			abs, err := filepath.Abs(req.Config)
			if err != nil {
				return fmt.Errorf("--guest-config %s: %w", req.Config, err)
			}
			req.Config = abs
		}
		if *preferred != "" {
			req.Preferred = strings.Split(*preferred, ",")
		}
		req.Manages = *manages
	case "remove", "start", "stop":
		if req.Guest, err = oneArg(rest, "GUEST (name or UUID)"); err != nil {
			return err
		}
		req.On = *on
	case "ha":
		if len(rest) != 2 || (rest[0] != "enable" && rest[0] != "disable") {
			return fmt.Errorf("%w: hbfence guest ha enable|disable GUEST", errUsage)
		}
		req.HA, req.Guest = rest[0] == "enable", rest[1]
	case "migrate":
		if len(rest) != 2 {
			return fmt.Errorf("%w: hbfence guest migrate GUEST HOST [--restart]", errUsage)
		}
		req.Guest, req.On, req.Restart = rest[0], rest[1], *restartIt
	default:
		return fmt.Errorf("%w: unknown guest command %q", errUsage, op)
	}
	var ans daemon.GuestAnswer
	if err := control.Call(ctx, socket, "guest", req, &ans); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(ans)
	}
	g := ans.GuestDef
	g.Name = shown(g.Name)
	switch op {
	case "add":
		fmt.Fprintf(stdout, "added guest %s (%s), stopped; start it with hbfence guest start %s\n", g.Name, g.UUID, g.Name)
	case "remove":
		fmt.Fprintf(stdout, "removed guest %s (%s)\n", g.Name, g.UUID)
	case "ha":
		fmt.Fprintf(stdout, "HA %s for guest %s\n", map[bool]string{true: "enabled", false: "disabled"}[g.HA], g.Name)
	case "start":
		if ans.Deferred != "" {
			fmt.Fprintf(stdout, "start of guest %s accepted, not carried out now: %s (hbfence guest show %s)\n", g.Name, shown(ans.Deferred), g.Name)
			break
		}
		if req.On != "" {
			fmt.Fprintf(stdout, "starting guest %s on %s: the master places it there within an interval (hbfence guest show %s)\n", g.Name, shown(req.On), g.Name)
			break
		}
		fmt.Fprintf(stdout, "starting guest %s: the master places it within an interval (hbfence guest show %s)\n", g.Name, g.Name)
	case "migrate":
		how := "live"
		if req.Restart {
			how = "by a stop on its host and a start there"
		}
		fmt.Fprintf(stdout, "moving guest %s to %s, %s: the master orders it within an interval (hbfence guest show %s)\n", g.Name, shown(req.On), how, g.Name)
	case "stop":
		fmt.Fprintf(stdout, "stopping guest %s (hbfence guest show %s)\n", g.Name, g.Name)
	}
	return nil
}

func printGuests(w io.Writer, gs []agent.GuestStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUUID\tHA\tHOST\tSTATE\tMESSAGE")
	for _, g := range gs {
		g = shownGuest(g)
		host := g.Host
		if host == "" {
			host = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", g.Name, g.UUID, haWord(g), host, g.State, g.Message)
	}
	tw.Flush()
}

func haWord(g agent.GuestStatus) string {
	switch {
	case g.HA:
		return "on"
	case g.ManagesThisPool:
		return "off (manages this pool)"
	case !g.HAPool && g.HAGuest:
		return "off (pool)"
	case !g.HAGuest && g.HAPool:
		return "off (guest)"
	}
	return "off"
}

func printGuest(w io.Writer, g agent.GuestStatus) {
	g = shownGuest(g)
	fmt.Fprintf(w, "guest     %s (%s)\n", g.Name, g.UUID)
	fmt.Fprintf(w, "driver    %s, configuration %s\n", g.Driver, g.Config)
	ha := "on: restarted on another host if its host fails"
	switch {
	case g.ManagesThisPool:
		ha = "off: it manages this pool (hbfence pool managed-by), and is an HA guest of another pool only"
	case !g.HAPool && !g.HAGuest:
		ha = "off: HA is disabled on the pool (hbfence pool ha enable) and on the guest (hbfence guest ha enable " + g.Name + ")"
	case !g.HAPool:
		ha = "off: HA is disabled on the pool (hbfence pool ha enable)"
	case !g.HAGuest:
		ha = "off: HA is disabled on the guest (hbfence guest ha enable " + g.Name + ")"
	case !g.HA:
		ha = "off: it is the management instance of this pool"
	}
	fmt.Fprintf(w, "ha        %s\n", ha)
	if l := managerLine(g); l != "" {
		fmt.Fprintf(w, "manager   %s\n", l)
	}
	pl := string(g.Placement)
	if len(g.Preferred) > 0 {
		pl += " (preferred: " + strings.Join(g.Preferred, ", ") + ")"
	}
	fmt.Fprintf(w, "placement %s\n", pl)
	if g.Host == "" {
		fmt.Fprintf(w, "state     %s", g.State) // not "stopped on none"
	} else {
		fmt.Fprintf(w, "state     %s on %s", g.State, g.Host)
	}
	if g.Attempt > 0 {
		fmt.Fprintf(w, " (start attempt %d)", g.Attempt)
	}
	fmt.Fprintln(w)
	if g.Message != "" {
		fmt.Fprintf(w, "message   %s\n", g.Message)
	}
}

// cmdPool: hbfence pool ha enable|disable, pool role HOST ROLES, pool
// repository add DIR.
func cmdPool(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pool", "show [--json]|validate [--json]|ha enable|ha disable|role HOST vm[,utility]|repository add DIR|repair|managed-by (--manager-uuid UUID or --clear)", stderr)
	sock := socketFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON (pool show, pool validate)")
	managerUUID := fs.String("manager-uuid", "", "managed-by: the UUID of the guest that manages this pool (HA for it is refused here)")
	clearManager := fs.Bool("clear", false, "managed-by: remove the relation")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	socket, err := sock()
	if err != nil {
		return err
	}
	if len(pos) == 1 && pos[0] == "show" {
		return show(ctx, socket, "pool.show", *asJSON, stdout, printPool)
	}
	if len(pos) == 1 && pos[0] == "validate" {
		return poolValidate(ctx, socket, *asJSON, stdout)
	}
	if len(pos) == 1 && pos[0] == "managed-by" {
		return poolManagedBy(ctx, socket, daemon.ManagedByRequest{ManagerUUID: *managerUUID, Clear: *clearManager}, *asJSON, stdout)
	}
	if *managerUUID != "" || *clearManager {
		return fmt.Errorf("%w: --manager-uuid and --clear are flags of pool managed-by", errUsage)
	}
	if len(pos) == 1 && pos[0] == "repair" {
		ctx, cancel := context.WithTimeout(ctx, changeTimeout)
		defer cancel()
		var r agent.Repaired
		if err := control.Call(ctx, socket, "pool.repair", nil, &r); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "pool record repaired from the %s copy: epoch %d, sequence %d, written %s, %s; changes made after it are lost.\nThe unreadable record is kept as %s\n",
			r.From, r.Epoch, r.Seq, r.Written.UTC().Format(time.RFC3339), plural(r.Guests, "guest"), r.Kept)
		return nil
	}
	req := map[string]any{}
	switch {
	case len(pos) == 2 && pos[0] == "ha" && (pos[1] == "enable" || pos[1] == "disable"):
		req["ha"] = pos[1] == "enable"
	case len(pos) == 3 && pos[0] == "role":
		req["roles"] = map[string][]string{pos[1]: strings.Split(pos[2], ",")}
	case len(pos) == 3 && pos[0] == "repository" && pos[1] == "add":
		req["repository"] = pos[2]
	default:
		return fmt.Errorf("%w: hbfence pool show [--json], pool validate [--json], pool ha enable|disable, pool role HOST vm[,utility], pool repository add DIR, pool repair, pool managed-by --manager-uuid UUID|--clear", errUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	var c store.PoolConfig
	if err := control.Call(ctx, socket, "pool", req, &c); err != nil {
		return err
	}
	asked, _ := req["roles"].(map[string][]string)
	for h := range asked {
		roles := make([]string, 0, len(c.Roles[h]))
		for _, r := range c.Roles[h] {
			roles = append(roles, string(r))
		}
		line := fmt.Sprintf("roles of %s: %s", shown(h), strings.Join(roles, ","))
		if !slices.Contains(c.Roles[h], restart.RoleVM) {
			line += " (no vm role: the master places no guest on it; give it vm,utility to keep both)"
		}
		fmt.Fprintln(stdout, line)
	}
	repos := "no repositories"
	if len(c.Repositories) > 0 {
		repos = "repositories " + strings.Join(c.Repositories, ", ")
	}
	fmt.Fprintf(stdout, "pool HA %s; %s; %s\n", map[bool]string{true: "enabled", false: "disabled"}[c.HA], plural(len(c.Guests), "guest"), repos)
	return nil
}

func printPool(w io.Writer, v daemon.PoolView) {
	onOff := map[bool]string{true: "enabled", false: "disabled"}
	fmt.Fprintf(w, "pool     %s\n", v.PoolUUID)
	if v.Record.Seq == 0 {
		fmt.Fprintf(w, "record   none read yet (no change was ever made)\n")
	} else {
		fmt.Fprintf(w, "record   epoch %d, sequence %d, written %s\n", v.Record.Epoch, v.Record.Seq, v.Record.Written.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "HA       %s; at most %d start attempts per placement\n", onOff[v.HA], v.MaxAttempts)
	fmt.Fprintf(w, "guests   %s defined, %s with HA\n", plural(v.Guests, "guest"), plural(v.HAGuests, "guest"))
	printPoolManager(w, v)
	if len(v.Repositories) == 0 {
		fmt.Fprintf(w, "repos    none: guest configurations must resolve inside the cluster root\n")
	}
	for _, r := range v.Repositories {
		fmt.Fprintf(w, "repo     %s\n", shown(r))
	}
	for _, a := range v.Alarms {
		fmt.Fprintf(w, "ALARM    %s: %s\n", a.Code, shown(a.Message))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tROLES\tSTATE\tEVACUATING\tMAINTENANCE")
	for _, h := range v.Hosts {
		roles := make([]string, len(h.Roles))
		for i, r := range h.Roles {
			roles[i] = string(r)
		}
		state := h.State
		if state == "" {
			state = "not in the heartbeat area"
		}
		evac := "no"
		if e, ok := v.Evacuations[h.Name]; ok {
			evac = fmt.Sprintf("yes (generation %d)", e.Generation)
		}
		maint := "no"
		if m, ok := v.Maintenance[h.Name]; ok {
			maint = "since " + m.Since.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shown(h.Name), strings.Join(roles, ","), state, evac, maint)
	}
	tw.Flush()
}

// plural is "1 guest", "2 guests", "no guests".
func plural(n int, what string) string {
	switch n {
	case 0:
		return "no " + what + "s"
	case 1:
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
