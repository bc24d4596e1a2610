//go:build cgo

package tpm_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
)

// Blobs survive a restart of a seeded simulator, and only of one with the
// same seed. (One simulator per process: each is closed before the next.)
func TestSeededSimulatorPersists(t *testing.T) {
	requireSimulator(t)
	ctx := context.Background()
	open := func(opts ...tpm.SimulatorOption) *tpm.TPM {
		tp, err := tpm.OpenSimulator(opts...)
		require.NoError(t, err)
		require.True(t, tp.IsSimulator())
		return tp
	}

	tp := open(tpm.WithSeed(42))
	sealed, err := tp.Seal(ctx, []byte("survives"), []byte{0, 1, 0})
	require.NoError(t, err)
	kb, pub, err := tp.CreateKey(ctx, tpm.ECCP256, []byte("k"))
	require.NoError(t, err)
	name := tp.SRKName()
	require.NoError(t, tp.Close())

	tp = open(tpm.WithSeed(42))
	assert.Equal(t, name, tp.SRKName(), "same seed, same SRK")
	require.NoError(t, tp.CheckSRK(name))
	got, err := tp.Unseal(ctx, sealed, []byte{0, 1, 0})
	require.NoError(t, err)
	assert.Equal(t, []byte("survives"), got)
	k, err := tp.LoadKey(ctx, kb, []byte("k"))
	require.NoError(t, err)
	d := digestOf("after restart")
	sig, err := k.SignContext(ctx, d, cryptoSHA256)
	require.NoError(t, err)
	verify(t, pub, d, sig, cryptoSHA256)
	require.NoError(t, tp.Close())

	for _, opts := range [][]tpm.SimulatorOption{{tpm.WithSeed(43)}, nil} {
		other := open(opts...)
		assert.False(t, bytes.Equal(name, other.SRKName()))
		assert.ErrorIs(t, other.CheckSRK(name), tpm.ErrSRKMismatch)
		_, err = other.Unseal(ctx, sealed, []byte{0, 1, 0})
		assert.ErrorIs(t, err, tpm.ErrWrongTPM)
		_, err = other.LoadKey(ctx, kb, []byte("k"))
		assert.ErrorIs(t, err, tpm.ErrWrongTPM)
		requireOnlyBaseline(t, other, 0)
		require.NoError(t, other.Close())
	}
}

func TestOpenSpecs(t *testing.T) {
	requireSimulator(t)
	for _, spec := range []string{"", "sim", "sim:seed=7"} {
		tp, err := tpm.Open(spec)
		require.NoError(t, err, spec)
		assert.True(t, tp.IsSimulator())
		st, err := tp.LockoutStatus(context.Background())
		require.NoError(t, err)
		assert.Equal(t, uint32(tpm.WindowsMaxTries), st.MaxTries, "the simulator gets Windows' lockout parameters")
		require.NoError(t, tp.Close())
	}
	a, err := tpm.Open("sim:seed=7")
	require.NoError(t, err)
	name := a.SRKName()
	require.NoError(t, a.Close())
	b, err := tpm.OpenSimulator(tpm.WithSeed(7))
	require.NoError(t, err)
	assert.Equal(t, name, b.SRKName())
	require.NoError(t, b.Close())
}
