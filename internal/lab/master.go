package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
)

// Master is the master role as host h sees it.
func (h *Host) Master(ctx context.Context) (master.Status, error) {
	st, err := h.Status(ctx)
	if err != nil {
		return master.Status{}, err
	}
	if st.Master == nil {
		return master.Status{}, fmt.Errorf("%s has not joined yet: no master view", h.Name)
	}
	return *st.Master, nil
}

// MoveMaster runs "master.move" on h's daemon, as hbfence master move
// does.
func (h *Host) MoveMaster(ctx context.Context, to string) (daemon.MoveResult, error) {
	var res daemon.MoveResult
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err := control.Call(ctx, h.Socket, "master.move", daemon.MoveRequest{Host: to}, &res)
	return res, err
}

// Act is one line of a host's log about acting as master: "acting" when a
// tenure begins, "duty" for each round of the master's duties (at log
// level debug), "stopped" when it ends. Mono is the machine's
// CLOCK_MONOTONIC time of the check, comparable across hosts.
type Act struct {
	Host  string
	Epoch uint64
	Kind  string
	Mono  time.Duration
}

// MasterActs reads every act of the master in h's log, oldest first.
func (h *Host) MasterActs() ([]Act, error) {
	f, err := os.Open(h.LogPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var acts []Act
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), "mono_ns") {
			continue
		}
		var l struct {
			Message string `json:"message"`
			Epoch   uint64 `json:"epoch"`
			MonoNS  int64  `json:"mono_ns"`
		}
		if json.Unmarshal(line, &l) != nil || l.MonoNS == 0 {
			continue
		}
		kind := ""
		switch {
		case l.Message == "master duty":
			kind = "duty"
		case strings.HasPrefix(l.Message, "acting as master"):
			kind = "acting"
		case strings.HasPrefix(l.Message, "no longer acting as master"):
			kind = "stopped"
		default:
			continue
		}
		acts = append(acts, Act{Host: h.Name, Epoch: l.Epoch, Kind: kind, Mono: time.Duration(l.MonoNS)})
	}
	return acts, sc.Err()
}

// CheckMasterActs merges the acts of every host by time and checks that
// the master role never overlapped: along the machine's monotonic clock,
// the epoch of the acting host never goes back, and a host acts with an
// epoch only while no other host has acted with a later one. It returns
// the acts, sorted, and one line per violation.
func CheckMasterActs(hosts []*Host) ([]Act, []string, error) {
	var all []Act
	for _, h := range hosts {
		a, err := h.MasterActs()
		if err != nil {
			return nil, nil, err
		}
		all = append(all, a...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Mono < all[j].Mono })
	var bad []string
	owner := map[uint64]string{}
	var top uint64
	for _, a := range all {
		if a.Kind == "stopped" {
			continue
		}
		if o, ok := owner[a.Epoch]; ok && o != a.Host {
			bad = append(bad, fmt.Sprintf("epoch %d acted on by %s and by %s", a.Epoch, o, a.Host))
		}
		owner[a.Epoch] = a.Host
		if a.Epoch < top {
			bad = append(bad, fmt.Sprintf("%s acted as master of epoch %d at %v, after epoch %d had acted", a.Host, a.Epoch, a.Mono, top))
		}
		top = max(top, a.Epoch)
	}
	return all, bad, nil
}

// WaitActing waits until one of hosts acts as master with an epoch above
// after, and returns it, its view of the role, and when it began to act
// (on this process's clock, from its acting_since age).
func WaitActing(ctx context.Context, hosts []*Host, after uint64, timeout time.Duration) (*Host, master.Status, time.Time, error) {
	var who *Host
	var got master.Status
	var since time.Time
	err := WaitUntil(ctx, timeout, 20*time.Millisecond, fmt.Sprintf("a host acting as master with an epoch above %d", after), func() (bool, error) {
		for _, h := range hosts {
			if h.Exited() {
				continue
			}
			now := time.Now()
			m, err := h.Master(ctx)
			if err != nil || !m.Self.Acting || m.Self.Epoch <= after {
				continue
			}
			who, got = h, m
			since = now.Add(-time.Duration(m.Self.ActingSinceAgeSeconds * float64(time.Second)))
			return true, nil
		}
		return false, nil
	})
	return who, got, since, err
}
