package sysprio

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// The test binary is the daemon in a child process (Apply changes the
// whole process, for good) and the shim.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ChildArg {
		fmt.Fprintln(os.Stderr, RunChild(os.Args[2:]))
		os.Exit(127)
	}
	if os.Getenv("SYSPRIO_TEST_DAEMON") == "1" {
		daemonChild()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type childResult struct {
	Report      Report
	Lowered     bool // false where the machine gives root no CAP_SYS_RESOURCE
	Raised      Report
	VmLckKB     int
	VmRSSKB     int
	Policies    []int // of every thread, after new threads were made
	ChildOutput string
}

func daemonChild() {
	var res childResult
	res.Report = Apply(Settings{LockMemory: true, RealtimePriority: 10, OOMScoreAdj: -1000})
	res.Lowered = res.Report.OOMScoreAdj == -1000
	if !res.Lowered {
		// The shim is tested with a raised score instead: the child
		// must come back to 0 all the same.
		res.Raised = Apply(Settings{OOMScoreAdj: 500})
	}
	// Make the runtime start new threads after Apply.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			b := make([]byte, 1<<20)
			_ = b
		}()
	}
	wg.Wait()
	res.VmLckKB = statusKB("VmLck")
	res.VmRSSKB = statusKB("VmRSS")
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		tid, _ := strconv.Atoi(t.Name())
		p, _ := schedGetscheduler(tid)
		res.Policies = append(res.Policies, p)
	}
	argv := Argv([]string{"sh", "-c", "cat /proc/self/oom_score_adj; grep ^policy /proc/self/sched"})
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	res.ChildOutput = string(out)
	if err != nil {
		res.ChildOutput += err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

func statusKB(field string) int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return -1
}

func TestApplyProtectsTheDaemonNotItsChildren(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: mlockall, SCHED_RR and a negative oom_score_adj need root (CI runs as root)")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SYSPRIO_TEST_DAEMON=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("daemon child: %v\n%s", err, out)
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	r := res.Report
	if !r.MemoryLocked || r.Scheduler != "SCHED_RR" || r.RealtimePriority != 10 {
		t.Fatalf("report %+v, want memory locked and SCHED_RR 10", r)
	}
	switch {
	case res.Lowered && len(r.Problems) > 0:
		t.Fatalf("report %+v: problems although everything applied", r)
	case !res.Lowered:
		if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "[daemon] oom_score_adj -1000") || !strings.Contains(r.Problems[0], "CAP_SYS_RESOURCE") {
			t.Fatalf("the refused oom_score_adj is reported as %q, want the key and the capability", r.Problems)
		}
		if res.Raised.OOMScoreAdj != 500 {
			t.Fatalf("raising oom_score_adj: %+v", res.Raised)
		}
		t.Log("SKIP part: this machine's root lacks CAP_SYS_RESOURCE, so oom_score_adj -1000 cannot be set; the refusal's report was checked, and the children's reset with a raised score (500)")
	}
	t.Logf("VmLck %d kB, VmRSS %d kB", res.VmLckKB, res.VmRSSKB)
	if res.VmLckKB <= 0 {
		t.Errorf("VmLck %d kB after mlockall", res.VmLckKB)
	}
	for i, p := range res.Policies {
		if p != unix.SCHED_RR {
			t.Errorf("thread %d of %d: policy %d, want SCHED_RR (2)", i, len(res.Policies), p)
		}
	}
	lines := strings.Fields(res.ChildOutput)
	if len(lines) < 3 || lines[0] != "0" || lines[len(lines)-1] != "0" {
		t.Errorf("the child's oom_score_adj and policy: %q, want 0 and policy 0 (SCHED_OTHER)", res.ChildOutput)
	}
}

func TestArgvPlainWithoutApply(t *testing.T) {
	if got := Argv([]string{"xl", "list"}); len(got) != 2 || got[0] != "xl" {
		t.Fatalf("Argv before Apply: %q", got)
	}
}
