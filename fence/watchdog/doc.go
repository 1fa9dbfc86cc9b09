// Package watchdog is what resets a host that stops fencing itself: the
// watchdog backends behind one small interface, Watchdog (Arm, Feed,
// Disarm, Close, Describe). The fencing state machine (package fence)
// decides when to feed; this package only talks to the watchdog.
//
// # Backends
//
//   - Device: the kernel watchdog device (/dev/watchdog0, /dev/watchdog,
//     or a configured path). Arm opens it — which starts the countdown —
//     asks WDIOC_GETSUPPORT who the driver is, writes the timeout with
//     WDIOC_SETTIMEOUT, reads back what the driver really set with
//     WDIOC_GETTIMEOUT (drivers round), corrects it for known driver
//     quirks (the Quirks table: Intel's iTCO_wdt resets only after twice
//     its timeout) and returns that effective firing time. Feed is
//     WDIOC_KEEPALIVE, or a one-byte write for a driver without it.
//     Disarm is the magic close: write 'V', then close. Close closes
//     without it, as a crash does, and the countdown goes on.
//   - The same Device type on a FIFO or a plain file: the stand-in of
//     tests and the demonstration pool. The path is the same — open,
//     one-byte writes, 'V' and close — and the ioctls fail with ENOTTY,
//     which is accepted only when the configuration gives the timeout
//     explicitly (Config.TimeoutExplicit): that figure is then the
//     effective firing time, vouched for by the configuration. A FIFO is
//     opened O_WRONLY|O_NONBLOCK: with no reader, Arm fails at once with
//     "no supervisor is reading <path>" (ErrNoSupervisor) instead of
//     blocking. Its reader, hbfence-wdsim (internal/wdsim), kills the
//     host's whole process group when the feed stops: a faithful reset
//     of a simulated machine. A plain file resets nothing: it is refused
//     unless Config.TestMode ([watchdog] test_mode), and then Describe
//     reports it Unsafe from the start, as None, so that the host carries
//     the no-watchdog flag and is never reported fenced when dead.
//   - Systemd: systemd's service watchdog (WatchdogSec=, WATCHDOG=1
//     through sd_notify). It restarts a hung daemon; it does not reset
//     the machine and is NOT a fence. It is used in addition to a device,
//     never instead; Describe says Fence false.
//   - None: no watchdog, only when the configuration says
//     allow_no_watchdog = true. Describe reports it Unsafe.
//
// New picks the backend from a Config as the daemon's configuration
// describes it.
//
// # What it guarantees
//
//   - Arm returns the effective firing time: how long after the last feed
//     the machine is reset, as far as the driver and the quirk table know.
//     Config.Timeout is what is wanted; the number written is that divided
//     by the driver's quirk factor and rounded down to whole seconds, so
//     that the effective time does not exceed it unless the driver rounds
//     up or refuses. Arm does not judge the result: the caller checks the
//     pool's rule host_dead > renewal_fail + effective + margin
//     (fence.CheckWatchdog) and refuses to join when it is broken.
//   - A device whose timeout cannot be set (no WDIOF_SETTIMEOUT, or
//     WDIOC_SETTIMEOUT refused) is accepted with the timeout it reports;
//     Info.SetError says why it was not set. A device that reports no
//     timeout either is accepted only with an explicit configured
//     timeout.
//   - A device without the magic close (WDIOF_MAGICCLOSE) is refused
//     unless its driver is nowayout (sysfs): such a driver stops on any
//     close, and the close a crash does would leave the host running
//     unfenced. A nowayout driver cannot be stopped at all: Disarm then
//     returns an error wrapping ErrNowayout.
//   - When Arm fails after opening, it closes without the magic close:
//     after a restart, the countdown a crashed predecessor left running
//     is what resets the machine if the guests are not confirmed gone,
//     and a 'V' would stop it. A device opened only to be refused
//     therefore goes on counting (a driver without the magic close
//     stops on that close), and the machine is reset unless the
//     refusal is fixed and a daemon arms it in time.
//   - Every descriptor is opened O_CLOEXEC: guests and hooks started by
//     the daemon do not inherit it.
//
// # What it does not guarantee
//
//   - That the hardware fires when the driver says: the quirk table holds
//     what is known (iTCO_wdt ×2; softdog needs a working kernel). A
//     driver that fires later than it reports breaks the pool's rule
//     silently; measure a new driver before trusting it.
//   - The FIFO and file backends are stand-ins: a FIFO resets only what
//     its supervisor kills (a process group, not a machine), a plain file
//     resets nothing. Neither is for production.
//   - The systemd watchdog is not a fence (above).
//   - A failed Feed is only reported: the caller decides (the daemon
//     fences at once: nothing may reset the machine any more). Feeding a FIFO
//     whose supervisor has stopped reading fails with EAGAIN once the pipe
//     is full; one whose supervisor is gone fails with EPIPE.
//
// # Timing assumptions
//
// The caller feeds well within the effective time (the fencing loop feeds
// every interval) and the effective time is the pool's watchdog figure or
// less. Opening a device feeds it: a restarted daemon must not open it
// before its own first renewal (see package fence).
package watchdog
