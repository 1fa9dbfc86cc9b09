package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hbfence/hbfence/restart/agent"
	"golang.org/x/sys/unix"
)

// RunGuestDisk is a demonstration guest: it appends a record — its host,
// its pid, the machine's CLOCK_MONOTONIC time — to its disk image on the
// shared storage every 50 ms, synchronously, until it is killed. Two
// copies of one guest would interleave their records: the verdict at the
// end of the story reads every disk and looks for that.
func RunGuestDisk(path string) int { return RunGuestDiskEvery(path, 50*time.Millisecond) }

// RunGuestDiskEvery is RunGuestDisk writing a record every period (the
// first at once).
func RunGuestDiskEvery(path string, period time.Duration) int {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_DSYNC, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "guest:", err)
		return 1
	}
	host, pid := os.Getenv("HBFENCE_HOST"), os.Getpid()
	for {
		line := fmt.Sprintf("%s %d %d\n", host, pid, monoNS())
		if _, err := f.WriteString(line); err != nil {
			fmt.Fprintln(os.Stderr, "guest:", err)
			return 1
		}
		time.Sleep(period)
	}
}

func monoNS() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// Writer is one copy of a guest as its disk shows it.
type Writer struct {
	Host        string
	PID         int
	First, Last int64 // CLOCK_MONOTONIC ns of its first and last record
	Records     int
}

// ReadDisk reads a guest's disk image into its writers, in order of their
// first record.
func ReadDisk(path string) ([]Writer, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // never written: a guest killed before its first record
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	byID := map[string]*Writer{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			continue // a record cut by a kill
		}
		pid, err1 := strconv.Atoi(fs[1])
		t, err2 := strconv.ParseInt(fs[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		id := fs[0] + "/" + fs[1]
		w := byID[id]
		if w == nil {
			w = &Writer{Host: fs[0], PID: pid, First: t}
			byID[id] = w
		}
		w.Last = max(w.Last, t)
		w.Records++
	}
	var out []Writer
	for _, w := range byID {
		out = append(out, *w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].First < out[j].First })
	return out, sc.Err()
}

// Repo is the pool's guest repository (created by AddGuest).
func (p *Pool) Repo() string { return filepath.Join(p.Dir, "repo") }

// Disk is the disk image of the demonstration guest name.
func (p *Pool) Disk(name string) string { return filepath.Join(p.Repo(), "disks", name+".img") }

// GuestSpec is a demonstration guest to add.
type GuestSpec struct {
	Name      string
	HA        bool
	Placement string // auto (default) or manual
	Preferred []string
	// UUID is the guest's UUID ("" for a new one); Manages the pool
	// UUID it manages (guest add --manages), "" for none.
	UUID    string
	Manages string
	// Period is how often the guest writes a record (0: every 50 ms);
	// the program then gets "-guest-period PERIOD" first.
	Period time.Duration
}

// AddGuests registers the pool's repository, turns the pool's HA on, and
// adds and starts each guest through master's daemon. A guest is program
// run with "-guest-disk DISK" (a binary that calls RunGuestDisk then).
func (p *Pool) AddGuests(ctx context.Context, master *Host, program string, guests ...GuestSpec) error {
	if err := os.MkdirAll(filepath.Join(p.Repo(), "disks"), 0o755); err != nil {
		return err
	}
	run := func(args ...string) error {
		if out, err := p.Run(ctx, append(args, "--socket", master.Socket)...); err != nil {
			return fmt.Errorf("hbfence %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run("pool", "repository", "add", p.Repo()); err != nil {
		return err
	}
	if err := run("pool", "ha", "enable"); err != nil {
		return err
	}
	for _, g := range guests {
		cfg := filepath.Join(p.Repo(), g.Name+".json")
		guestArgv := []string{program, "-guest-disk", p.Disk(g.Name)}
		if g.Period != 0 {
			guestArgv = []string{program, "-guest-period", g.Period.String(), "-guest-disk", p.Disk(g.Name)}
		}
		argv, _ := json.Marshal(map[string][]string{"argv": guestArgv})
		if err := os.WriteFile(cfg, argv, 0o644); err != nil {
			return err
		}
		args := []string{"guest", "add", "--name", g.Name, "--driver", "process", "--guest-config", cfg}
		if g.HA {
			args = append(args, "--ha")
		}
		if g.Placement != "" {
			args = append(args, "--placement", g.Placement)
		}
		if len(g.Preferred) > 0 {
			args = append(args, "--preferred", strings.Join(g.Preferred, ","))
		}
		if g.UUID != "" {
			args = append(args, "--uuid", g.UUID)
		}
		if g.Manages != "" {
			args = append(args, "--manages", g.Manages)
		}
		if err := run(args...); err != nil {
			return err
		}
		if err := run("guest", "start", g.Name); err != nil {
			return err
		}
	}
	return nil
}

// Guests is the pool's guests as host h's daemon sees them.
func (h *Host) Guests(ctx context.Context) (map[string]agent.GuestStatus, error) {
	st, err := h.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]agent.GuestStatus{}
	for _, g := range st.Guests {
		out[g.Name] = g
	}
	return out, nil
}

// CheckDisks reads every guest's disk image and returns one line per
// guest whose copies wrote in overlapping time.
func (p *Pool) CheckDisks(names ...string) ([]string, map[string][]Writer, error) {
	var bad []string
	all := map[string][]Writer{}
	for _, n := range names {
		ws, err := ReadDisk(p.Disk(n))
		if err != nil {
			return nil, nil, err
		}
		all[n] = ws
		for i := 1; i < len(ws); i++ {
			if ws[i].First <= ws[i-1].Last {
				bad = append(bad, fmt.Sprintf("%s: %s pid %d wrote from %v while %s pid %d still wrote until %v",
					n, ws[i].Host, ws[i].PID, time.Duration(ws[i].First), ws[i-1].Host, ws[i-1].PID, time.Duration(ws[i-1].Last)))
			}
		}
	}
	return bad, all, nil
}

// MonoNow is the machine's CLOCK_MONOTONIC time in nanoseconds, the clock
// of the guests' records.
func MonoNow() int64 { return monoNS() }

// WaitGuests waits until cond holds for the guests as h sees them, and
// returns them.
func (h *Host) WaitGuests(ctx context.Context, timeout time.Duration, what string, cond func(map[string]agent.GuestStatus) bool) (map[string]agent.GuestStatus, error) {
	var gs map[string]agent.GuestStatus
	err := WaitUntil(ctx, timeout, 50*time.Millisecond, what, func() (bool, error) {
		var err error
		gs, err = h.Guests(ctx)
		return err == nil && cond(gs), err
	})
	if err != nil {
		return gs, fmt.Errorf("%w; guests as %s sees them: %+v", err, h.Name, gs)
	}
	return gs, nil
}

// Window is what a guest's disk image shows between two instants: the
// copies (host/pid) that wrote then, the records, and the longest time
// without a record (from the window's start to its end, the first and last
// records included: a guest that stopped writing shows it as a gap).
type Window struct {
	Writers []string // "host/pid", in order of their first record in the window
	Records int
	MaxGap  time.Duration
}

// ReadDiskWindow reads a guest's disk image for the records between from
// and to (CLOCK_MONOTONIC ns, MonoNow).
func ReadDiskWindow(path string, from, to int64) (Window, error) {
	var w Window
	b, err := os.ReadFile(path)
	if err != nil {
		return w, err
	}
	seen := map[string]bool{}
	last := from
	for _, line := range strings.Split(string(b), "\n") {
		fs := strings.Fields(line)
		if len(fs) != 3 {
			continue
		}
		t, err := strconv.ParseInt(fs[2], 10, 64)
		if err != nil || t < from || t > to {
			continue
		}
		id := fs[0] + "/" + fs[1]
		if !seen[id] {
			seen[id] = true
			w.Writers = append(w.Writers, id)
		}
		w.Records++
		w.MaxGap = max(w.MaxGap, time.Duration(t-last))
		last = t
	}
	w.MaxGap = max(w.MaxGap, time.Duration(to-last))
	return w, nil
}
