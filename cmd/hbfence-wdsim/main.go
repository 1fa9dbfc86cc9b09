// Command hbfence-wdsim is a watchdog stand-in for tests and the
// demonstration pool: it runs a command as a simulated machine (a new
// process group) and resets that machine — SIGKILL to the whole group —
// when the FIFO it reads stops being fed, as a hardware watchdog resets a
// host.
//
// Usage:
//
//	hbfence-wdsim --fifo PATH --timeout 2s [--log FILE] -- COMMAND ARGS...
//
// The daemon under it uses PATH as its watchdog device ([watchdog] device
// = PATH, with an explicit [watchdog] timeout equal to --timeout). Opening
// the FIFO arms the watchdog; any byte feeds it; 'V' followed by close
// disarms it; a close without 'V' leaves it armed. --log appends one JSON
// record per event (armed, closed, disarmed, reset, exit, ...), with
// CLOCK_MONOTONIC stamps. SIGINT, SIGTERM and SIGHUP are passed on to the
// whole group.
//
// Exit status: the command's (128 + signal number if a signal ended it),
// or 99 after a reset. 2 for bad usage.
//
// See internal/wdsim for what it guarantees and what it does not.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hbfence/hbfence/internal/wdsim"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hbfence-wdsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fifo := fs.String("fifo", "", "the FIFO the daemon opens as its watchdog device (created if missing)")
	timeout := fs.Duration("timeout", 0, "reset the machine when armed and not fed for this long (e.g. 2s)")
	logPath := fs.String("log", "", "append JSON event records to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: hbfence-wdsim --fifo PATH --timeout DURATION [--log FILE] -- COMMAND ARGS...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmd := fs.Args()
	switch {
	case *fifo == "":
		fmt.Fprintln(stderr, "hbfence-wdsim: --fifo is required")
		return 2
	case *timeout <= 0:
		fmt.Fprintln(stderr, "hbfence-wdsim: --timeout is required and must be positive (a Go duration: 2s, 500ms)")
		return 2
	case len(cmd) == 0:
		fmt.Fprintln(stderr, "hbfence-wdsim: no command: put it after --")
		return 2
	}
	cfg := wdsim.Config{FIFO: *fifo, Timeout: *timeout, Command: cmd, Stdin: stdin, Stdout: stdout, Stderr: stderr}
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "hbfence-wdsim: %v\n", err)
			return 1
		}
		defer f.Close()
		cfg.Log = f
	}
	// Take the signals before the machine starts, so none is lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	sup, err := wdsim.Start(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "hbfence-wdsim: %v\n", err)
		return 1
	}
	for {
		select {
		case sig := <-sigs:
			sup.Signal(sig.(syscall.Signal))
		case <-sup.Done():
			res := sup.Wait()
			if r := res.Reset; r != nil {
				fmt.Fprintf(stderr, "hbfence-wdsim: reset: no feed for %v (timeout %v): killed process group %d (%d processes)\n",
					time.Duration(r.SinceLastFeedNS).Round(time.Millisecond), *timeout, r.PGID, len(r.Killed))
			}
			return res.Status
		}
	}
}
