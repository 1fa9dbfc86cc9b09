package nfsbound

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Mount is one line of /proc/self/mountinfo, as much as this package needs.
type Mount struct {
	Point  string // where it is mounted
	FSType string // nfs, nfs4, ext4, …
	Source string // server:/export, /dev/sdd6, …
	Dev    string // the filesystem's device number, "major:minor"
	// Options are the per-mount and the filesystem's options together
	// (NFS puts soft, timeo and retrans in the latter); a flag has "".
	Options map[string]string
}

// IsNFS reports whether the mount is an NFS mount.
func (m Mount) IsNFS() bool { return m.FSType == "nfs" || m.FSType == "nfs4" }

// ParseMountinfo reads the lines of /proc/self/mountinfo (proc(5)).
func ParseMountinfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || len(f) < sep+4 {
			return nil, fmt.Errorf("mountinfo line %d: not in the format of proc(5): %q", n, sc.Text())
		}
		m := Mount{Point: unescape(f[4]), Dev: f[2], FSType: f[sep+1], Source: unescape(f[sep+2]), Options: map[string]string{}}
		for _, opts := range []string{f[5], f[sep+3]} {
			for _, o := range strings.Split(opts, ",") {
				k, v, _ := strings.Cut(o, "=")
				m.Options[k] = v
			}
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MountOf is the mount that holds path (resolved: links followed): the
// last-listed mount whose point is the longest prefix of it.
func MountOf(mounts []Mount, path string) (Mount, error) {
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		return Mount{}, err
	}
	p, err = filepath.Abs(p)
	if err != nil {
		return Mount{}, err
	}
	best, found := Mount{}, false
	for _, m := range mounts {
		if under(p, m.Point) && (!found || len(m.Point) >= len(best.Point)) {
			best, found = m, true
		}
	}
	if !found {
		return Mount{}, fmt.Errorf("%s: no mount holds it in /proc/self/mountinfo", path)
	}
	return best, nil
}

func under(p, point string) bool {
	if point == "/" {
		return true
	}
	return p == point || strings.HasPrefix(p, point+"/")
}

// RequestLife is how long a request may stay in flight on the NFS mount m
// before the client gives it up; ok is false on a hard mount, where it
// never does.
func RequestLife(m Mount) (life time.Duration, ok bool, err error) {
	_, soft := m.Options["soft"]
	_, softerr := m.Options["softerr"]
	udp := m.Options["proto"] == "udp" || m.Options["proto"] == "udp6"
	timeo, retrans := 600, 2
	if udp {
		timeo, retrans = 11, 3
	}
	if v, set := m.Options["timeo"]; set {
		if timeo, err = strconv.Atoi(v); err != nil || timeo <= 0 {
			return 0, false, fmt.Errorf("mount %s: timeo=%q is not a positive number of tenths of a second", m.Point, v)
		}
	}
	if v, set := m.Options["retrans"]; set {
		if retrans, err = strconv.Atoi(v); err != nil || retrans < 0 {
			return 0, false, fmt.Errorf("mount %s: retrans=%q is not a count", m.Point, v)
		}
	}
	step := time.Duration(timeo) * 100 * time.Millisecond
	for i := 1; i <= retrans+1; i++ {
		if udp {
			life += min(step<<(i-1), 60*time.Second)
		} else {
			life += min(step*time.Duration(i), 600*time.Second)
		}
	}
	return life, soft || softerr, nil
}

// Check refuses the NFS mount m for a heartbeat area whose writes must land
// within lateWrite: a hard mount, or a soft one whose request life exceeds
// three quarters of it. Any other mount passes (see doc.go for block
// devices).
func Check(m Mount, lateWrite time.Duration) error {
	if !m.IsNFS() {
		return nil
	}
	life, soft, err := RequestLife(m)
	if err != nil {
		return err
	}
	limit := lateWrite * 3 / 4
	fix := fmt.Sprintf("remount it with soft,timeo=%d,retrans=%d (a request life of %v)",
		Advice(lateWrite).Timeo, Advice(lateWrite).Retrans, Advice(lateWrite).Life)
	if !soft {
		return fmt.Errorf("NFS mount %s (%s) is hard: a write of a killed daemon may land at any later time, over its successor's records; the heartbeat needs writes to land within %v (the watchdog period) or never: %s",
			m.Point, m.Source, lateWrite, fix)
	}
	if life > limit {
		return fmt.Errorf("NFS mount %s (%s): timeo=%s retrans=%s let a request live %v, more than %v (three quarters of the watchdog period %v, the rest left for the server's queueing): %s",
			m.Point, m.Source, m.Options["timeo"], m.Options["retrans"], life, limit, lateWrite, fix)
	}
	return nil
}

// Options are NFS mount options that bound a request's life over TCP.
type Options struct {
	Timeo   int // tenths of a second
	Retrans int
	Life    time.Duration
}

// Advice is the soft mount's timeo and retrans for lateWrite: two
// retransmissions (three tries), with the longest timeo whose life stays
// within three quarters of it.
func Advice(lateWrite time.Duration) Options {
	const retrans = 2
	limit := lateWrite * 3 / 4
	// life = timeo × (1 + 2 + 3) over TCP.
	timeo := int(limit / (6 * 100 * time.Millisecond))
	timeo = max(timeo, 1)
	return Options{Timeo: timeo, Retrans: retrans, Life: time.Duration(timeo) * 600 * time.Millisecond}
}

// CheckPath finds the mount that holds path in /proc/self/mountinfo and
// checks it (Check).
func CheckPath(path string, lateWrite time.Duration) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("checking the mount of %s: %w", path, err)
	}
	defer f.Close()
	mounts, err := ParseMountinfo(f)
	if err != nil {
		return fmt.Errorf("checking the mount of %s: %w", path, err)
	}
	m, err := MountOf(mounts, path)
	if err != nil {
		return fmt.Errorf("checking the mount of %s: %w", path, err)
	}
	if err := Check(m, lateWrite); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
