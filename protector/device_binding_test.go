package protector

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A binding that names a device makes a version 2 envelope that round-trips
// and opens; without a device it stays version 1, byte for byte as before.
func TestDeviceBindingMakesVersion2(t *testing.T) {
	b := testBinding
	b.DeviceID = "6a1c3b0e-2d4f-4e8a-9b7c-0123456789ab"
	for _, s := range allSchemes {
		priv := testKey(t, s)
		env, err := priv.Public().Wrap(newKey(t), b, nil)
		require.NoError(t, err)
		assert.Equal(t, 2, env.Version())
		raw, err := env.MarshalBinary()
		require.NoError(t, err)
		parsed, err := ParseEnvelope(raw)
		require.NoError(t, err)
		assert.Equal(t, b, parsed.Binding())
		k, err := priv.Unwrap(parsed)
		require.NoError(t, err, "%v", s)
		k.Destroy()

		v1, err := priv.Public().Wrap(newKey(t), testBinding, nil)
		require.NoError(t, err)
		assert.Equal(t, 1, v1.Version())
	}
}

// Dropping the device from a version 2 envelope (rewriting it as version
// 1) or changing the device ID makes Unwrap fail: the version and the
// device are authenticated with the rest of the header.
func TestDeviceBindingIsAuthenticated(t *testing.T) {
	b := testBinding
	b.DeviceID = "6a1c3b0e-2d4f-4e8a-9b7c-0123456789ab"
	priv := testKey(t, HPKEX25519)
	env, err := priv.Public().Wrap(newKey(t), b, nil)
	require.NoError(t, err)
	raw, err := env.MarshalBinary()
	require.NoError(t, err)

	// Version 1 form: version byte 1, device field cut out.
	dev := append([]byte{byte(len(b.DeviceID))}, b.DeviceID...)
	i := bytes.Index(raw, dev)
	require.Positive(t, i)
	down := append(bytes.Clone(raw[:i]), raw[i+len(dev):]...)
	down[4] = 1
	denv, err := ParseEnvelope(down)
	require.NoError(t, err)
	assert.Empty(t, denv.Binding().DeviceID)
	_, err = priv.Unwrap(denv)
	assert.ErrorIs(t, err, ErrDecrypt)

	other := bytes.Clone(raw)
	other[i+1] ^= 1 // '6' -> '7': still a valid field
	oenv, err := ParseEnvelope(other)
	require.NoError(t, err)
	_, err = priv.Unwrap(oenv)
	assert.ErrorIs(t, err, ErrDecrypt)
}

func TestCheckReturnKey(t *testing.T) {
	rk, err := NewReturnKey()
	require.NoError(t, err)
	defer rk.Destroy()
	assert.NoError(t, CheckReturnKey(rk.PublicKey()))
	assert.ErrorIs(t, CheckReturnKey(make([]byte, 32)), ErrInvalidKey, "all-zero, small order")
	assert.ErrorIs(t, CheckReturnKey(rk.PublicKey()[:31]), ErrInvalidKey, "short")
	one := make([]byte, 32)
	one[0] = 1
	assert.ErrorIs(t, CheckReturnKey(one), ErrInvalidKey, "order 1")
}
