package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/daemon"
)

func cmdDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("daemon", "", stderr)
	cfgPath := fs.String("config", config.DefaultPath, "configuration file")
	usage := fs.Usage
	fs.Usage = func() {
		usage()
		fmt.Fprintf(stderr, "\n%s\n%s\nSee docs/operations.md for what a restart, a stop, a reload and an upgrade do to the guests,\nand for reading the journal after a fence.\n", daemon.SignalTable, ExitCodeTable)
	}
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	logs := daemon.NewLogs(c, os.Stderr)
	err = daemon.Run(ctx, c, version, logs)
	if err != nil && logs.ToJournal() {
		// stderr's line (main) reaches the journal at the stream's
		// priority: the journal gets it at err, with the exit code.
		log := logs.Logger()
		log.Error().Err(err).Int("exit_code", exitCode(err)).Msg("hbfence daemon exits")
	}
	return err
}
