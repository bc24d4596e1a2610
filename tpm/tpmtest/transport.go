package tpmtest

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/tcp"
)

// openTransport opens the raw transport for spec: a tcp:// spec, or the
// simulator (see transport_sim.go).
func openTransport(spec string) (transport.TPMCloser, error) {
	if addr, ok := strings.CutPrefix(spec, "tcp://"); ok {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return nil, err
		}
		return tcp.Open(tcp.Config{
			CommandAddress:  net.JoinHostPort(host, port),
			PlatformAddress: net.JoinHostPort(host, strconv.FormatUint(p+1, 10)),
		})
	}
	if spec == "sim" || strings.HasPrefix(spec, "sim:") {
		return openSimTransport(spec)
	}
	return nil, fmt.Errorf("cannot record %q", spec)
}
