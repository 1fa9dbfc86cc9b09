package driver

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// Virsh drives libvirt through virsh. A guest's configuration is its
// domain XML on the shared storage; the domain is transient (virsh create),
// so that no host keeps a definition that could start it on its own.
// Domains are named by UUID.
type Virsh struct {
	// Path is the virsh program (default "virsh", found on PATH).
	Path string
	// URI is the libvirt connection (default "qemu:///system").
	URI string
	// MigrateURI is the destination URI for a live migration, with %s for
	// the host name (default "qemu+ssh://%s/system").
	MigrateURI string
}

// Settle implements Settler: a domain may show up a moment after a
// cancelled create.
func (v *Virsh) Settle() time.Duration { return 2 * time.Second }

// Name implements Driver.
func (v *Virsh) Name() string { return "virsh" }

func (v *Virsh) cmd() command {
	p, uri := v.Path, v.URI
	if p == "" {
		p = "virsh"
	}
	if uri == "" {
		uri = "qemu:///system"
	}
	return command{argv: []string{p, "--quiet", "-c", uri}}
}

// ConfigUUID implements ConfigReader: the <uuid> of the domain XML.
func (v *Virsh) ConfigUUID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("domain XML: %w", err)
	}
	var dom struct {
		XMLName xml.Name `xml:"domain"`
		UUID    string   `xml:"uuid"`
	}
	if err := xml.Unmarshal(b, &dom); err != nil {
		return "", fmt.Errorf("domain XML %s: %v", path, err)
	}
	if dom.UUID == "" {
		return "", fmt.Errorf("domain XML %s has no <uuid>: give it the guest's UUID", path)
	}
	return strings.ToLower(strings.TrimSpace(dom.UUID)), nil
}

// Every positional value follows "--": virsh's own parser (vshCommandParse)
// takes every later word as data once it has read "--" after the command
// name (issue 10 item 13).

// Start implements Driver: virsh create -- XML.
func (v *Virsh) Start(ctx context.Context, g Spec) error {
	_, err := v.cmd().run(ctx, "create", "--", g.Config)
	return err
}

// Stop implements Driver: virsh shutdown UUID, then waits until it is gone
// (or ctx ends).
func (v *Virsh) Stop(ctx context.Context, g Spec) error {
	if run, err := v.isRunning(ctx, g); err != nil || !run {
		return err
	}
	if _, err := v.cmd().run(ctx, "shutdown", "--", g.UUID); err != nil {
		return err
	}
	return waitGone(ctx, g, v.Running)
}

// Destroy implements Driver: virsh destroy UUID, then checks it is gone.
func (v *Virsh) Destroy(ctx context.Context, g Spec) error {
	if run, err := v.isRunning(ctx, g); err != nil || !run {
		return err
	}
	if _, err := v.cmd().run(ctx, "destroy", "--", g.UUID); err != nil {
		var ee *ExitError
		if !errors.As(err, &ee) || !strings.Contains(ee.Stderr, "not running") {
			return err
		}
	}
	return waitGone(ctx, g, v.Running)
}

// Migrate implements Driver: virsh migrate --live --undefinesource UUID
// DEST.
func (v *Virsh) Migrate(ctx context.Context, g Spec, host string) error {
	tmpl := v.MigrateURI
	if tmpl == "" {
		tmpl = "qemu+ssh://%s/system"
	}
	_, err := v.cmd().run(ctx, "migrate", "--live", "--undefinesource", "--", g.UUID, fmt.Sprintf(tmpl, host))
	return err
}

// Running implements Driver: virsh list --uuid (running domains). It sees
// only the domains libvirtd knows on this URI: a qemu started elsewhere,
// or one libvirtd lost track of, is not listed (see doc.go).
func (v *Virsh) Running(ctx context.Context) ([]string, error) {
	out, err := v.cmd().run(ctx, "list", "--uuid")
	if err != nil {
		return nil, err
	}
	return ParseUUIDLines("virsh list --uuid", out)
}

func (v *Virsh) isRunning(ctx context.Context, g Spec) (bool, error) {
	run, err := v.Running(ctx)
	return slices.Contains(run, g.UUID), err
}

// ParseUUIDLines reads one UUID per line (blank lines skipped), in lower
// case: the pool names guests by lower-case UUIDs, and a listing in
// another case must not hide a running guest from it.
func ParseUUIDLines(what, out string) ([]string, error) {
	var uuids []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		if err := ValidUUID(l); err != nil {
			return nil, fmt.Errorf("%s: %v", what, err)
		}
		uuids = append(uuids, strings.ToLower(l))
	}
	return uuids, nil
}
