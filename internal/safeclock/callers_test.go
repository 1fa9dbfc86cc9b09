package safeclock

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The drivers that feed safety decisions take no instant from Go's clock
// unless the line says why (a comment naming "wall" or "Go time"): a
// time.Now there would be compared with raw instants, 56 years apart. The
// list is the drivers converted to the safety clock; internal/daemon's
// daemon.go keeps time.Now for systemd's service watchdog only.
func TestSafetyDriversUseSafeClock(t *testing.T) {
	files := []string{
		"heartbeat/member.go",
		"heartbeat/messages.go",
		"heartbeat/master/runner.go",
		"internal/daemon/fencing.go",
		"internal/daemon/master.go",
		"internal/daemon/guests.go",
		"internal/daemon/lifecycle.go",
		"internal/daemon/upgrade.go",
		"internal/daemon/signals.go",
	}
	goClock := regexp.MustCompile(`\btime\.(Now|Since|Until)\(`)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if !goClock.MatchString(line) {
				continue
			}
			if c := strings.Index(line, "//"); c >= 0 && (strings.Contains(line[c:], "wall") || strings.Contains(line[c:], "Go time")) {
				continue
			}
			t.Errorf("%s:%d reads Go's clock where safety instants are raw: %s (use the driver's safeclock.Clock, or say in a comment why it is wall or Go time)", f, i+1, strings.TrimSpace(line))
		}
	}
}
