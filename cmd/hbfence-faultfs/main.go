// Command hbfence-faultfs serves a fault-injecting passthrough file system
// (internal/faultfs) for the integration tests and the demonstration pool,
// and sets its faults from another process.
//
// Usage:
//
//	hbfence-faultfs serve --backing DIR --mountpoint DIR --control SOCKET [--name NAME] [--debug]
//	hbfence-faultfs ctl --control SOCKET set read|write|open|all FAULT...
//	hbfence-faultfs ctl --control SOCKET clear
//	hbfence-faultfs ctl --control SOCKET status
//
// FAULT is pass, hang, eio, errno NAME, delay DURATION, or a combination
// ("delay 200ms eio"). serve mounts a view of the backing directory (one
// mount per simulated host, all over the same backing directory), prints
// "ready" on standard output once mounted, and serves until SIGINT or
// SIGTERM, then unmounts — lazily, aborting the FUSE connection, if files
// are still open. It must run as root. If it is killed with SIGKILL the
// mount stays behind, failing every access with ENOTCONN (another way for
// storage to fail); remove it with umount -l.
//
// A separate process rather than an in-process mount: the daemons under
// test are processes of their own anyway, a shell (the demo) can drive it,
// and killing it is a storage failure the in-process API cannot show. Go
// tests may mount in-process with faultfs.Mount instead.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/hbfence/hbfence/internal/faultfs"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil))
}

const usage = `usage:
  hbfence-faultfs serve --backing DIR --mountpoint DIR --control SOCKET [--name NAME] [--debug]
  hbfence-faultfs ctl --control SOCKET set read|write|open|all FAULT...
  hbfence-faultfs ctl --control SOCKET clear|status
FAULT: pass | hang | eio | errno NAME | delay DURATION, or a combination ("delay 200ms eio")`

// run is main; stop, if not nil, replaces the signals that end serve.
func run(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr, stop)
	case "ctl":
		return ctl(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hbfence-faultfs: unknown command %q\n%s\n", args[0], usage)
	return 2
}

func serve(args []string, stdout, stderr io.Writer, stop <-chan os.Signal) int {
	fs := flag.NewFlagSet("hbfence-faultfs serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	backing := fs.String("backing", "", "the directory to show (the shared storage)")
	mnt := fs.String("mountpoint", "", "an existing empty directory to mount on (one per host)")
	control := fs.String("control", "", "unix socket for ctl")
	name := fs.String("name", "", "name of this view, e.g. the host (default: the mount point's base name)")
	debug := fs.Bool("debug", false, "log every FUSE request to standard error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *backing == "" || *mnt == "" || *control == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "hbfence-faultfs serve: --backing, --mountpoint and --control are required, and nothing else")
		return 2
	}
	if stop == nil {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(c)
		stop = c
	}
	opts := faultfs.Options{Backing: *backing, Mountpoint: *mnt, Control: *control, Name: *name, Debug: *debug}
	if *debug {
		opts.Logger = log.New(stderr, "faultfs: ", log.Lmicroseconds)
	}
	f, err := faultfs.Mount(opts)
	if err != nil {
		fmt.Fprintf(stderr, "hbfence-faultfs: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "ready %s\n", *mnt)
	<-stop
	if err := f.Unmount(); err != nil {
		fmt.Fprintf(stderr, "hbfence-faultfs: %v\n", err)
		return 1
	}
	return 0
}

func ctl(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hbfence-faultfs ctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	control := fs.String("control", "", "the control socket of a serve")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *control == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "hbfence-faultfs ctl: --control and a command (set, clear, status) are required")
		return 2
	}
	reply, err := faultfs.Control(*control, strings.Join(fs.Args(), " "))
	if err != nil {
		fmt.Fprintf(stderr, "hbfence-faultfs: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, reply)
	return 0
}
