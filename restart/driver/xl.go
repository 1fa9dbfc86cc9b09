package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Xl drives Xen's xl toolstack (Oracle VM Server). A guest's configuration
// is an xl domain configuration file on the shared storage. xl names
// domains by name or domain id, not by UUID: stop, destroy and migrate
// look the guest's domain id up by its UUID in xl list -l first, so that
// they act on the domain that runs the guest whatever its name (the fence
// path knows guests by UUID only). Every listing is xl list -l checked
// against xl list -v, which comes from the hypervisor itself: a domain
// the first leaves out makes the listing fail (see domains).
type Xl struct {
	// Path is the xl program (default "xl", found on PATH).
	Path string
}

// Name implements Driver.
func (x *Xl) Name() string { return "xl" }

func (x *Xl) cmd() command {
	p := x.Path
	if p == "" {
		p = "xl"
	}
	return command{argv: []string{p}}
}

// ConfigUUID implements ConfigReader: the uuid = "..." line of the xl
// configuration.
func (x *Xl) ConfigUUID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("xl configuration: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if ok && strings.TrimSpace(k) == "uuid" {
			return strings.ToLower(strings.Trim(strings.TrimSpace(v), `"'`)), nil
		}
	}
	return "", fmt.Errorf("xl configuration %s has no uuid = \"...\" line: give it the guest's UUID", path)
}

// Every positional value follows "--": xl parses its options with
// getopt_long, which permutes (an option after a positional is still an
// option: "xl migrate 7 -sCMD" runs CMD through a shell) and stops at
// "--" (issue 10 item 13).

// Start implements Driver: xl create -- CONFIG.
func (x *Xl) Start(ctx context.Context, g Spec) error {
	_, err := x.cmd().run(ctx, "create", "--", g.Config)
	return err
}

// Stop implements Driver: xl shutdown -w DOMID (waits until it is gone).
func (x *Xl) Stop(ctx context.Context, g Spec) error {
	id, ok, err := x.domid(ctx, g)
	if err != nil || !ok {
		return err
	}
	_, err = x.cmd().run(ctx, "shutdown", "-w", "--", id)
	return err
}

// Destroy implements Driver: xl destroy DOMID, then checks it is gone.
func (x *Xl) Destroy(ctx context.Context, g Spec) error {
	id, ok, err := x.domid(ctx, g)
	if err != nil || !ok {
		return err
	}
	if _, err := x.cmd().run(ctx, "destroy", "--", id); err != nil {
		return err
	}
	return waitGone(ctx, g, x.Running)
}

// Migrate implements Driver: xl migrate DOMID HOST (live).
func (x *Xl) Migrate(ctx context.Context, g Spec, host string) error {
	id, ok, err := x.domid(ctx, g)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("guest %s does not run here", g.Name)
	}
	_, err = x.cmd().run(ctx, "migrate", "--", id, host)
	return err
}

// Settle implements Settler: a domain may show up a moment after a
// cancelled create.
func (x *Xl) Settle() time.Duration { return 2 * time.Second }

// domid finds the domain id of the running guest by its UUID.
func (x *Xl) domid(ctx context.Context, g Spec) (string, bool, error) {
	doms, err := x.domains(ctx)
	if err != nil {
		return "", false, err
	}
	for _, d := range doms {
		if d.uuid == g.UUID {
			return fmt.Sprint(d.domid), true, nil
		}
	}
	return "", false, nil
}

// Running implements Driver: the UUIDs of the domains in xl list -l, but
// for Domain-0, checked against xl list -v (see domains).
func (x *Xl) Running(ctx context.Context) ([]string, error) {
	doms, err := x.domains(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(doms))
	for _, d := range doms {
		out = append(out, d.uuid)
	}
	return out, nil
}

// domains lists the domains of xl list -l, checked against xl list -v.
// xl list -l prints only the domains whose stored JSON configuration it
// can read, and skips the others without an error (a domain created by
// another toolstack or an older Xen, a lost /var/lib/xen file); xl list
// -v reads every domain from the hypervisor (ids and UUIDs). A domain the
// hypervisor runs and the detailed listing leaves out is an error: the
// listing is then "unknown", never "it is gone".
func (x *Xl) domains(ctx context.Context) ([]xlDomain, error) {
	detailed, err := x.cmd().run(ctx, "list", "-l")
	if err != nil {
		return nil, err
	}
	doms, err := parseXlDomains([]byte(detailed))
	if err != nil {
		return nil, err
	}
	brief, err := x.cmd().run(ctx, "list", "-v")
	if err != nil {
		return nil, err
	}
	hv, err := ParseXlListVerbose(brief)
	if err != nil {
		return nil, err
	}
	return checkXlListing(doms, hv)
}

// checkXlListing refuses a detailed listing (xl list -l) that leaves out a
// domain the hypervisor runs (xl list -v), or gives one another UUID. A
// domain in the detailed listing only (created between the two commands)
// is kept: it runs.
func checkXlListing(detailed, hv []xlDomain) ([]xlDomain, error) {
	byID := make(map[int]string, len(detailed))
	for _, d := range detailed {
		byID[d.domid] = d.uuid
	}
	for _, h := range hv {
		u, ok := byID[h.domid]
		switch {
		case !ok:
			return nil, fmt.Errorf("xl list -v shows domain %d (UUID %s), which xl list -l leaves out (its stored configuration cannot be read: created by another toolstack or an older Xen, or its /var/lib/xen file was lost): the guests running here are unknown; destroy or re-create that domain with xl",
				h.domid, h.uuid)
		case u != h.uuid:
			return nil, fmt.Errorf("domain %d has UUID %s in xl list -l but %s in xl list -v: the guests running here are unknown", h.domid, u, h.uuid)
		}
	}
	return detailed, nil
}

// ParseXlListVerbose reads xl list -v: a header line, then one line per
// domain, NAME ID MEM VCPUS STATE TIME UUID REASON LABEL (a name may hold
// spaces). It returns every domain but Domain-0, with lower-case UUIDs.
func ParseXlListVerbose(out string) ([]xlDomain, error) {
	var doms []xlDomain
	header := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if !header {
			if f[0] != "Name" || !slices.Contains(f, "UUID") {
				return nil, fmt.Errorf("xl list -v: the first line %q is not the header expected (Name ID ... UUID ...)", l)
			}
			header = true
			continue
		}
		i := slices.IndexFunc(f, func(s string) bool { return uuidRE.MatchString(s) })
		if i < 6 {
			return nil, fmt.Errorf("xl list -v: line %q has no NAME ID MEM VCPUS STATE TIME UUID columns", l)
		}
		id, err := strconv.Atoi(f[i-5])
		if err != nil || id < 0 {
			return nil, fmt.Errorf("xl list -v: line %q: domain id %q is not a number", l, f[i-5])
		}
		if id == 0 {
			continue // Domain-0
		}
		doms = append(doms, xlDomain{domid: id, uuid: strings.ToLower(f[i])})
	}
	if !header {
		return nil, errors.New("xl list -v printed nothing, not even its header")
	}
	return doms, nil
}

type xlDomain struct {
	domid int
	uuid  string
}

// ParseXlList reads the JSON of xl list -l: an array of domains, each with
// its domid and config.c_info (name, uuid). It returns the UUIDs of every
// domain but Domain-0.
func ParseXlList(b []byte) ([]string, error) {
	doms, err := parseXlDomains(b)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(doms))
	for _, d := range doms {
		out = append(out, d.uuid)
	}
	return out, nil
}

func parseXlDomains(b []byte) ([]xlDomain, error) {
	var doms []struct {
		Domid  *int `json:"domid"`
		Config struct {
			CInfo struct {
				Name string `json:"name"`
				UUID string `json:"uuid"`
			} `json:"c_info"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &doms); err != nil {
		return nil, fmt.Errorf("xl list -l: not the JSON array of domains expected: %v", err)
	}
	var out []xlDomain
	for _, d := range doms {
		if d.Domid == nil {
			return nil, fmt.Errorf("xl list -l: a domain without a domid (%q)", d.Config.CInfo.Name)
		}
		if *d.Domid == 0 {
			continue // Domain-0
		}
		if err := ValidUUID(d.Config.CInfo.UUID); err != nil {
			return nil, fmt.Errorf("xl list -l: domain %d (%q): %v", *d.Domid, d.Config.CInfo.Name, err)
		}
		// Lower case, as the pool names guests (see ParseUUIDLines).
		out = append(out, xlDomain{domid: *d.Domid, uuid: strings.ToLower(d.Config.CInfo.UUID)})
	}
	return out, nil
}

// waitGone polls running until g is no longer listed, or ctx ends.
func waitGone(ctx context.Context, g Spec, running func(context.Context) ([]string, error)) error {
	for {
		run, err := running(ctx)
		if err == nil && !slices.Contains(run, g.UUID) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("guest %s still listed as running: %w", g.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
