// Package sysprio protects the daemon from the machine it runs on, as
// sanlock and sbd do: a daemon that is paged out or starved of the CPU for
// a few seconds misses its renewals and fences a healthy host.
//
//   - Memory is locked (mlockall(MCL_CURRENT|MCL_FUTURE)): no page of the
//     daemon, its code included, is reclaimed under memory pressure, so a
//     renewal never waits for a page to be read back from disk.
//   - The daemon's threads run under SCHED_RR at a real-time priority, so
//     that busy cores (guests, a backup, a runaway process) delay it by at
//     most the kernel's real-time throttling leaves (sched_rt_runtime_us,
//     95 % by default, so it cannot lock up the machine either). Threads
//     the Go runtime creates later inherit the policy (it is set without
//     SCHED_RESET_ON_FORK, which would reset every new thread too).
//   - Its oom_score_adj is lowered (default -1000, never chosen by the OOM
//     killer).
//
// The policy and the OOM score are inherited by children, so every command
// the daemon runs passes through Argv: a shim (the daemon's own binary with
// ChildArg) that resets both, to SCHED_OTHER and oom_score_adj 0, before
// the program starts: a hook, a hypervisor tool or a guest runs as any
// process does and stays killable.
//
// Each protection is configured in [daemon] (lock_memory,
// realtime_priority, oom_score_adj), applied at start by Apply and
// reported in status; one that cannot be applied is logged and reported,
// never fatal (an unprotected daemon still fences correctly; it is only
// more likely to fence for the machine's load).
package sysprio

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Settings is what to apply: the [daemon] keys.
type Settings struct {
	LockMemory       bool
	RealtimePriority int // 0: the normal policy
	OOMScoreAdj      int // 0: leave it
}

// Report is what was applied, for status and the log.
type Report struct {
	MemoryLocked     bool     `json:"memory_locked"`
	Scheduler        string   `json:"scheduler"` // "SCHED_RR" or "SCHED_OTHER"
	RealtimePriority int      `json:"realtime_priority,omitempty"`
	OOMScoreAdj      int      `json:"oom_score_adj"`
	Problems         []string `json:"problems,omitempty"`
}

// childReset is set once Apply changed the policy or the OOM score: Argv
// then resets both in every child.
var childReset bool

// shimExe is the daemon's binary as Apply found it: after a package
// upgrade /proc/self/exe names a deleted file, the path the new binary,
// which knows ChildArg as well.
var shimExe string

// Apply applies s to this process and reports what holds.
func Apply(s Settings) Report {
	var r Report
	r.Scheduler = "SCHED_OTHER"
	if exe, err := os.Executable(); err == nil {
		shimExe = exe
	} else {
		r.Problems = append(r.Problems, fmt.Sprintf("the daemon's binary: %v; its commands inherit its protection", err))
	}
	if s.LockMemory {
		if err := lockMemory(); err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("[daemon] lock_memory: mlockall: %v (needs CAP_IPC_LOCK or a large enough RLIMIT_MEMLOCK: LimitMEMLOCK=infinity in the unit)", err))
		} else {
			r.MemoryLocked = true
		}
	}
	if s.RealtimePriority > 0 {
		if err := setRealtime(s.RealtimePriority); err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("[daemon] realtime_priority %d: %v (needs CAP_SYS_NICE, and real-time runtime in the daemon's cgroup: CPUSchedulingPolicy is not needed, but cpu.rt_runtime_us must not be 0 under cgroup v1)", s.RealtimePriority, err))
		} else {
			r.Scheduler, r.RealtimePriority = "SCHED_RR", s.RealtimePriority
			childReset = true
		}
	}
	if s.OOMScoreAdj != 0 {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(s.OOMScoreAdj)), 0); err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("[daemon] oom_score_adj %d: %v (needs CAP_SYS_RESOURCE to lower it)", s.OOMScoreAdj, err))
		} else {
			childReset = true
		}
	}
	r.OOMScoreAdj = currentOOMScoreAdj()
	return r
}

// setRealtime sets SCHED_RR at prio on every thread of
// the process (the policy is per thread; threads created later inherit it
// from the thread that creates them).
func setRealtime(prio int) error {
	if max := 99; prio > max {
		return fmt.Errorf("priority above %d", max)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	param := schedParam{priority: int32(prio)}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := schedSetscheduler(tid, unix.SCHED_RR, &param); err != nil {
			return fmt.Errorf("sched_setscheduler(thread %d, SCHED_RR, %d): %w", tid, prio, err)
		}
	}
	return nil
}

func currentOOMScoreAdj() int {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// ChildArg is the hidden first argument of the daemon's own binary that
// makes it the child shim: reset the policy to SCHED_OTHER and
// oom_score_adj to 0, then exec the rest of the arguments (cmd/hbfence
// handles it before anything else).
const ChildArg = "__hbfence-child"

// Argv is what a child of the daemon is started with: argv itself, or,
// after Apply changed the policy or the OOM score, the daemon's binary as
// a shim that resets them first. The shim adds one exec (about a
// millisecond).
func Argv(argv []string) []string {
	if !childReset || shimExe == "" {
		return argv
	}
	return append([]string{shimExe, ChildArg}, argv...)
}

// RunChild is the shim's body: it never returns unless the exec failed.
func RunChild(argv []string) error {
	if len(argv) == 0 {
		return fmt.Errorf("%s: no command", ChildArg)
	}
	if err := schedSetscheduler(0, schedOther, &schedParam{}); err != nil {
		return fmt.Errorf("%s: resetting the scheduling policy: %w", ChildArg, err)
	}
	if currentOOMScoreAdj() != 0 {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte("0"), 0); err != nil {
			return fmt.Errorf("%s: resetting oom_score_adj: %w", ChildArg, err)
		}
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		p, err := lookPath(path)
		if err != nil {
			return err
		}
		path = p
	}
	return unix.Exec(path, argv, os.Environ())
}

func lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %s not found in PATH", ChildArg, name)
}

// lockMemory locks every page of the process as it is first touched
// (MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT), and populates the mappings of
// files (the binary's code and data) now: a fence path never run before
// needs no disk read under memory pressure. Anonymous mappings are not
// populated: the Go runtime maps heap it has not used yet, which a plain
// mlockall would fault in and pin (77 MB at start, measured; 1.2 GB with
// MCL_FUTURE).
func lockMemory() error {
	if err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT); err != nil {
		return err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(maps), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || !strings.HasPrefix(f[5], "/") {
			continue // anonymous, [heap], [stack], [vdso]
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || b <= a {
			continue
		}
		if _, _, e := unix.Syscall(unix.SYS_MLOCK, uintptr(a), uintptr(b-a), 0); e != 0 {
			return fmt.Errorf("mlock %s (%s): %w", f[0], f[5], e)
		}
	}
	return nil
}
