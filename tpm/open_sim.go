//go:build cgo

package tpm

import (
	"fmt"

	"github.com/google/go-tpm-tools/simulator"

	"github.com/hellosim/hellosim/tpm/internal/simtransport"
)

// OpenSimulator opens the embedded TPM 2.0 reference simulator (through
// go-tpm-tools) and sets Windows' dictionary-attack parameters on it. Only
// one simulator exists per process: a second OpenSimulator waits until the
// first is closed. Without WithSeed every call starts a freshly
// manufactured TPM with new random seeds.
func OpenSimulator(opts ...SimulatorOption) (*TPM, error) {
	var c simConfig
	for _, o := range opts {
		o(&c)
	}
	var (
		s   *simulator.Simulator
		err error
	)
	if c.seeded {
		s, err = simulator.GetWithFixedSeedInsecure(c.seed)
	} else {
		s, err = simulator.Get()
	}
	if err != nil {
		return nil, fmt.Errorf("tpm: open simulator: %w", err)
	}
	tr := simtransport.New(s)
	t, err := newTPM(tr, tr, true)
	if err == nil && c.seeded {
		t.volatileNV = "the seeded embedded simulator keeps its keys across processes but not its NV memory"
	}
	return t, err
}
