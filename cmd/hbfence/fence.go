package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/hbfence/hbfence/internal/control"
	"github.com/hbfence/hbfence/internal/daemon"
)

func cmdFence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("fence", "HOST", stderr)
	sock := socketFlags(fs)
	action := fs.String("action", "reset", "reset: the host stops feeding its watchdog and kills its guests, and is reset; off: it kills its guests and stays out of the pool")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	host, err := oneArg(pos, "HOST")
	if err != nil {
		return err
	}
	if *action != "reset" && *action != "off" {
		return fmt.Errorf("%w: --action %q: use reset or off", errUsage, *action)
	}
	socket, err := sock()
	if err != nil {
		return err
	}
	// The daemon waits at most renewal_fail for the acknowledgement.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var res daemon.FenceResult
	if err := control.Call(ctx, socket, "fence", daemon.FenceRequest{Host: host, Action: *action}, &res); err != nil {
		return err
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout, res.Message)
	}
	if res.Refused {
		return fmt.Errorf("%s refused the poison pill", host)
	}
	if !res.Acked {
		return fmt.Errorf("%s did not acknowledge the poison pill", host)
	}
	return nil
}
