package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hellosim/hellosim/container"
)

// A PIN change whose outcome the library could not learn from the TPM has
// its own exit code and tells the user to try the new PIN.
func TestPINMayHaveChangedIsSaid(t *testing.T) {
	err := fmt.Errorf("container: change PIN: %w: %w", container.ErrPINMayHaveChanged, fmt.Errorf("tpm: lost"))
	if got := exitCode(err); got != exitPINUnsure {
		t.Errorf("exit code %d, want %d", got, exitPINUnsure)
	}
	if line := errorLine(err); !strings.HasPrefix(line, "the PIN may have changed: try the new PIN") {
		t.Errorf("message %q does not tell the user to try the new PIN", line)
	}
}
