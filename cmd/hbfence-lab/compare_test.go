package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The hbfence profile of equal stall tolerance to sanlock at io_timeout N
// has sanlock's io_timeout and its renewal_fail 8 × N, and keeps every
// timing rule.
func TestSanlockEquivalent(t *testing.T) {
	for _, c := range []struct {
		io               int
		interval, rf, hd time.Duration
	}{
		{10, 2 * time.Second, 80 * time.Second, 91100 * time.Millisecond},
		{2, time.Second, 16 * time.Second, 26600 * time.Millisecond},
	} {
		p, err := sanlockEquivalent(c.io)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("io_timeout %ds: %v: %v", c.io, p, err)
		}
		if p.IOTimeout != time.Duration(c.io)*time.Second || p.RenewalFail != c.rf || p.Interval != c.interval || p.Watchdog != 10*time.Second || p.HostDead != c.hd {
			t.Errorf("io_timeout %ds: %v, want interval %v, renewal_fail %v, watchdog 10s, host_dead %v", c.io, p, c.interval, c.rf, c.hd)
		}
	}
	if sanlockHostDead(10) != 140 || sanlockHostDead(2) != 76 {
		t.Errorf("sanlock host_dead %d and %d s, want 140 and 76 (8 × io_timeout + 60)", sanlockHostDead(10), sanlockHostDead(2))
	}
}

// Without sanlock on PATH its half is skipped, saying so.
func TestSanlockMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	d := newDemo(nil, "", t.TempDir(), "default")
	if _, _, why := sanlockSetup(context.Background(), d); !errors.Is(why, errNoSanlock) {
		t.Errorf("sanlockSetup without sanlock: %v, want %v", why, errNoSanlock)
	}
}

// The sanlock rig of -bench-compare works with the installed sanlock: two
// daemons join one lockspace, host 1 takes the resource lease, host 2 is
// refused it while host 1 lives, and the leader record names host 1.
// (The takeover itself takes minutes: -bench-compare measures it.)
func TestSanlockRig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: needs root: sanlock's daemon runs as root here (-U root)")
	}
	dir := t.TempDir()
	d := newDemo(io.Discard, "", dir, "default")
	bin, preload, why := sanlockSetup(context.Background(), d)
	if why != nil {
		t.Skip("SKIP: " + why.Error())
	}
	ctx := context.Background()
	r, err := newSanlockRig(ctx, bin, filepath.Join(dir, "rig"), 1, preload)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if _, err := r.join(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range r.hosts {
		if err := r.register(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.acquire(ctx, r.hosts[0]); err != nil {
		t.Fatalf("host 1 taking the free lease: %v\n%s", err, r.log(r.hosts[0]))
	}
	if err := r.acquire(ctx, r.hosts[1]); err == nil {
		t.Fatal("host 2 took the lease host 1 holds")
	}
	if o, err := r.owner(ctx); err != nil || o != 1 {
		t.Fatalf("owner %d (%v), want host 1", o, err)
	}
}
