//go:build !windows

package tpm

import (
	"fmt"

	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// OpenDevice opens a TPM character device; "" means DefaultDevice. Prefer
// the resource-managed /dev/tpmrmN over /dev/tpmN, which only one process
// may use at a time. Nothing on the TPM is changed.
func OpenDevice(path string) (*TPM, error) {
	if path == "" {
		path = DefaultDevice
	}
	tr, err := linuxtpm.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tpm: open device %s: %w", path, err)
	}
	return newTPM(tr, tr, onDevice)
}
