package watchdog

import (
	"strings"
	"time"
)

// Quirk is a known difference between the timeout a driver reports and
// when the machine is really reset. Every driver-specific correction of
// this package is in the Quirks table, so that it can be reviewed in one
// place.
type Quirk struct {
	// Identity is the driver's WDIOC_GETSUPPORT identity, compared
	// exactly (trailing NULs and spaces trimmed).
	Identity string
	// Factor: the machine is reset Factor × the reported timeout after
	// the last keepalive. 1 for a driver that fires on time.
	Factor int
	// Why explains the quirk and where it is known from.
	Why string
}

// Quirks is the table of known driver quirks.
var Quirks = []Quirk{
	{
		Identity: "iTCO_wdt",
		Factor:   2,
		Why: "Intel TCO (ICH/PCH chipsets): the TCO timer counts down twice before it resets the machine — " +
			"the first expiry only sets TIMEOUT status (and may raise an SMI), the second resets. " +
			"The kernel driver halves the programmed value for TCO version 1 only (drivers/watchdog/iTCO_wdt.c, " +
			"iTCO_wdt_set_timeout), and WDIOC_GETSUPPORT does not tell the version, so a reset is assumed up to " +
			"twice the reported timeout; sanlock's wdmd had to learn the same. Over-estimating is the safe side " +
			"of the pool's rule host_dead > renewal_fail + watchdog + margin.",
	},
	{
		Identity: "Software Watchdog",
		Factor:   1,
		Why: "softdog: a kernel timer, on time, but it needs a working kernel: a kernel hung with interrupts " +
			"off is not reset. Good for a lab, weaker than hardware.",
	},
}

// LookupQuirk returns the quirk of the driver with this identity; for a
// driver not in the table, a Quirk with Factor 1 and ok false.
func LookupQuirk(identity string) (q Quirk, ok bool) {
	id := cleanIdentity(identity)
	for _, q := range Quirks {
		if q.Identity == id {
			return q, true
		}
	}
	return Quirk{Identity: id, Factor: 1}, false
}

// EffectiveTimeout is when a driver with this identity, reporting this
// timeout, really resets the machine after the last keepalive.
func EffectiveTimeout(identity string, reported time.Duration) time.Duration {
	q, _ := LookupQuirk(identity)
	return time.Duration(q.Factor) * reported
}

// RequestSeconds is the whole number of seconds to write with
// WDIOC_SETTIMEOUT so that a driver with this identity fires no later than
// want: want divided by the quirk factor, rounded down. 0 means it cannot
// be done (want is below the factor × 1 s).
func RequestSeconds(identity string, want time.Duration) int {
	q, _ := LookupQuirk(identity)
	return int(want / time.Duration(q.Factor) / time.Second)
}

func cleanIdentity(s string) string {
	return strings.TrimRight(s, "\x00 \t\n")
}
