// Package journal writes hbfence's log lines into the systemd journal by
// its native protocol (systemd.journal-fields(7), "Native Journal
// Protocol"): one datagram per line to journald's socket, with the line's
// PRIORITY, its MESSAGE_ID (ids.go, the catalog in
// packaging/hbfence.catalog) and every field of the line as a journal
// field of its own (HBFENCE_HOST=, HBFENCE_PEER=, HBFENCE_SLOT=,
// HBFENCE_EPOCH=, HBFENCE_GUEST=, ...), so that
//
//	journalctl -u hbfence -p crit
//	journalctl -u hbfence MESSAGE_ID=8be6ad7ca3084be3acea8dca77de549e
//	journalctl -u hbfence HBFENCE_PEER=node2
//
// find them.
//
// The daemon's lines are zerolog JSON objects; Writer turns each into one
// journal entry. The priority follows the level (debug 7, info 6, warn 4,
// error 3), unless the line carries a "priority" field: every fence and
// every loss of safety is logged with Crit (2), which journald writes to
// disk at once (it syncs entries of priority crit and above before it
// answers the next), so that the reason of a fence is on disk before the
// watchdog resets the machine.
//
// A line journald cannot take (its socket is missing, refuses, or stays
// full for SendTimeout) is written to Fallback (stderr) instead: no line
// is lost, and a stuck journald delays a log call by SendTimeout at most.
package journal

import (
	"os"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/rs/zerolog"
)

// ID is a MESSAGE_ID: 32 lower-case hex digits.
type ID string

func (id ID) String() string { return string(id) }

// The zerolog fields Writer reads as the journal's own fields.
const (
	// FieldID carries the MESSAGE_ID.
	FieldID = "message_id"
	// FieldPriority overrides the priority the level gives.
	FieldPriority = "priority"
)

// Syslog priorities (syslog(3)).
const (
	PriEmerg = iota
	PriAlert
	PriCrit
	PriErr
	PriWarning
	PriNotice
	PriInfo
	PriDebug
)

// Tag marks ev as an event of kind id.
func Tag(ev *zerolog.Event, id ID) *zerolog.Event { return ev.Str(FieldID, string(id)) }

// Crit marks ev as an event of kind id at priority crit: a fence, a loss
// of safety. journald syncs it to disk at once.
func Crit(ev *zerolog.Event, id ID) *zerolog.Event {
	return ev.Str(FieldID, string(id)).Int(FieldPriority, PriCrit)
}

// DefaultSocket is journald's socket for the native protocol.
const DefaultSocket = "/run/systemd/journal/socket"

// SocketEnv names another socket than DefaultSocket (tests: a datagram
// socket that records what the daemon sends).
const SocketEnv = "HBFENCE_JOURNAL_SOCKET"

// Socket is the socket to send to: $HBFENCE_JOURNAL_SOCKET, or
// DefaultSocket.
func Socket() string {
	if s := os.Getenv(SocketEnv); s != "" {
		return s
	}
	return DefaultSocket
}

// StderrIsJournal reports whether stderr is connected to the journal
// (systemd sets JOURNAL_STREAM to the stream's device and inode; a child
// whose stderr was redirected no longer matches).
func StderrIsJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return err == nil && ok
}
