package sysprio

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

type schedParam struct{ priority int32 }

func schedSetscheduler(tid int, policy int, p *schedParam) error {
	_, _, e := unix.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, uintptr(tid), uintptr(policy), uintptr(unsafe.Pointer(p)))
	if e != 0 {
		return e
	}
	return nil
}

// schedGetscheduler is the policy of thread tid (for tests and status).
func schedGetscheduler(tid int) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// schedOther is SCHED_OTHER, the normal policy (x/sys/unix does not name it).
const schedOther = 0
