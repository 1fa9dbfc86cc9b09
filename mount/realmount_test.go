package mount

// Real mounts, as root, each "host" a process of its own in a private
// mount namespace (unshare -m --propagation private, the test binary run
// again with HBFENCE_MOUNT_HOST set: TestMain runs hostMain instead of the
// tests). Loop devices formatted ext4 (xfs too when mkfs.xfs is there)
// stand in for the pool's shared devices; every host sees the same ones,
// and has its own mount base and /OVS link in the test's directory.
//
// ext4 and xfs are not cluster file systems: two kernels mounting one
// read-write destroy it. These hosts share one kernel (a second mount of a
// device would share the first one's superblock, and prove nothing about
// what went through the device), so they take turns: a host's namespace
// ends with its process, which unmounts everything it mounted, before the
// next host mounts the devices. What host A wrote is then read by host B
// from the device itself. A host that dies mid-test leaves no mount behind
// for the same reason.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	if job := os.Getenv("HBFENCE_MOUNT_HOST"); job != "" {
		os.Exit(hostMain(job))
	}
	os.Exit(m.Run())
}

// hostJob is what one host does in its namespace.
type hostJob struct {
	Spec Spec
	// Write writes these files (path: content) once mounted.
	Write map[string]string
	// Read reads these files.
	Read []string
	// Then, after the first Ensure: the repository list becomes Then,
	// and Ensure runs once with InUse naming the paths in use, and once
	// with none.
	Then  *[]Storage
	InUse []string
	// Before are commands run before the first Ensure.
	Before [][]string
}

type hostResult struct {
	First, InUse, Free Status
	FirstErr           string
	Read               map[string]string
	// Mounts are the points under the base that the mount table shows
	// after each Ensure.
	MountsFirst, MountsInUse, MountsFree []string
	Failure                              string
}

func hostMain(job string) int {
	var j hostJob
	var r hostResult
	defer func() { json.NewEncoder(os.Stdout).Encode(r) }()
	if err := json.Unmarshal([]byte(job), &j); err != nil {
		r.Failure = err.Error()
		return 0
	}
	inUse := map[string]bool{}
	m, err := New(j.Spec, Options{Log: zerolog.New(os.Stderr).With().Str("host", filepath.Base(filepath.Dir(j.Spec.Link))).Logger(),
		InUse: func(p string) bool { return inUse[p] }, Attempts: 2, Backoff: 10 * time.Millisecond})
	if err != nil {
		r.Failure = err.Error()
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	points := func() []string {
		ms, err := ReadMountinfo()
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		var out []string
		for _, x := range ms {
			if filepath.Dir(x.Point) == j.Spec.Base {
				out = append(out, filepath.Base(x.Point))
			}
		}
		return out
	}
	for _, c := range j.Before {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			r.Failure = fmt.Sprintf("%q: %v: %s", c, err, out)
			return 0
		}
	}
	r.First, err = m.Ensure(ctx)
	if err != nil {
		r.FirstErr = err.Error()
	}
	r.MountsFirst = points()
	for p, c := range j.Write {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.Failure = err.Error()
			return 0
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			r.Failure = err.Error()
			return 0
		}
	}
	r.Read = map[string]string{}
	for _, p := range j.Read {
		b, err := os.ReadFile(p)
		if err != nil {
			r.Read[p] = "error: " + err.Error()
		} else {
			r.Read[p] = string(b)
		}
	}
	if j.Then != nil {
		if err := m.SetRepositories(*j.Then); err != nil {
			r.Failure = err.Error()
			return 0
		}
		for _, p := range j.InUse {
			inUse[p] = true
		}
		r.InUse, _ = m.Ensure(ctx)
		r.MountsInUse = points()
		clear(inUse)
		r.Free, _ = m.Ensure(ctx)
		r.MountsFree = points()
	}
	return 0
}

// realLab has loop devices for the hosts to mount.
type realLab struct {
	dir  string
	devs []string
}

func newRealLab(t *testing.T, kinds []Kind) *realLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real mounts need root (mount, losetup, a mount namespace); run the tests as root")
	}
	need := []string{"unshare", "losetup", "mount", "umount"}
	for _, k := range kinds {
		need = append(need, "mkfs."+string(k))
	}
	for _, c := range need {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is not installed (util-linux for unshare, losetup, mount; e2fsprogs for mkfs.ext4; xfsprogs for mkfs.xfs)", c)
		}
	}
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "true").CombinedOutput(); err != nil {
		t.Skipf("no private mount namespace here (unshare -m: %v: %s)", err, out)
	}
	l := &realLab{dir: t.TempDir()}
	for i, k := range kinds {
		img := filepath.Join(l.dir, fmt.Sprintf("disk%d.img", i))
		size := int64(64 << 20)
		if k == XFS {
			size = 320 << 20 // mkfs.xfs refuses less than 300 MB; the file is sparse
		}
		if err := os.WriteFile(img, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(img, size); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
		if err != nil {
			t.Skipf("no loop device (losetup -f --show: %v: %s)", err, out)
		}
		dev := strings.TrimSpace(string(out))
		t.Cleanup(func() {
			if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
				t.Errorf("losetup -d %s: %v: %s", dev, err, out)
			}
		})
		mkfs := exec.Command("mkfs."+string(k), "-q", dev)
		if k == Ext4 {
			mkfs = exec.Command("mkfs.ext4", "-q", "-F", dev)
		}
		if out, err := mkfs.CombinedOutput(); err != nil {
			t.Fatalf("mkfs.%s %s: %v: %s", k, dev, err, out)
		}
		l.devs = append(l.devs, dev)
	}
	return l
}

// host runs job as a host named name in a namespace of its own.
func (l *realLab) host(t *testing.T, name string, j hostJob) hostResult {
	t.Helper()
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "-m", "--propagation", "private", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HBFENCE_MOUNT_HOST="+string(b))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("host %s: %v\n%s", name, err, stderr.String())
	}
	t.Logf("host %s log:\n%s", name, stderr.String())
	var r hostResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("host %s: its result %q: %v", name, out, err)
	}
	if r.Failure != "" {
		t.Fatalf("host %s: %s", name, r.Failure)
	}
	// Its namespace is gone, and with it its mounts: none is left in
	// this one (the namespaces are private).
	ms, err := ReadMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if strings.HasPrefix(m.Point, l.dir) {
			t.Fatalf("host %s's mount %s %s shows in the test's namespace", name, m.Source, m.Point)
		}
	}
	// And the kernel holds no file system on the devices any more
	// (ext4 lists each live one in /proc/fs/ext4): the next host's mount
	// reads the device afresh, as another machine's would.
	for _, dev := range l.devs {
		if _, err := os.Stat(filepath.Join("/proc/fs/ext4", filepath.Base(dev))); err == nil {
			t.Fatalf("after host %s: the kernel still has ext4 on %s", name, dev)
		}
	}
	return r
}

func (l *realLab) spec(hostName string, st ...Storage) Spec {
	base := filepath.Join(l.dir, hostName)
	return Spec{ClusterRoot: st[0], Repositories: st[1:], Base: filepath.Join(base, "var/ovs/mount"), Link: filepath.Join(base, "OVS")}
}

func TestRealMountsSeveralHosts(t *testing.T) {
	repoKind := Ext4
	if _, err := exec.LookPath("mkfs.xfs"); err == nil {
		repoKind = XFS
	} else {
		t.Logf("no mkfs.xfs (xfsprogs): the second repository is ext4 too")
	}
	l := newRealLab(t, []Kind{Ext4, Ext4, repoKind})
	root := Storage{Kind: Ext4, Source: l.devs[0], UUID: rootUUID}
	r1 := Storage{Kind: Ext4, Source: l.devs[1], UUID: repoUUID}
	r2 := Storage{Kind: repoKind, Source: l.devs[2], UUID: repo2}

	// Host A mounts everything and writes a guest record through /OVS and
	// a disk image into a repository.
	a := l.spec("hostA", root, r1, r2)
	ra := l.host(t, "A", hostJob{Spec: a, Write: map[string]string{
		filepath.Join(a.Link, ".hbfence", "guest-web01"): "written by host A",
		filepath.Join(a.Base, repo2, "disk.img"):         "disk of web01",
	}})
	if ra.FirstErr != "" || statesOf(ra.First) != "mounted mounted mounted / linked" {
		t.Fatalf("host A: %s %s\n%+v", statesOf(ra.First), ra.FirstErr, ra.First)
	}
	if got := strings.Join(ra.MountsFirst, " "); got != rootUUID+" "+repoUUID+" "+repo2 {
		t.Errorf("host A's mount table under its base: %s", got)
	}
	if got, err := os.Readlink(a.Link); err != nil || got != filepath.Join(a.Base, rootUUID) {
		t.Errorf("host A's link: %q %v", got, err)
	}

	// Host B, after A: sees what A wrote, on the devices; then the pool
	// drops the second repository, which a guest of B uses at first.
	b := l.spec("hostB", root, r1, r2)
	only1 := []Storage{r1}
	rb := l.host(t, "B", hostJob{Spec: b,
		Read: []string{filepath.Join(b.Link, ".hbfence", "guest-web01"), filepath.Join(b.Base, repo2, "disk.img")},
		Then: &only1, InUse: []string{filepath.Join(b.Base, repo2)}})
	if rb.FirstErr != "" || statesOf(rb.First) != "mounted mounted mounted / linked" {
		t.Fatalf("host B: %s %s", statesOf(rb.First), rb.FirstErr)
	}
	for p, want := range map[string]string{
		filepath.Join(b.Link, ".hbfence", "guest-web01"): "written by host A",
		filepath.Join(b.Base, repo2, "disk.img"):         "disk of web01",
	} {
		if rb.Read[p] != want {
			t.Errorf("host B reads %s: %q, want %q (written by host A)", p, rb.Read[p], want)
		}
	}
	if statesOf(rb.InUse) != "mounted mounted in-use / linked" || !strings.Contains(strings.Join(rb.MountsInUse, " "), repo2) {
		t.Errorf("removed while in use: %s, mounted %v; want it kept", statesOf(rb.InUse), rb.MountsInUse)
	}
	if statesOf(rb.Free) != "mounted mounted unmounted / linked" || strings.Join(rb.MountsFree, " ") != rootUUID+" "+repoUUID {
		t.Errorf("removed, no longer in use: %s, mounted %v; want it unmounted", statesOf(rb.Free), rb.MountsFree)
	}

	// Host C has a real /OVS directory with content: refused, and left
	// as it is; its storage is mounted all the same.
	c := l.spec("hostC", root, r1)
	if err := os.MkdirAll(filepath.Join(c.Link, "old-pool"), 0o755); err != nil {
		t.Fatal(err)
	}
	rc := l.host(t, "C", hostJob{Spec: c})
	if statesOf(rc.First) != "mounted mounted / refused" || !strings.Contains(rc.FirstErr, c.Link+" is a directory holding 1 entries (old-pool)") {
		t.Errorf("host C: %s %q", statesOf(rc.First), rc.FirstErr)
	}
	if fi, err := os.Lstat(c.Link); err != nil || !fi.IsDir() {
		t.Errorf("host C's /OVS directory was touched: %v", err)
	}

	// Host D finds a tmpfs mounted by hand on a repository's point:
	// refused, and left mounted; the rest is mounted.
	d := l.spec("hostD", root, r1)
	p1 := filepath.Join(d.Base, repoUUID)
	rd := l.host(t, "D", hostJob{Spec: d, Before: [][]string{{"mkdir", "-p", p1}, {"mount", "-t", "tmpfs", "tmpfs", p1}}})
	if statesOf(rd.First) != "mounted refused / linked" || !strings.Contains(rd.First.Points[1].Message, p1+" has tmpfs tmpfs mounted on it, not ext4:"+l.devs[1]) {
		t.Errorf("host D: %s %+v", statesOf(rd.First), rd.First.Points[1])
	}
	if rd.FirstErr != "" {
		t.Errorf("host D: a refused repository keeps the host out: %s", rd.FirstErr)
	}
}

func statesOf(st Status) string {
	var s []string
	for _, p := range st.Points {
		s = append(s, string(p.State))
	}
	return strings.Join(append(s, "/", string(st.Link.State)), " ")
}
