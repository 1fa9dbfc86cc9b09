package driver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Xl drives Xen's xl toolstack (Oracle VM Server). A guest's configuration
// is an xl domain configuration file on the shared storage; xl names
// domains by name, so the guest's name in hbfence must be its domain
// name, and Running maps the running domains to their UUIDs (xl list -l).
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

// Start implements Driver: xl create CONFIG.
func (x *Xl) Start(ctx context.Context, g Spec) error {
	_, err := x.cmd().run(ctx, "create", g.Config)
	return err
}

// Stop implements Driver: xl shutdown -w NAME (waits until it is gone).
func (x *Xl) Stop(ctx context.Context, g Spec) error {
	if run, err := x.isRunning(ctx, g); err != nil || !run {
		return err
	}
	_, err := x.cmd().run(ctx, "shutdown", "-w", g.Name)
	return err
}

// Destroy implements Driver: xl destroy NAME, then checks it is gone.
func (x *Xl) Destroy(ctx context.Context, g Spec) error {
	if run, err := x.isRunning(ctx, g); err != nil || !run {
		return err
	}
	if _, err := x.cmd().run(ctx, "destroy", g.Name); err != nil {
		return err
	}
	return waitGone(ctx, g, x.Running)
}

// Migrate implements Driver: xl migrate NAME HOST (live).
func (x *Xl) Migrate(ctx context.Context, g Spec, host string) error {
	_, err := x.cmd().run(ctx, "migrate", g.Name, host)
	return err
}

// Running implements Driver: the UUIDs of the domains in xl list -l, but
// for Domain-0.
func (x *Xl) Running(ctx context.Context) ([]string, error) {
	out, err := x.cmd().run(ctx, "list", "-l")
	if err != nil {
		return nil, err
	}
	return ParseXlList([]byte(out))
}

func (x *Xl) isRunning(ctx context.Context, g Spec) (bool, error) {
	run, err := x.Running(ctx)
	return slices.Contains(run, g.UUID), err
}

// ParseXlList reads the JSON of xl list -l: an array of domains, each with
// its domid and config.c_info (name, uuid).
func ParseXlList(b []byte) ([]string, error) {
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
	var out []string
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
		out = append(out, d.Config.CInfo.UUID)
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
