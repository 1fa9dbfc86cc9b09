package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/restart"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), true, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestRoundTrip(t *testing.T) {
	s := newStore(t)
	if _, _, err := s.ReadPool(); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty pool: %v, want ErrEmpty", err)
	}
	c := PoolConfig{HA: true, Guests: []GuestDef{{UUID: "u1", Name: "web", Driver: "process", Config: "/OVS/web.json", HA: true, Placement: restart.Auto}}}
	if err := s.WritePool(3, c); err != nil {
		t.Fatal(err)
	}
	h, got, err := s.ReadPool()
	if err != nil || h.Epoch != 3 || h.Seq != 1 || !got.HA || len(got.Guests) != 1 || got.Guests[0].Name != "web" {
		t.Fatalf("pool: %+v %+v %v", h, got, err)
	}
	p := restart.Plan{Epoch: 3, Seq: 9, Guests: map[string]restart.Assignment{"u1": {Host: restart.HostID{Name: "a", Generation: 2}, State: restart.Running}}}
	w := ondisk.Owner{Slot: 1, Generation: 2, Name: "a"}
	if err := s.WritePlan(p, w); err != nil {
		t.Fatal(err)
	}
	h, gp, gw, err := s.ReadPlan()
	if err != nil || h.Epoch != 3 || gp.Seq != 9 || gp.Guests["u1"].Host.Name != "a" || gw != w {
		t.Fatalf("plan: %+v %+v %v %v", h, gp, gw, err)
	}
	r := restart.Report{Host: restart.HostID{Name: "a", Generation: 2}, Seq: 4, Epoch: 3, Running: []string{"u1"}}
	if err := s.WriteReport(r); err != nil {
		t.Fatal(err)
	}
	if _, gr, err := s.ReadReport("a"); err != nil || gr.Seq != 4 || gr.Running[0] != "u1" {
		t.Fatalf("report: %+v %v", gr, err)
	}
	if hosts, err := s.Hosts(); err != nil || len(hosts) != 1 || hosts[0] != "a" {
		t.Fatalf("hosts %v %v", hosts, err)
	}
	// A second store (another host) reads the same records, and a new
	// writer continues the sequence.
	s2, err := Open(s.Root(), true, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.WritePool(4, c); err != nil {
		t.Fatal(err)
	}
	if h, _, err := s.ReadPool(); err != nil || h.Seq != 2 || h.Epoch != 4 {
		t.Fatalf("after a new writer: %+v %v", h, err)
	}
}

// A record that changes under the reader (a torn write) reads as ErrTorn,
// another program's file as ErrCorrupt, a newer format as ErrCorrupt with
// a clear message; nothing is half-read.
func TestBadRecords(t *testing.T) {
	s := newStore(t)
	if err := s.WritePool(1, PoolConfig{HA: true}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Root(), Dir, "pool")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(off int) []byte {
		c := append([]byte(nil), b...)
		c[off] ^= 0xff
		return c
	}
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"payload torn", flip(headerSize + 2), ErrTorn},
		{"header torn", flip(10), ErrTorn},
		{"another file", append([]byte("#!/bin/sh\n"), make([]byte, 502)...), ErrCorrupt},
		{"newer version", func() []byte {
			c := append([]byte(nil), b...)
			c[4] = 9
			encodeHeaderCRC(c)
			return c
		}(), ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := s.ReadPool()
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.name == "newer version" && !strings.Contains(err.Error(), "upgrade every host") {
				t.Errorf("message %q does not say what to do", err)
			}
		})
	}
	if _, _, err := s.ReadReport("../pool"); err == nil {
		t.Error("a host name with a slash was accepted")
	}
}

func encodeHeaderCRC(b []byte) {
	h := castagnoliSum(b[0:60])
	b[60], b[61], b[62], b[63] = byte(h), byte(h>>8), byte(h>>16), byte(h>>24)
}
