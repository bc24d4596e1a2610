package device

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// A device identity survives its file and signs without any PIN; its file
// parses strictly.
func TestDeviceSurvivesItsFile(t *testing.T) {
	ctx := context.Background()
	tp := tpmtest.Open(t)
	d, err := Join(ctx, tp, nil)
	require.NoError(t, err)
	assert.True(t, isLowerGUID(d.ID()))
	raw, err := d.MarshalBinary()
	require.NoError(t, err)
	d2, err := Parse(raw)
	require.NoError(t, err)
	assert.Equal(t, d.ID(), d2.ID())
	k, err := d2.Signer(ctx, tp)
	require.NoError(t, err)
	digest := sha256.Sum256([]byte("device proof"))
	sig, err := k.Sign(nil, digest[:], crypto.SHA256)
	require.NoError(t, err)
	assert.True(t, ecdsa.VerifyASN1(d.PublicKey().(*ecdsa.PublicKey), digest[:], sig), "the device key signs")
	require.NoError(t, k.Close())

	for n := range len(raw) {
		_, err := Parse(raw[:n])
		require.ErrorIs(t, err, ErrBadIdentity, "truncated to %d", n)
	}
	_, err = Parse(append(raw, 0))
	assert.ErrorIs(t, err, ErrBadIdentity)
}
