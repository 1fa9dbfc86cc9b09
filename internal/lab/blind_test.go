package lab_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/lab"
)

// A host that can neither list its guests (no [guests] drivers) nor have
// them killed (no [fence] kill_guests hook) cannot confirm them gone: it
// says so in its status and its slot, every other host sees it so, and a
// fence leaves its watchdog armed to reset the machine instead of
// disarming it as if its guests were gone (issue 10 item 4).
func TestHostThatCannotListGuestsNeverConfirmsThemGone(t *testing.T) {
	faultPool(t) // skips without FUSE; builds hbfence-faultfs
	p := newPool(t, lab.Options{Watchdog: true, FaultFS: true})
	var hosts []*lab.Host
	for _, n := range []string{"o1", "o2", "v"} {
		h, err := p.AddHost(n, "")
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	v := hosts[2]
	cfg, err := os.ReadFile(v.Config)
	if err != nil {
		t.Fatal(err)
	}
	noHook := regexp.MustCompile(`(?m)^kill_guests = .*$`).ReplaceAll(cfg, nil)
	if string(noHook) == string(cfg) {
		t.Fatalf("%s's config has no kill_guests line to remove:\n%s", v.Name, cfg)
	}
	if err := os.WriteFile(v.Config, noHook, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := p.WaitJoined(ctx, 60*time.Second, hosts...); err != nil {
		t.Fatal(err)
	}
	waitArmed(t, v)
	st, err := v.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.GuestsUnknown, "UNSAFE") || !strings.Contains(st.GuestsUnknown, "kill_guests") {
		t.Errorf("%s's status says %q; want UNSAFE, naming what to set", v.Name, st.GuestsUnknown)
	}
	seen := false
	err = lab.WaitUntil(ctx, 3*hostDead, 50*time.Millisecond, "o1 sees v's guests unknown", func() (bool, error) {
		ost, err := hosts[0].Status(ctx)
		if err != nil {
			return false, err
		}
		for _, h := range ost.Hosts {
			if h.Name == v.Name && h.GuestsUnknown {
				seen = true
			}
		}
		return seen, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	disarmsBefore := len(v.WatchdogEvents("disarmed"))
	if err := v.CutStorage(); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*hostDead)
	defer cancel()
	exitErr, err := v.Wait(wctx)
	if err != nil {
		t.Fatalf("%s was not reset after its storage was cut: %v (disarmed %d times since)\nlog:\n%s", v.Name, err, len(v.WatchdogEvents("disarmed"))-disarmsBefore, lastLog(v, 10))
	}
	if ee, ok := exitErr.(*exec.ExitError); !ok || ee.ExitCode() != 99 {
		t.Fatalf("the watchdog stand-in exited with %v, want 99 (reset)\nlog:\n%s", exitErr, lastLog(v, 10))
	}
	if n := len(v.WatchdogEvents("disarmed")) - disarmsBefore; n != 0 {
		t.Errorf("%s's watchdog was disarmed %d times by a fence that confirmed nothing", v.Name, n)
	}
	if !strings.Contains(v.Log(), "cannot confirm them gone") {
		t.Errorf("%s's log does not say why its guests are not confirmed gone:\n%s", v.Name, lastLog(v, 10))
	}
	_ = v.RestoreStorage()
}
