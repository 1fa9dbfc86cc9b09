package daemon

import "github.com/hbfence/hbfence/internal/safeclock"

// clk is the safety clock of every instant the daemon hands to the member,
// the lease runner, the fencer and the agent (CLOCK_MONOTONIC_RAW). Tests
// of this package run the drivers inside testing/synctest and set it to
// safeclock.Go().
var clk safeclock.Clock = safeclock.Raw
