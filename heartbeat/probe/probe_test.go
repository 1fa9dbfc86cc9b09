package probe_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/probe"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

// short is a run long enough for several cycles.
var short = probe.Options{Duration: time.Second, Period: 50 * time.Millisecond, Timeout: 10 * time.Second}

func open(t *testing.T, path string, offset int64, force bool) *probe.Target {
	t.Helper()
	tg, err := probe.Open(path, offset, force)
	if err != nil {
		t.Fatalf("Open(%s, %d): %v", path, offset, err)
	}
	return tg
}

// structural checks what every clean run must show, whatever the speed of
// the machine.
func structural(t *testing.T, res probe.Result) {
	t.Helper()
	st := res.Stats
	if st.Cycles == 0 || st.Samples != 2*st.Cycles || st.Errors != 0 || st.Timeouts != 0 {
		t.Fatalf("cycles %d samples %d errors %d timeouts %d: want 2 samples a cycle, no errors", st.Cycles, st.Samples, st.Errors, st.Timeouts)
	}
	if st.Write.Count != st.Cycles || st.Read.Count != st.Cycles || st.Pair.Count != st.Cycles {
		t.Errorf("write %d read %d pair %d, want %d each", st.Write.Count, st.Read.Count, st.Pair.Count, st.Cycles)
	}
	if !(st.All.P50 <= st.All.P99 && st.All.P99 <= st.All.P999 && st.All.P999 <= st.All.Max && st.All.P50 > 0) {
		t.Errorf("percentiles out of order: %+v", st.All)
	}
	n := 0
	for _, b := range st.Histogram {
		n += b.Count
	}
	if n != st.Samples {
		t.Errorf("histogram holds %d samples, want %d", n, st.Samples)
	}
	if st.LongestStall <= 0 || st.LongestStall > st.Elapsed {
		t.Errorf("longest stall %v in a run of %v", st.LongestStall, st.Elapsed)
	}
	for _, s := range res.Samples {
		if s.Outcome != probe.OK || s.Latency <= 0 || s.Start < 0 || s.Start+s.Latency > st.Elapsed {
			t.Errorf("sample %+v in a run of %v", s, st.Elapsed)
		}
	}
	a, err := probe.Advise(probe.ObservedOf(st), probe.DefaultFactor, 10*time.Second)
	if err != nil {
		t.Fatalf("advice: %v", err)
	}
	if err := a.Params.Validate(); err != nil {
		t.Errorf("advice %v: %v", a.Params, err)
	}
}

func TestScratchFileInDirectory(t *testing.T) {
	dir := t.TempDir()
	tg := open(t, dir, 0, false)
	if tg.Mode != probe.ModeScratch || filepath.Dir(tg.Path) != dir || !strings.HasPrefix(filepath.Base(tg.Path), ".hbfence-probe-") {
		t.Fatalf("target %+v", tg)
	}
	if fi, err := os.Stat(tg.Path); err != nil || fi.Size() != int64(probe.RegionSectors*tg.Sector) {
		t.Fatalf("scratch file: %v, %v", fi, err)
	}
	var progress []probe.Progress
	var mu sync.Mutex
	opt := short
	opt.Duration = 1500 * time.Millisecond
	opt.Progress = func(p probe.Progress) {
		mu.Lock()
		progress = append(progress, p)
		mu.Unlock()
	}
	res, err := tg.Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	structural(t, res)
	if res.Interrupted {
		t.Error("a run that lasted its duration says it was interrupted")
	}
	mu.Lock()
	if len(progress) == 0 || progress[0].Samples == 0 || progress[0].Max < progress[0].P99 {
		t.Errorf("progress reports: %+v", progress)
	}
	mu.Unlock()
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tg.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch file left behind: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("directory not empty after Close: %v", ents)
	}
}

// Stopping (Ctrl-C) returns what was measured and still removes the file.
func TestInterrupted(t *testing.T) {
	dir := t.TempDir()
	tg := open(t, dir, 0, false)
	ctx, cancel := context.WithCancel(context.Background())
	opt := short
	opt.Duration = time.Hour
	opt.Progress = func(p probe.Progress) { cancel() } // after a second
	res, err := tg.Run(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Stats.Cycles == 0 || res.Stats.Elapsed >= time.Hour {
		t.Errorf("interrupted %v, cycles %d, elapsed %v", res.Interrupted, res.Stats.Cycles, res.Stats.Elapsed)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("directory not empty after Close: %v", ents)
	}
}

func TestTargetRefusals(t *testing.T) {
	dir := t.TempDir()
	if _, err := probe.Open(dir, 4096, false); err == nil || !strings.Contains(err.Error(), "--offset") {
		t.Errorf("directory with an offset: %v", err)
	}
	small := filepath.Join(dir, "small")
	os.WriteFile(small, make([]byte, 1024), 0o600)
	if _, err := probe.Open(small, 0, false); err == nil || !strings.Contains(err.Error(), "give a directory") {
		t.Errorf("file too small: %v", err)
	}
	if _, err := probe.Open(filepath.Join(dir, "missing"), 0, false); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// A region of a file: written only inside, refused when not zeroes
// without force, written back at the end.
func TestRegion(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "disk")
	img := make([]byte, 1<<20)
	for i := range img {
		img[i] = byte(i%251) + 1
	}
	const off = 256 << 10
	clear(img[off : off+64<<10]) // a zero hole for the probe
	if err := os.WriteFile(path, img, 0o600); err != nil {
		t.Fatal(err)
	}
	tg := open(t, path, off, false)
	if tg.Mode != probe.ModeRegion || tg.Offset != off {
		t.Fatalf("target %+v", tg)
	}
	res, err := tg.Run(context.Background(), short)
	if err != nil {
		t.Fatal(err)
	}
	structural(t, res)
	// While open, the region holds the probe's pattern, the rest is as it was.
	now, _ := os.ReadFile(path)
	end := off + tg.ReadLen
	if !bytes.Equal(now[:off], img[:off]) || !bytes.Equal(now[end:], img[end:]) {
		t.Error("the probe wrote outside its region")
	}
	if bytes.Equal(now[off:end], img[off:end]) {
		t.Error("the region does not show the probe's writes")
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, img) {
		t.Error("file not byte-identical after Close")
	}

	// Data in the region: refused, or with force written back.
	var inUse *probe.InUseError
	if _, err := probe.Open(path, 0, false); !errors.As(err, &inUse) || !strings.Contains(err.Error(), "not zeroes at byte 0") {
		t.Fatalf("region of data: %v", err)
	}
	tg = open(t, path, 0, true)
	if _, err := tg.Run(context.Background(), probe.Options{Duration: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, img) {
		t.Error("forced region not written back")
	}
}

func liveSlot(h ondisk.Header, i int, host string) []byte {
	return ondisk.Slot{Version: ondisk.SlotVersion, State: ondisk.StateLive, Index: uint32(i), PoolUUID: h.PoolUUID,
		Generation: 3, Sequence: 77, HostName: host, Wall: time.Unix(1700000000, 0)}.Encode()
}

// formatted makes an area of n slots with the given slots written, as
// hbfence init and the daemons would.
func formatted(t *testing.T, n int, used ...int) (string, ondisk.Header) {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".server_pool_hb")
	p, _ := timing.Profile("fast")
	h, err := area.Format(path, 0, area.FormatOptions{Create: true, Build: func(ss int) (ondisk.Header, error) {
		return ondisk.NewHeader(ondisk.NewUUID(), ss, n, p, "fast", time.Now())
	}})
	if err != nil {
		t.Fatal(err)
	}
	ar, err := area.Open(path, 0, directio.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	defer ar.Close()
	for _, i := range used {
		if err := ar.WriteSlot(i, liveSlot(h, i, "host"+string(rune('a'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	return path, h
}

func TestUnusedSlotOfArea(t *testing.T) {
	path, h := formatted(t, 8, 0, 1, 2, 7)
	before, _ := os.ReadFile(path)
	tg := open(t, path, 0, false)
	if tg.Mode != probe.ModeSlot || tg.Slot != 6 || tg.Pool != h.PoolUUID || tg.ReadLen != h.SlotsLen() {
		t.Fatalf("target %+v: want slot 6 (the highest unused) of pool %s", tg, h.PoolUUID)
	}
	if !strings.Contains(tg.Describe(), "unused slot 6") {
		t.Errorf("description %q does not say which slot", tg.Describe())
	}
	res, err := tg.Run(context.Background(), short)
	if err != nil {
		t.Fatal(err)
	}
	structural(t, res)
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("the area is not byte-identical after the probe")
	}
	ss := int(h.SectorSize)
	for _, i := range []int{0, 1, 2, 7} {
		off := int(h.SlotOffset(i))
		if !bytes.Equal(after[off:off+ss], before[off:off+ss]) {
			t.Errorf("used slot %d changed", i)
		}
	}
}

func TestNoUnusedSlot(t *testing.T) {
	path, _ := formatted(t, 2, 0, 1)
	var none *probe.NoUnusedSlotError
	if _, err := probe.Open(path, 0, false); !errors.As(err, &none) {
		t.Fatalf("area with every slot used: %v", err)
	}
}

// A host takes the slot after the probe chose it: the probe stops at its
// next check, before writing, and the host's record stays.
func TestSlotTaken(t *testing.T) {
	path, h := formatted(t, 4, 0)
	tg := open(t, path, 0, false)
	if tg.Slot != 3 {
		t.Fatalf("slot %d, want 3", tg.Slot)
	}
	ar, err := area.Open(path, 0, directio.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	claim := liveSlot(h, 3, "newcomer")
	if err := ar.WriteSlot(3, claim); err != nil {
		t.Fatal(err)
	}
	ar.Close()
	res, err := tg.Run(context.Background(), short)
	var taken *probe.SlotTakenError
	if !errors.As(err, &taken) || taken.Slot != 3 || !strings.Contains(err.Error(), `"newcomer"`) {
		t.Fatalf("Run: %v, want a *SlotTakenError naming slot 3 and its host", err)
	}
	for _, s := range res.Samples {
		if s.Op == probe.OpWrite {
			t.Errorf("the probe wrote after the slot was taken: %+v", s)
		}
	}
	tg.Close()
	after, _ := os.ReadFile(path)
	off := h.SlotOffset(3)
	if !bytes.Equal(after[off:off+ondisk.RecordSize], claim) {
		t.Error("the newcomer's record was overwritten")
	}
}

// A broken hbfence header is not a region to scribble on without force.
func TestBrokenHeaderRefused(t *testing.T) {
	path, _ := formatted(t, 4)
	f, _ := os.OpenFile(path, os.O_WRONLY, 0)
	f.WriteAt([]byte{0xff}, 100) // breaks the checksum
	f.Close()
	var inUse *probe.InUseError
	if _, err := probe.Open(path, 0, false); !errors.As(err, &inUse) || !strings.Contains(err.Error(), "hbfence area whose header does not decode") {
		t.Fatalf("broken header: %v", err)
	}
}
