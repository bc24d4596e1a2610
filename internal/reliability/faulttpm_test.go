package reliability

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// faultMode is how the fault transport fails a command.
type faultMode int

const (
	faultOff faultMode = iota
	// faultRC answers TPM_RC_FAILURE (TPM 2.0 Part 2 §6.6.3) without sending
	// the command: the TPM is in failure mode for this one command.
	faultRC
	// faultDrop returns a transport error without sending the command: the
	// command never reached the TPM.
	faultDrop
	// faultLoseResponse sends the command, lets the TPM execute it, and
	// returns a transport error instead of the response: the TPM acted, the
	// library does not know how.
	faultLoseResponse
)

func (m faultMode) String() string {
	switch m {
	case faultRC:
		return "rc-failure"
	case faultDrop:
		return "dropped-command"
	case faultLoseResponse:
		return "lost-response"
	}
	return "off"
}

// errInjected is the transport error the fault transport returns.
var errInjected = errors.New("faulttpm: injected transport failure")

// faultTransport sits between the library and the real TPM transport and
// fails the N-th command after it is armed. It does not implement Close, so
// closing the library's TPM leaves the raw transport open for inspection.
type faultTransport struct {
	next transport.TPM

	mu       sync.Mutex
	mode     faultMode
	at       int          // fail the at-th command after arming, 1-based
	seen     int          // commands since arming
	fired    bool         // the armed fault was injected
	firedCC  tpm2.TPMCC   // the command it was injected into
	codes    []tpm2.TPMCC // commands since arming
	injected int          // faults injected in total
}

var _ transport.TPM = (*faultTransport)(nil)

// arm makes the at-th command from now fail in mode.
func (f *faultTransport) arm(mode faultMode, at int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode, f.at, f.seen, f.fired, f.codes = mode, at, 0, false, nil
}

// disarm stops injecting and reports whether the armed fault fired, into
// which command, and the commands sent since arming.
func (f *faultTransport) disarm() (fired bool, cc tpm2.TPMCC, codes []tpm2.TPMCC) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fired, cc, codes = f.fired, f.firedCC, f.codes
	f.mode, f.at, f.seen, f.fired, f.codes = faultOff, 0, 0, false, nil
	return fired, cc, codes
}

// total is the number of faults injected so far.
func (f *faultTransport) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.injected
}

func commandCode(cmd []byte) tpm2.TPMCC {
	if len(cmd) < 10 {
		return 0
	}
	return tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10]))
}

// Send implements transport.TPM.
func (f *faultTransport) Send(cmd []byte) ([]byte, error) {
	f.mu.Lock()
	mode := faultOff
	if f.mode != faultOff {
		f.seen++
		f.codes = append(f.codes, commandCode(cmd))
		if f.seen == f.at {
			mode = f.mode
			f.fired, f.firedCC = true, commandCode(cmd)
			f.injected++
		}
	}
	f.mu.Unlock()
	switch mode {
	case faultRC:
		return tpmtest.ErrorAnswer(tpm2.TPMRCFailure), nil
	case faultDrop:
		return nil, errInjected
	case faultLoseResponse:
		if _, err := f.next.Send(cmd); err != nil {
			return nil, fmt.Errorf("%w (and the TPM failed too: %v)", errInjected, err)
		}
		return nil, errInjected
	}
	return f.next.Send(cmd)
}
