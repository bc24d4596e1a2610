//go:build !cgo

package tpmtest

import (
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hellosim/hellosim/tpm"
)

func openSimTransport(string) (transport.TPMCloser, error) {
	return nil, tpm.ErrSimulatorUnavailable
}
