//go:build cgo

package tpm

import (
	"bytes"
	"testing"

	"github.com/google/go-tpm-tools/simulator"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm/internal/simtransport"
)

// exchange is one command and the response it got.
type exchange struct{ cmd, rsp []byte }

// taping records every exchange through it.
type taping struct {
	next transport.TPM
	tape []exchange
}

func (t *taping) Send(cmd []byte) ([]byte, error) {
	c := bytes.Clone(cmd) // the simulator may decrypt in place
	rsp, err := t.next.Send(cmd)
	if err != nil {
		return nil, err
	}
	t.tape = append(t.tape, exchange{c, bytes.Clone(rsp)})
	return rsp, nil
}

// TestSimTransportSameBytes runs a fixed script of commands on the
// simulator through go-tpm's transport.FromReadWriter, then replays the same
// command bytes through simTransport. The script leaves the TPM as it found
// it (the primary key is flushed), so every response must be byte-for-byte
// the same, successes and error responses alike.
func TestSimTransportSameBytes(t *testing.T) {
	s, err := simulator.GetWithFixedSeedInsecure(8)
	require.NoError(t, err)
	st := simtransport.New(s)
	t.Cleanup(func() {
		if !s.IsClosed() {
			_ = s.Close()
		}
	})
	tape := &taping{next: transport.FromReadWriter(s)}

	_, err = tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(tpm2.TPMPTFamilyIndicator), PropertyCount: 8}.Execute(tape)
	require.NoError(t, err)
	primary, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(tape)
	require.NoError(t, err)
	_, err = tpm2.ReadPublic{ObjectHandle: primary.ObjectHandle}.Execute(tape)
	require.NoError(t, err)
	_, err = tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(0x80fffff0)}.Execute(tape)
	require.Error(t, err, "ReadPublic of a handle that is not loaded")
	_, err = tpm2.FlushContext{FlushHandle: primary.ObjectHandle}.Execute(tape)
	require.NoError(t, err)
	// Malformed commands: a size field that disagrees with the length, and
	// an unknown command code. The TPM answers both with an error response.
	for _, raw := range [][]byte{
		{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b},
		{0x80, 0x01, 0, 0, 0, 10, 0x20, 0, 0, 0},
	} {
		_, err := tape.Send(bytes.Clone(raw))
		require.NoError(t, err)
	}
	require.Len(t, tape.tape, 7)

	for i, ex := range tape.tape {
		rsp, err := st.Send(bytes.Clone(ex.cmd))
		require.NoError(t, err, "command %d", i)
		require.Equal(t, ex.rsp, rsp, "response %d differs", i)
	}
	require.NoError(t, st.Close())

	// A closed simulator is an error, not a panic.
	_, err = st.Send(tape.tape[0].cmd)
	require.ErrorIs(t, err, simulator.ErrUsingClosedSimulator)
}

// TestSimTransportUnderTPM checks that OpenSimulator uses simTransport and
// that a seal and unseal through it round-trip.
func TestSimTransportUnderTPM(t *testing.T) {
	tp, err := OpenSimulator()
	require.NoError(t, err)
	defer tp.Close()
	require.IsType(t, simtransport.Transport{}, tp.counter.next)
	blob, err := tp.Seal(t.Context(), []byte("thirty-two bytes of secret data!"), []byte{1, 0, 2})
	require.NoError(t, err)
	got, err := tp.Unseal(t.Context(), blob, []byte{1, 0, 2})
	require.NoError(t, err)
	require.Equal(t, []byte("thirty-two bytes of secret data!"), got)
}
