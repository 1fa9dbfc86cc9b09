package driver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTool writes an executable named name into a new directory: it
// appends its argv (one line, arguments separated by '|') to a log file,
// prints the file named by $FAKE_OUT_<verb> if set for its first
// argument ($FAKE_OUT_<verb>_<arg2> first, when set for its first two
// arguments: FAKE_OUT_list__v for "list -v"), and exits with $FAKE_EXIT_<verb> (default 0), printing
// $FAKE_ERR to stderr when it fails. It returns the tool's path and the
// log's path.
func fakeTool(t *testing.T, name string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "argv.log")
	script := `#!/bin/sh
log="` + log + `"
line=""
for a in "$@"; do line="$line|$a"; done
echo "${line#|}" >> "$log"
verb=$(echo "$1" | tr -c 'a-zA-Z0-9\n' '_')
arg2=$(echo "$2" | tr -c 'a-zA-Z0-9\n' '_')
eval out=\${FAKE_OUT_${verb}_${arg2}:-}
[ -z "$out" ] && eval out=\${FAKE_OUT_$verb:-}
eval code=\${FAKE_EXIT_$verb:-0}
[ -n "$out" ] && cat "$out"
if [ "$code" != 0 ]; then echo "${FAKE_ERR:-failed}" >&2; fi
exit "$code"
`
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

func argvLog(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}
