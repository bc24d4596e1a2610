package protector

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newReturnKey(t *testing.T) *ReturnKey {
	t.Helper()
	k, err := NewReturnKey()
	require.NoError(t, err)
	t.Cleanup(k.Destroy)
	return k
}

// The service's answer: unwrap the envelope, seal R to the client's
// one-time key; the client opens it.
func TestReturnKeyRoundTrip(t *testing.T) {
	for _, s := range allSchemes {
		t.Run(s.String(), func(t *testing.T) {
			r := newKey(t)
			env, _ := wrap(t, s, r, testBinding)
			rk := newReturnKey(t)
			require.Len(t, rk.PublicKey(), 32)

			unwrapped, err := testKey(t, s).Unwrap(env)
			require.NoError(t, err)
			sealed, err := SealToReturnKey(rk.PublicKey(), unwrapped, env)
			unwrapped.Destroy()
			require.NoError(t, err)
			assert.Len(t, sealed, ReturnSealedSize)
			assert.False(t, bytes.Contains(sealed, keyArray(r)[:8]), "R must not be in clear")

			got, err := rk.Open(sealed, env)
			require.NoError(t, err)
			assert.True(t, got.Equal(r))
			got.Destroy()
		})
	}
}

func TestReturnKeyRefusesWrongEnvelopeOrKey(t *testing.T) {
	r := newKey(t)
	env, raw := wrap(t, HPKEX25519, r, testBinding)
	other, _ := wrap(t, HPKEX25519, r, testBinding) // same R, another envelope
	rk := newReturnKey(t)
	sealed, err := SealToReturnKey(rk.PublicKey(), r, env)
	require.NoError(t, err)

	_, err = rk.Open(sealed, other)
	assert.ErrorIs(t, err, ErrDecrypt, "sealed for another envelope")
	_, err = newReturnKey(t).Open(sealed, env)
	assert.ErrorIs(t, err, ErrDecrypt, "another return key")
	for n := range len(sealed) {
		_, err = rk.Open(sealed[:n], env)
		require.ErrorIs(t, err, ErrDecrypt, "truncated to %d", n)
	}
	_, err = rk.Open(append(bytes.Clone(sealed), 0), env)
	assert.ErrorIs(t, err, ErrDecrypt, "trailing byte")
	for bit := range len(sealed) * 8 {
		c := bytes.Clone(sealed)
		c[bit/8] ^= 1 << (bit % 8)
		_, err = rk.Open(c, env)
		require.ErrorIs(t, err, ErrDecrypt, "bit %d", bit)
	}
	// Any change to the envelope changes the info.
	for _, i := range []int{5, 10, 30, len(raw) - 1} {
		c := bytes.Clone(raw)
		c[i] ^= 0x01
		if e2, err := ParseEnvelope(c); err == nil {
			_, err = rk.Open(sealed, e2)
			assert.ErrorIs(t, err, ErrDecrypt, "envelope byte %d", i)
		}
	}
	_, err = rk.Open(sealed, nil)
	assert.ErrorIs(t, err, ErrMalformed)
}

func TestSealToReturnKeyRefusesBadPublicKeys(t *testing.T) {
	r := newKey(t)
	env, _ := wrap(t, HPKEX25519, r, testBinding)
	one := make([]byte, 32)
	one[0] = 1
	for name, pub := range map[string][]byte{
		"nil":         nil,
		"31 bytes":    make([]byte, 31),
		"33 bytes":    make([]byte, 33),
		"zero point":  make([]byte, 32),
		"small order": one,
	} {
		_, err := SealToReturnKey(pub, r, env)
		assert.ErrorIs(t, err, ErrInvalidKey, name)
	}
	r.Destroy()
	_, err := SealToReturnKey(newReturnKey(t).PublicKey(), r, env)
	assert.ErrorIs(t, err, ErrDestroyed)
}

func TestReturnKeyDestroy(t *testing.T) {
	r := fixedKey(t)
	env, _ := wrap(t, HPKEX25519, r, testBinding)
	rk := newReturnKey(t)
	seed := returnKeySeed(rk)
	require.NotEqual(t, [32]byte{}, *seed)
	sealed, err := SealToReturnKey(rk.PublicKey(), r, env)
	require.NoError(t, err)

	assertNoSecret(t, rk, seed[:], "REDACTED")
	assertNoSecret(t, *rk, seed[:], "REDACTED")

	rk.Destroy()
	assert.Equal(t, [32]byte{}, *seed, "the private key bytes must be zero")
	_, err = rk.Open(sealed, env)
	assert.ErrorIs(t, err, ErrDestroyed)
	rk.Destroy()

	a, b := newReturnKey(t), newReturnKey(t)
	assert.NotEqual(t, a.PublicKey(), b.PublicKey(), "one-time keys are fresh")
	pub := a.PublicKey()
	pub[0] ^= 1
	assert.NotEqual(t, pub, a.PublicKey(), "PublicKey returns a copy")
}
