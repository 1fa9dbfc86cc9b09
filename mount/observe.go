package mount

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/hbfence/hbfence/internal/nfsbound"
)

// ReadMountinfo reads this process's mount table, /proc/self/mountinfo
// (proc(5); nfsbound.ParseMountinfo undoes the octal escapes such as \040
// for a space).
func ReadMountinfo() ([]nfsbound.Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, err := nfsbound.ParseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("/proc/self/mountinfo: %w", err)
	}
	return ms, nil
}

// maxEntries is how many names of a directory in the link's place a
// refusal shows.
const maxEntries = 5

// Observe reads what planning needs for spec: the mount table (from
// mountinfo), what the link's path is, which mount points exist, and the
// device numbers of the block-device sources.
func Observe(spec Spec, mountinfo func() ([]nfsbound.Mount, error)) (Observed, error) {
	spec = spec.withDefaults()
	ms, err := mountinfo()
	if err != nil {
		return Observed{}, fmt.Errorf("reading the mount table: %w", err)
	}
	obs := Observed{Mounts: ms, Dirs: map[string]bool{}, Devs: map[string]string{}}
	for _, st := range append([]Storage{spec.ClusterRoot}, spec.Repositories...) {
		p := spec.Point(st.UUID)
		// A mounted point is not looked at: a stat on an NFS mount
		// whose server is gone hangs (a hard mount) or waits out the
		// retransmissions (a soft one).
		if _, mounted := topMount(ms, p); !mounted {
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				obs.Dirs[p] = true
			}
		}
		if d := devNumber(st); d != "" {
			obs.Devs[st.Source] = d
		}
	}
	if _, mounted := topMount(ms, spec.Link); mounted {
		// Refused whatever it holds; not read, for the same reason.
		obs.Link = LinkObserved{Kind: LinkDir}
		return obs, nil
	}
	obs.Link, err = observeLink(spec.Link)
	return obs, err
}

// devNumber is a block device source's device number as mountinfo
// writes it ("major:minor"), or "" (NFS, or not a block device).
func devNumber(st Storage) string {
	if st.Kind == NFS {
		return ""
	}
	var s unix.Stat_t
	if err := unix.Stat(st.Source, &s); err != nil || s.Mode&unix.S_IFMT != unix.S_IFBLK {
		return ""
	}
	return fmt.Sprintf("%d:%d", unix.Major(uint64(s.Rdev)), unix.Minor(uint64(s.Rdev)))
}

func observeLink(path string) (LinkObserved, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return LinkObserved{Kind: LinkMissing}, nil
	}
	if err != nil {
		return LinkObserved{}, err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(path)
		return LinkObserved{Kind: LinkSymlink, Target: t}, err
	case fi.IsDir():
		names, err := readNames(path)
		if err != nil {
			return LinkObserved{}, err
		}
		l := LinkObserved{Kind: LinkDir, Count: len(names)}
		l.Entries = names[:min(len(names), maxEntries)]
		return l, nil
	default:
		mode := "file"
		if !fi.Mode().IsRegular() {
			mode = "special file (" + fi.Mode().Type().String() + ")"
		}
		return LinkObserved{Kind: LinkOther, Mode: mode}, nil
	}
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}
