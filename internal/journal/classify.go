package journal

import "strings"

// classify gives a MESSAGE_ID to a line of a package that logs without
// one (the heartbeat member, the master lease, the guest agent, which
// know nothing of the journal), from the fields those lines carry. The
// daemon's own lines carry theirs (Tag, Crit). TestClassify pins each rule
// to the fields the line is written with; TestJournalFromRealDaemons sees
// them from real daemons.
func classify(fields []field) ID {
	get := func(k string) (string, bool) {
		for _, f := range fields {
			if f.key == k {
				return f.val, true
			}
		}
		return "", false
	}
	_, peer := get("peer")
	_, from := get("from")
	to, hasTo := get("to")
	if peer && from && hasTo {
		// heartbeat.Member.report: a peer's change of state.
		switch to {
		case "suspect":
			return MsgHostSuspect
		case "dead":
			return MsgHostDead
		case "left":
			return MsgHostLeft
		}
	}
	if ev, ok := get("event"); ok {
		// heartbeat/master logEvent: a change of the pool's master.
		if _, epoch := get("epoch"); epoch && (ev == "holder-changed" || ev == "acquired") {
			return MsgMasterChange
		}
	}
	if c, _ := get("component"); c == "guests" {
		// restart/agent: a guest this host could not start, stop or
		// migrate (warn "... failed"), or an error about one.
		lv, _ := get("level")
		msg, _ := get("message")
		_, g := get("guest")
		if g && (lv == "error" || lv == "warn" && strings.HasSuffix(msg, " failed")) {
			return MsgGuestError
		}
	}
	return ""
}
