package daemon

import "github.com/hbfence/hbfence/internal/safeclock"

// The tests of this package run inside testing/synctest bubbles (fake Go
// time), so the drivers' safety clock follows Go's clock.
func init() { clk = safeclock.Go() }
