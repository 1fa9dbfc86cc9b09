package daemon

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/heartbeat"
	"github.com/hbfence/hbfence/heartbeat/liveness"
	"github.com/hbfence/hbfence/heartbeat/master"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
)

var (
	sampleLine = regexp.MustCompile(`^([a-z_]+)(\{[a-z_]+="[^"\\]*"\})? (-?[0-9.e+-]+)$`)
	metaLine   = regexp.MustCompile(`^# (HELP|TYPE) ([a-z_]+) (.+)$`)
)

// parseMetrics checks text against the Prometheus text format as
// node_exporter's textfile collector reads it (every sample's family
// declared by HELP and TYPE before it) and returns the samples.
func parseMetrics(t *testing.T, text string) map[string]string {
	t.Helper()
	typed := map[string]bool{}
	out := map[string]string{}
	if !strings.HasSuffix(text, "\n") {
		t.Fatal("the text does not end with a newline")
	}
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if m := metaLine.FindStringSubmatch(l); m != nil {
			if m[1] == "TYPE" {
				typed[m[2]] = true
			}
			continue
		}
		m := sampleLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("not a sample line: %q", l)
		}
		if !typed[m[1]] {
			t.Fatalf("sample %q before its TYPE", l)
		}
		if _, dup := out[m[1]+m[2]]; dup {
			t.Fatalf("sample %q twice", m[1]+m[2])
		}
		out[m[1]+m[2]] = m[3]
	}
	return out
}

// [metrics] textfile: the figures of status --check, in the text format,
// replaced whole.
func TestMetricsText(t *testing.T) {
	var st Status
	st.Self, st.Joined = "v1", true
	st.Timing = heartbeat.TimingJSON{Interval: 1, IOTimeout: 2, RenewalFail: 12}
	st.LastRenewalAgeSeconds = 0.25
	st.RenewalLatency.MaxMS = 3.5
	st.Fence = &fence.Status{State: fence.Healthy}
	st.Master = &master.Status{Known: true, Name: "v1", Epoch: 7, Self: master.SelfStatus{Acting: true, Epoch: 7}}
	st.Hosts = []heartbeat.HostStatus{{Name: "v1", Self: true, State: liveness.Live}, {Name: "v2", State: liveness.Suspect}}
	st.Guests = []agent.GuestStatus{{Name: "g1", State: restart.Running}, {Name: "g2", State: restart.Pending}}
	st.Alarms = []Alarm{{Code: AlarmAreaReplaced, Message: "x"}}
	got := parseMetrics(t, metricsText(st))
	for k, want := range map[string]string{
		"hbfence_check_level":                           "2",
		"hbfence_joined":                                "1",
		"hbfence_healthy":                               "1",
		"hbfence_master":                                "1",
		"hbfence_master_epoch":                          "7",
		"hbfence_renewal_age_seconds":                   "0.25",
		"hbfence_renewal_latency_max_seconds":           "0.0035",
		"hbfence_renewal_fail_seconds":                  "12",
		`hbfence_hosts{state="live"}`:                   "1",
		`hbfence_hosts{state="suspect"}`:                "1",
		`hbfence_hosts{state="dead"}`:                   "0",
		`hbfence_guests{state="running"}`:               "1",
		`hbfence_guests{state="pending"}`:               "1",
		`hbfence_guests{state="error"}`:                 "0",
		`hbfence_alarm{code="area-replaced"}`:           "1",
		`hbfence_alarm{code="records-of-another-pool"}`: "0",
	} {
		if got[k] != want {
			t.Errorf("%s = %q, want %q", k, got[k], want)
		}
	}

	path := filepath.Join(t.TempDir(), "hbfence.prom")
	if err := writeMetrics(path, metricsText(st)); err != nil {
		t.Fatal(err)
	}
	if err := writeMetrics(path, metricsText(Status{})); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if g := parseMetrics(t, string(b)); g["hbfence_joined"] != "0" {
		t.Errorf("after the second write: %v", g)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("the directory holds %d files, want the one (no temporary left)", len(ents))
	}
}
