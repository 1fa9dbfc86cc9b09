package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hbfence/hbfence/fence"
	"github.com/hbfence/hbfence/fence/watchdog"
	"github.com/hbfence/hbfence/heartbeat/timing"
	"github.com/hbfence/hbfence/internal/config"
)

// backend adapts a fence/watchdog backend to the fencing loop: it checks
// the effective firing time the driver reports at Arm against the pool's
// rule, and before Arm it estimates that time without opening the device
// (opening feeds it, which a restarted daemon must not do before its first
// renewal).
type backend struct {
	w        watchdog.Watchdog
	t        timing.Params
	estimate time.Duration

	mu        sync.Mutex
	effective time.Duration // from Arm; zero before
	// carried: the watchdog is armed already, by the previous image of
	// this process (Adopt) or by this image's previous incarnation (a
	// re-exec that failed): the next Arm feeds it instead of opening it.
	carried bool
}

func openWatchdog(c *config.Config, t timing.Params) (Watchdog, error) {
	want := t.Watchdog
	if c.Watchdog.Timeout.Duration > 0 {
		want = c.Watchdog.Timeout.Duration
	}
	w, err := watchdog.New(watchdog.Config{
		Path:            c.Watchdog.Device,
		Timeout:         want,
		TimeoutExplicit: c.Watchdog.Timeout.Duration > 0,
		AllowNone:       c.Watchdog.AllowNoWatchdog,
		TestMode:        c.Watchdog.TestMode,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: [watchdog]: %w", c.Path, err)
	}
	b := &backend{w: w, t: t, estimate: want}
	if info := w.Describe(); info.Backend == watchdog.BackendDevice {
		if id := sysfsIdentity(info.Path); id != "" {
			b.estimate = watchdog.EffectiveTimeout(id, time.Duration(watchdog.RequestSeconds(id, want))*time.Second)
		}
	}
	if info := w.Describe(); info.Backend == watchdog.BackendNone {
		// Nothing fires; the pool's figure stands in for the rule.
		b.estimate = t.Watchdog
	}
	return b, nil
}

// sysfsIdentity reads the driver identity of a watchdog device from sysfs,
// without opening the device.
func sysfsIdentity(dev string) string {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join("/sys/class/watchdog", filepath.Base(real), "identity"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (b *backend) Arm() error {
	b.mu.Lock()
	carried := b.carried
	b.carried = false
	b.mu.Unlock()
	if carried {
		return b.w.Feed()
	}
	eff, err := b.w.Arm()
	if err != nil {
		return err
	}
	if b.w.Describe().Backend != watchdog.BackendNone {
		if err := fence.CheckWatchdog(b.t, eff); err != nil {
			return fmt.Errorf("the armed watchdog fires %v after the last feed (%s): %w", eff, b.w.Describe().Source, err)
		}
	}
	b.mu.Lock()
	b.effective = eff
	b.mu.Unlock()
	return nil
}

func (b *backend) Feed() error   { return b.w.Feed() }
func (b *backend) Disarm() error { return b.w.Disarm() }

func (b *backend) Effective() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.effective > 0 {
		return b.effective
	}
	return b.estimate
}

func (b *backend) Info() WatchdogInfo {
	i := b.w.Describe()
	return WatchdogInfo{
		Backend:          string(i.Backend),
		Device:           i.Path,
		Identity:         i.Identity,
		EffectiveSeconds: b.Effective().Seconds(),
		// A backend that cannot reset the machine is the no-watchdog
		// case, whatever it is.
		Unsafe: i.Unsafe || (i.Armed && !i.Fence),
		Armed:  i.Armed,
		Note:   i.Note,
	}
}

// handable is a watchdog backend that can hand its open descriptor to the
// next image of the process (the devices, FIFOs and files; not "none").
type handable interface {
	Handoff() (watchdog.Handed, error)
	Adopt(watchdog.Handed) error
}

// carry marks the watchdog as armed by this process already: the next
// incarnation's Arm feeds it.
func (b *backend) carry() {
	b.mu.Lock()
	b.carried = true
	b.mu.Unlock()
}

// handoff feeds the watchdog one last time and gives up its descriptor for
// the exec; nil for a backend with nothing to hand (none).
func (b *backend) handoff() (*watchdog.Handed, error) {
	h, ok := b.w.(handable)
	if !ok {
		return nil, nil
	}
	if err := b.w.Feed(); err != nil {
		return nil, err
	}
	hd, err := h.Handoff()
	if err != nil {
		return nil, err
	}
	return &hd, nil
}

// adopt takes the descriptor handed over (or back, when the exec failed),
// feeds it at once, and checks its effective firing time against the
// pool's rule again.
func (b *backend) adopt(hd *watchdog.Handed) error {
	if hd == nil {
		b.carry()
		return nil
	}
	h, ok := b.w.(handable)
	if !ok {
		return fmt.Errorf("a watchdog %s was handed over, but the configuration has none ([watchdog] changed: that needs a restart)", hd.Info.Path)
	}
	if err := h.Adopt(*hd); err != nil {
		return err
	}
	if err := fence.CheckWatchdog(b.t, hd.Info.Effective); err != nil {
		return fmt.Errorf("the watchdog handed over fires %v after the last feed: %w", hd.Info.Effective, err)
	}
	b.mu.Lock()
	b.effective = hd.Info.Effective
	b.carried = true
	b.mu.Unlock()
	return nil
}
