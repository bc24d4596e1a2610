//go:build !cgo

package tpm

// OpenSimulator needs the embedded simulator, which is C code built with
// cgo; this build has no cgo, so it returns ErrSimulatorUnavailable.
func OpenSimulator(opts ...SimulatorOption) (*TPM, error) {
	return nil, ErrSimulatorUnavailable
}
