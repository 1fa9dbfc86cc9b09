package nfsbound

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Lines as the kernel writes them (proc(5)); the NFS options are in the
// filesystem's options, after the separator.
const mountinfo = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:35 / /var/ovs/mount/hard rw,relatime shared:20 - nfs4 filer:/ovs rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.2
41 22 0:36 / /var/ovs/mount/soft rw,relatime shared:21 - nfs filer:/pool rw,vers=3,soft,proto=tcp,timeo=12,retrans=2,sec=sys
42 22 0:37 / /var/ovs/mount/slow rw,relatime shared:22 - nfs filer:/slow rw,vers=3,soft,proto=tcp,timeo=600,retrans=2
43 22 0:38 / /var/ovs/mount/udp rw,relatime shared:23 - nfs filer:/udp rw,vers=3,soft,proto=udp,timeo=6,retrans=3
44 22 0:39 / /mnt/with\040space rw - nfs filer:/sp rw,soft,timeo=10,retrans=1
`

func mounts(t *testing.T) map[string]Mount {
	t.Helper()
	ms, err := ParseMountinfo(strings.NewReader(mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Mount{}
	for _, m := range ms {
		out[m.Point] = m
	}
	return out
}

func TestRequestLife(t *testing.T) {
	ms := mounts(t)
	for _, c := range []struct {
		point string
		life  time.Duration
		soft  bool
	}{
		{"/var/ovs/mount/hard", 6 * 60 * time.Second, false},   // 60 + 120 + 180 s
		{"/var/ovs/mount/soft", 7200 * time.Millisecond, true}, // 1.2 + 2.4 + 3.6 s
		{"/var/ovs/mount/slow", 6 * 60 * time.Second, true},
		{"/var/ovs/mount/udp", 9 * time.Second, true}, // 0.6 × (1+2+4+8)
		{"/mnt/with space", 3 * time.Second, true},    // 1 + 2 s
	} {
		life, soft, err := RequestLife(ms[c.point])
		if err != nil || life != c.life || soft != c.soft {
			t.Errorf("%s: life %v soft %v err %v, want %v %v", c.point, life, soft, err, c.life, c.soft)
		}
	}
	if _, _, err := RequestLife(Mount{Point: "/x", FSType: "nfs", Options: map[string]string{"timeo": "0"}}); err == nil || !strings.Contains(err.Error(), "timeo") {
		t.Errorf("timeo=0: %v, want an error naming timeo", err)
	}
}

func TestCheck(t *testing.T) {
	ms := mounts(t)
	lw := 10 * time.Second // the default profile's watchdog
	if err := Check(ms["/var/ovs/mount/soft"], lw); err != nil {
		t.Errorf("soft,timeo=12,retrans=2 for a 10 s watchdog: %v", err)
	}
	for point, want := range map[string]string{
		"/var/ovs/mount/hard": "is hard",
		"/var/ovs/mount/slow": "let a request live 6m0s",
		"/var/ovs/mount/udp":  "let a request live 9s",
	} {
		err := Check(ms[point], lw)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), point) ||
			!strings.Contains(err.Error(), "soft,timeo=12,retrans=2") {
			t.Errorf("%s: %v, want an error naming the mount, %q and the options that fix it", point, err, want)
		}
	}
	if err := Check(ms["/"], lw); err != nil {
		t.Errorf("a local ext4 mount: %v", err)
	}
}

func TestAdviceHolds(t *testing.T) {
	for _, lw := range []time.Duration{2 * time.Second, 10 * time.Second, 30 * time.Second} {
		a := Advice(lw)
		m := Mount{Point: "/p", FSType: "nfs", Options: map[string]string{"soft": "",
			"timeo": itoa(a.Timeo), "retrans": itoa(a.Retrans)}}
		life, _, err := RequestLife(m)
		if err != nil || life != a.Life {
			t.Errorf("watchdog %v: advice %+v, computed life %v (%v)", lw, a, life, err)
		}
		if err := Check(m, lw); err != nil {
			t.Errorf("watchdog %v: the advice is refused: %v", lw, err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestMountOf(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "pool")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "OVS")
	if err := os.Symlink(sub, link); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(link, ".server_pool_hb")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(sub)
	ms := []Mount{{Point: "/", FSType: "ext4"}, {Point: real, FSType: "nfs"}, {Point: real + "x", FSType: "tmpfs"}}
	m, err := MountOf(ms, file)
	if err != nil || m.Point != real {
		t.Fatalf("mount of %s through the link: %+v %v, want %s", file, m, err, real)
	}
	if _, err := MountOf(ms, filepath.Join(dir, "missing")); err == nil {
		t.Errorf("a missing path: no error")
	}
}

// The machine's own mount table parses, and the test's directory is on
// one of its mounts.
func TestCheckPathOnThisMachine(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	if err := CheckPath(t.TempDir(), 10*time.Second); err != nil {
		t.Errorf("CheckPath on a local directory: %v", err)
	}
}
