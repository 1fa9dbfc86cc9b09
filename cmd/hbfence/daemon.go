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
	return daemon.Run(ctx, c, version, daemon.NewLogs(c, os.Stderr))
}
