package privdir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureCreatesAPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run", "hbfence")
	if err := Ensure(dir, "[control] socket"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created %v (%v), want mode 0700", fi, err)
	}
}

func TestCheckRefusesWhatOthersCanChange(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	open := mk("open", 0o777)
	sticky := mk("sticky", os.ModeSticky|0o777)
	inSticky := filepath.Join(sticky, "mine")
	if err := os.Mkdir(inSticky, 0o700); err != nil {
		t.Fatal(err)
	}
	underOpen := filepath.Join(open, "mine")
	if err := os.Mkdir(underOpen, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(inSticky, link); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dir, want string // want "" = accepted
	}{
		{inSticky, ""}, // a parent like /tmp is fine
		{open, "writable by group or others"},
		{sticky, "writable by group or others"}, // the directory itself never
		{underOpen, "writable by group or others"},
		{link, "symbolic link"},
		{mk("group", 0o770), "writable by group or others"},
	} {
		err := Check(c.dir, "[control] socket")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want accepted", c.dir, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "[control] socket")):
			t.Errorf("%s: %v, want an error naming the key and %q", c.dir, err, c.want)
		}
	}
}

func TestJudgeOwner(t *testing.T) {
	const dir = 0o040755
	if err := judge("/x", dir, 0, 1000, true); err != nil {
		t.Errorf("root-owned: %v", err)
	}
	if err := judge("/x", dir, 1000, 1000, true); err != nil {
		t.Errorf("owned by the daemon's user: %v", err)
	}
	if err := judge("/x", dir, 1000, 0, true); err == nil || !strings.Contains(err.Error(), "owned by uid 1000") {
		t.Errorf("owned by another user: %v", err)
	}
}
