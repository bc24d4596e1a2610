package identity

import (
	"fmt"
	"strings"
)

// The same helpers as internal/enum, kept here because identity imports
// nothing of the module (docs/ARCHITECTURE.md): a program may take the
// vocabulary alone.

func enumName(names []string, v int, typ string) string {
	if v >= 0 && v < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

func enumMarshal(names []string, v int, what string) ([]byte, error) {
	if v >= 0 && v < len(names) {
		return []byte(names[v]), nil
	}
	return nil, fmt.Errorf("identity: invalid %s %d", what, v)
}

func enumUnmarshal(names []string, v *int, b []byte, what string) error {
	s := string(b)
	for i, n := range names {
		if strings.EqualFold(s, n) {
			*v = i
			return nil
		}
	}
	return fmt.Errorf("identity: unknown %s %q (want one of %s)", what, s, strings.Join(names, ", "))
}
