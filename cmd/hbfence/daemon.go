package main

import (
	"context"
	"io"
	"os"

	"github.com/hbfence/hbfence/internal/config"
	"github.com/hbfence/hbfence/internal/daemon"
)

func cmdDaemon(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("daemon", "", stderr)
	cfgPath := fs.String("config", config.DefaultPath, "configuration file")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	return daemon.Run(ctx, c, version, daemon.Logger(c, os.Stderr))
}
