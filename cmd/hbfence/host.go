package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

// cmdHost: hbfence host evacuate HOST [--migrate GUEST,...|--migrate-all],
// hbfence host maintenance enter|exit HOST.
func cmdHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("host", "evacuate HOST|maintenance enter HOST|maintenance exit HOST", stderr)
	sock := socketFlags(fs)
	asJSON := fs.Bool("json", false, "maintenance: print the answer as JSON")
	migrate := fs.String("migrate", "", "guests to live-migrate, comma-separated; the others are stopped and restarted on other hosts")
	all := fs.Bool("migrate-all", false, "live-migrate every guest")
	wait := fs.Duration("wait", 10*time.Minute, "how long to show the progress before giving up watching (the evacuation goes on)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 3 && pos[0] == "maintenance" && (pos[1] == "enter" || pos[1] == "exit") {
		if *all || *migrate != "" {
			return fmt.Errorf("%w: --migrate and --migrate-all are flags of host evacuate: maintenance live-migrates every guest where its driver can", errUsage)
		}
		socket, err := sock()
		if err != nil {
			return err
		}
		return hostMaintenance(ctx, socket, pos[1], pos[2], *asJSON, *wait, stdout)
	}
	if len(pos) != 2 || pos[0] != "evacuate" {
		return fmt.Errorf("%w: hbfence host evacuate HOST [--migrate GUEST,...|--migrate-all], or hbfence host maintenance enter|exit HOST", errUsage)
	}
	if *all && *migrate != "" {
		return fmt.Errorf("%w: --migrate and --migrate-all exclude each other", errUsage)
	}
	socket, err := sock()
	if err != nil {
		return err
	}
	host := pos[1]
	req := daemon.EvacuateRequest{Host: host, MigrateAll: *all}
	if *migrate != "" {
		req.Migrate = strings.Split(*migrate, ",")
	}
	cctx, cancel := context.WithTimeout(ctx, changeTimeout)
	err = control.Call(cctx, socket, "host.evacuate", req, nil)
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "evacuating %s: ", host)
	switch {
	case *all:
		fmt.Fprintln(stdout, "every guest is live-migrated where its driver can, else stopped and restarted on another host")
	case *migrate != "":
		fmt.Fprintf(stdout, "%s live-migrated, the others stopped and restarted on other hosts\n", *migrate)
	default:
		fmt.Fprintln(stdout, "every guest is stopped and restarted on another host")
	}
	return watchEvacuation(ctx, socket, host, *wait, stdout)
}

// hostMaintenance: hbfence host maintenance enter|exit HOST. Entering
// shows the host being emptied (as evacuate does) unless --json.
func hostMaintenance(ctx context.Context, socket, op, host string, asJSON bool, wait time.Duration, stdout io.Writer) error {
	cctx, cancel := context.WithTimeout(ctx, changeTimeout)
	var ans daemon.MaintenanceAnswer
	err := control.Call(cctx, socket, "host.maintenance", daemon.MaintenanceRequest{Op: op, Host: host}, &ans)
	cancel()
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(ans)
	}
	h := shown(host)
	switch {
	case op == "exit" && ans.Already:
		fmt.Fprintf(stdout, "%s is not in maintenance: nothing to do\n", h)
		return nil
	case op == "exit":
		fmt.Fprintf(stdout, "%s is out of maintenance: the master may place guests on it again\n", h)
		return nil
	case ans.Already:
		fmt.Fprintf(stdout, "%s is already in maintenance (since %s)\n", h, ans.Maintenance.Since.UTC().Format(time.RFC3339))
	default:
		fmt.Fprintf(stdout, "%s enters maintenance: every guest is live-migrated where its driver can, else stopped and restarted on another host; it is given none until hbfence host maintenance exit %s\n", h, h)
	}
	if ans.Master != "" {
		fmt.Fprintln(stdout, shown(ans.Master))
	}
	return watchEvacuation(ctx, socket, host, wait, stdout)
}

// watchEvacuation prints each guest's progress off host as it happens,
// until none runs there.
func watchEvacuation(ctx context.Context, socket, host string, wait time.Duration, w io.Writer) error {
	seen := map[string]string{}
	deadline := time.Now().Add(wait)
	start := time.Now()
	var involved []string
	for {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var st daemon.Status
		err := control.Call(cctx, socket, "status", nil, &st)
		cancel()
		if err != nil {
			return err
		}
		left := 0
		for _, g := range st.Guests {
			line := progressLine(g, host)
			if g.Host == host && g.State != restart.Stopped {
				left++
				if !slices.Contains(involved, g.Name) {
					involved = append(involved, g.Name)
				}
			}
			if !slices.Contains(involved, g.Name) {
				continue
			}
			if seen[g.Name] != line {
				seen[g.Name] = line
				fmt.Fprintf(w, "[%6.1fs] %-12s %s\n", time.Since(start).Seconds(), g.Name, line)
			}
		}
		if left == 0 {
			sort.Strings(involved)
			fmt.Fprintf(w, "%s runs none of the pool's guests: it can be shut down (moved: %s)\n", host, strings.Join(involved, ", "))
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still on %s after %v; the evacuation goes on (hbfence guest list)", plural(left, "guest"), host, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func progressLine(g agent.GuestStatus, host string) string {
	switch {
	case g.State == restart.Migrating:
		return fmt.Sprintf("migrating to %s", g.Target)
	case g.Host == host:
		s := string(g.State) + " on " + host
		if g.Message != "" {
			s += " (" + g.Message + ")"
		}
		return s
	case g.Host != "":
		return fmt.Sprintf("%s on %s", g.State, g.Host)
	}
	s := string(g.State)
	if g.Message != "" {
		s += " (" + g.Message + ")"
	}
	return s
}
