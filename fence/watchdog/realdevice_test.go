package watchdog_test

import (
	"os"
	"testing"
	"time"

	"github.com/hbfence/hbfence/fence/watchdog"
)

// TestRealDevice arms a real kernel watchdog. It runs only when
// HBFENCE_TEST_WATCHDOG_DEVICE names one: arming a watchdog on a machine
// means that if this test dies before the magic close, the machine is
// reset. softdog is the safe choice (modprobe softdog; soft_noboot=1 makes
// it only log).
func TestRealDevice(t *testing.T) {
	path := os.Getenv("HBFENCE_TEST_WATCHDOG_DEVICE")
	if path == "" {
		t.Skip("set HBFENCE_TEST_WATCHDOG_DEVICE=/dev/watchdogN to test a real watchdog device (the test arms it; a crash of the test resets the machine)")
	}
	w, err := watchdog.New(watchdog.Config{Path: path, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eff, err := w.Arm()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Disarm()
	info := w.Describe()
	t.Logf("%s: %+v", info, info)
	if info.Backend != watchdog.BackendDevice || info.Identity == "" || !info.Fence || eff <= 0 {
		t.Errorf("Describe: %+v", info)
	}
	if info.SetError == "" && eff > 30*time.Second {
		t.Errorf("effective %v after setting the timeout for 30s", eff)
	}
	for i := 0; i < 3; i++ {
		if err := w.Feed(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Disarm(); err != nil {
		t.Fatal(err)
	}
}
