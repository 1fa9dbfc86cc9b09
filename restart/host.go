package restart

import (
	"maps"
	"slices"
)

// ActionKind is what a host does to one guest.
type ActionKind int

const (
	// Start: start the guest from its configuration (attempt Attempt).
	// On failure, force-destroy it, confirm it absent, and report the
	// attempt failed (doc.go, H3).
	Start ActionKind = iota + 1
	// Stop: stop the guest (the operator asked, or an evacuation).
	Stop
	// Migrate: live-migrate the guest to Target (an evacuation), once
	// per Attempt; a failure is reported like a failed start.
	Migrate
)

func (k ActionKind) String() string {
	switch k {
	case Start:
		return "start"
	case Stop:
		return "stop"
	case Migrate:
		return "migrate"
	}
	return "action"
}

// Action is one thing a host does.
type Action struct {
	Kind    ActionKind
	Guest   string
	Attempt AttemptID
	Target  string // Migrate: the host to move to
}

// HostInput is what a host decides on, once a round (doc.go, H1–H4).
type HostInput struct {
	Self HostID
	// Epoch is the latest leader epoch this host has read; Plan is the
	// plan read after it, already checked to be written by the owner of
	// its epoch (lease.Validator), or the zero Plan.
	Epoch uint64
	Plan  Plan
	// Running is what the hypervisor runs now.
	Running []string
	// Attempted is, per guest, the latest start order this incarnation
	// has carried out (successful or not): an order is carried out once.
	Attempted map[string]AttemptID
}

// Decide returns what the host does this round: start the guests the plan
// of the current epoch assigns to this incarnation and that do not run
// here, once per attempt; stop those the operator stopped. A plan of
// another epoch is not obeyed (H1), and nothing is ever started or stopped
// without one.
func Decide(in HostInput) []Action {
	if in.Plan.Epoch == 0 || in.Plan.Epoch != in.Epoch {
		return nil
	}
	var out []Action
	for _, u := range slices.Sorted(maps.Keys(in.Plan.Guests)) {
		a := in.Plan.Guests[u]
		if a.Host != in.Self {
			continue
		}
		running := slices.Contains(in.Running, u)
		switch a.State {
		case Starting:
			// Only a Starting entry is a start order. A Running guest
			// that is gone is the master's to place again (with a new
			// order): a host never restarts one by itself.
			if !running && in.Attempted[u].Before(a.Attempt) {
				out = append(out, Action{Kind: Start, Guest: u, Attempt: a.Attempt})
			}
		case Stopping:
			if running {
				out = append(out, Action{Kind: Stop, Guest: u})
			}
		case Migrating:
			if running && in.Attempted[u].Before(a.Attempt) {
				out = append(out, Action{Kind: Migrate, Guest: u, Attempt: a.Attempt, Target: a.Target.Name})
			}
		}
	}
	return out
}

// Absent answers the plan's questions to this host, by name (whichever
// incarnation runs here now): the migrations to it whose source is done
// (SourceDone), of guests its hypervisor does not run now. The host reports the answer; it is read after the plan that asks,
// so it describes the hypervisor after the migration's end.
func Absent(self HostID, epoch uint64, p Plan, running []string) map[string]AttemptID {
	if p.Epoch == 0 || p.Epoch != epoch {
		return nil
	}
	var out map[string]AttemptID
	for u, a := range p.Guests {
		if a.SourceDone && a.Target.Name == self.Name && !slices.Contains(running, u) {
			if out == nil {
				out = map[string]AttemptID{}
			}
			out[u] = a.Attempt
		}
	}
	return out
}
