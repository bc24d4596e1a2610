//go:build cgo

// Package simtransport connects go-tpm to the embedded reference simulator
// without go-tpm's generic adapter.
//
// transport.FromReadWriteCloser goes through tpmutil.RunCommandRaw, which
// allocates and zeroes a 4 KiB buffer and decodes the response header by
// reflection on every command — about a fifth of a seal+unseal on the
// simulator. The simulator runs a command inside Write and buffers the whole
// response, so reading the header and then the size it names is all a
// transport has to do.
package simtransport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-tpm-tools/simulator"
)

// headerSize is the size of a response header: tag, responseSize,
// responseCode (TPM 2.0 Part 1 §18.2).
const headerSize = 10

// maxResponse is the largest response accepted, the reference
// implementation's MAX_RESPONSE_SIZE.
const maxResponse = 4096

// ErrMalformedResponse is a response whose header names an impossible size.
var ErrMalformedResponse = errors.New("malformed TPM response")

// Transport sends commands straight to an embedded simulator. It implements
// go-tpm's transport.TPMCloser. TPM_RC_RETRY and its kin are left to the
// caller, which resends the command whatever the transport.
type Transport struct {
	sim   *simulator.Simulator
	after func() error
}

// New wraps s.
func New(s *simulator.Simulator) Transport { return Transport{sim: s} }

// NewHooked wraps s and calls after once each command has run, before its
// response is returned; an error from after is returned in place of the
// response. A state file saves the simulator's NV there, so that no caller
// sees the answer of a command whose effect on NV could still be lost.
func NewHooked(s *simulator.Simulator, after func() error) Transport {
	return Transport{sim: s, after: after}
}

// Send runs one command and returns its whole response.
func (t Transport) Send(cmd []byte) ([]byte, error) {
	if _, err := t.sim.Write(cmd); err != nil {
		return nil, err
	}
	if t.after != nil {
		if err := t.after(); err != nil {
			t.drain()
			return nil, err
		}
	}
	var hdr [headerSize]byte
	if _, err := io.ReadFull(t.sim, hdr[:]); err != nil {
		t.drain()
		return nil, fmt.Errorf("simulator response: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[2:6])
	if n < headerSize || n > maxResponse {
		t.drain()
		return nil, fmt.Errorf("simulator response: %w: size %d", ErrMalformedResponse, n)
	}
	rsp := make([]byte, n)
	copy(rsp, hdr[:])
	if _, err := io.ReadFull(t.sim, rsp[headerSize:]); err != nil {
		t.drain()
		return nil, fmt.Errorf("simulator response: %w", err)
	}
	return rsp, nil
}

// drain discards what is left of a response that could not be read, so the
// next command's response starts at its header.
func (t Transport) drain() { _, _ = io.Copy(io.Discard, t.sim) }

// Close closes the simulator.
func (t Transport) Close() error { return t.sim.Close() }
