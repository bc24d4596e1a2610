package protector

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewKeyReadsRand(t *testing.T) {
	k := fixedKey(t)
	for i, b := range keyArray(k) {
		require.Equal(t, byte(i), b)
	}
	_, err := NewKey(bytes.NewReader(make([]byte, KeySize-1)))
	assert.Error(t, err, "a short reader must fail, not give a weak key")
	_, err = NewKey(iotest.ErrReader(fmt.Errorf("entropy gone")))
	assert.ErrorContains(t, err, "entropy gone")

	a, b := newKey(t), newKey(t)
	assert.False(t, a.Equal(b), "two keys from crypto/rand")
	assert.True(t, a.Equal(a))
}

func TestKeySealOpen(t *testing.T) {
	k := newKey(t)
	secret := bytes.Repeat([]byte{0x5a}, 32)
	sealed, err := k.Seal(secret, "container-1")
	require.NoError(t, err)
	assert.Len(t, sealed, 12+32+16, "nonce || ciphertext || tag")
	assert.NotContains(t, string(sealed), string(secret))

	got, err := k.Open(sealed, "container-1")
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	again, err := k.Seal(secret, "container-1")
	require.NoError(t, err)
	assert.NotEqual(t, sealed, again, "nonces must differ")

	_, err = k.Open(sealed, "container-2")
	assert.ErrorIs(t, err, ErrDecrypt, "another container")
	_, err = newKey(t).Open(sealed, "container-1")
	assert.ErrorIs(t, err, ErrDecrypt, "another key")
	for n := range len(sealed) {
		_, err = k.Open(sealed[:n], "container-1")
		require.ErrorIs(t, err, ErrDecrypt, "truncated to %d", n)
	}
	for bit := range len(sealed) * 8 {
		c := bytes.Clone(sealed)
		c[bit/8] ^= 1 << (bit % 8)
		_, err = k.Open(c, "container-1")
		require.ErrorIs(t, err, ErrDecrypt, "bit %d", bit)
	}
	_, err = k.Seal(secret, "")
	assert.ErrorIs(t, err, ErrInvalidBinding)
}

func TestDestroyZeroesTheKey(t *testing.T) {
	k := fixedKey(t)
	arr := keyArray(k)
	copyOfValue := *k // copies share the secret
	require.NotEqual(t, [KeySize]byte{}, *arr)

	k.Destroy()
	assert.Equal(t, [KeySize]byte{}, *arr, "the bytes themselves must be zero")
	_, err := k.Seal([]byte("s"), "c")
	assert.ErrorIs(t, err, ErrDestroyed)
	_, err = k.Open(make([]byte, 40), "c")
	assert.ErrorIs(t, err, ErrDestroyed)
	_, err = copyOfValue.Seal([]byte("s"), "c")
	assert.ErrorIs(t, err, ErrDestroyed, "a copy of the Key value is destroyed too")
	assert.False(t, k.Equal(k), "a destroyed key equals nothing")
	k.Destroy() // twice is fine

	var zero Key
	_, err = zero.Seal([]byte("s"), "c")
	assert.ErrorIs(t, err, ErrDestroyed, "the zero Key is no key")
	var nilKey *Key
	nilKey.Destroy()
	_, err = nilKey.Open(nil, "c")
	assert.ErrorIs(t, err, ErrDestroyed)
}

// fmtVerbs is every way a careless log line might print a value.
var fmtVerbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"}

func assertNoSecret(t *testing.T, v any, secret []byte, want string) {
	t.Helper()
	lowerHex := hex.EncodeToString(secret)
	for _, verb := range fmtVerbs {
		out := fmt.Sprintf(verb, v)
		assert.NotContains(t, strings.ToLower(out), lowerHex[:16], "verb %s printed %s", verb, out)
		assert.NotContains(t, out, string(secret[:8]), "verb %s", verb)
		assert.NotContains(t, out, fmt.Sprint(secret[:8])[1:12], "verb %s printed %s", verb, out)
		if want != "" && verb != "%T %v" && verb != "%q" {
			assert.Contains(t, out, want, "verb %s", verb)
		}
	}
}

func TestKeyNeverPrintsItsBytes(t *testing.T) {
	k := fixedKey(t)
	// Make the bytes distinctive so any leak is easy to see.
	for i := range keyArray(k) {
		keyArray(k)[i] = byte(0xc0 + i)
	}
	secret := keyArray(k)[:]
	assertNoSecret(t, k, secret, "REDACTED")
	assertNoSecret(t, *k, secret, "REDACTED")
	type holder struct {
		K       *Key
		V       Key
		private *Key
	}
	assertNoSecret(t, holder{k, *k, k}, secret, "")
	assertNoSecret(t, []*Key{k}, secret, "REDACTED")
	assert.Equal(t, "protector.Key{REDACTED}", k.String())
	assert.Equal(t, "protector.Key{REDACTED}", fmt.Sprintf("%#v", k))
}
