package store

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxGuestName bounds a guest name, in bytes.
const MaxGuestName = 128

// ValidGuestName is the one rule for guest names, checked wherever a name
// enters the pool's records (hbfence guest add): a name is shown on the
// operator's terminal, written to the logs and to JSON records, and
// handed to hypervisor tools and scripts as an argument. So it is valid
// UTF-8 (JSON would store anything else as U+FFFD, a name no command can
// then give back), printable with no space or control character (no
// terminal escape sequence), without '/', not "." or "..", does not begin
// with '-' (an option to a tool), and is at most MaxGuestName bytes. Host
// names, preferred ones included, follow ondisk.ValidHostName.
func ValidGuestName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("guest name is empty")
	case len(name) > MaxGuestName:
		return fmt.Errorf("guest name of %d bytes: at most %d", len(name), MaxGuestName)
	case !utf8.ValidString(name):
		return fmt.Errorf("guest name %q is not valid UTF-8", name)
	case name == "." || name == "..":
		return fmt.Errorf("guest name %q cannot be used: it names a directory", name)
	case name[0] == '-':
		return fmt.Errorf("guest name %q begins with '-', which a hypervisor tool would take for an option", name)
	}
	for _, r := range name {
		if r == '/' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("guest name %q contains %U; use printable characters without spaces or '/'", name, r)
		}
	}
	if strings.ContainsRune(name, utf8.RuneError) {
		return fmt.Errorf("guest name %q contains U+FFFD", name)
	}
	return nil
}
