//go:build windows

package tpm

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport/windowstpm"
)

// OpenDevice opens the platform TPM through TPM Base Services (TBS). path
// must be empty: Windows has one TPM and TBS is its resource manager.
func OpenDevice(path string) (*TPM, error) {
	if path != "" {
		return nil, fmt.Errorf("tpm: open device %q: Windows takes no device path", path)
	}
	tr, err := windowstpm.Open()
	if err != nil {
		return nil, fmt.Errorf("tpm: open device: %w", err)
	}
	return newTPM(tr, tr, onDevice)
}
