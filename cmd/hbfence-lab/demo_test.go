package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/lab"
)

// TestMain lets this test binary serve as the story's guest program: the
// story starts its guests from os.Executable(), which here is the test
// binary.
func TestMain(m *testing.M) {
	switch {
	case len(os.Args) == 3 && os.Args[1] == "-guest-disk":
		os.Exit(lab.RunGuestDisk(os.Args[2]))
	case len(os.Args) == 5 && os.Args[1] == "-guest-period" && os.Args[3] == "-guest-disk":
		// The mass benchmark's guests write a record a period.
		period, err := time.ParseDuration(os.Args[2])
		if err != nil {
			os.Exit(2)
		}
		os.Exit(lab.RunGuestDiskEvery(os.Args[4], period))
	}
	os.Exit(m.Run())
}

// The demonstration pool runs end to end and its verdict is OK; the
// figures it writes are the ones it narrated.
func TestDemoStory(t *testing.T) {
	f, out := runLab(t, buildLab(t))
	for _, want := range []string{"node2 DEAD", "node3 left", "generation 1 → 2", "in use by a live host", "watchdog reset the machine",
		"ran again on other hosts", "was not restarted", "placed again", "runs on node3 again", "runs none of the pool's guests", "never two writers at once",
		"pool A refuses HA for its own manager", "pool B's manager ran again in pool A", "pool B's app-b1 kept its one copy", "VERDICT: OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("the story does not say %q:\n%s", want, out)
		}
	}
	if err := lab.FaultFSAvailable(); err == nil {
		if !strings.Contains(out, "node2 killed its guests before node1 declared it dead") {
			t.Errorf("the storage-cut scene did not run:\n%s", out)
		}
	} else {
		t.Logf("storage-cut scene skipped: %v", err)
	}
	ratio, ok := f["detection_ratio_to_host_dead"].(float64)
	if !ok || ratio < 0.9 {
		t.Errorf("figures %v: detection ratio missing or below the safety bound", f)
	}
}

// A failed check makes the demo exit non-zero: here, a binary that is not
// hbfence.
func TestDemoFailsWhenTheStoryDoesNotHappen(t *testing.T) {
	var out bytes.Buffer
	code := run([]string{"-hbfence", "/bin/false", "-dir", t.TempDir()}, &out, &out)
	if code == 0 {
		t.Fatalf("hbfence-lab exited 0 with /bin/false as hbfence:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "VERDICT: FAILED") {
		t.Errorf("no failed verdict:\n%s", out.String())
	}
}
