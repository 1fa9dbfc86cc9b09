package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/hbfence/hbfence/heartbeat/area"
	"github.com/hbfence/hbfence/internal/journal"
	"github.com/hbfence/hbfence/restart/store"
)

// Alarm is a condition the operator must act on, with a stable code that
// scripts and `hbfence status --check` read.
type Alarm struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// The alarms' codes. They never change meaning; new ones may be added.
const (
	// AlarmAreaReplaced: the heartbeat area's path no longer names the
	// area this daemon opened, or its header changed (areawatch.go).
	AlarmAreaReplaced = "area-replaced"
	// AlarmRecordsOfAnotherPool: the guest records on the cluster root
	// name another pool than this host's heartbeat area.
	AlarmRecordsOfAnotherPool = "records-of-another-pool"
)

// verifier is what the area watch needs of the open area.
type verifier interface{ Verify() error }

// watchArea checks every interval that the heartbeat area is still the one
// this daemon opened (area.Verify: the path's device and inode, the header
// read again with O_DIRECT). Once it is not (issue 9, item 6):
//
//   - the master role is given up at once, without a write: a master of
//     an area nobody else reads would act beside the new area's master;
//   - the alarm area-replaced is raised, in the log (error) and in status;
//   - if the area was re-formatted in place, this host's writes would land
//     in another pool's area (and overwrite a slot a host of that pool
//     took): the incarnation fences (its HA guests killed, or the
//     watchdog resets the machine), and the daemon then exits instead of
//     joining again with the old header;
//   - if the path names another file (the old one deleted or moved), the
//     member goes on renewing the old inode, which no host of the new pool
//     reads: the watchdog stays fed and the guests run on, untouched. No
//     master can restart them: the new pool's master refuses the old
//     pool's records (store.ErrOtherPool), and every master of the old
//     pool gave its role up the same way. The daemon stays so until it is
//     restarted, and never joins again on the old area.
//
// A check that cannot tell (the header read failed) changes nothing: the
// renewals' own rules judge the storage.
func (d *Daemon) watchArea(ctx context.Context, in *incarnation, a verifier, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		err := a.Verify()
		var re *area.ReplacedError
		if !errors.As(err, &re) {
			if err != nil {
				d.log.Debug().Err(err).Msg("checking the heartbeat area's identity")
			}
			continue
		}
		d.areaReplaced(in, re)
		return
	}
}

// areaReplaced is the daemon's answer to a replaced area (watchArea).
func (d *Daemon) areaReplaced(in *incarnation, re *area.ReplacedError) {
	d.mu.Lock()
	first := d.replaced == nil
	d.replaced = re
	d.mu.Unlock()
	if !first {
		return
	}
	in.ms.halt()
	if re.InPlace {
		journal.Crit(d.log.Error(), journal.MsgAreaReplaced).Err(re).Str("alarm", AlarmAreaReplaced).
			Msg("the heartbeat area was re-formatted under this daemon: master role given up; FENCING, since this host's writes would land in another pool's area; the daemon then exits (restart it to join the new area)")
		in.fc.order("the heartbeat area was re-formatted under this daemon: " + re.Reason)
		return
	}
	journal.Crit(d.log.Error(), journal.MsgAreaReplaced).Err(re).Str("alarm", AlarmAreaReplaced).
		Msg("the heartbeat area was replaced: master role given up; this host goes on renewing the old file, which no host of the new area reads, and its guests run on untouched (no master can restart them); restart the daemon once the pool's area is right")
}

// replacedArea is the replaced area found, or nil.
func (d *Daemon) replacedArea() *area.ReplacedError {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.replaced
}

// alarms are the conditions status reports for the operator.
func (d *Daemon) alarms() []Alarm {
	var out []Alarm
	if re := d.replacedArea(); re != nil {
		out = append(out, Alarm{Code: AlarmAreaReplaced, Message: re.Error()})
	}
	if ag := d.currentAgent(); ag != nil {
		if err := ag.Foreign(); errors.Is(err, store.ErrOtherPool) {
			out = append(out, Alarm{Code: AlarmRecordsOfAnotherPool, Message: err.Error()})
		}
	}
	return out
}
