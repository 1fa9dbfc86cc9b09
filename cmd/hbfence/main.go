// Command hbfence is the shared-storage heartbeat and fencing daemon and
// its command-line tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/hbfence/hbfence/internal/sysprio"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"init":    {"format a heartbeat area (file or block device)", cmdInit},
		"dump":    {"show the header and every used slot, without a daemon", cmdDump},
		"daemon":  {"run the heartbeat daemon", cmdDaemon},
		"status":  {"show the pool as the local daemon sees it", cmdStatus},
		"fence":   {"order a host to fence itself (a poison pill through the shared storage)", cmdFence},
		"master":  {"show the pool master, or move it: master move HOST", cmdMaster},
		"guest":   {"manage guests: add, remove, list, show, ha enable|disable, start, stop", cmdGuest},
		"pool":    {"pool settings: ha enable|disable, role HOST ROLES, repository add DIR, repair", cmdPool},
		"host":    {"host evacuate HOST [--migrate GUEST,...|--migrate-all]: empty a host before a planned shutdown", cmdHost},
		"probe":   {"measure the storage's latency and advise the fastest timing it can afford", cmdProbe},
		"version": {"print the version", cmdVersion},
	}
}

// errUsage marks an error the user fixes by changing the command line.
var errUsage = errors.New("usage")

func main() {
	if len(os.Args) > 1 && os.Args[1] == sysprio.ChildArg {
		// The shim between the daemon and a command it runs.
		fmt.Fprintf(os.Stderr, "hbfence: %v\n", sysprio.RunChild(os.Args[2:]))
		os.Exit(127)
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "hbfence: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "hbfence %s: %v\n", args[0], err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: hbfence COMMAND [flags] [args]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'hbfence COMMAND -h' for a command's flags. See docs/cli.md.\n")
}

func newFlags(name, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("hbfence "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\n%s.\n\nflags:\n", strings.TrimSpace("usage: hbfence "+name+" [flags] "+args), commands[name].summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, allowing them before and after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "", stderr)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "hbfence %s\n", version)
	return nil
}

func oneArg(pos []string, what string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("%w: want exactly one %s, got %d argument(s): %s", errUsage, what, len(pos), strings.Join(pos, " "))
	}
	return pos[0], nil
}
