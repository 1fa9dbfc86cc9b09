package mount

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hbfence/hbfence/internal/nfsbound"
)

// Recorder is a Runner that records every command and keeps a mount
// table of its own, for tests (this machine may have no NFS client and no
// OCFS2 module): a mount it runs appears in Mountinfo as the kernel would
// show it, an umount removes it. Failures queued with Fail are returned
// instead, in order.
type Recorder struct {
	mu     sync.Mutex
	calls  [][]string
	mounts []nfsbound.Mount
	fail   map[string][]error
}

// NewRecorder returns a Recorder whose table starts with mounts.
func NewRecorder(mounts ...nfsbound.Mount) *Recorder {
	return &Recorder{mounts: slices.Clone(mounts), fail: map[string][]error{}}
}

// Fail queues errors for the next commands whose last argument (the mount
// point) is point.
func (r *Recorder) Fail(point string, errs ...error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail[point] = append(r.fail[point], errs...)
}

// Calls are the commands run so far.
func (r *Recorder) Calls() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]string, len(r.calls))
	for i, c := range r.calls {
		out[i] = slices.Clone(c)
	}
	return out
}

// Mountinfo is the recorder's mount table (Options.Mountinfo).
func (r *Recorder) Mountinfo() ([]nfsbound.Mount, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.mounts), nil
}

// Run records argv and applies it to the table.
func (r *Recorder) Run(_ context.Context, argv []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, slices.Clone(argv))
	point := argv[len(argv)-1]
	if q := r.fail[point]; len(q) > 0 {
		r.fail[point] = q[1:]
		return q[0]
	}
	switch argv[0] {
	case "mount":
		m := nfsbound.Mount{Point: point, Source: argv[len(argv)-2], Options: map[string]string{}}
		for i := 1; i < len(argv)-2; i++ {
			switch argv[i] {
			case "-t":
				m.FSType = argv[i+1]
				i++
			case "-o":
				for _, o := range strings.Split(argv[i+1], ",") {
					k, v, _ := strings.Cut(o, "=")
					m.Options[k] = v
				}
				i++
			}
		}
		if m.FSType == "nfs" && strings.HasPrefix(m.Options["vers"], "4") {
			m.FSType = "nfs4"
		}
		r.mounts = append(r.mounts, m)
	case "umount":
		for i := len(r.mounts) - 1; i >= 0; i-- {
			if r.mounts[i].Point == point {
				r.mounts = slices.Delete(r.mounts, i, i+1)
				return nil
			}
		}
		return fmt.Errorf("umount: %s: not mounted", point)
	default:
		return fmt.Errorf("%s: not a mount command", argv[0])
	}
	return nil
}
