package lastfence

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestWriteReadLine(t *testing.T) {
	dir := t.TempDir()
	if r, err := Read(dir); r != nil || err != nil {
		t.Fatalf("no file: %v, %v", r, err)
	}
	at := time.Date(2026, 12, 7, 3, 4, 5, 0, time.UTC)
	rec := Record{Time: at, Reason: "renewals failed for 3s", Host: "node1", Pool: "p", Slot: 2, Generation: 9, PID: 7, BootID: "b1"}
	if err := Write(dir, rec); err != nil {
		t.Fatal(err)
	}
	got, err := Read(dir)
	if err != nil || got == nil || *got != rec {
		t.Fatalf("read back %+v, %v; want %+v", got, err, rec)
	}
	if _, err := os.Stat(Path(dir) + ".tmp"); err == nil {
		t.Error("the temporary file is left")
	}
	line := Line(rec, at.Add(time.Minute), "b1")
	if !strings.HasPrefix(line, "last fence: renewals failed for 3s at ") || !strings.Contains(line, "(slot 2, generation 9)") ||
		!strings.HasSuffix(line, ", before this daemon started") {
		t.Errorf("line: %q", line)
	}
	if line := Line(rec, at.Add(time.Minute), "b2"); !strings.Contains(line, "in an earlier boot") {
		t.Errorf("another boot: %q", line)
	}
	if line := Line(rec, at.Add(-time.Minute), "b1"); strings.Contains(line, "before") || strings.Contains(line, "boot") {
		t.Errorf("a fence of this daemon: %q", line)
	}
	os.WriteFile(Path(dir), []byte("{garbage"), 0o644)
	if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), Path(dir)) {
		t.Errorf("damaged file: %v", err)
	}
}

func TestWriteFailsInMissingDir(t *testing.T) {
	if err := Write(t.TempDir()+"/none", Record{Reason: "x"}); err == nil {
		t.Error("no error writing into a missing directory")
	}
}
