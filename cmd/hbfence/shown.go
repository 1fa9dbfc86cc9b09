package main

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/hbfence/hbfence/restart/agent"
)

// maxShown bounds a name or message as printed for a terminal.
const maxShown = 200

// shown is s as it may reach an operator's terminal: unchanged when it is
// valid UTF-8 made of printable characters, else quoted with Go's escapes
// (an ESC becomes \x1b, an invalid byte \xff), and cut after maxShown
// bytes with the full length said. The rule for new names refuses such
// names at every entry (store.ValidGuestName); records written by older
// versions, or messages that quote them, may still hold them.
func shown(s string) string {
	clean := utf8.ValidString(s)
	for _, r := range s {
		if !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean && len(s) <= maxShown {
		return s
	}
	cut := s
	if len(cut) > maxShown {
		cut = cut[:maxShown]
	}
	out := cut
	if !clean {
		out = strconv.Quote(cut)
	}
	if len(s) > maxShown {
		out += fmt.Sprintf("… (%d bytes)", len(s))
	}
	return out
}

// shownGuest is g with every text field made safe to print.
func shownGuest(g agent.GuestStatus) agent.GuestStatus {
	g.Name, g.Config, g.Message, g.Host = shown(g.Name), shown(g.Config), shown(g.Message), shown(g.Host)
	pref := make([]string, len(g.Preferred))
	for i, p := range g.Preferred {
		pref[i] = shown(p)
	}
	g.Preferred = pref
	return g
}
