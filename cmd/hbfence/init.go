package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
	"github.com/hbfence/hbfence/heartbeat/timing"
)

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", "PATH", stderr)
	slots := fs.Int("slots", 64, fmt.Sprintf("number of host slots (%d..%d)", ondisk.MinSlots, ondisk.MaxSlots))
	uuid := fs.String("uuid", "", "pool UUID (default: a new random one)")
	profile := fs.String("profile", "default", "timing profile: "+fmt.Sprint(timing.ProfileNames())+", or "+advisedProfile+" with --from")
	from := fs.String("from", "", "with --profile "+advisedProfile+": the output of hbfence probe --json whose advice gives the timing")
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
	var p timing.Params
	switch {
	case *profile == advisedProfile && *from == "":
		return fmt.Errorf("%w: --profile %s needs --from PROBE.json, the output of hbfence probe --json", errUsage, advisedProfile)
	case *profile == advisedProfile:
		if p, err = adviceFrom(*from); err != nil {
			return fmt.Errorf("%w; nothing was written", err)
		}
	case *from != "":
		return fmt.Errorf("%w: --from is for --profile %s (the timing of --profile %s comes from the profile)", errUsage, advisedProfile, *profile)
	default:
		if p, err = timing.Profile(*profile); err != nil {
			return fmt.Errorf("%w: --profile: %v", errUsage, err)
		}
	}
	named := p
	for _, o := range []struct {
		v *time.Duration
		d *time.Duration
	}{{interval, &p.Interval}, {ioTimeout, &p.IOTimeout}, {renewal, &p.RenewalFail}, {watchdog, &p.Watchdog}, {hostDead, &p.HostDead}} {
		if *o.v != 0 {
			*o.d = *o.v
		}
	}
	// The header names the profile its timing is; overrides that change
	// it make it another timing, which status and dump must not call by
	// the profile's name.
	profileName := *profile
	if p != named {
		profileName = customProfile
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
			return ondisk.NewHeader(pool, ss, *slots, p, profileName, time.Now())
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

// customProfile is the profile name of a pool whose timing flags changed
// the timing of the profile given (or of the default one).
const customProfile = "custom"

// advisedProfile is the profile name of a pool formatted from a probe's
// advice (hbfence init --profile advised --from PROBE.json).
const advisedProfile = "advised"

// adviceFrom reads the advice of hbfence probe --json from path: the
// five figures of its "advice" object, as Go durations. Every error
// names the file and the field.
func adviceFrom(path string) (timing.Params, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return timing.Params{}, fmt.Errorf("--from: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return timing.Params{}, fmt.Errorf("%s: not the output of hbfence probe --json: %v", path, err)
	}
	raw, ok := top["advice"]
	if !ok {
		return timing.Params{}, fmt.Errorf("%s: no field advice: not the output of hbfence probe --json", path)
	}
	if string(raw) == "null" {
		var why string
		json.Unmarshal(top["advice_error"], &why)
		if why == "" {
			why = "advice_error is empty"
		}
		return timing.Params{}, fmt.Errorf("%s: field advice is null: the probe gave no advice (%s)", path, why)
	}
	var adv map[string]json.RawMessage
	if err := json.Unmarshal(raw, &adv); err != nil {
		return timing.Params{}, fmt.Errorf("%s: field advice: %v", path, err)
	}
	var p timing.Params
	for _, f := range []struct {
		name string
		d    *time.Duration
	}{{"interval", &p.Interval}, {"io_timeout", &p.IOTimeout}, {"renewal_fail", &p.RenewalFail}, {"watchdog", &p.Watchdog}, {"host_dead", &p.HostDead}} {
		v, ok := adv[f.name]
		if !ok {
			return timing.Params{}, fmt.Errorf("%s: field advice.%s is missing", path, f.name)
		}
		var text string
		if err := json.Unmarshal(v, &text); err != nil {
			return timing.Params{}, fmt.Errorf("%s: field advice.%s is %s: want a duration in quotes, such as \"2s\"", path, f.name, v)
		}
		if *f.d, err = time.ParseDuration(text); err != nil {
			return timing.Params{}, fmt.Errorf("%s: field advice.%s: %q is not a duration such as \"2s\"", path, f.name, text)
		}
	}
	if err := p.Validate(); err != nil {
		return timing.Params{}, fmt.Errorf("%s: field advice: %w", path, err)
	}
	return p, nil
}
