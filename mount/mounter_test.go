package mount

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hbfence/hbfence/internal/nfsbound"
)

// lab is a Mounter on a recorder, with its base and link in a temporary
// directory (real directories, a real link), its sleeps recorded.
type lab struct {
	t      *testing.T
	dir    string
	spec   Spec
	rec    *Recorder
	m      *Mounter
	sleeps []time.Duration
	log    bytes.Buffer
	inUse  map[string]bool
}

func newLab(t *testing.T, spec Spec, mod func(*Options)) *lab {
	t.Helper()
	l := &lab{t: t, dir: t.TempDir(), rec: NewRecorder(), inUse: map[string]bool{}}
	spec.Base, spec.Link = filepath.Join(l.dir, "var/ovs/mount"), filepath.Join(l.dir, "OVS")
	l.spec = spec
	opts := Options{Runner: l.rec, Mountinfo: l.rec.Mountinfo, Log: zerolog.New(&l.log),
		InUse: func(p string) bool { return l.inUse[p] },
		Sleep: func(ctx context.Context, d time.Duration) error { l.sleeps = append(l.sleeps, d); return ctx.Err() }}
	if mod != nil {
		mod(&opts)
	}
	m, err := New(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	l.m = m
	return l
}

func (l *lab) point(uuid string) string { return filepath.Join(l.spec.Base, uuid) }

func (l *lab) states(st Status) string {
	var s []string
	for _, p := range st.Points {
		s = append(s, string(p.State))
	}
	return strings.Join(append(s, "/", string(st.Link.State)), " ")
}

func mixedSpec() Spec {
	return Spec{
		ClusterRoot: Storage{Kind: NFS, Source: "filer:/pool", UUID: rootUUID},
		Repositories: []Storage{
			{Kind: OCFS2, Source: "/dev/mapper/repo1", UUID: repoUUID, OCFS2Heartbeat: "global"},
			{Kind: NFS, Source: "filer:/repo2", UUID: repo2, NFSVersion: "4.2"},
		},
	}
}

func TestEnsureFreshHost(t *testing.T) {
	l := newLab(t, mixedSpec(), nil)
	st, err := l.m.Ensure(t.Context())
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	want := [][]string{
		{"mount", "-t", "nfs", "-o", rootOpts, "filer:/pool", l.point(rootUUID)},
		{"mount", "-t", "ocfs2", "-o", "_netdev,heartbeat=global", "/dev/mapper/repo1", l.point(repoUUID)},
		{"mount", "-t", "nfs", "-o", "vers=4.2,proto=tcp,hard,retry=0", "filer:/repo2", l.point(repo2)},
	}
	if got := l.rec.Calls(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("calls:\n%q\nwant\n%q", got, want)
	}
	if s := l.states(st); s != "mounted mounted mounted / linked" {
		t.Errorf("status %s", s)
	}
	if got, err := os.Readlink(l.spec.Link); err != nil || got != l.point(rootUUID) {
		t.Errorf("link: %q %v, want %s", got, err, l.point(rootUUID))
	}
	for _, u := range []string{rootUUID, repoUUID, repo2} {
		if fi, err := os.Stat(l.point(u)); err != nil || !fi.IsDir() {
			t.Errorf("mount point %s: %v", u, err)
		}
	}
	if _, err := os.Lstat(l.spec.Link + ".hbfence-new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary link is left: %v", err)
	}
	if st.Points[0].Attempts != 1 || st.Points[0].Changed.IsZero() || l.m.Status().Points[2].State != Mounted {
		t.Errorf("status details: %+v", st.Points)
	}
	for _, w := range []string{`"message":"mounted"`, `"point":"` + l.point(repoUUID) + `"`, `"argv":["mount","-t","ocfs2"`, `"message":"linked the cluster root"`} {
		if !strings.Contains(l.log.String(), w) {
			t.Errorf("the log has no %s:\n%s", w, l.log.String())
		}
	}

	// Again (the agent restarts): nothing to do.
	if _, err := l.m.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := len(l.rec.Calls()); n != 3 {
		t.Errorf("a second Ensure ran %d more commands", n-3)
	}
}

func TestEnsureRetriesWithBackoff(t *testing.T) {
	l := newLab(t, mixedSpec(), nil)
	l.rec.Fail(l.point(rootUUID), errors.New("mount.nfs: Connection timed out"), errors.New("mount.nfs: Connection refused"))
	st, err := l.m.Ensure(t.Context())
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if !slices.Equal(l.sleeps, []time.Duration{2 * time.Second, 4 * time.Second}) {
		t.Errorf("sleeps %v, want [2s 4s]", l.sleeps)
	}
	if st.Points[0].State != Mounted || st.Points[0].Attempts != 3 {
		t.Errorf("cluster root %+v, want mounted at the third attempt", st.Points[0])
	}
	if got := st.Lines()[0]; got != "cluster-root nfs:filer:/pool at "+l.point(rootUUID)+": mounted (after 3 tries)" {
		t.Errorf("status line %q", got)
	}
	if got := st.Lines()[3]; got != "link "+l.spec.Link+" -> "+l.point(rootUUID)+": linked" {
		t.Errorf("link line %q", got)
	}
	if !strings.Contains(l.log.String(), `"error":"mount.nfs: Connection timed out","point":"`+l.point(rootUUID)) ||
		!strings.Contains(l.log.String(), `"retry_in":4000`) {
		t.Errorf("the failures are not logged with their retry:\n%s", l.log.String())
	}
}

func TestEnsureGivesUpAndTriesAgainLater(t *testing.T) {
	l := newLab(t, mixedSpec(), func(o *Options) { o.Attempts, o.Backoff, o.MaxBackoff = 6, 10*time.Second, 30*time.Second })
	for range 6 {
		l.rec.Fail(l.point(rootUUID), errors.New("mount.nfs: access denied by server while mounting filer:/pool"))
	}
	l.rec.Fail(l.point(repoUUID), errors.New("mount.ocfs2: Cluster stack is not running"))
	st, err := l.m.Ensure(t.Context())
	if err == nil || !strings.Contains(err.Error(), "the cluster root nfs:filer:/pool is error at "+l.point(rootUUID)+": mount.nfs: access denied") {
		t.Fatalf("Ensure: %v, want the cluster root's failure", err)
	}
	if !slices.Equal(l.sleeps, []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second, 10 * time.Second}) {
		t.Errorf("sleeps %v: want doubling up to the maximum, then the repository's own first wait", l.sleeps)
	}
	if s := l.states(st); s != "error mounted mounted / missing" {
		t.Errorf("status %s: a failed cluster root is not linked; the OCFS2 repository mounted at its second try", s)
	}
	if st.Points[0].Attempts != 6 || st.Points[1].Attempts != 2 {
		t.Errorf("attempts %d %d", st.Points[0].Attempts, st.Points[1].Attempts)
	}
	if _, err := os.Lstat(l.spec.Link); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link was made over a cluster root that is not mounted: %v", err)
	}
	if !strings.Contains(l.log.String(), `"level":"error"`) || !strings.Contains(l.log.String(), "tried again at the next ensure") {
		t.Errorf("the last failure is not logged as an error:\n%s", l.log.String())
	}
	// Status keeps the failure in view until the next Ensure succeeds.
	if p := l.m.Status().Points[0]; p.State != Error || !strings.Contains(p.Message, "access denied") {
		t.Errorf("Status: %+v", p)
	}
	st, err = l.m.Ensure(t.Context())
	if err != nil || l.states(st) != "mounted mounted mounted / linked" {
		t.Errorf("the next Ensure: %s %v", l.states(st), err)
	}
}

func TestEnsureStopsWhenCancelled(t *testing.T) {
	l := newLab(t, mixedSpec(), nil)
	l.rec.Fail(l.point(rootUUID), errors.New("mount.nfs: Connection timed out"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	st, err := l.m.Ensure(ctx)
	if err == nil || len(l.sleeps) != 1 || !strings.Contains(st.Points[0].Message, "context canceled") {
		t.Errorf("a cancelled Ensure: %v, sleeps %v, %+v", err, l.sleeps, st.Points[0])
	}
}

func TestEnsureRemovedRepository(t *testing.T) {
	l := newLab(t, mixedSpec(), nil)
	if _, err := l.m.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	n := len(l.rec.Calls())
	spec := mixedSpec()
	if err := l.m.SetRepositories(spec.Repositories[:1]); err != nil {
		t.Fatal(err)
	}
	// A guest of this host still uses it: kept.
	l.inUse[l.point(repo2)] = true
	st, err := l.m.Ensure(t.Context())
	if err != nil || l.states(st) != "mounted mounted in-use / linked" || len(l.rec.Calls()) != n {
		t.Fatalf("in use: %s %v, calls %q", l.states(st), err, l.rec.Calls()[n:])
	}
	// No longer: unmounted.
	l.inUse[l.point(repo2)] = false
	st, err = l.m.Ensure(t.Context())
	if err != nil || l.states(st) != "mounted mounted unmounted / linked" {
		t.Fatalf("not in use: %s %v", l.states(st), err)
	}
	if got := l.rec.Calls()[n:]; len(got) != 1 || !slices.Equal(got[0], []string{"umount", l.point(repo2)}) {
		t.Errorf("calls %q, want one umount", got)
	}
	if !strings.Contains(l.log.String(), "unmounted a removed repository") {
		t.Errorf("the unmount is not logged:\n%s", l.log.String())
	}
	// A busy unmount is shown, and tried again at the next Ensure.
	if err := l.m.SetRepositories(nil); err != nil {
		t.Fatal(err)
	}
	l.rec.Fail(l.point(repoUUID), errors.New("umount: target is busy"))
	st, _ = l.m.Ensure(t.Context())
	if p := st.Points[1]; p.State != Error || !strings.Contains(p.Message, "target is busy") {
		t.Errorf("busy: %+v", p)
	}
	st, _ = l.m.Ensure(t.Context())
	if l.states(st) != "mounted unmounted / linked" {
		t.Errorf("after the busy unmount: %s", l.states(st))
	}
	if err := l.m.SetRepositories([]Storage{{Kind: NFS, Source: "filer:/pool", UUID: repo2}}); err == nil {
		t.Errorf("a repository on the cluster root's source is accepted")
	}
}

func TestEnsureRefusesADirectoryWithContent(t *testing.T) {
	l := newLab(t, mixedSpec(), nil)
	if err := os.MkdirAll(filepath.Join(l.spec.Link, ".hbfence"), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := l.m.Ensure(t.Context())
	if err == nil || !strings.Contains(err.Error(), "is a directory holding 1 entries (.hbfence)") {
		t.Fatalf("Ensure: %v", err)
	}
	if l.states(st) != "mounted mounted mounted / refused" {
		t.Errorf("status %s", l.states(st))
	}
	if got := st.Lines()[3]; !strings.HasPrefix(got, "link "+l.spec.Link+" -> "+l.point(rootUUID)+": refused: "+l.spec.Link+" is a directory holding 1 entries") {
		t.Errorf("link line %q", got)
	}
	if fi, err := os.Lstat(l.spec.Link); err != nil || !fi.IsDir() {
		t.Errorf("the directory was touched: %v", err)
	}
	if !strings.Contains(l.log.String(), "link refused") {
		t.Errorf("the refusal is not logged:\n%s", l.log.String())
	}
	// Emptied, it is replaced by the link.
	if err := os.Remove(filepath.Join(l.spec.Link, ".hbfence")); err != nil {
		t.Fatal(err)
	}
	if st, err = l.m.Ensure(t.Context()); err != nil || st.Link.State != Linked {
		t.Fatalf("an empty directory: %v %+v", err, st.Link)
	}
}

// A link elsewhere is replaced only by hand; the new link replaces a
// stale temporary one.
func TestEnsureLink(t *testing.T) {
	l := newLab(t, mixedSpec(), nil)
	if err := os.Symlink("/elsewhere", l.spec.Link); err != nil {
		t.Fatal(err)
	}
	if _, err := l.m.Ensure(t.Context()); err == nil || !strings.Contains(err.Error(), "is a link to /elsewhere") {
		t.Fatalf("a link elsewhere: %v", err)
	}
	if got, _ := os.Readlink(l.spec.Link); got != "/elsewhere" {
		t.Errorf("the link was changed to %s", got)
	}
	os.Remove(l.spec.Link)
	if err := os.Symlink("/stale", l.spec.Link+".hbfence-new"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.m.Ensure(t.Context()); err != nil {
		t.Fatalf("with a stale temporary link: %v", err)
	}
}

// A base under a symbolic link is used by its resolved path, which is
// what mountinfo shows: the second pass finds the mounts.
func TestEnsureBaseUnderALink(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real", filepath.Join(dir, "var")); err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder()
	m, err := New(Spec{ClusterRoot: Storage{Kind: NFS, Source: "filer:/pool", UUID: rootUUID},
		Base: filepath.Join(dir, "var/ovs/mount"), Link: filepath.Join(dir, "OVS")},
		Options{Runner: rec, Mountinfo: rec.Mountinfo})
	if err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(dir, "real/ovs/mount", rootUUID)
	for range 2 {
		if st, err := m.Ensure(t.Context()); err != nil || st.Points[0].Point != real {
			t.Fatalf("Ensure: %v %+v", err, st.Points)
		}
	}
	if calls := rec.Calls(); len(calls) != 1 || calls[0][len(calls[0])-1] != real {
		t.Errorf("calls %q, want one mount at %s", calls, real)
	}
	if got, _ := os.Readlink(filepath.Join(dir, "OVS")); got != real {
		t.Errorf("link to %s", got)
	}
}

// mount(8) that exits 0 without mounting (a stale mtab helper, a wrong
// fstab entry) is an error, found in the mount table.
func TestEnsureVerifiesTheMountTable(t *testing.T) {
	l := newLab(t, Spec{ClusterRoot: Storage{Kind: NFS, Source: "filer:/pool", UUID: rootUUID}}, func(o *Options) {
		o.Attempts = 1
		o.Mountinfo = func() ([]nfsbound.Mount, error) { return nil, nil }
	})
	st, err := l.m.Ensure(t.Context())
	if err == nil || !strings.Contains(st.Points[0].Message, "mount(8) succeeded, and /proc/self/mountinfo shows nothing at "+l.point(rootUUID)) {
		t.Errorf("%v %+v", err, st.Points[0])
	}
}

// A recorded mountinfo, with the octal escapes the kernel writes for a
// space and a backslash in a path.
const recordedMountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
25 22 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
61 22 0:52 / /srv/lab\040pool/mount/` + rootUUID + ` rw,relatime shared:30 - nfs filer:/pool rw,vers=3,rsize=1048576,wsize=1048576,namlen=255,acregmin=0,acregmax=0,acdirmin=0,acdirmax=0,soft,noac,proto=tcp,timeo=12,retrans=2,sec=sys,mountaddr=10.0.0.5,mountvers=3,mountport=20048,mountproto=tcp,lookupcache=none,local_lock=none,addr=10.0.0.5
62 22 253:3 / /srv/lab\040pool/mount/` + repoUUID + ` rw,relatime shared:31 - ocfs2 /dev/dm-3 rw,_netdev,heartbeat=global,nointr,data=ordered,errors=remount-ro,atime_quantum=60,cluster_stack=o2cb,coherency=full,user_xattr,acl
63 22 0:53 / /srv/lab\040pool/mount/` + repo2 + ` rw,relatime shared:32 - nfs4 filer:/old\134dir rw,vers=4.2,hard,proto=tcp,timeo=600,retrans=2
`

func TestRecordedMountinfo(t *testing.T) {
	ms, err := nfsbound.ParseMountinfo(strings.NewReader(recordedMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{
		ClusterRoot:  Storage{Kind: NFS, Source: "filer:/pool", UUID: rootUUID},
		Repositories: []Storage{{Kind: OCFS2, Source: "/dev/mapper/repo1", UUID: repoUUID}},
		Base:         "/srv/lab pool/mount", Link: "/srv/lab pool/OVS",
	}
	obs := Observed{Mounts: ms, Devs: map[string]string{"/dev/mapper/repo1": "253:3"},
		Link: LinkObserved{Kind: LinkSymlink, Target: "/srv/lab pool/mount/" + rootUUID}}
	p := PlanFor(spec, obs, func(string) bool { return false })
	var got []string
	for _, ps := range p.Points {
		got = append(got, ps.Point+" "+string(ps.State)+" "+ps.Storage)
	}
	want := []string{
		"/srv/lab pool/mount/" + rootUUID + " mounted nfs:filer:/pool",
		"/srv/lab pool/mount/" + repoUUID + " mounted ocfs2:/dev/mapper/repo1",
		"/srv/lab pool/mount/" + repo2 + " mounted nfs:filer:/old\\dir",
	}
	if !slices.Equal(got, want) || p.Link.State != Linked {
		t.Errorf("points\n%q\nwant\n%q; link %+v", got, want, p.Link)
	}
	if a := actions(p); a != "unmount umount /srv/lab pool/mount/"+repo2+"\n" {
		t.Errorf("actions %q", a)
	}
}

func TestExecRunner(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skipf("no sh: %v", err)
	}
	err = ExecRunner{}.Run(t.Context(), []string{sh, "-c", "echo 'mount.nfs: access denied' >&2; exit 32"})
	if err == nil || !strings.Contains(err.Error(), "exit status 32: mount.nfs: access denied") {
		t.Errorf("a failing command: %v, want its status and stderr", err)
	}
	if err := (ExecRunner{}).Run(t.Context(), []string{sh, "-c", "exit 0"}); err != nil {
		t.Errorf("a command that succeeds: %v", err)
	}
	start := time.Now()
	err = ExecRunner{Timeout: 200 * time.Millisecond}.Run(t.Context(), []string{sh, "-c", "exec sleep 30"})
	if err == nil || !strings.Contains(err.Error(), "killed after 200ms") || time.Since(start) > 10*time.Second {
		t.Errorf("a command that hangs: %v after %v", err, time.Since(start))
	}
}

func TestUsedBy(t *testing.T) {
	used := UsedBy(func() []string {
		return []string{"/var/ovs/mount/" + repoUUID + "/VirtualMachines/web01/vm.cfg", "/var/ovs/mount/" + repo2 + "x/disk.img"}
	})
	if !used("/var/ovs/mount/"+repoUUID) || used("/var/ovs/mount/"+repo2) || used("/var/ovs/mount/"+repoUUID+"/Virtual") {
		t.Errorf("UsedBy: a path is in use below its point only")
	}
}
