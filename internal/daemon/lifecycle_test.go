package daemon

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/safeclock"
)

// The lifecycle's decision after each way an incarnation can end.
func TestNextStep(t *testing.T) {
	p, _ := timing.Profile("default")
	d := durationsOf(p, &config.Config{})
	boom := errors.New("boom")
	cases := []struct {
		name string
		e    ending
		kind stepKind
		wait time.Duration
		err  bool
	}{
		{"fatal", ending{fatal: boom}, stepExit, 0, true},
		{"stopped while joining", ending{joinErr: context.Canceled, first: true}, stepExit, 0, false},
		{"first join fails", ending{joinErr: boom, first: true}, stepExit, 0, true},
		{"join after a fence fails", ending{joinErr: boom}, stepJoin, d.joinRetry, false},
		{"left", ending{outcome: leftCleanly}, stepExit, 0, false},
		{"fenced", ending{outcome: fenced}, stepJoin, d.rejoinAfter, false},
		{"fenced while stopping", ending{outcome: fenced, stopped: true}, stepExit, 0, false},
		{"fenced off", ending{outcome: fenced, off: true}, stepExit, 0, false},
		{"fenced, watchdog broken", ending{outcome: fenced, armErr: boom}, stepExit, 0, true},
		{"resetting", ending{outcome: resetting, runErr: boom}, stepAwaitReset, 0, true},
		{"resetting, no watchdog", ending{outcome: resetting, unsafe: true}, stepStayUnsafe, 0, true},
		// Issue 10 item 3: a watchdog that could not be armed or fed
		// may not reset the machine; exiting would leave a slot that
		// reads as fenced once dead.
		{"resetting, arm failed", ending{outcome: resetting, armErr: boom}, stepStayUnsafe, 0, true},
		{"resetting, feed failed", ending{outcome: resetting, feedErr: boom}, stepStayUnsafe, 0, true},
		{"suspended for an upgrade", ending{outcome: suspended}, stepReexec, 0, false},
		{"suspended, then stopped", ending{outcome: suspended, stopped: true}, stepResume, 0, false},
		// Issue 9 item 6: the area was replaced (re-formatted in place):
		// never join the open, stale area again.
		{"fenced, area replaced", ending{outcome: fenced, replaced: boom}, stepExit, 0, true},
		{"resetting, area replaced", ending{outcome: resetting, runErr: boom, replaced: boom}, stepAwaitReset, 0, true},
	}
	for _, c := range cases {
		s := next(c.e, d, "c.toml", "/OVS/.server_pool_hb")
		if s.kind != c.kind || s.wait != c.wait || (s.err != nil) != c.err {
			t.Errorf("%s: %+v, want kind %d wait %v err %v", c.name, s, c.kind, c.wait, c.err)
		}
	}
}

// A reload names every changed key; [log] is what it can apply.
func TestChangedKeys(t *testing.T) {
	a := &config.Config{Path: "a"}
	a.Log.Level, a.Log.Format = "info", "json"
	b := *a
	b.Path = "b"
	b.Log.Level = "debug"
	b.Guests.Drivers = []string{"process"}
	b.Control.Socket = "/run/x.sock"
	got := changedKeys(a, &b)
	want := []string{"[control] socket", "[log] level", "[guests] drivers"}
	if !slices.Equal(got, want) {
		t.Fatalf("changed keys %v, want %v", got, want)
	}
	if got := changedKeys(a, a); len(got) != 0 {
		t.Fatalf("no change: %v", got)
	}
}

// The safety-clock readings handed across an exec come back as the same
// instant, still a raw reading.
func TestHandoverRoundTrip(t *testing.T) {
	t0 := safeclock.Now().Add(-1500 * time.Millisecond)
	back := fromHandover(toHandover(t0))
	if !back.Equal(t0) {
		t.Fatalf("round trip: %v, want %v", back, t0)
	}
	if err := safeclock.Check(back); err != nil {
		t.Fatal(err)
	}
}
