package reliability

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// childEnv switches the test binary into one of the child programs the
// crash and multi-process tests start (see child_test.go).
const childEnv = "HELLOSIM_RELIABILITY_CHILD"

// longEnv asks for the full sizes (continuous integration sets it).
const longEnv = "HELLOSIM_LONG"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		if err := runChild(role, os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// long reports whether the full sizes were asked for.
func long() bool {
	v, _ := strconv.ParseBool(os.Getenv(longEnv))
	return v
}

// size picks a size: full with HELLOSIM_LONG, small with -short, else normal.
func size(short, normal, full int) int {
	switch {
	case long():
		return full
	case testing.Short():
		return short
	}
	return normal
}
