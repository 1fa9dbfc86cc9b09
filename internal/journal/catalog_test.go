package journal

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const catalogPath = "../../packaging/hbfence.catalog"

type catalogEntry struct {
	id      string
	headers map[string]string
	text    string
}

// parseCatalog reads a catalog file by the format of journalctl's
// catalog: "-- <32 hex>" opens an entry, then header lines "Key: value"
// up to an empty line, then the text; lines starting with # outside an
// entry are comments.
func parseCatalog(t *testing.T, path string) []catalogEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	idLine := regexp.MustCompile(`^-- ([0-9a-f]{32})$`)
	header := regexp.MustCompile(`^([A-Za-z-]+): (.+)$`)
	var out []catalogEntry
	var cur *catalogEntry
	inHeaders := false
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if m := idLine.FindStringSubmatch(line); m != nil {
			out = append(out, catalogEntry{id: m[1], headers: map[string]string{}})
			cur, inHeaders = &out[len(out)-1], true
			continue
		}
		if strings.HasPrefix(line, "--") {
			t.Fatalf("%s:%d: %q: an entry opens with \"-- \" and 32 lower-case hex digits", path, n, line)
		}
		if cur == nil {
			if line != "" && !strings.HasPrefix(line, "#") {
				t.Fatalf("%s:%d: text before the first entry: %q", path, n, line)
			}
			continue
		}
		if inHeaders {
			if line == "" {
				inHeaders = false
				continue
			}
			m := header.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("%s:%d: %q is not a header line (Key: value) and no empty line ends the headers", path, n, line)
			}
			cur.headers[m[1]] = m[2]
			continue
		}
		cur.text += line + "\n"
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCatalogHasEveryMessageID(t *testing.T) {
	entries := parseCatalog(t, catalogPath)
	byID := map[string]catalogEntry{}
	for _, e := range entries {
		if _, dup := byID[e.id]; dup {
			t.Errorf("the catalog has two entries for %s", e.id)
		}
		byID[e.id] = e
	}
	ids := map[string]string{}
	for name, id := range All {
		if len(id) != 32 || strings.Trim(string(id), "0123456789abcdef") != "" {
			t.Errorf("%s = %q is not 32 lower-case hex digits", name, id)
		}
		if other, dup := ids[string(id)]; dup {
			t.Errorf("%s and %s have the same id %s", name, other, id)
		}
		ids[string(id)] = name
		if _, ok := byID[string(id)]; !ok {
			t.Errorf("%s (%s) has no entry in %s", name, id, catalogPath)
		}
	}
	fieldRef := regexp.MustCompile(`@([A-Z0-9_]+)@`)
	for _, e := range entries {
		if _, ok := ids[e.id]; !ok {
			t.Errorf("the catalog's entry %s (%q) is no MESSAGE_ID constant of ids.go", e.id, e.headers["Subject"])
		}
		for _, h := range []string{"Subject", "Defined-By", "Support"} {
			if e.headers[h] == "" {
				t.Errorf("entry %s has no %s:", e.id, h)
			}
		}
		if e.headers["Defined-By"] != "hbfence" {
			t.Errorf("entry %s: Defined-By: %q, want hbfence", e.id, e.headers["Defined-By"])
		}
		for _, part := range []string{"Why it matters:", "What to do:"} {
			if !strings.Contains(e.text, part) {
				t.Errorf("entry %s (%s) does not say %q", e.id, e.headers["Subject"], part)
			}
		}
		for _, m := range fieldRef.FindAllStringSubmatch(e.headers["Subject"]+e.text, -1) {
			if !strings.HasPrefix(m[1], "HBFENCE_") {
				t.Errorf("entry %s names field @%s@, which hbfence does not send", e.id, m[1])
			}
		}
	}
}

// journalctl builds its binary catalog from the file: it parses it as
// systemd does.
func TestCatalogUpdatesWithJournalctl(t *testing.T) {
	jc, err := exec.LookPath("journalctl")
	if err != nil {
		t.Skip("SKIP: no journalctl on this machine (apt-get install systemd): the catalog is checked by TestCatalogHasEveryMessageID only")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "usr/lib/systemd/catalog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(catalogPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hbfence.catalog"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(jc, "--update-catalog", "--root", root).CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl --update-catalog: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "hbfence.catalog") {
		t.Errorf("journalctl complains about the catalog:\n%s", out)
	}
	fi, err := os.Stat(filepath.Join(root, "var/lib/systemd/catalog/database"))
	if err != nil || fi.Size() == 0 {
		t.Fatalf("no catalog database built: %v", err)
	}
	// The database has every entry: journalctl --list-catalog reads it.
	list, err := exec.Command(jc, "--list-catalog", "--root", root).CombinedOutput()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v\n%s", err, list)
	}
	for name, id := range All {
		if !strings.Contains(string(list), string(id)) {
			t.Errorf("%s (%s) is not in the database journalctl built:\n%s", name, id, list)
		}
	}
}
