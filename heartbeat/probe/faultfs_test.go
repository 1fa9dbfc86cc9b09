package probe_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/probe"
	"github.com/hbfence/hbfence/internal/faultfs"
	"github.com/hbfence/hbfence/internal/safeclock"
)

// mountFaultFS mounts a faultfs view of an empty directory.
func mountFaultFS(t *testing.T) *faultfs.FS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: faultfs (the latency-injecting FUSE file system) mounts with mount(2) itself")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("needs /dev/fuse for faultfs: %v", err)
	}
	dir := t.TempDir()
	backing, mnt := filepath.Join(dir, "storage"), filepath.Join(dir, "mnt")
	os.Mkdir(backing, 0o755)
	os.Mkdir(mnt, 0o755)
	f, err := faultfs.Mount(faultfs.Options{Backing: backing, Mountpoint: mnt, Name: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return f
}

// waitUntil polls cond; it reports false if cond did not hold within 10 s.
func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// With 200 ms injected on every read and write, and a hang of the storage
// for 1.5 s in the middle of the run, the advice's io_timeout covers the
// slow I/O and its renewal_fail the hang, and the advised timing
// validates.
func TestInjectedLatencyAndHang(t *testing.T) {
	const delay = 200 * time.Millisecond
	f := mountFaultFS(t)
	if err := f.Set(faultfs.OpAll, faultfs.Fault{Delay: delay}); err != nil {
		t.Fatal(err)
	}
	tg := open(t, f.Mountpoint(), 0, false)
	defer func() {
		if err := tg.Close(); err != nil {
			t.Error(err)
		}
		if ents, _ := os.ReadDir(f.Mountpoint()); len(ents) != 0 {
			t.Errorf("scratch file left behind: %v", ents)
		}
	}()

	// Hang the storage once a few cycles have been measured, for 1.5 s
	// from the moment an I/O is seen hung; the probe's timeout (700 ms)
	// expires during it.
	var hungAt, released time.Time
	hangDone := make(chan struct{})
	go func() {
		defer close(hangDone)
		defer f.Set(faultfs.OpAll, faultfs.Fault{Delay: delay})
		if !waitUntil(func() bool { return f.Stats().Writes >= 4 }) {
			t.Error("the probe did not write 4 times within 10 s")
			return
		}
		f.Set(faultfs.OpAll, faultfs.Fault{Hang: true})
		if !waitUntil(func() bool { return f.Stats().Hung >= 1 }) {
			t.Error("no I/O hung within 10 s of hanging the storage")
			return
		}
		hungAt = safeclock.Now()
		time.Sleep(1500 * time.Millisecond) // the length of the stall to create
		released = safeclock.Now()
	}()
	res, err := tg.Run(context.Background(), probe.Options{Duration: 4 * time.Second, Timeout: 700 * time.Millisecond})
	<-hangDone
	if err != nil || t.Failed() {
		t.Fatal(err)
	}
	st := res.Stats
	if st.Timeouts == 0 {
		t.Errorf("no I/O timed out during a 1.5 s hang with a 700 ms timeout: %+v", st)
	}
	for _, s := range res.Samples {
		if s.Outcome == probe.OK && s.Latency < delay {
			t.Errorf("%v took %v, less than the %v injected", s.Op, s.Latency, delay)
		}
	}
	if st.Pair.Max < 2*delay {
		t.Errorf("worst write+read %v, below the 2 × %v injected", st.Pair.Max, delay)
	}
	if hang := released.Sub(hungAt); st.LongestStall < hang {
		t.Errorf("longest stall %v, shorter than the %v the storage hung", st.LongestStall, hang)
	}
	a, err := probe.Advise(probe.ObservedOf(st), probe.DefaultFactor, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := a.Params
	if err := p.Validate(); err != nil {
		t.Fatalf("advice %v: %v", p, err)
	}
	if p.IOTimeout < 3*st.Pair.Max || p.IOTimeout < 3*2*delay {
		t.Errorf("io_timeout %v does not cover 3 × the worst write+read %v", p.IOTimeout, st.Pair.Max)
	}
	if p.RenewalFail < 3*st.LongestStall+2*p.Interval {
		t.Errorf("renewal_fail %v does not cover 3 × the stall %v + 2 intervals", p.RenewalFail, st.LongestStall)
	}
	t.Logf("stats: %d samples, p50 %v p99 %v max %v, stall %v, %d timeouts; advice %v (%s)",
		st.Samples, st.All.P50, st.All.P99, st.All.Max, st.LongestStall, st.Timeouts, p, a.InitFlags())
}
