// Package enum gives the module's small enumerations (values 0 to
// len(names)-1, one string form each) their String, MarshalText and
// UnmarshalText, so that every enumeration prints, encodes and parses the
// same way.
package enum

import (
	"fmt"
	"strings"
)

// Name is names[v], or typ(v) for a value out of range or without a name
// ("", as a value a table skips).
func Name(names []string, v int, typ string) string {
	if v >= 0 && v < len(names) && names[v] != "" {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

// Marshal is names[v] as text; a value out of range is an error that
// starts with pkg and names what the value is.
func Marshal(pkg string, names []string, v int, what string) ([]byte, error) {
	if v >= 0 && v < len(names) {
		return []byte(names[v]), nil
	}
	return nil, fmt.Errorf("%s: invalid %s %d", pkg, what, v)
}

// Unmarshal sets *v to the index of the name b spells, in any case; an
// unknown name is an error that starts with pkg and lists the names.
func Unmarshal(pkg string, names []string, v *int, b []byte, what string) error {
	s := string(b)
	for i, n := range names {
		if strings.EqualFold(s, n) {
			*v = i
			return nil
		}
	}
	return fmt.Errorf("%s: unknown %s %q (want one of %s)", pkg, what, s, strings.Join(names, ", "))
}
