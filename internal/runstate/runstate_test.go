package runstate

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestUpdateLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	f, err := Open(dir, "pool1", "a")
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.Load()
	if err != nil || s.Generation != 0 || len(s.Orders) != 0 || s.Pool != "pool1" || s.Host != "a" {
		t.Fatalf("missing file: %+v %v, want the empty state of pool1/a", s, err)
	}
	if err := f.Update(func(s *State) error {
		s.Generation = 6
		s.Orders = append(s.Orders, Order{Guest: "g1", Driver: "xl", Op: "start", Generation: 6})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.Update(func(*State) error { return errors.New("no") }); err == nil {
		t.Fatal("an Update whose fn fails returned no error")
	}
	g, _ := Open(dir, "pool1", "a") // a successor's open
	s, err = g.Load()
	if err != nil || s.Generation != 6 || len(s.Orders) != 1 || s.Orders[0].Guest != "g1" {
		t.Fatalf("successor read %+v %v, want generation 6 and the order of g1", s, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestBadFileIsAnErrorNeverEmpty(t *testing.T) {
	dir := t.TempDir()
	f, _ := Open(dir, "pool1", "a")
	for name, content := range map[string]string{
		"garbage":    "{not json",
		"truncated":  `{"format":1,"pool":"pool1","host":"a","orders":[{"guest":"g1"`,
		"other host": `{"format":1,"pool":"pool1","host":"b"}`,
		"future":     `{"format":2,"pool":"pool1","host":"a"}`,
	} {
		if err := os.WriteFile(f.Path(), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := f.Load()
		if !errors.Is(err, ErrBadFile) {
			t.Errorf("%s: Load = %v, want ErrBadFile", name, err)
		}
		if err := f.Update(func(*State) error { return nil }); !errors.Is(err, ErrBadFile) {
			t.Errorf("%s: Update = %v, want ErrBadFile (a bad file is never overwritten)", name, err)
		}
	}
}

func TestOpenRefusesARelativeOrFileDir(t *testing.T) {
	if _, err := Open("run", "p", "a"); err == nil {
		t.Error("relative run_dir accepted")
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o600)
	if _, err := Open(file, "p", "a"); err == nil {
		t.Error("a run_dir that is a file accepted")
	}
}
