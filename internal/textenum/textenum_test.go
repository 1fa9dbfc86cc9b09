package textenum

import "testing"

func TestNameAndParse(t *testing.T) {
	names := []string{"unknown", "live", "dead"}
	for i, n := range names {
		if got := Name(names, i, "state"); got != n {
			t.Errorf("Name(%d) = %q, want %q", i, got, n)
		}
		if got, err := Parse(names, []byte(n), "state"); err != nil || got != i {
			t.Errorf("Parse(%q) = %d, %v", n, got, err)
		}
	}
	if got := Name(names, 7, "state"); got != "state(7)" {
		t.Errorf("out of range: %q", got)
	}
	if _, err := Parse(names, []byte("zombie"), "liveness state"); err == nil || err.Error() != `unknown liveness state "zombie"` {
		t.Errorf("bad name: %v", err)
	}
}
