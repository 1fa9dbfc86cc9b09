// Package textenum renders small integer enums (states, kinds) as the
// words that logs, status JSON and docs use, and parses them back.
package textenum

import "fmt"

// Name is names[i], or kind(i) for a value outside the table.
func Name(names []string, i int, kind string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", kind, i)
}

// Parse is the index of b in names, or an error naming kind.
func Parse(names []string, b []byte, kind string) (int, error) {
	for i, n := range names {
		if n == string(b) {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown %s %q", kind, b)
}
