//go:build cgo

package tpmtest

import (
	"strconv"
	"strings"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hellosim/hellosim/tpm/internal/simtransport"
)

func openSimTransport(spec string) (transport.TPMCloser, error) {
	var (
		s   *simulator.Simulator
		err error
	)
	if v, ok := strings.CutPrefix(spec, "sim:seed="); ok {
		seed, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil {
			return nil, perr
		}
		s, err = simulator.GetWithFixedSeedInsecure(seed)
	} else {
		s, err = simulator.Get()
	}
	if err != nil {
		return nil, err
	}
	return simtransport.New(s), nil
}
