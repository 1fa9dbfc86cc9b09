package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hbfence/hbfence/internal/lab"
)

// sanlock's own timing (its src/timeouts.c): from io_timeout N it derives
// id_renewal_seconds = 2N (a delta-lease renewal every 2N),
// id_renewal_fail_seconds = 8N (no successful renewal for that long: the
// host kills its lease holders, then lets its watchdog fire), and
// host_dead_seconds = 8N + watchdog_fire_timeout, the fire timeout being a
// constant 60 s. Another host takes a resource lease of a host whose delta
// lease has not changed for host_dead_seconds (as it saw it).
const sanlockWatchdogFire = 60

func sanlockRenewalFail(io int) int { return 8 * io }
func sanlockHostDead(io int) int    { return sanlockRenewalFail(io) + sanlockWatchdogFire }

// errNoSanlock says why the sanlock half of the comparison is skipped.
var errNoSanlock = errors.New("sanlock is not installed (Debian: apt-get install sanlock)")

// sanlockRig is two sanlock "hosts" on one machine: each is its own
// sanlock daemon with its own run directory (SANLOCK_RUN_DIR: its socket
// and pid file), its own process group and its own host_id, and both use
// one lease file: the lockspace at offset 0, one resource lease (the
// guest's) at 1 MiB. The daemons run without the watchdog (-w 0: there is
// no wdmd here), which changes no timing: another host still waits
// host_dead_seconds, since it cannot know that.
type sanlockRig struct {
	bin, dir, leases string
	io               int
	// preload is an LD_PRELOAD shim for this machine's refusal of
	// sanlock's setrlimit (sanlockShim), or "".
	preload string
	hosts   []*sanlockHost
}

type sanlockHost struct {
	id     int
	runDir string
	daemon *exec.Cmd
	exited chan struct{}
	holder int // pid of the registered process that holds the lease
}

const sanlockLS = "hbfence_compare"

func (r *sanlockRig) lockspace(hostID int) string {
	return fmt.Sprintf("%s:%d:%s:0", sanlockLS, hostID, r.leases)
}
func (r *sanlockRig) resource() string {
	return fmt.Sprintf("%s:guest:%s:1048576", sanlockLS, r.leases)
}

// newSanlockRig formats a lease file in dir and starts two daemons.
func newSanlockRig(ctx context.Context, bin, dir string, io int, preload string) (*sanlockRig, error) {
	r := &sanlockRig{bin: bin, dir: dir, leases: filepath.Join(dir, "leases"), io: io, preload: preload}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(r.leases, make([]byte, 2<<20), 0o600); err != nil {
		return nil, err
	}
	for _, what := range [][]string{{"-s", r.lockspace(0)}, {"-r", r.resource()}} {
		args := append([]string{"direct", "init"}, what...)
		if out, err := r.run(ctx, "", append(args, "-o", strconv.Itoa(io))...); err != nil {
			return nil, fmt.Errorf("sanlock %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for id := 1; id <= 2; id++ {
		h, err := r.startDaemon(id)
		if err != nil {
			r.close()
			return nil, err
		}
		r.hosts = append(r.hosts, h)
	}
	return r, nil
}

func (r *sanlockRig) run(ctx context.Context, runDir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.bin, args...)
	if runDir != "" {
		cmd.Env = append(os.Environ(), "SANLOCK_RUN_DIR="+runDir)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// client runs "sanlock client ARGS" against h's daemon. sanlock client
// exits 0 even when the daemon refused; the result is its "done N" line.
func (r *sanlockRig) client(ctx context.Context, h *sanlockHost, args ...string) (string, error) {
	out, err := r.run(ctx, h.runDir, append([]string{"client"}, args...)...)
	if err != nil {
		return out, err
	}
	if i := strings.LastIndex(out, " done "); i >= 0 {
		if f := strings.Fields(out[i+6:]); len(f) > 0 && f[0] != "0" {
			return out, fmt.Errorf("sanlock client %s: result %s", args[0], f[0])
		}
	}
	return out, nil
}

func (r *sanlockRig) startDaemon(id int) (*sanlockHost, error) {
	h := &sanlockHost{id: id, runDir: filepath.Join(r.dir, fmt.Sprintf("host%d", id)), exited: make(chan struct{})}
	if err := os.MkdirAll(h.runDir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(h.runDir, "sanlock.log"))
	if err != nil {
		return nil, err
	}
	// -D: no fork, log to stderr; -w 0: no watchdog; -U/-G root: no
	// sanlock user needed; -h 1: real-time priority, its default, as
	// hbfence's daemon has; -l 0: no mlockall (the machine's memlock
	// limit is small); -L/-S -1: no log file or syslog of its own; -e:
	// the host's name in its delta lease.
	cmd := exec.Command(r.bin, "daemon", "-D", "-w", "0", "-U", "root", "-G", "root", "-h", "1", "-l", "0",
		"-L", "-1", "-S", "-1", "-e", fmt.Sprintf("host%d", id))
	cmd.Env = append(os.Environ(), "SANLOCK_RUN_DIR="+h.runDir)
	if r.preload != "" {
		cmd.Env = append(cmd.Env, "LD_PRELOAD="+r.preload)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting sanlock daemon: %w", err)
	}
	h.daemon = cmd
	go func() {
		cmd.Wait()
		logf.Close()
		close(h.exited)
	}()
	sock := filepath.Join(h.runDir, "sanlock.sock")
	err = lab.WaitUntil(context.Background(), 10*time.Second, 20*time.Millisecond, "sanlock's socket "+sock, func() (bool, error) {
		select {
		case <-h.exited:
			return false, fmt.Errorf("sanlock daemon of host %d exited: %s", id, tail(r.log(h), 3))
		default:
		}
		_, err := os.Stat(sock)
		return err == nil, nil
	})
	if err != nil {
		h.kill()
		return nil, err
	}
	return h, nil
}

func (r *sanlockRig) log(h *sanlockHost) string {
	b, _ := os.ReadFile(filepath.Join(h.runDir, "sanlock.log"))
	return string(b)
}

// join adds both hosts to the lockspace at once and returns how long it
// took.
func (r *sanlockRig) join(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	errs := make(chan error, len(r.hosts))
	for _, h := range r.hosts {
		go func() {
			out, err := r.client(ctx, h, "add_lockspace", "-s", r.lockspace(h.id), "-o", strconv.Itoa(r.io))
			if err != nil {
				err = fmt.Errorf("host %d: %v: %s", h.id, err, out)
			}
			errs <- err
		}()
	}
	var err error
	for range r.hosts {
		err = errors.Join(err, <-errs)
	}
	return time.Since(start), err
}

// register starts h's lease holder: "sanlock client command" registers
// with the daemon and execs sleep, which inherits the registration. It
// runs in the daemon's process group: the host's machine.
func (r *sanlockRig) register(ctx context.Context, h *sanlockHost) error {
	cmd := exec.Command(r.bin, "client", "command", "-c", "/bin/sleep", "1000000")
	cmd.Env = append(os.Environ(), "SANLOCK_RUN_DIR="+h.runDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: h.daemon.Process.Pid, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("host %d: sanlock client command: %w", h.id, err)
	}
	go cmd.Wait()
	h.holder = cmd.Process.Pid
	pid := strconv.Itoa(h.holder)
	return lab.WaitUntil(ctx, 10*time.Second, 20*time.Millisecond, fmt.Sprintf("host %d's holder registered", h.id), func() (bool, error) {
		out, err := r.client(ctx, h, "status")
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "p" && f[1] == pid {
				return true, nil
			}
		}
		return false, err
	})
}

// acquire takes the resource lease for h's holder; it blocks while the
// owner's delta lease may still be renewed, and fails when the owner is
// seen alive (SANLK_ACQUIRE_IDLIVE).
func (r *sanlockRig) acquire(ctx context.Context, h *sanlockHost) error {
	out, err := r.client(ctx, h, "acquire", "-r", r.resource(), "-p", strconv.Itoa(h.holder))
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(out))
	}
	return nil
}

// owner is the host_id that the resource lease's leader record names.
func (r *sanlockRig) owner(ctx context.Context) (int, error) {
	out, err := r.run(ctx, "", "direct", "read_leader", "-r", r.resource())
	if err != nil {
		return 0, fmt.Errorf("sanlock direct read_leader: %v: %s", err, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "owner_id "); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("sanlock direct read_leader: no owner_id in %q", out)
}

// seenRenewing waits until h has seen other's delta lease timestamp
// change twice: other is known live to h, as a real peer would be before
// a failure.
func (r *sanlockRig) seenRenewing(ctx context.Context, h, other *sanlockHost) error {
	var seen []string
	return lab.WaitUntil(ctx, time.Duration(6*r.io+10)*time.Second, 200*time.Millisecond, fmt.Sprintf("host %d seeing host %d renew", h.id, other.id), func() (bool, error) {
		out, err := r.client(ctx, h, "host_status", "-s", sanlockLS)
		if err != nil {
			return false, err
		}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == strconv.Itoa(other.id) && f[1] == "timestamp" {
				if len(seen) == 0 || seen[len(seen)-1] != f[2] {
					seen = append(seen, f[2])
				}
			}
		}
		return len(seen) >= 3, nil
	})
}

// kill kills h's machine: the daemon, its helper and the lease holder.
func (h *sanlockHost) kill() {
	if h.daemon == nil {
		return
	}
	syscall.Kill(-h.daemon.Process.Pid, syscall.SIGKILL)
	<-h.exited
}

func (r *sanlockRig) close() {
	for _, h := range r.hosts {
		h.kill()
	}
}

// sanlockShim builds, in dir, an LD_PRELOAD library for machines (such as
// containers without CAP_SYS_RESOURCE) that refuse sanlock's
// setrlimit(RLIMIT_MEMLOCK/RTPRIO/CORE, unlimited), on which the daemon
// exits at once: on EPERM the shim raises the soft limit to the hard one
// instead and succeeds. It changes no timing: the daemons run with -l 0
// (no mlockall) anyway, and real-time priority needs CAP_SYS_NICE, not
// the limit, as root.
func sanlockShim(ctx context.Context, dir string) (string, error) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		return "", errors.New("this machine refuses sanlock's setrlimit (no CAP_SYS_RESOURCE?) and there is no gcc to build the shim that works around it")
	}
	src, so := filepath.Join(dir, "setrlimit-shim.c"), filepath.Join(dir, "setrlimit-shim.so")
	if err := os.WriteFile(src, []byte(shimSource), 0o600); err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, gcc, "-shared", "-fPIC", "-O2", "-o", so, src, "-ldl")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the setrlimit shim: %v: %s", err, out.String())
	}
	return so, nil
}

const shimSource = `#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/resource.h>

/* hbfence-lab: sanlock's daemon exits when it may not raise its limits
   to unlimited; keep them at the hard limit instead. */
int setrlimit(__rlimit_resource_t r, const struct rlimit *l) {
	int (*real)(__rlimit_resource_t, const struct rlimit *) = dlsym(RTLD_NEXT, "setrlimit");
	struct rlimit cur;
	if (real(r, l) == 0)
		return 0;
	if (errno != EPERM || getrlimit(r, &cur) != 0)
		return -1;
	cur.rlim_cur = cur.rlim_max;
	return real(r, &cur);
}
`
