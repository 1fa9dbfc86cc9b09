package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/hbfence/hbfence/heartbeat/lease"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
)

// cmdMaster shows the pool master (hbfence master) or moves it
// (hbfence master move HOST).
func cmdMaster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("master", "[move HOST]", stderr)
	sock := socketFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	socket, err := sock()
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return showMaster(ctx, socket, *asJSON, stdout)
	case pos[0] == "move":
		host, err := oneArg(pos[1:], "HOST to move the master role to")
		if err != nil {
			return err
		}
		return moveMaster(ctx, socket, host, *asJSON, stdout)
	}
	return fmt.Errorf("%w: unknown subcommand %q: use \"hbfence master\" or \"hbfence master move HOST\"", errUsage, pos[0])
}

func showMaster(ctx context.Context, socket string, asJSON bool, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var st daemon.Status
	if err := control.Call(ctx, socket, "status", nil, &st); err != nil {
		return err
	}
	if st.Master == nil {
		return fmt.Errorf("%s has not joined the pool yet: no view of the master", st.Self)
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(st.Master)
	}
	printMaster(stdout, st.Self, *st.Master)
	return nil
}

func printMaster(w io.Writer, self string, m master.Status) {
	switch {
	case !m.Known:
		fmt.Fprintf(w, "master   unknown: %s has not read the leader record yet\n", self)
	case m.Epoch == 0:
		fmt.Fprintf(w, "master   none: the master lease was never held\n")
	case m.Successor != "":
		fmt.Fprintf(w, "master   none: epoch %d was handed over to %s, which has not taken it yet (record read %.1fs ago)\n", m.Epoch, m.Successor, m.SinceAgeSeconds)
	case m.Released:
		fmt.Fprintf(w, "master   none: epoch %d was released; the first host to acquire the lease becomes master\n", m.Epoch)
	default:
		// One age for one change: the change line's, when it is this
		// epoch's (issue 11: "since" and "change" disagreed).
		since := m.SinceAgeSeconds
		if c := m.LastChange; c != nil && c.Epoch == m.Epoch && !c.Released {
			since = c.AgeSeconds
		}
		fmt.Fprintf(w, "master   %s (slot %d, generation %d), epoch %d, since %.1fs ago as seen here\n", m.Name, m.Slot, m.Generation, m.Epoch, since)
	}
	s := m.Self
	role := s.Role.String()
	if s.Role == lease.Acquiring && !s.Acting {
		// Waiting to take the role over: a standby, not a host in the
		// middle of an acquisition (issue 11).
		role = "standby (takes the master role once the master is gone)"
	}
	line := fmt.Sprintf("this     %s: %s", self, role)
	if s.Acting {
		line += fmt.Sprintf(", acting as master of epoch %d (for %.1fs more without a renewal)", s.Epoch, s.ActingForSeconds)
	}
	if s.Waiting != "" {
		line += "; waiting: " + s.Waiting
	}
	if s.Fenced != "" {
		line += "; fenced: " + s.Fenced
	}
	fmt.Fprintln(w, line)
	if c := m.LastChange; c != nil {
		what := fmt.Sprintf("epoch %d held by %s", c.Epoch, orNone(c.Name))
		switch {
		case c.Successor != "":
			what = fmt.Sprintf("epoch %d of %s released for %s", c.Epoch, c.Name, c.Successor)
		case c.Released:
			what = fmt.Sprintf("epoch %d of %s released", c.Epoch, c.Name)
		}
		before := "never held"
		if c.PrevEpoch > 0 {
			before = fmt.Sprintf("epoch %d of %s", c.PrevEpoch, orNone(c.PrevName))
		}
		fmt.Fprintf(w, "change   %.1fs ago: %s (before: %s)\n", c.AgeSeconds, what, before)
	}
	if h := m.LastHandOver; h != nil {
		line := fmt.Sprintf("handover %.1fs ago: epoch %d from %s to %s, %s", h.AgeSeconds, h.Epoch, h.From, h.To, h.Outcome)
		if h.Detail != "" {
			line += " (" + h.Detail + ")"
		}
		fmt.Fprintln(w, line)
	} else {
		fmt.Fprintln(w, "handover none seen by this host")
	}
	if s.LastError != "" {
		fmt.Fprintf(w, "error    %s\n", s.LastError)
	}
}

func orNone(s string) string {
	if s == "" {
		return "nobody"
	}
	return s
}

func moveMaster(ctx context.Context, socket, host string, asJSON bool, stdout io.Writer) error {
	// The daemon bounds each step by the pool's timing.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var res daemon.MoveResult
	if err := control.Call(ctx, socket, "master.move", daemon.MoveRequest{Host: host}, &res); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintln(stdout, res.Message)
	return nil
}
