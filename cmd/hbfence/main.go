// Command hbfence is the shared-storage heartbeat and fencing daemon and
// its command-line tools.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/control"
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
		"init":       {"format a heartbeat area (file or block device)", cmdInit},
		"dump":       {"show the header and every used slot, without a daemon", cmdDump},
		"daemon":     {"run the heartbeat daemon", cmdDaemon},
		"status":     {"show the pool as the local daemon sees it", cmdStatus},
		"fence":      {"order a host to fence itself (a poison pill through the shared storage)", cmdFence},
		"master":     {"show the pool master, or move it: master move HOST", cmdMaster},
		"guest":      {"manage guests: add, remove, list, show, ha enable|disable, start [--on HOST], stop, migrate GUEST HOST", cmdGuest},
		"pool":       {"pool settings: show, validate, ha enable|disable, role HOST ROLES, repository add DIR, repair, managed-by --manager-uuid UUID (or --clear)", cmdPool},
		"repository": {"the pool's repositories on shared storage, mounted on every host: add KIND:SOURCE --uuid UUID, remove UUID, list", cmdRepository},
		"host":       {"host evacuate HOST [--migrate GUEST,...|--migrate-all]: empty a host before a planned shutdown; host maintenance enter|exit HOST", cmdHost},
		"probe":      {"measure the storage's latency and advise the fastest timing it can afford", cmdProbe},
		"version":    {"print the version", cmdVersion},
	}
}

// changeTimeout bounds a command that changes the pool: on a host that is
// not the master its daemon forwards it to the master and waits for the
// answer (bounded there by the pool's timing).
const changeTimeout = 3 * time.Minute

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
			return exitUsage
		}
		return exitOK
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...) // as "hbfence version"
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "hbfence: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		var ec exitWith
		if errors.As(err, &ec) {
			return ec.code // the command printed why
		}
		fmt.Fprintf(stderr, "hbfence %s: %v\n", args[0], err)
		if wantsJSON(args[1:]) {
			printJSONError(stdout, err)
		}
		return exitCode(err)
	}
	return exitOK
}

// JSONSchema is the version of every command's --json output (fields are
// added within a version, never renamed or removed).
const JSONSchema = 1

// wantsJSON: the command line asks for --json.
func wantsJSON(args []string) bool {
	for _, a := range args {
		switch a {
		case "--json", "-json", "--json=true", "-json=true":
			return true
		case "--":
			return false
		}
	}
	return false
}

// jsonError is what a command given --json prints on standard output when
// it fails: {"schema": 1, "error": {"code": ..., "message": ...}}.
type jsonError struct {
	Schema int `json:"schema"`
	Error  struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorCode is an error's stable code in --json output: usage (the command
// line), config (the configuration file), unreachable (no daemon answers),
// refused (the daemon refused the command or it failed there), failed
// (anything else).
func errorCode(err error) string {
	var re *control.RemoteError
	switch {
	case errors.Is(err, errUsage):
		return "usage"
	case errors.Is(err, config.ErrInvalid):
		return "config"
	case errors.Is(err, control.ErrUnreachable):
		return "unreachable"
	case errors.As(err, &re):
		return "refused"
	}
	return "failed"
}

func printJSONError(w io.Writer, err error) {
	var je jsonError
	je.Schema = JSONSchema
	je.Error.Code, je.Error.Message = errorCode(err), err.Error()
	json.NewEncoder(w).Encode(je)
}

// The exit codes (docs/operations.md, "Exit codes"; ExitCodeTable).
const (
	exitOK      = 0  // done; the daemon: stopped cleanly ("left" written), or fenced off by a poison pill
	exitFailure = 1  // a runtime failure: systemd starts the daemon again
	exitUsage   = 2  // a bad command line
	exitConfig  = 78 // EX_CONFIG: an error of the configuration; RestartPreventExitStatus=78 keeps systemd from respawning
)

// ExitCodeTable is the table hbfence daemon -h prints.
const ExitCodeTable = `exit codes:
  0   stopped cleanly (SIGTERM: guests handed over, "left" written), or
      fenced off by a poison pill with action off (it stays out of the pool
      until restarted: Restart=on-failure does not restart it)
  1   a runtime failure: the pool could not be joined, the storage, the
      control socket or the host lock failed, an upgrade was refused, or
      the daemon was stopped while fenced and waiting for the watchdog or
      UNSAFE; systemd starts it again (Restart=on-failure)
  2   a bad command line
  78  a configuration error (EX_CONFIG): the file cannot be read, a key is
      unknown or has a bad value, a path or device it names is missing, the
      pool's timing rule fails with this watchdog, or the watchdog cannot be
      armed; stderr names the file, the key and the fix; the unit's
      RestartPreventExitStatus=78 stops systemd from starting it again until
      the file is fixed
`

// exitCode is the exit code of a command's error.
func exitCode(err error) int {
	switch {
	case errors.Is(err, errUsage):
		return exitUsage
	case errors.Is(err, config.ErrInvalid):
		return exitConfig
	}
	return exitFailure
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
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"schema": JSONSchema, "version": version, "go": runtime.Version()})
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
