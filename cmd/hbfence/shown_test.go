package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/restart/agent"
)

// Names stored by older versions (before the one name rule) reach the
// operator's terminal escaped: no raw ESC, no invalid UTF-8, no 10 000-byte
// line (issue 10 item 16).
func TestStoredNamesArePrintedEscaped(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"web1", "web1"},
		{"évora-db", "évora-db"},
		{"evil\x1b[2J", `"evil\x1b[2J"`},
		{"bad\xffname", `"bad\xffname"`},
		{"tab\there", `"tab\there"`},
	} {
		if got := shown(c.in); got != c.want {
			t.Errorf("shown(%q) = %q; want %q", c.in, got, c.want)
		}
	}
	long := strings.Repeat("a", 10000)
	if got := shown(long); len(got) > maxShown+40 || !strings.Contains(got, "(10000 bytes)") {
		t.Errorf("a 10 000-byte name is shown as %d bytes: %.60q…", len(got), got)
	}
	var out bytes.Buffer
	g := agent.GuestStatus{Name: "x\x1b]0;owned\x07", Message: "its host \x1b[31mh\x1b[0m is dead", Host: "h\x1b", Config: "/c\x1b"}
	printGuests(&out, []agent.GuestStatus{g})
	printGuest(&out, g)
	if bytes.ContainsAny(out.Bytes(), "\x1b\x07") {
		t.Errorf("control characters reached the output:\n%q", out.String())
	}
}
