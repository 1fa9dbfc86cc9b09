package daemon

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/restart"
	"github.com/hbfence/hbfence/restart/agent"
	"github.com/rs/zerolog"
)

func TestStatusLine(t *testing.T) {
	live := svcView{host: "node1", pool: "1a2b3c4d", joined: true, slot: 3, fence: fence.Healthy, armed: true, adopted: true,
		master: "node2", epoch: 7, guestsHere: 5, interval: time.Second, ioTimeout: 10 * time.Second, renewalFail: 30 * time.Second,
		renewalAge: 200 * time.Millisecond, maxLatency: 5 * time.Millisecond}
	for _, c := range []struct {
		name string
		v    func(v svcView) svcView
		want string
	}{
		{"live", func(v svcView) svcView { return v }, "live in pool 1a2b3c4d, slot 3, master node2 epoch 7, 5 guests here"},
		{"master", func(v svcView) svcView { v.isMaster, v.guestsHere = true, 1; return v }, "live in pool 1a2b3c4d, slot 3, master (this host) epoch 7, 1 guest here"},
		{"joining", func(v svcView) svcView { v.joined = false; return v }, "joining pool 1a2b3c4d as node1"},
		{"arming", func(v svcView) svcView { v.armed = false; return v }, "joined pool 1a2b3c4d, slot 3: arming the watchdog"},
		{"adopting", func(v svcView) svcView { v.adopted = false; return v }, "live in pool 1a2b3c4d, slot 3, master node2 epoch 7, adopting guests"},
		{"fencing", func(v svcView) svcView { v.fence, v.fenceWhy = fence.Fencing, "renewals failed"; return v }, "FENCING: renewals failed"},
		{"slow", func(v svcView) svcView { v.renewalAge = 20 * time.Second; return v },
			"live in pool 1a2b3c4d, slot 3, master node2 epoch 7, 5 guests here; storage slow: last renewal 20s ago (renewal_fail 30s)"},
		{"unreachable", func(v svcView) svcView { v.renewalAge, v.lastError = 20*time.Second, "write slot 3: EIO"; return v },
			"live in pool 1a2b3c4d, slot 3, master node2 epoch 7, 5 guests here; storage slow: last renewal 20s ago (renewal_fail 30s), last error: write slot 3: EIO"},
		{"slow io", func(v svcView) svcView { v.maxLatency = 6 * time.Second; return v },
			"live in pool 1a2b3c4d, slot 3, master node2 epoch 7, 5 guests here; storage slow: a renewal took 6s (io_timeout 10s)"},
		{"unsafe", func(v svcView) svcView { v.unsafe = "UNSAFE: no watchdog"; return v },
			"live in pool 1a2b3c4d, slot 3, master node2 epoch 7, 5 guests here; UNSAFE: no watchdog"},
	} {
		if got := statusLine(c.v(live)); got != c.want {
			t.Errorf("%s: %q\nwant %q", c.name, got, c.want)
		}
	}
	if v := live; !v.ready() {
		t.Error("live view not ready")
	}
	for _, v := range []svcView{{joined: false}, {joined: true, fence: fence.Healthy, armed: false, adopted: true}, {joined: true, fence: fence.Healthy, armed: true}} {
		if v.ready() {
			t.Errorf("%+v is ready", v)
		}
	}
}

func TestLogGuestChange(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	g := func(state restart.State, host string) agent.GuestStatus {
		return agent.GuestStatus{Name: "vm1", UUID: "u1", State: state, Host: host, HA: true}
	}
	for _, c := range []struct {
		was, now agent.GuestStatus
		want     string // message_id, "" for no line
	}{
		{g(restart.Running, "a"), g(restart.Starting, "b"), "43eec5f18b2e4335ae09e87e6d2da501"},
		{g(restart.Running, "a"), g(restart.Running, "b"), "43eec5f18b2e4335ae09e87e6d2da501"},
		{g(restart.Pending, ""), g(restart.Starting, "b"), "43eec5f18b2e4335ae09e87e6d2da501"},
		{g(restart.Running, "a"), g(restart.Pending, ""), "6e5814c36f384df59ddc608836ea3b24"},
		{g(restart.Starting, "a"), g(restart.Error, "a"), "3f8882bced9f4ea08352fb5af0365815"},
		{g(restart.Starting, "a"), g(restart.Running, "a"), ""},
		{g(restart.Migrating, "a"), g(restart.Running, "b"), ""},
		{g(restart.Running, "a"), g(restart.Running, "a"), ""},
	} {
		buf.Reset()
		logGuestChange(log, c.was, c.now, 3)
		got := buf.String()
		if c.want == "" && got != "" || c.want != "" && !strings.Contains(got, `"message_id":"`+c.want+`"`) {
			t.Errorf("%s on %q -> %s on %q: logged %q, want id %q", c.was.State, c.was.Host, c.now.State, c.now.Host, got, c.want)
		}
	}
}
