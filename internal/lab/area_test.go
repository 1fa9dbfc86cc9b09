package lab_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/restart"
)

func hasAlarm(st daemon.Status, code string) bool {
	return slices.ContainsFunc(st.Alarms, func(a daemon.Alarm) bool { return a.Code == code })
}

// The heartbeat file of a running pool is deleted and a new one formatted
// at the same path (issue 9, item 6: the daemons heartbeated into the
// deleted inode for ever, without a word, and a daemon started on the new
// file became a second master of epoch 1 on the same guest records).
//
// Every running daemon raises the alarm area-replaced within a few
// intervals and none acts as master any more; the guests run on where
// they ran, untouched (no watchdog reset, one writer per disk); a daemon
// started on the new file becomes the new pool's master, raises
// records-of-another-pool and starts none of the old pool's guests.
func TestReplacedAreaIsNoticed(t *testing.T) {
	guests := []lab.GuestSpec{{Name: "r1", HA: true}, {Name: "r2", HA: true}}
	p, hosts, _ := guestPool(t, guests...)
	ctx := context.Background()
	before, err := hosts[0].Guests(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if out, err := p.Run(ctx, "status", "--check", "--socket", hosts[0].Socket); err != nil || !strings.HasPrefix(out, "HBFENCE OK - ") {
		t.Fatalf("status --check of a healthy pool: %v: %s", err, out)
	}
	// The textfile is rewritten every interval: it says the same once it
	// has caught up with what status --check said.
	var metrics []byte
	if err := lab.WaitUntil(ctx, 10*interval, 20*time.Millisecond, "the [metrics] textfile of a healthy pool", func() (bool, error) {
		metrics, _ = os.ReadFile(hosts[0].Metrics)
		return strings.Contains(string(metrics), "hbfence_check_level 0\n") && strings.Contains(string(metrics), "hbfence_joined 1\n"), nil
	}); err != nil {
		t.Fatalf("%s: %v\n%s", hosts[0].Name, err, metrics)
	}

	replaced := time.Now()
	if err := os.Remove(p.Area); err != nil {
		t.Fatal(err)
	}
	if out, err := p.Run(ctx, "init", "--profile", "fast", "--slots", "16", p.Area); err != nil {
		t.Fatalf("hbfence init of the new file: %v\n%s", err, out)
	}
	noticed := map[string]time.Duration{}
	err = lab.WaitUntil(ctx, 20*interval, 20*time.Millisecond, "every daemon raising area-replaced", func() (bool, error) {
		for _, h := range hosts {
			if _, ok := noticed[h.Name]; ok {
				continue
			}
			if st, err := h.Status(ctx); err == nil && hasAlarm(st, daemon.AlarmAreaReplaced) {
				noticed[h.Name] = time.Since(replaced)
			}
		}
		return len(noticed) == len(hosts), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for _, d := range noticed {
		worst = max(worst, d)
	}
	t.Logf("area replaced: noticed by every daemon within %v (%.1f intervals): %v", worst.Round(time.Millisecond), worst.Seconds()/interval.Seconds(), noticed)

	// The metrics textfile says the same within an interval.
	err = lab.WaitUntil(ctx, 4*interval, 20*time.Millisecond, hosts[0].Name+"'s [metrics] textfile showing the alarm", func() (bool, error) {
		b, _ := os.ReadFile(hosts[0].Metrics)
		return strings.Contains(string(b), "hbfence_alarm{code=\"area-replaced\"} 1\n") && strings.Contains(string(b), "hbfence_check_level 2\n"), nil
	})
	if err != nil {
		t.Error(err)
	}
	out, err := p.Run(ctx, "status", "--check", "--socket", hosts[0].Socket)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(out, "HBFENCE CRITICAL - ") || !strings.Contains(out, "alarm area-replaced") {
		t.Errorf("status --check after the area was replaced: %v: %s", err, out)
	}

	// No old daemon acts as master, and a new one, on the new file, does
	// not touch the old pool's guests.
	for _, h := range hosts {
		if m, err := h.Master(ctx); err == nil && m.Self.Acting {
			t.Errorf("%s still acts as master of epoch %d after the area was replaced", h.Name, m.Self.Epoch)
		}
	}
	v4, err := p.AddHost("v4", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := v4.Start(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitJoined(ctx, 60*time.Second, v4); err != nil {
		t.Fatal(err)
	}
	waitActing(t, []*lab.Host{v4}, 0, 2*hostDead)
	err = lab.WaitUntil(ctx, 10*interval, 20*time.Millisecond, "v4 raising records-of-another-pool", func() (bool, error) {
		st, err := v4.Status(ctx)
		return err == nil && hasAlarm(st, daemon.AlarmRecordsOfAnotherPool), nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// host_dead and more: nothing moved, nothing reset.
	time.Sleep(hostDead + 4*interval) // a span with nothing to wait for: the test checks that nothing happens in it
	for _, h := range hosts {
		if h.Exited() {
			t.Errorf("%s's daemon exited", h.Name)
		}
		if r := h.Resets(); len(r) > 0 {
			t.Errorf("%s was reset by its watchdog: %+v", h.Name, r)
		}
	}
	for _, g := range guests {
		w, err := lab.ReadDisk(p.Disk(g.Name))
		if err != nil {
			t.Fatal(err)
		}
		if len(w) != 1 || w[0].Host != before[g.Name].Host {
			t.Errorf("%s's disk shows writers %+v, want only %s's", g.Name, w, before[g.Name].Host)
		}
	}
	after, err := hosts[0].Guests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range guests {
		if a, b := after[g.Name], before[g.Name]; a.Host != b.Host || a.State != restart.Running {
			t.Errorf("%s: %s on %s before, %s on %s after", g.Name, b.State, b.Host, a.State, a.Host)
		}
	}
}
