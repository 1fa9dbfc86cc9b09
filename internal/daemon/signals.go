package daemon

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/hbfence/hbfence/internal/config"
	"golang.org/x/sys/unix"
)

// What each signal an operator may send does. Go's defaults would kill
// the daemon at once on SIGHUP (no log line, the watchdog left armed: the
// machine is reset when it fires) and on SIGQUIT, stop it on SIGTSTP,
// SIGTTIN and SIGTTOU (the same reset, later) and kill it on SIGPIPE when
// stderr is a closed pipe. Every one is decided here; docs/operations.md
// has the table, and hbfence daemon -h prints it (SignalTable).
var (
	// stopSignals leave cleanly: the HA guests are handed over, then
	// "left" is written.
	stopSignals = []os.Signal{syscall.SIGTERM, syscall.SIGINT}
	// ignoredSignals are logged and otherwise ignored.
	ignoredSignals = []os.Signal{syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU,
		syscall.SIGALRM, syscall.SIGXFSZ, syscall.SIGXCPU, syscall.SIGVTALRM}
)

// SignalTable is the table hbfence daemon -h prints.
const SignalTable = `signals:
  SIGTERM, SIGINT  stop: stop this host's guests, report them stopped (the
                   master restarts the HA ones elsewhere), release the master
                   role, write "left", disarm the watchdog, exit 0
  SIGHUP           reload: re-read the configuration file and apply [log]
                   level, format and target; every other changed key is logged as
                   "needs a restart"; guests, slot and master role untouched
  SIGUSR1          upgrade: re-execute the installed binary in place (same
                   pid), keeping the slot, its generation, the watchdog and
                   the guests; the master role is released to the next master
  SIGQUIT          log every goroutine's stack, then go on (no exit)
  SIGUSR2, SIGPIPE, SIGTSTP, SIGTTIN, SIGTTOU, SIGALRM, SIGXFSZ, SIGXCPU,
  SIGVTALRM        logged and ignored (a stopped daemon would stop feeding
                   the watchdog and the machine would be reset)
  SIGKILL, SIGSTOP cannot be caught: SIGKILL is a crash (the watchdog counts
                   on; systemd restarts the daemon, which joins again and
                   adopts the running guests), SIGSTOP for longer than the
                   watchdog's budget resets the machine
`

// signals handles the daemon's signals until ctx is done: stop cancels the
// lifecycle (a clean leave), a reload is applied here, an upgrade is
// passed to the lifecycle.
func (d *Daemon) signals(ctx context.Context, stop context.CancelFunc) {
	ch := make(chan os.Signal, 8)
	all := append(append([]os.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGQUIT}, stopSignals...), ignoredSignals...)
	signal.Notify(ch, all...)
	defer signal.Stop(ch)
	for {
		var sig os.Signal
		select {
		case <-ctx.Done():
			return
		case sig = <-ch:
		}
		name := signalName(sig)
		switch sig {
		case syscall.SIGTERM, syscall.SIGINT:
			d.log.Info().Str("signal", name).Msg("stopping: handing the guests over, then leaving the pool")
			d.stopBegins()
			stop()
		case syscall.SIGHUP:
			d.reloadBegins()
			d.reload()
			d.reloadEnds()
		case syscall.SIGUSR1:
			d.log.Info().Str("signal", name).Msg("upgrade requested: re-executing the installed binary in place")
			d.requestUpgrade()
		case syscall.SIGQUIT:
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			d.log.Warn().Str("signal", name).Str("stacks", string(buf[:n])).Msg("goroutine stacks (SIGQUIT does not stop hbfence; SIGTERM does)")
		default:
			d.log.Warn().Str("signal", name).Msg("signal ignored (see hbfence daemon -h for the signals hbfence acts on)")
		}
	}
}

func signalName(s os.Signal) string {
	if n, ok := s.(syscall.Signal); ok {
		if name := unix.SignalName(n); name != "" {
			return name
		}
	}
	return s.String()
}

// reload re-reads the configuration file and applies what can change at
// run time ([log] level, format and target); it logs what it applied and what needs a restart.
func (d *Daemon) reload() {
	nc, err := config.Load(d.c.Path)
	if err != nil {
		d.log.Error().Err(err).Str("config", d.c.Path).Msg("reload (SIGHUP): the configuration file is not valid; nothing changed (fix it and send SIGHUP again)")
		return
	}
	d.mu.Lock()
	changed := changedKeys(d.c, nc)
	d.mu.Unlock()
	var applied, restart []string
	for _, k := range changed {
		switch k {
		case "[log] level", "[log] format", "[log] target":
			applied = append(applied, k)
		default:
			restart = append(restart, k)
		}
	}
	if d.logs != nil && len(applied) > 0 {
		d.logs.Apply(nc.Log)
		d.mu.Lock()
		d.c.Log = nc.Log
		d.mu.Unlock()
	}
	ev := d.log.Info().Str("config", d.c.Path).Strs("applied", applied).Str("level", nc.Log.Level).Str("format", nc.Log.Format).Str("target", nc.Log.Target)
	if len(restart) > 0 {
		ev = ev.Strs("needs_restart", restart)
		d.log.Warn().Str("config", d.c.Path).Msg("reload (SIGHUP): needs a restart: " + strings.Join(restart, ", ") + " (systemctl restart hbfence; or an upgrade by SIGUSR1, which keeps the guests)")
	}
	ev.Msg("reload (SIGHUP): configuration re-read")
}
