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

// cmdHost: hbfence host evacuate HOST [--migrate GUEST,...|--migrate-all]
// [--cancel], hbfence host maintenance enter|exit HOST.
func cmdHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("host", "evacuate HOST|maintenance enter HOST|maintenance exit HOST", stderr)
	sock := socketFlags(fs)
	migrate := fs.String("migrate", "", "guests to live-migrate, comma-separated; the others are stopped and restarted on other hosts")
	all := fs.Bool("migrate-all", false, "live-migrate every guest")
	cancelEvac := fs.Bool("cancel", false, "cancel the evacuation of HOST: the guests not moved yet stay there")
	wait := fs.Duration("wait", 10*time.Minute, "how long to show the progress before giving up watching (the evacuation goes on)")
	asJSON := fs.Bool("json", false, "print the outcome (evacuate) or the answer (maintenance) as JSON")
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
		return fmt.Errorf("%w: hbfence host evacuate HOST [--migrate GUEST,...|--migrate-all] [--cancel], or hbfence host maintenance enter|exit HOST", errUsage)
	}
	if *all && *migrate != "" {
		return fmt.Errorf("%w: --migrate and --migrate-all exclude each other", errUsage)
	}
	if *cancelEvac && (*all || *migrate != "") {
		return fmt.Errorf("%w: --cancel takes no --migrate or --migrate-all", errUsage)
	}
	socket, err := sock()
	if err != nil {
		return err
	}
	host := pos[1]
	req := daemon.EvacuateRequest{Host: host, MigrateAll: *all, Cancel: *cancelEvac}
	if *migrate != "" {
		req.Migrate = strings.Split(*migrate, ",")
	}
	cctx, cancel := context.WithTimeout(ctx, changeTimeout)
	err = control.Call(cctx, socket, "host.evacuate", req, nil)
	cancel()
	if err != nil {
		return err
	}
	if *cancelEvac {
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]any{"schema": JSONSchema, "host": host, "cancelled": true})
		}
		fmt.Fprintf(stdout, "evacuation of %s cancelled: the guests not moved yet stay there; those moving finish their move\n", host)
		return nil
	}
	progress := stdout
	if *asJSON {
		progress = io.Discard
	} else {
		fmt.Fprintf(stdout, "evacuating %s: ", host)
		switch {
		case *all:
			fmt.Fprintln(stdout, "every guest is live-migrated where its driver can, else stopped and restarted on another host")
		case *migrate != "":
			fmt.Fprintf(stdout, "%s live-migrated, the others stopped and restarted on other hosts\n", *migrate)
		default:
			fmt.Fprintln(stdout, "every guest is stopped and restarted on another host")
		}
	}
	out, err := watchEvacuation(ctx, socket, host, *wait, progress)
	if *asJSON {
		if jerr := json.NewEncoder(stdout).Encode(out); jerr != nil {
			return jerr
		}
	} else if out.Host != "" {
		printOutcome(stdout, out)
	}
	if err != nil {
		return err
	}
	if n := out.NotMoved; n > 0 {
		return fmt.Errorf("%s could not be moved off %s (see above); the evacuation stays recorded until hbfence host evacuate %s --cancel", plural(n, "guest"), host, host)
	}
	return nil
}

// EvacuationOutcome is what hbfence host evacuate ends with: each guest
// that ran on the host, and where it is now.
type EvacuationOutcome struct {
	Schema   int            `json:"schema"`
	Host     string         `json:"host"`
	Seconds  float64        `json:"seconds"`
	Guests   []GuestOutcome `json:"guests"`
	NotMoved int            `json:"not_moved"`
}

// GuestOutcome is one guest's outcome: its state and host now, and whether
// it moved off the evacuated host.
type GuestOutcome struct {
	Name    string        `json:"name"`
	State   restart.State `json:"state"`
	Host    string        `json:"host,omitempty"`
	Moved   bool          `json:"moved"`
	Message string        `json:"message,omitempty"`
}

// settled: the guest will not move further by itself (running or stopped
// elsewhere, pending with no host to take it, in error), as far as the
// evacuation of host goes. A guest pending while a new master waits for
// every host's report on its epoch (after the master role moved off
// host) is not settled: it is placed a round or so later.
func settled(g agent.GuestStatus, host string) bool {
	switch g.State {
	case restart.Migrating, restart.Starting, restart.Stopping:
		return false
	case restart.Running:
		return g.Host != host
	case restart.Pending:
		return !restart.AwaitingReports(g.Message)
	}
	return true // stopped, pending, error
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
	out, err := watchEvacuation(ctx, socket, host, wait, stdout)
	if out.Host != "" {
		printOutcome(stdout, out)
	}
	if err == nil && out.NotMoved > 0 {
		err = fmt.Errorf("%s could not be moved off %s (see above); it stays in maintenance until hbfence host maintenance exit %s", plural(out.NotMoved, "guest"), host, host)
	}
	return err
}

// watchEvacuation prints each guest's progress off host as it happens,
// until every guest that ran there has settled (moved, or unable to move
// further: pending with no host to take it, or in error), and returns each
// one's outcome.
func watchEvacuation(ctx context.Context, socket, host string, wait time.Duration, w io.Writer) (EvacuationOutcome, error) {
	out := EvacuationOutcome{Schema: JSONSchema, Host: host}
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
			return out, err
		}
		open := 0
		byName := map[string]agent.GuestStatus{}
		for _, g := range st.Guests {
			byName[g.Name] = g
			if g.Host == host && g.State != restart.Stopped && !slices.Contains(involved, g.Name) {
				involved = append(involved, g.Name)
			}
			if !slices.Contains(involved, g.Name) {
				continue
			}
			if !settled(g, host) {
				open++
			}
			if line := progressLine(g, host); seen[g.Name] != line {
				seen[g.Name] = line
				fmt.Fprintf(w, "[%6.1fs] %-12s %s\n", time.Since(start).Seconds(), shown(g.Name), line)
			}
		}
		if open == 0 {
			sort.Strings(involved)
			out.Seconds = time.Since(start).Seconds()
			out.Guests, out.NotMoved = nil, 0
			for _, n := range involved {
				g := byName[n]
				o := GuestOutcome{Name: n, State: g.State, Host: g.Host, Message: g.Message,
					Moved: g.Host != host && (g.State == restart.Running || g.State == restart.Stopped && g.Host == "")}
				if g.State == restart.Pending || g.State == restart.Error || g.Host == host {
					o.Moved = false
				}
				if !o.Moved {
					out.NotMoved++
				}
				out.Guests = append(out.Guests, o)
			}
			return out, nil
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%s still moving off %s after %v; the evacuation goes on (hbfence guest list)", plural(open, "guest"), host, wait)
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func printOutcome(w io.Writer, out EvacuationOutcome) {
	if len(out.Guests) == 0 {
		fmt.Fprintf(w, "%s runs none of the pool's guests: it can be shut down\n", out.Host)
		return
	}
	fmt.Fprintf(w, "after %.1fs:\n", out.Seconds)
	for _, g := range out.Guests {
		where := string(g.State)
		if g.Host != "" {
			where += " on " + g.Host
		}
		line := fmt.Sprintf("  %-12s %s", shown(g.Name), where)
		if !g.Moved && g.Message != "" {
			line += " (" + shown(g.Message) + ")"
		}
		fmt.Fprintln(w, line)
	}
	if out.NotMoved == 0 {
		fmt.Fprintf(w, "%s runs none of the pool's guests: it can be shut down\n", out.Host)
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
