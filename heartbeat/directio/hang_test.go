package directio_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/directio"
	"golang.org/x/sys/unix"
)

// The timeout path, on I/O that really hangs in the kernel. Two ways to
// hang it; each test skips, saying why, where its facility is missing.

const (
	hangDevSize = 4 << 20
	// hangTimeout is the io_timeout of the hung I/Os: short, so the
	// tests are quick, and far above what an I/O to an idle loop device
	// takes.
	hangTimeout = 300 * time.Millisecond
)

func TestHungIODeviceMapper(t *testing.T) {
	needDM(t)
	needLoop(t)
	lower, _ := newLoop(t, hangDevSize, 512)
	dm := newDMLinear(t, lower, hangDevSize)
	testHungIO(t, dm)
}

func TestHungIOBlockThrottle(t *testing.T) {
	needLoop(t)
	dev, _ := newLoop(t, hangDevSize, 512)
	th := newThrottle(t, dev)
	testHungIO(t, th)
}

func testHungIO(t *testing.T, h hanger) {
	t.Run("write", func(t *testing.T) { hungWrite(t, h) })
	t.Run("read", func(t *testing.T) { hungRead(t, h) })
	t.Run("close-after-timeout", func(t *testing.T) { closeAfterTimeout(t, h) })
	t.Run("close-while-waiting", func(t *testing.T) { closeWhileWaiting(t, h) })
}

// hung issues the hang and registers its release, so that a failing test
// never leaves I/O queued behind it.
func hung(t *testing.T, h hanger) (release func()) {
	t.Helper()
	h.Hang(t)
	released := false
	release = func() {
		if !released {
			released = true
			h.Release(t)
		}
	}
	t.Cleanup(release)
	return release
}

// waitFree waits until the device takes I/O again (the stuck call has
// returned) and returns the read of n bytes at off.
func waitFree(t *testing.T, d *directio.Device, off int64, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	var last error
	waitFor(t, "the device takes I/O again after release", 30*time.Second, func() bool {
		last = d.ReadAt(buf, off, ioTimeout)
		if last != nil && !errors.Is(last, directio.ErrBusy) {
			t.Fatalf("ReadAt after release: %v (want success, or ErrBusy while the late I/O returns)", last)
		}
		return last == nil
	})
	return buf
}

func hungWrite(t *testing.T, h hanger) {
	d := open(t, h.Path(), 0, directio.ReadWrite)
	ss := d.Geometry().Alignment
	off := int64(4 * ss)
	old, late := pattern(ss, 1), pattern(ss, 2)
	if err := d.WriteAt(old, off, ioTimeout); err != nil {
		t.Fatalf("WriteAt before the hang: %v", err)
	}
	release := hung(t, h)

	start := time.Now()
	err := d.WriteAt(late, off, hangTimeout)
	took := time.Since(start)
	if !errors.Is(err, directio.ErrTimeout) {
		t.Fatalf("WriteAt on the hung device: %v, want ErrTimeout", err)
	}
	if took < hangTimeout || took > hangTimeout+10*time.Second {
		t.Errorf("the timed-out write returned after %v; want about %v", took, hangTimeout)
	}
	// The caller may reuse its buffer at once: the late write carries
	// the bytes it had when it was issued.
	copy(late, bytes.Repeat([]byte{0xEE}, ss))
	want := pattern(ss, 2)

	// While the write is stuck, every I/O fails at once with ErrBusy,
	// without waiting for a timeout.
	for _, write := range []bool{false, true} {
		start = time.Now()
		if write {
			err = d.WriteAt(old, 0, hangTimeout)
		} else {
			err = d.ReadAt(make([]byte, ss), 0, hangTimeout)
		}
		took = time.Since(start)
		if !errors.Is(err, directio.ErrBusy) {
			t.Errorf("I/O (write %v) while the write is stuck: %v, want ErrBusy", write, err)
		}
		if took >= hangTimeout {
			t.Errorf("ErrBusy took %v; it must not wait", took)
		}
	}

	release()
	got := waitFree(t, d, off, ss)
	if !bytes.Equal(got, want) {
		t.Errorf("after release the sector holds %x...; want the late write's %x...", got[:8], want[:8])
	}
	// A fresh descriptor sees the late write on the device too.
	d2 := open(t, h.Path(), 0, directio.ReadOnly)
	got2 := make([]byte, ss)
	if err := d2.ReadAt(got2, off, ioTimeout); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got2, want) {
		t.Error("the late write did not land on the device")
	}
	// The write at sector 0 that was refused with ErrBusy never ran.
	if err := d2.ReadAt(got2, 0, ioTimeout); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got2, old) {
		t.Error("a write refused with ErrBusy landed")
	}
}

func hungRead(t *testing.T, h hanger) {
	d := open(t, h.Path(), 0, directio.ReadWrite)
	ss := d.Geometry().Alignment
	off := int64(8 * ss)
	content := pattern(ss, 3)
	if err := d.WriteAt(content, off, ioTimeout); err != nil {
		t.Fatal(err)
	}
	release := hung(t, h)

	dst := bytes.Repeat([]byte{0xEE}, ss)
	start := time.Now()
	err := d.ReadAt(dst, off, hangTimeout)
	if !errors.Is(err, directio.ErrTimeout) {
		t.Fatalf("ReadAt on the hung device: %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took < hangTimeout {
		t.Errorf("timed out after %v, before the %v timeout", took, hangTimeout)
	}
	if err := d.ReadAt(make([]byte, ss), 0, hangTimeout); !errors.Is(err, directio.ErrBusy) {
		t.Errorf("ReadAt while the read is stuck: %v, want ErrBusy", err)
	}

	release()
	if got := waitFree(t, d, off, ss); !bytes.Equal(got, content) {
		t.Error("read after release differs from the sector's content")
	}
	// The late read landed in the worker's buffer, never in the
	// caller's, which gave up on it.
	if !bytes.Equal(dst, bytes.Repeat([]byte{0xEE}, ss)) {
		t.Error("the late read wrote into the buffer of the caller that had timed out")
	}
}

func closeAfterTimeout(t *testing.T, h hanger) {
	d, err := directio.Open(h.Path(), 0, directio.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ss := d.Geometry().Alignment
	release := hung(t, h)
	if err := d.WriteAt(pattern(ss, 4), 0, hangTimeout); !errors.Is(err, directio.ErrTimeout) {
		t.Fatalf("WriteAt on the hung device: %v, want ErrTimeout", err)
	}
	start := time.Now()
	if err := d.Close(); err != nil {
		t.Errorf("Close while busy: %v", err)
	}
	if took := time.Since(start); took >= hangTimeout {
		t.Errorf("Close waited %v for the stuck I/O", took)
	}
	if err := d.ReadAt(make([]byte, ss), 0, hangTimeout); !errors.Is(err, directio.ErrClosed) {
		t.Errorf("ReadAt after Close: %v, want ErrClosed", err)
	}
	// The stuck call still holds the descriptor; when it returns, the
	// descriptor is closed, not leaked.
	if n := openFDs(t, h.Path()); n != 1 {
		t.Errorf("%d descriptors open on the device while the call is stuck, want 1", n)
	}
	release()
	waitFor(t, "the descriptor is closed once the stuck call returns", 30*time.Second, func() bool {
		return openFDs(t, h.Path()) == 0
	})
}

func closeWhileWaiting(t *testing.T, h hanger) {
	d, err := directio.Open(h.Path(), 0, directio.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ss := d.Geometry().Alignment
	release := hung(t, h)

	// A caller waits, with a long timeout, on a write that is stuck.
	want := pattern(ss, 5)
	done := make(chan error, 1)
	go func() { done <- d.WriteAt(want, int64(ss), time.Minute) }()
	// Wait for it without issuing I/O of our own (which could win the
	// race and get stuck first): a thread of this process blocked in
	// pwrite64 is the worker, stuck in the call.
	waitFor(t, "a thread is blocked in pwrite64", 10*time.Second, func() bool {
		return inSyscall(t, unix.SYS_PWRITE64)
	})
	if err := d.Close(); err != nil {
		t.Errorf("Close while a caller waits: %v", err)
	}
	select {
	case err := <-done:
		t.Fatalf("the waiting write returned before the device was released: %v", err)
	default:
	}
	release()
	select {
	case err := <-done:
		// The call was under way when Close came; it completes and
		// reports its real result.
		if err != nil {
			t.Errorf("the write under way at Close: %v, want success", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting write did not return after release")
	}
	waitFor(t, "the descriptor is closed once the call returns", 30*time.Second, func() bool {
		return openFDs(t, h.Path()) == 0
	})
	d2 := open(t, h.Path(), 0, directio.ReadOnly)
	got := make([]byte, ss)
	if err := d2.ReadAt(got, int64(ss), ioTimeout); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the write under way at Close did not land")
	}
}
