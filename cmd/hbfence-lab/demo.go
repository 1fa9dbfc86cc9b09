package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/internal/lab"
)

// A scene is one step of the story. Later issues add scenes (the master,
// fencing, guests) to the list in scenes.go.
type scene struct {
	title string
	play  func(ctx context.Context, d *demo) error
}

// demo holds the pool and what has been measured so far.
type demo struct {
	out     io.Writer
	binary  string
	dir     string
	profile string
	// initArgs, when set, are the timing flags of hbfence init instead
	// of --profile profile (the comparison's profiles).
	initArgs []string
	start    time.Time

	pool  *lab.Pool
	hosts map[string]*lab.Host
	// extra are the pools of the two-pool scene.
	extra  []*lab.Pool
	timing timingSeconds

	figures map[string]any
	failed  []string

	// faultErr says why per-host fault-injecting storage is not used
	// (nil when it is: root with /dev/fuse).
	faultErr error
}

type timingSeconds struct {
	Interval, RenewalFail, HostDead, Watchdog float64
}

func newDemo(out io.Writer, binary, dir, profile string) *demo {
	return &demo{out: out, binary: binary, dir: dir, profile: profile, start: time.Now(),
		hosts: map[string]*lab.Host{}, figures: map[string]any{}}
}

// play runs the scenes in order; a scene that fails ends the story.
func (d *demo) play(ctx context.Context, scenes []scene) bool {
	for i, s := range scenes {
		fmt.Fprintf(d.out, "\n== %d. %s\n", i+1, s.title)
		if err := s.play(ctx, d); err != nil {
			d.fail("%s: %v", s.title, err)
			break
		}
	}
	fmt.Fprintln(d.out)
	if len(d.failed) > 0 {
		fmt.Fprintf(d.out, "VERDICT: FAILED — %d check(s) did not hold:\n", len(d.failed))
		for _, f := range d.failed {
			fmt.Fprintf(d.out, "  - %s\n", f)
		}
		for _, h := range d.allHosts() {
			fmt.Fprintf(d.out, "\n-- last log lines of %s (%s):\n%s\n", h.Name, h.LogPath, tail(h.Log(), 8))
		}
		return false
	}
	fmt.Fprintln(d.out, "VERDICT: OK — everything narrated above was observed.")
	return true
}

func (d *demo) allHosts() []*lab.Host {
	var out []*lab.Host
	if d.pool != nil {
		out = d.pool.Hosts()
	}
	for _, p := range d.extra {
		out = append(out, p.Hosts()...)
	}
	return out
}

func (d *demo) close() {
	if d.pool != nil {
		d.pool.Close()
	}
	for _, p := range d.extra {
		p.Close()
	}
}

// say prints a line of narration, stamped with the time since the start.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "[%6.2fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

// show prints a command's output, indented.
func (d *demo) show(out string) {
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Fprintf(d.out, "    %s\n", l)
	}
}

// check records a claim of the narration and whether it held.
func (d *demo) check(ok bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if ok {
		fmt.Fprintf(d.out, "          ✓ %s\n", msg)
		return
	}
	fmt.Fprintf(d.out, "          ✗ %s\n", msg)
	d.failed = append(d.failed, msg)
}

func (d *demo) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(d.out, "          ✗ %s\n", msg)
	d.failed = append(d.failed, msg)
}

// transition is when an observer saw a peer enter a state.
type transition struct {
	observer string
	at       time.Time
}

// watch polls observers until each has seen peer in every wanted state
// (in order of the list) or timeout passes. It returns, per state, when
// each observer entered it, from the daemon's own state age.
func (d *demo) watch(ctx context.Context, peer string, observers []*lab.Host, want []liveness.State, timeout time.Duration) (map[liveness.State][]transition, error) {
	seen := map[liveness.State][]transition{}
	got := map[string]map[liveness.State]bool{}
	for _, o := range observers {
		got[o.Name] = map[liveness.State]bool{}
	}
	err := lab.WaitUntil(ctx, timeout, 20*time.Millisecond, fmt.Sprintf("%s seen %v by every observer", peer, want), func() (bool, error) {
		all := true
		for _, o := range observers {
			s, since, _, err := o.PeerState(ctx, peer)
			if err != nil {
				return false, err
			}
			if !got[o.Name][s] && contains(want, s) {
				got[o.Name][s] = true
				seen[s] = append(seen[s], transition{observer: o.Name, at: since})
			}
			if !got[o.Name][want[len(want)-1]] {
				all = false
			}
		}
		return all, nil
	})
	return seen, err
}

func contains(list []liveness.State, s liveness.State) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (d *demo) run(ctx context.Context, args ...string) (string, error) {
	return d.pool.Run(ctx, args...)
}

func (d *demo) statusOf(ctx context.Context, h *lab.Host) (string, error) {
	return d.run(ctx, "status", "--config", h.Config)
}

func (d *demo) figure(name string, v any) { d.figures[name] = v }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startHosts adds and starts the named hosts on the demo's pool p, and
// waits (at most within) until every one has joined.
func (d *demo) startHosts(ctx context.Context, p *lab.Pool, names []string, within time.Duration) ([]*lab.Host, error) {
	d.pool = p
	var all []*lab.Host
	for _, name := range names {
		h, err := p.AddHost(name, "")
		if err != nil {
			return nil, err
		}
		if err := h.Start(); err != nil {
			return nil, err
		}
		d.hosts[name] = h
		all = append(all, h)
	}
	return all, p.WaitJoined(ctx, within, all...)
}
