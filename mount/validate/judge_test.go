package validate

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const pool = "6f1e2d3c-4b5a-4987-8654-3210fedcba98"

var now = time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)

// good is what a host of a healthy NFS pool sees.
func good(host string, gen uint64) Seen {
	return Seen{Host: host, Generation: gen, Version: "0.1.0", MachineID: "m-" + host, At: now.Add(-5 * time.Second), Pool: pool,
		Area: "/OVS/.server_pool_hb@0", Managed: true,
		ClusterRoot: RootSeen{Records: "/var/ovs/mount/0004fb00", Point: "/var/ovs/mount/0004fb00", UUID: "0004fb00",
			Expected: "/var/ovs/mount/0004fb00", Base: "/var/ovs/mount", Link: "/OVS", LinkTarget: "/var/ovs/mount/0004fb00", Linked: true,
			Storage: Identity{FSType: "nfs", Source: "filer:/export/pool"}, Transport: "nfs"},
		Repositories: []RepoSeen{{UUID: "0004fb01", Point: "/var/ovs/mount/0004fb01", State: "mounted"}}}
}

func input(seen ...Seen) Input {
	in := Input{Pool: pool, Master: "node1", Repositories: []string{"0004fb01"}, Seen: map[string]Seen{}, Now: now, MaxAge: time.Minute}
	for i, s := range seen {
		in.Seen[s.Host] = s
		in.Hosts = append(in.Hosts, HostInArea{Name: s.Host, Slot: i, Generation: s.Generation, Live: true, State: "live"})
	}
	return in
}

func TestJudgeHealthyPool(t *testing.T) {
	r := Judge(input(good("node1", 1), good("node2", 3), good("node3", 1)))
	if !r.OK || len(r.Errors) != 0 || len(r.Warnings) != 0 {
		t.Fatalf("a healthy pool: %+v", r)
	}
	if strings.Join(r.Hosts, ",") != "node1,node2,node3" {
		t.Fatalf("hosts judged: %v", r.Hosts)
	}
}

// TestJudgeEachCheckBrokenOnOneHost is one pool where every check is
// broken on one host of its own: the list names each host with its check,
// and nothing on the healthy ones.
func TestJudgeEachCheckBrokenOnOneHost(t *testing.T) {
	breaks := map[string]func(*Seen, *HostInArea){
		CheckNotLive:     func(_ *Seen, h *HostInArea) { h.Live, h.State = false, "dead" },
		CheckNoReport:    nil, // handled below: no Seen at all
		CheckStaleReport: func(s *Seen, _ *HostInArea) { s.At = now.Add(-10 * time.Minute) },
		CheckOtherPool:   func(s *Seen, _ *HostInArea) { s.Pool = "11111111-2222-4333-8444-555555555555" },
		CheckOtherStorage: func(s *Seen, _ *HostInArea) {
			s.ClusterRoot.Storage.Source = "filer2:/export/pool"
		},
		CheckVersion: func(s *Seen, _ *HostInArea) { s.Version = "0.0.9" },
		CheckMount: func(s *Seen, _ *HostInArea) {
			s.ClusterRoot.Point, s.ClusterRoot.UUID, s.ClusterRoot.Records = "/mnt/pool", "", "/mnt/pool"
			s.ClusterRoot.Linked, s.ClusterRoot.LinkTarget = true, "/mnt/pool" // only the mount is wrong
		},
		CheckLink: func(s *Seen, _ *HostInArea) {
			s.ClusterRoot.Linked, s.ClusterRoot.LinkTarget = false, "/var/ovs/mount/other"
		},
		CheckLocalDevice: func(s *Seen, _ *HostInArea) {
			s.ClusterRoot.Storage = Identity{FSType: "ocfs2", Source: "/dev/sda3", Dev: "8:3", FSUUID: "same"}
			s.ClusterRoot.Transport = "local"
		},
		CheckRepository: func(s *Seen, _ *HostInArea) {
			s.Repositories[0].State, s.Repositories[0].Message = "error", "mount.nfs: access denied by server"
		},
		CheckObserve: func(s *Seen, _ *HostInArea) { s.Problems = []string{"reading the mount table: permission denied"} },
	}
	seen := []Seen{good("node1", 1)}
	var hosts []HostInArea
	want := map[string]string{}
	i := 0
	for check, brk := range breaks {
		i++
		name := fmt.Sprintf("h%02d", i)
		s := good(name, 2)
		h := HostInArea{Name: name, Slot: i, Generation: 2, Live: true, State: "live"}
		if check == CheckLocalDevice {
			// The master is on the same OCFS2 device, seen shared.
			seen[0].ClusterRoot.Storage = Identity{FSType: "ocfs2", Source: "/dev/mapper/pool", FSUUID: "same"}
			seen[0].ClusterRoot.Transport = "multipath"
		}
		if brk != nil {
			brk(&s, &h)
			seen = append(seen, s)
		}
		hosts = append(hosts, h)
		want[name] = check
	}
	in := input(seen...)
	in.Hosts = append(in.Hosts[:1], hosts...)
	r := Judge(in)
	if r.OK {
		t.Fatal("a pool with broken hosts judged OK")
	}
	got := map[string][]string{}
	for _, e := range r.Errors {
		if e.Message == "" {
			t.Errorf("%s %s: no message", e.Host, e.Check)
		}
		got[e.Host] = append(got[e.Host], e.Check)
	}
	if len(got["node1"]) != 0 {
		t.Errorf("the healthy master: %v", got["node1"])
	}
	for host, check := range want {
		// The master is on OCFS2, for the local-device host: the NFS
		// hosts also see other storage than it; the broken check must
		// be among their errors, and be the local-device host's only one.
		if !contains(got[host], check) {
			t.Errorf("host %s broken for %s: errors %v", host, check, got[host])
		}
		if check == CheckLocalDevice && len(got[host]) != 1 {
			t.Errorf("host %s broken for %s only: errors %v", host, check, got[host])
		}
	}
	for _, e := range r.Errors {
		if e.Host == "" || !contains(r.Hosts, e.Host) {
			t.Errorf("an error of a host not judged: %+v", e)
		}
	}
}

func TestJudgeSameStorageByIdentity(t *testing.T) {
	dev := func(id Identity) Seen {
		s := good("x", 1)
		s.ClusterRoot.Storage, s.ClusterRoot.Transport = id, "iscsi"
		return s
	}
	for _, c := range []struct {
		name     string
		a, b     Identity
		sameHost bool
		differs  bool
	}{
		{"same fs uuid, other device names", Identity{FSType: "ocfs2", Source: "/dev/sdb", FSUUID: "u1"}, Identity{FSType: "ocfs2", Source: "/dev/sdc", FSUUID: "u1"}, false, false},
		{"other fs uuid", Identity{FSType: "ocfs2", FSUUID: "u1"}, Identity{FSType: "ocfs2", FSUUID: "u2"}, false, true},
		{"other wwid", Identity{FSType: "ocfs2", WWID: "naa.1"}, Identity{FSType: "ocfs2", WWID: "naa.2"}, false, true},
		{"nfs trailing slash", Identity{FSType: "nfs", Source: "f:/e/"}, Identity{FSType: "nfs4", Source: "f:/e"}, false, false},
		{"nfs against a device", Identity{FSType: "nfs", Source: "f:/e"}, Identity{FSType: "ocfs2", Source: "/dev/sdb"}, false, true},
		{"loops on one machine, other files", Identity{FSType: "ext4", LoopBacking: "/a"}, Identity{FSType: "ext4", LoopBacking: "/b"}, true, true},
	} {
		a, b := dev(c.a), dev(c.b)
		a.Host, b.Host = "node1", "node2"
		if c.sameHost {
			b.MachineID = a.MachineID
		}
		r := Judge(input(a, b))
		bad := false
		for _, e := range r.Errors {
			bad = bad || e.Check == CheckOtherStorage
		}
		if bad != c.differs {
			t.Errorf("%s: other-storage %v, want %v (%+v)", c.name, bad, c.differs, r.Errors)
		}
	}
}

func TestJudgeStaleGenerationAndStrangers(t *testing.T) {
	in := input(good("node1", 1), good("node2", 4))
	in.Hosts[1].Generation = 5 // restarted: its Seen is its predecessor's
	stranger := good("node9", 1)
	in.Seen["node9"] = stranger
	other := good("nodeX", 1)
	other.Pool = "11111111-2222-4333-8444-555555555555"
	in.Seen["nodeX"] = other
	r := Judge(in)
	got := map[string]string{}
	for _, e := range r.Errors {
		got[e.Host] = e.Check
	}
	if got["node2"] != CheckStaleReport || got["node9"] != CheckNotInPool || got["nodeX"] != "" {
		t.Fatalf("errors %+v", r.Errors)
	}
}

func TestJudgeLabPoolWarnsInsteadOfMountChecks(t *testing.T) {
	s := good("node1", 1)
	s.Lab = true
	s.ClusterRoot.Point, s.ClusterRoot.UUID, s.ClusterRoot.Linked, s.ClusterRoot.Transport = "/tmp/pool", "", false, "loop"
	r := Judge(input(s))
	if !r.OK || len(r.Warnings) != 1 || r.Warnings[0].Check != CheckLabPool {
		t.Fatalf("lab pool: %+v", r)
	}
}

func TestOlderVersion(t *testing.T) {
	for _, c := range []struct {
		v, min string
		older  bool
	}{{"0.1.0", "0.1.0", false}, {"0.1.0-dev", "0.1.0", false}, {"0.0.9", "0.1.0", true}, {"0.10.0", "0.9.1", false}, {"1", "0.9", false}, {"", "0.1.0", true},
		{"0.1.0+4959d3d-dirty", "0.1.0", false}, {"4959d3d-dirty", "0.1.0", true}} {
		if got := olderVersion(c.v, c.min); got != c.older {
			t.Errorf("olderVersion(%q, %q) = %v", c.v, c.min, got)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
