package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", "PATH", stderr)
	slots := fs.Int("slots", 64, fmt.Sprintf("number of host slots (%d..%d)", ondisk.MinSlots, ondisk.MaxSlots))
	uuid := fs.String("uuid", "", "pool UUID (default: a new random one)")
	profile := fs.String("profile", "default", "timing profile: "+fmt.Sprint(timing.ProfileNames()))
	interval := fs.Duration("interval", 0, "override the profile's interval")
	ioTimeout := fs.Duration("io-timeout", 0, "override the profile's io_timeout")
	renewal := fs.Duration("renewal-fail", 0, "override the profile's renewal_fail")
	watchdog := fs.Duration("watchdog", 0, "override the profile's watchdog")
	hostDead := fs.Duration("host-dead", 0, "override the profile's host_dead")
	sector := fs.Int("sector-size", 0, "sector size, 512 or 4096 (default: detected from the storage)")
	offset := fs.Int64("offset", 0, "byte offset of the area in PATH (a region of a shared device)")
	force := fs.Bool("force", false, "overwrite an existing hbfence area (not one whose slots still change) or other data")
	asJSON := fs.Bool("json", false, "print the header written as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	path, err := oneArg(pos, "PATH")
	if err != nil {
		return err
	}
	p, err := timing.Profile(*profile)
	if err != nil {
		return fmt.Errorf("%w: --profile: %v", errUsage, err)
	}
	for _, o := range []struct {
		v *time.Duration
		d *time.Duration
	}{{interval, &p.Interval}, {ioTimeout, &p.IOTimeout}, {renewal, &p.RenewalFail}, {watchdog, &p.Watchdog}, {hostDead, &p.HostDead}} {
		if *o.v != 0 {
			*o.d = *o.v
		}
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%w; nothing was written", err)
	}
	pool := ondisk.NewUUID()
	if *uuid != "" {
		if pool, err = ondisk.ParseUUID(*uuid); err != nil {
			return fmt.Errorf("%w: --uuid: %v", errUsage, err)
		}
	}
	if *sector != 0 && *sector != 512 && *sector != 4096 {
		return fmt.Errorf("%w: --sector-size %d: use 512 or 4096", errUsage, *sector)
	}
	if *force {
		// Without --force Format refuses any hbfence area at once.
		if err := refuseLiveArea(ctx, path, *offset, stderr); err != nil {
			return err
		}
	}
	h, err := area.Format(path, *offset, area.FormatOptions{
		SectorSize: *sector,
		Force:      *force,
		Create:     *offset == 0,
		Build: func(ss int) (ondisk.Header, error) {
			return ondisk.NewHeader(pool, ss, *slots, p, *profile, time.Now())
		},
	})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(headerJSON(h))
	}
	fmt.Fprintf(stdout, "formatted %s at offset %d: pool %s, %d slots of %d bytes (%d bytes in all), profile %s: %s\n",
		path, *offset, h.PoolUUID, h.SlotCount, h.SectorSize, h.AreaSize, h.Profile, h.Timing)
	return nil
}
