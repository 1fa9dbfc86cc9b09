package store

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/restart"
)

// FuzzReadRecord writes arbitrary bytes as each record file of the cluster
// root and reads them back through the store. Whatever the bytes, a read
// never panics, and either succeeds or fails with one of the three
// documented errors (ErrEmpty, ErrTorn, ErrCorrupt), naming the file: the
// daemon keeps what it had and says why. With reseal set, the checksums
// are recomputed after the mutation, so that the fuzzer reaches the checks
// behind them (version, kind, length, JSON).
func FuzzReadRecord(f *testing.F) {
	seed, err := Open(f.TempDir(), true, defaultFuzzTimeout)
	if err != nil {
		f.Fatal(err)
	}
	defer seed.Close()
	seed.WritePool(3, PoolConfig{HA: true, Guests: []GuestDef{{UUID: "u1", Name: "web", Driver: "process", HA: true, Placement: restart.Auto}}})
	seed.WritePlan(restart.Plan{Epoch: 3, Seq: 9, Guests: map[string]restart.Assignment{"u1": {Host: restart.HostID{Name: "a", Generation: 2}, State: restart.Running}}}, ondisk.Owner{Slot: 1, Generation: 2, Name: "a"})
	seed.WriteReport(restart.Report{Host: restart.HostID{Name: "a", Generation: 2}, Seq: 4, Epoch: 3, Running: []string{"u1"}})
	for _, rel := range []string{"pool", "plan", filepath.Join("hosts", "a")} {
		b, err := os.ReadFile(filepath.Join(seed.Root(), Dir, rel))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
		f.Add(b[:70], true)
		big := append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(big[32:36], MaxPayload)
		f.Add(big, false)
	}
	f.Add([]byte{}, false)
	f.Add(make([]byte, 512), false)
	f.Add([]byte("#!/bin/sh\nexit 0\n"), false)

	s, err := Open(f.TempDir(), true, defaultFuzzTimeout)
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	if err := s.WriteReport(restart.Report{Host: restart.HostID{Name: "a", Generation: 1}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, reseal bool) {
		if reseal {
			data = resealed(data)
		}
		for _, rel := range []string{"pool", "plan", filepath.Join("hosts", "a")} {
			path := filepath.Join(s.Root(), Dir, rel)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			var err error
			switch rel {
			case "pool":
				_, _, err = s.ReadPool()
			case "plan":
				_, _, _, err = s.ReadPlan()
			default:
				_, _, err = s.ReadReport("a")
			}
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTorn) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: %v: not one of ErrEmpty, ErrTorn, ErrCorrupt", rel, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("%s: %q does not name the file", rel, err)
			}
		}
	})
}

const defaultFuzzTimeout = 5e9 // 5 s

// resealed recomputes the payload's and the header's checksums of b (the
// layout of record.go), as far as b holds them.
func resealed(b []byte) []byte {
	b = append([]byte(nil), b...)
	if len(b) < headerSize {
		return b
	}
	// A declared length far past the data makes every read allocate it
	// (up to MaxPayload) only to find the file short (ErrTorn, a seed
	// covers it): keep the fuzzer's lengths near the data so that it
	// explores the decoders instead.
	if n := binary.LittleEndian.Uint32(b[32:36]); int(n) > len(b)+4096 {
		binary.LittleEndian.PutUint32(b[32:36], n%uint32(len(b)+4096))
	}
	if n := int(binary.LittleEndian.Uint32(b[32:36])); n <= len(b)-headerSize {
		binary.LittleEndian.PutUint32(b[36:40], crc32.Checksum(b[headerSize:headerSize+n], castagnoli))
	}
	binary.LittleEndian.PutUint32(b[60:64], crc32.Checksum(b[0:60], castagnoli))
	return b
}
