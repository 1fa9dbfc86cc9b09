package watchdog

import (
	"sync"
	"time"
)

// None is no watchdog, for a pool that explicitly allows it
// (allow_no_watchdog = true). It resets nothing: a host whose daemon stalls
// keeps its guests running after the other hosts have declared it dead and
// restarted them. Describe reports it unsafe, and so must every status.
type None struct {
	mu    sync.Mutex
	armed bool
}

// NewNone returns the no-watchdog backend.
func NewNone() *None { return &None{} }

// Arm implements Watchdog. The effective time is 0: nothing will fire.
func (n *None) Arm() (time.Duration, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.armed {
		return 0, ErrArmed
	}
	n.armed = true
	return 0, nil
}

// Feed implements Watchdog; it does nothing.
func (n *None) Feed() error { return nil }

// Disarm implements Watchdog.
func (n *None) Disarm() error { return n.Close() }

// Close implements Watchdog.
func (n *None) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.armed = false
	return nil
}

// Describe implements Watchdog: unsafe.
func (n *None) Describe() Info {
	n.mu.Lock()
	defer n.mu.Unlock()
	return Info{
		Backend: BackendNone,
		Armed:   n.armed,
		Unsafe:  true,
		Note:    "UNSAFE: no watchdog (allow_no_watchdog = true): nothing resets this host if its daemon stalls, so its guests may run on after other hosts restart them",
	}
}
