package lab_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
	"github.com/hbfence/hbfence/internal/lab"
	"github.com/hbfence/hbfence/mount"
	"github.com/hbfence/hbfence/mount/validate"
)

// Validation and the pool's repositories with a real daemon (issue 12): the
// daemon mounts its cluster root, an ext4 loop device, in a mount
// namespace of its own. hbfence pool validate finds the one thing wrong
// with it — a loop device is local, never an HA pool's cluster root — and
// pool ha enable is refused naming it. A repository added to the pool is
// mounted by the daemon at mount_base/UUID and shown mounted by
// repository list; one that cannot be mounted is a validation error with
// mount's message; a removed one no guest uses is unmounted.
func TestPoolValidateAndRepositories(t *testing.T) {
	mp := newMountedPool(t)
	repoDev := loopDevice(t, 512, 32<<20)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", repoDev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	m1 := mp.start("m1", "ext4:"+mp.dev, "")
	m1.waitJoined()
	m1.waitMaster()
	hb := func(args ...string) (string, error) {
		out, err := exec.Command(binary, append(args, "--socket", m1.sock)...).CombinedOutput()
		return string(out), err
	}
	validateNow := func() (validate.Result, string) {
		t.Helper()
		out, err := exec.Command(binary, "pool", "validate", "--json", "--socket", m1.sock).Output()
		var r validate.Result
		if jerr := json.Unmarshal(out, &r); jerr != nil {
			t.Fatalf("pool validate --json: %v (%v): %s\nlog:\n%s", jerr, err, out, m1.log.String())
		}
		if (err == nil) != r.OK {
			t.Errorf("pool validate exits %v with ok %v", err, r.OK)
		}
		return r, string(out)
	}
	checks := func(r validate.Result) string {
		var cs []string
		for _, e := range r.Errors {
			cs = append(cs, e.Host+":"+e.Check)
		}
		return strings.Join(cs, ",")
	}

	r, out := validateNow()
	if checks(r) != "m1:"+validate.CheckLocalDevice || len(r.Hosts) != 1 {
		t.Fatalf("a pool on a loop device: want exactly m1:local-device, got %s\n%s", checks(r), out)
	}
	t.Logf("pool validate --json: %s", out)
	if out, err := hb("pool", "ha", "enable"); err == nil || !strings.Contains(out, "local-device") || !strings.Contains(out, "HA not enabled") {
		t.Errorf("pool ha enable on a pool that does not validate: %v\n%s", err, out)
	}

	repo := ondisk.NewUUID().String()
	if out, err := hb("repository", "add", "ext4:"+repoDev, "--uuid", repo); err != nil {
		t.Fatalf("repository add: %v\n%s", err, out)
	}
	repoState := func(uuid string) (string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var l daemon.RepositoryList
		if err := control.Call(ctx, m1.sock, "repository.list", nil, &l); err != nil {
			return "", err.Error()
		}
		for _, r := range l.Repositories {
			if r.UUID == uuid && len(r.Hosts) == 1 {
				return r.Hosts[0].State, r.Hosts[0].Message
			}
		}
		return "", "not listed"
	}
	waitState := func(uuid, want string) {
		t.Helper()
		err := lab.WaitUntil(context.Background(), 40*time.Second, 100*time.Millisecond, "repository "+uuid+" "+want+" on m1", func() (bool, error) {
			s, _ := repoState(uuid)
			return s == want, nil
		})
		if err != nil {
			s, msg := repoState(uuid)
			t.Fatalf("%v: it is %q (%s)\nlog:\n%s", err, s, msg, m1.log.String())
		}
	}
	waitState(repo, string(mount.Mounted))
	if out, err := hb("repository", "list"); err != nil || !strings.Contains(out, repo) || !strings.Contains(out, "mounted") {
		t.Errorf("repository list: %v\n%s", err, out)
	} else {
		t.Logf("repository list:\n%s", out)
	}
	if r, out := validateNow(); checks(r) != "m1:"+validate.CheckLocalDevice {
		t.Errorf("with the repository mounted: want only m1:local-device, got %s\n%s", checks(r), out)
	}

	bad := ondisk.NewUUID().String()
	if out, err := hb("repository", "add", "ext4:/dev/nonexistent-hbfence-repo", "--uuid", bad); err != nil {
		t.Fatalf("repository add: %v\n%s", err, out)
	}
	waitState(bad, string(mount.Error))
	r, out = validateNow()
	if !strings.Contains(checks(r), "m1:"+validate.CheckRepository) || !strings.Contains(out, bad) {
		t.Errorf("a repository that cannot be mounted: want m1:repository naming %s, got %s\n%s", bad, checks(r), out)
	}

	if out, err := hb("repository", "remove", repo); err != nil {
		t.Fatalf("repository remove: %v\n%s", err, out)
	}
	err := lab.WaitUntil(context.Background(), 40*time.Second, 100*time.Millisecond, "the removed repository unmounted", func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var st daemon.Status
		if err := control.Call(ctx, m1.sock, "status", nil, &st); err != nil || st.Mounts == nil {
			return false, nil
		}
		for _, p := range st.Mounts.Points {
			if p.UUID == repo {
				return p.State == mount.Unmounted, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%v\nlog:\n%s", err, m1.log.String())
	}
}
