package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/heartbeat/directio"
	"github.com/hbfence/hbfence/heartbeat/ondisk"
)

type headerOut struct {
	Path        string      `json:"path,omitempty"`
	Offset      int64       `json:"offset"`
	Format      string      `json:"format"`
	PoolUUID    ondisk.UUID `json:"pool_uuid"`
	SectorSize  uint32      `json:"sector_size"`
	Slots       uint32      `json:"slots"`
	AreaSize    uint64      `json:"area_size"`
	Profile     string      `json:"profile"`
	Interval    string      `json:"interval"`
	IOTimeout   string      `json:"io_timeout"`
	RenewalFail string      `json:"renewal_fail"`
	Watchdog    string      `json:"watchdog"`
	HostDead    string      `json:"host_dead"`
	Created     time.Time   `json:"created"`
}

func headerJSON(h ondisk.Header) headerOut {
	return headerOut{
		Format:      fmt.Sprintf("%d.%d", h.FormatMajor, h.FormatMinor),
		PoolUUID:    h.PoolUUID,
		SectorSize:  h.SectorSize,
		Slots:       h.SlotCount,
		AreaSize:    h.AreaSize,
		Profile:     h.Profile,
		Interval:    h.Timing.Interval.String(),
		IOTimeout:   h.Timing.IOTimeout.String(),
		RenewalFail: h.Timing.RenewalFail.String(),
		Watchdog:    h.Timing.Watchdog.String(),
		HostDead:    h.Timing.HostDead.String(),
		Created:     h.CreatedWall,
	}
}

type slotOut struct {
	Slot       int               `json:"slot"`
	Checksum   ondisk.SlotStatus `json:"checksum"`
	Reason     string            `json:"reason,omitempty"`
	HostName   string            `json:"host_name"`
	Generation uint64            `json:"generation"`
	Sequence   uint64            `json:"sequence"`
	State      ondisk.SlotState  `json:"state"`
	Version    uint16            `json:"version"`
	Agent      string            `json:"agent"`
	MachineID  ondisk.UUID       `json:"machine_id"`
	Wall       time.Time         `json:"wall_time"`
	Messages   []ondisk.Message  `json:"messages,omitempty"`
}

type dumpOut struct {
	Header headerOut `json:"header"`
	Slots  []slotOut `json:"slots"`
}

func cmdDump(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dump", "PATH", stderr)
	offset := fs.Int64("offset", 0, "byte offset of the area in PATH")
	asJSON := fs.Bool("json", false, "print JSON")
	all := fs.Bool("all", false, "show unused slots too")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	path, err := oneArg(pos, "PATH")
	if err != nil {
		return err
	}
	a, err := area.Open(path, *offset, directio.ReadOnly)
	if err != nil {
		return err
	}
	defer a.Close()
	h := a.Header()
	raw := make([]byte, h.SlotsLen())
	if err := a.ReadSlots(raw); err != nil {
		return err
	}
	out := dumpOut{Header: headerJSON(h), Slots: []slotOut{}}
	out.Header.Path, out.Header.Offset = path, *offset
	for _, d := range ondisk.DecodeSlots(raw, h) {
		if d.Status == ondisk.SlotUnused && !*all {
			continue
		}
		s := slotOut{Slot: d.Index, Checksum: d.Status, Reason: d.Reason, HostName: d.Slot.HostName,
			Generation: d.Slot.Generation, Sequence: d.Slot.Sequence, State: d.Slot.State,
			Version: d.Slot.Version, Agent: d.Slot.Agent, MachineID: d.Slot.MachineID, Wall: d.Slot.Wall}
		for _, m := range d.Slot.Messages {
			if !m.Empty() {
				s.Messages = append(s.Messages, m)
			}
		}
		out.Slots = append(out.Slots, s)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	hj := out.Header
	fmt.Fprintf(stdout, "area     %s offset %d\nformat   %s\npool     %s\nsectors  %d bytes, %d slots, %d bytes in all\ncreated  %s\ntiming   profile %s: interval %s, io_timeout %s, renewal_fail %s, watchdog %s, host_dead %s\n\n",
		path, *offset, hj.Format, hj.PoolUUID, hj.SectorSize, hj.Slots, hj.AreaSize, fmtWall(hj.Created),
		hj.Profile, hj.Interval, hj.IOTimeout, hj.RenewalFail, hj.Watchdog, hj.HostDead)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLOT\tHOST\tGENERATION\tSEQUENCE\tSTATE\tVERSION\tAGENT\tWRITTEN (writer's clock)\tCHECKSUM")
	for _, s := range out.Slots {
		check := s.Checksum.String()
		if s.Reason != "" {
			check += " (" + s.Reason + ")"
		}
		if s.Checksum == ondisk.SlotCorrupt || s.Checksum == ondisk.SlotUnused {
			fmt.Fprintf(tw, "%d\t-\t-\t-\t-\t-\t-\t-\t%s\n", s.Slot, check)
			continue
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%d\t%s\t%s\t%s\n", s.Slot, s.HostName, s.Generation, s.Sequence,
			s.State, s.Version, s.Agent, fmtWall(s.Wall), check)
	}
	tw.Flush()
	if len(out.Slots) == 0 {
		fmt.Fprintln(stdout, "(no slot in use)")
	}
	return nil
}

func fmtWall(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05.000")
}
