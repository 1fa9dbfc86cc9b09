package area_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

// BenchmarkRound measures one heartbeat round through real O_DIRECT|O_DSYNC
// I/O: write this host's slot (one sector), then read the whole slot
// region in one read. The bytes per op are the bytes read per round.
//
// Storage: a file in the test's temporary directory with 512-byte sectors
// (4096 as well when the file system allows it, which ext4 and xfs do), and
// a loop device with 4096-byte logical sectors, its backing file read
// through the page cache or with direct I/O (root only; skipped, saying
// why, otherwise).
func BenchmarkRound(b *testing.B) {
	for _, n := range []int{32, 256, 2000} {
		b.Run(fmt.Sprintf("slots=%d", n), func(b *testing.B) {
			b.Run("file/sector=512", func(b *testing.B) {
				path := filepath.Join(b.TempDir(), ".server_pool_hb")
				o := opts(b, ondisk.NewUUID(), n)
				o.SectorSize = 512
				benchRound(b, path, o)
			})
			b.Run("file/sector=4096", func(b *testing.B) {
				path := filepath.Join(b.TempDir(), ".server_pool_hb")
				o := opts(b, ondisk.NewUUID(), n)
				o.SectorSize = 4096
				benchRound(b, path, o)
			})
			b.Run("loop/sector=4096", func(b *testing.B) {
				size := int64(areaSize(b, 4096, n))
				dev, _ := newLoop(b, size, 4096, 0)
				benchRound(b, dev, opts(b, ondisk.NewUUID(), n))
			})
			// The loop driver's own I/O to its backing file goes
			// through the page cache unless it is told otherwise;
			// with --direct-io=on the reads reach the disk, as the
			// file's do.
			b.Run("loop-dio/sector=4096", func(b *testing.B) {
				needLoop(b)
				backing := filepath.Join(b.TempDir(), "backing.img")
				writeFilled(b, backing, areaSize(b, 4096, n), 0)
				dev := attach(b, backing, 4096, "--direct-io=on")
				benchRound(b, dev, opts(b, ondisk.NewUUID(), n))
			})
		})
	}
}

func benchRound(b *testing.B, path string, o area.FormatOptions) {
	h, err := area.Format(path, 0, o)
	if err != nil {
		b.Fatal(err)
	}
	a, err := area.Open(path, 0, directio.ReadWrite)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	const self = 1
	rec := ondisk.Slot{
		Version: ondisk.SlotVersion, State: ondisk.StateLive, Index: self,
		PoolUUID: h.PoolUUID, Generation: 1, HostName: "bench",
	}
	buf := make([]byte, ondisk.RecordSize)
	raw := make([]byte, h.SlotsLen())
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec.Sequence++
		rec.EncodeInto(buf)
		if err := a.WriteSlot(self, buf); err != nil {
			b.Fatal(err)
		}
		if err := a.ReadSlots(raw); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(len(raw)), "bytes_read/round")
	if d := ondisk.DecodeSlots(raw, h)[self]; d.Status != ondisk.SlotOK || d.Slot.Sequence != rec.Sequence {
		b.Fatalf("own slot after the rounds: %v sequence %d, want sequence %d", d.Status, d.Slot.Sequence, rec.Sequence)
	}
}
