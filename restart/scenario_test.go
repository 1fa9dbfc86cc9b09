package restart

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/heartbeat/liveness"
)

var update = flag.Bool("update", false, "rewrite the expected output of the scenario files")

// TestScenarios runs the scenario files in testdata/restart: each is a
// series of steps; a step sets the epoch, the pool, hosts (with their
// liveness and reports), guests and evacuations, and expects the plan that
// Reconcile makes from them and from the previous step's plan. With
// -update the expected plans are rewritten from what Reconcile returns.
//
//	step TITLE
//	epoch N
//	pool ha|noha [max_attempts=N]
//	host NAME GEN live|suspect|dead|left|unknown [unsafe] [roles=vm,utility]
//	     [seq=N] [reported=EPOCH] [report_gen=GEN] [running=G,...] [failed=G@EPOCH.N,...]
//	     [done=G@EPOCH.N,...] [leaving]
//	guest UUID ha|noha auto|manual[:HOST,...] [stopped] [start=N] [mgmt]
//	evacuate NAME GEN all|migrate=G,...
//	----
//	UUID HOST/GEN|- STATE [to=HOST/GEN] [tries=N] [msg=...]
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "restart", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runScenario(t, f) })
	}
}

type scenario struct {
	in      Input
	hosts   map[string]Host
	guests  map[string]Guest
	title   string
	lines   []string // the file as read, with expected sections replaced on -update
	wantAt  int      // index in lines where the step's expected section starts
	wantEnd int
}

func runScenario(t *testing.T, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := &scenario{hosts: map[string]Host{}, guests: map[string]Guest{}}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	i := 0
	for i < len(lines) {
		l := strings.TrimSpace(lines[i])
		out = append(out, lines[i])
		i++
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if l != "----" {
			if err := sc.apply(l); err != nil {
				t.Fatalf("%s:%d: %v", path, i, err)
			}
			continue
		}
		// The expected plan, up to a blank line or the end.
		var want []string
		for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
			want = append(want, strings.TrimSpace(lines[i]))
			i++
		}
		sc.in.Hosts = sc.in.Hosts[:0]
		for _, n := range slices.Sorted(maps.Keys(sc.hosts)) {
			sc.in.Hosts = append(sc.in.Hosts, sc.hosts[n])
		}
		sc.in.Guests = sc.in.Guests[:0]
		for _, n := range slices.Sorted(maps.Keys(sc.guests)) {
			sc.in.Guests = append(sc.in.Guests, sc.guests[n])
		}
		p, _ := Reconcile(sc.in)
		got := render(p)
		if *update {
			out = append(out, got...)
		} else {
			out = append(out, want...)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s, step %q: plan\n%s\nwant\n%s", path, sc.title, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
		sc.in.Prev = p
		sc.in.Evacuations = nil
	}
	if *update {
		if err := os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func render(p Plan) []string {
	var out []string
	for _, u := range slices.Sorted(maps.Keys(p.Guests)) {
		a := p.Guests[u]
		host := "-"
		if !a.Host.IsZero() {
			host = a.Host.String()
		}
		l := fmt.Sprintf("%s %s %s", u, host, a.State)
		if !a.Target.IsZero() {
			l += " to=" + a.Target.String()
		}
		if a.Tries > 0 {
			l += fmt.Sprintf(" tries=%d", a.Tries)
		}
		if a.Message != "" {
			l += " msg=" + a.Message
		}
		out = append(out, l)
	}
	return out
}

func (sc *scenario) apply(l string) error {
	f := strings.Fields(l)
	kv := map[string]string{}
	var flags []string
	for _, w := range f[1:] {
		if k, v, ok := strings.Cut(w, "="); ok {
			kv[k] = v
		} else {
			flags = append(flags, w)
		}
	}
	has := func(s string) bool {
		for _, x := range flags {
			if x == s {
				return true
			}
		}
		return false
	}
	switch f[0] {
	case "step":
		sc.title = strings.TrimSpace(strings.TrimPrefix(l, "step"))
	case "epoch":
		n, err := strconv.ParseUint(f[1], 10, 64)
		sc.in.Epoch = n
		return err
	case "pool":
		sc.in.Pool = Pool{HA: has("ha")}
		if v, ok := kv["max_attempts"]; ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return err
			}
			sc.in.Pool.MaxAttempts = n
		}
	case "host":
		if len(flags) < 3 {
			return fmt.Errorf("host NAME GEN STATE ...")
		}
		gen, err := strconv.ParseUint(flags[1], 10, 64)
		if err != nil {
			return err
		}
		var st liveness.State
		if err := st.UnmarshalText([]byte(flags[2])); err != nil {
			return err
		}
		h := Host{ID: HostID{flags[0], gen}, State: st, Unsafe: has("unsafe"), Roles: []Role{RoleVM}}
		if v, ok := kv["roles"]; ok {
			h.Roles = nil
			for _, r := range strings.Split(v, ",") {
				h.Roles = append(h.Roles, Role(r))
			}
		}
		if v, ok := kv["reported"]; ok {
			e, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return err
			}
			seq, _ := strconv.ParseUint(kv["seq"], 10, 64)
			r := &Report{Host: h.ID, Seq: seq, Epoch: e, Leaving: has("leaving")}
			if v, ok := kv["report_gen"]; ok {
				// A report of another incarnation (an older one).
				if r.Host.Generation, err = strconv.ParseUint(v, 10, 64); err != nil {
					return err
				}
			}
			if v := kv["running"]; v != "" {
				r.Running = strings.Split(v, ",")
			}
			var err2 error
			r.Failed, err2 = attempts(kv["failed"], func(a AttemptID) Failure { return Failure{Attempt: a, Message: "failed"} })
			if err2 != nil {
				return err2
			}
			r.Done, err2 = attempts(kv["done"], func(a AttemptID) AttemptID { return a })
			if err2 != nil {
				return err2
			}
			h.Report = r
		}
		sc.hosts[h.ID.Name] = h
	case "guest":
		if len(flags) < 3 {
			return fmt.Errorf("guest UUID ha|noha auto|manual:HOSTS ...")
		}
		g := Guest{UUID: flags[0], Name: flags[0], HA: flags[1] == "ha", Placement: Auto, Stopped: has("stopped"), Management: has("mgmt")}
		if p, hosts, ok := strings.Cut(flags[2], ":"); ok || p == "manual" {
			g.Placement, g.Preferred = Manual, strings.Split(hosts, ",")
		}
		if v, ok := kv["start"]; ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return err
			}
			g.StartSeq = n
		}
		sc.guests[g.UUID] = g
	case "evacuate":
		gen, err := strconv.ParseUint(flags[1], 10, 64)
		if err != nil {
			return err
		}
		e := Evacuation{Host: HostID{flags[0], gen}, All: has("all")}
		if v := kv["migrate"]; v != "" {
			e.Migrate = strings.Split(v, ",")
		}
		sc.in.Evacuations = append(sc.in.Evacuations, e)
	default:
		return fmt.Errorf("unknown line %q", l)
	}
	return nil
}

// attempts parses G@EPOCH.N,...
func attempts[V any](s string, mk func(AttemptID) V) (map[string]V, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]V{}
	for _, item := range strings.Split(s, ",") {
		g, at, ok := strings.Cut(item, "@")
		e, n, ok2 := strings.Cut(at, ".")
		if !ok || !ok2 {
			return nil, fmt.Errorf("%q: want GUEST@EPOCH.N", item)
		}
		ev, err1 := strconv.ParseUint(e, 10, 64)
		nv, err2 := strconv.Atoi(n)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q: want GUEST@EPOCH.N", item)
		}
		out[g] = mk(AttemptID{ev, nv})
	}
	return out, nil
}
