package main

import (
	"strings"
	"testing"
	"time"
)

// The strace lines -bench-pool sums, as strace 6 writes them for a daemon
// (-f -ttt -y -s 0): calls finished at once, and calls another thread
// interrupted (unfinished, then resumed on a later line). Only the calls
// on the heartbeat area count as its I/O; the span is from the first
// line's time stamp to the last's.
func TestParseTrace(t *testing.T) {
	const out = `29718 1701950000.000000 pread64(11</p/.server_pool_hb>, ""..., 512, 512) = 512
29719 1701950000.250000 pread64(11</p/.server_pool_hb>, ""..., 32768, 36864) = 32768
29718 1701950000.500000 pread64(8</p/.server_pool_hb>,  <unfinished ...>
29719 1701950000.750000 pwrite64(15</p/.hbfence/hosts/node3>, ""..., 512, 0) = 512
29718 1701950001.000000 <... pread64 resumed>""..., 32768, 4096) = 32768
29718 1701950001.250000 pwrite64(8</p/.server_pool_hb>, ""..., 512, 5120 <unfinished ...>
29594 1701950001.500000 pread64(17</p/.hbfence/plan>, ""..., 4096, 0) = 4096
29718 1701950001.750000 <... pwrite64 resumed>)           = 512
29720 1701950002.000000 --- SIGURG {si_signo=SIGURG, si_code=SI_TKILL, si_pid=29594, si_uid=0} ---
`
	tr, lines := parseTrace(strings.NewReader(out), "/p/.server_pool_hb")
	if lines != 9 {
		t.Errorf("%d lines, want 9", lines)
	}
	if tr.areaRead != 512+32768+32768 || tr.areaReads != 3 || tr.areaWritten != 512 || tr.areaWrites != 1 {
		t.Errorf("the area: %v B in %d reads, %v B in %d writes; want 66048 B in 3, 512 B in 1", tr.areaRead, tr.areaReads, tr.areaWritten, tr.areaWrites)
	}
	if tr.span != 2*time.Second {
		t.Errorf("span %v, want 2s (first line to last)", tr.span)
	}
	if tr.otherRead != 4096 || tr.otherWritten != 512 {
		t.Errorf("other files: %v B read, %v B written; want 4096 and 512", tr.otherRead, tr.otherWritten)
	}
}
