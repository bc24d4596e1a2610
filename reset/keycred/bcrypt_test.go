package keycred

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPublicKeyBlobsRoundTrip(t *testing.T) {
	t.Parallel()
	for _, bits := range []int{2048, 3072} {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		require.NoError(t, err)
		b, err := MarshalPublicKey(&k.PublicKey)
		require.NoError(t, err)
		assert.Len(t, b, 24+3+bits/8)
		got, err := ParsePublicKey(b)
		require.NoError(t, err)
		assert.True(t, k.PublicKey.Equal(got))
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	b, err := MarshalPublicKey(&e.PublicKey)
	require.NoError(t, err)
	got, err := ParsePublicKey(b)
	require.NoError(t, err)
	assert.True(t, e.PublicKey.Equal(got))
}

func TestMarshalPublicKeyRefusesOtherKeys(t *testing.T) {
	t.Parallel()
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	small := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 511), big.NewInt(1)) // a 512-bit odd modulus
	for name, pub := range map[string]any{
		"ed25519": ed, "p384": &p384.PublicKey, "nil rsa": (*rsa.PublicKey)(nil),
		"rsa even exponent": &rsa.PublicKey{N: readPublicKey(t, "rsa2048.pub.pem").(*rsa.PublicKey).N, E: 65536},
		"rsa-512":           &rsa.PublicKey{N: small, E: 65537},
	} {
		_, err := MarshalPublicKey(pub)
		assert.ErrorIs(t, err, ErrKeyType, name)
	}
}

func TestParsePublicKeyRefusals(t *testing.T) {
	t.Parallel()
	rsa1 := readHex(t, "rsa1.hex")
	ecs1 := readHex(t, "ecs1.hex")
	mut := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	put := func(b []byte, off int, v uint32) []byte {
		return mut(b, func(c []byte) []byte { binary.LittleEndian.PutUint32(c[off:], v); return c })
	}
	x, err := ecdh.P256().GenerateKey(rand.Reader)
	require.NoError(t, err)
	eck1 := append([]byte("ECK1\x20\x00\x00\x00"), x.PublicKey().Bytes()[1:]...)
	for _, tc := range []struct {
		name string
		blob []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"magic only", rsa1[:4], ErrTruncated},
		{"unknown magic", put(rsa1, 0, 0x12345678), ErrKeyType},
		{"RSA2 private blob", put(rsa1, 0, 0x32415352), ErrKeyType},
		{"RSA3 full private blob", put(rsa1, 0, 0x33415352), ErrKeyType},
		{"ECS2 private blob", put(ecs1, 0, 0x32534345), ErrKeyType},
		{"ECK1 ECDH key", eck1, ErrKeyType},
		{"rsa truncated header", rsa1[:20], ErrTruncated},
		{"rsa truncated modulus", rsa1[:len(rsa1)-1], ErrTruncated},
		{"rsa trailing byte", append(append([]byte(nil), rsa1...), 0), ErrTrailingData},
		{"rsa cbPrime1 set", put(rsa1, 16, 128), ErrKeyBlob},
		{"rsa cbPrime2 set", put(rsa1, 20, 128), ErrKeyBlob},
		{"rsa BitLength 2047", put(rsa1, 4, 2047), ErrKeyBlob},
		{"rsa BitLength 2056", put(rsa1, 4, 2056), ErrKeyBlob},
		{"rsa BitLength 512", put(rsa1, 4, 512), ErrKeyType},
		{"rsa cbModulus short", put(rsa1, 12, 255), ErrKeyBlob},
		{"rsa cbPublicExp 0", put(rsa1, 8, 0), ErrKeyBlob},
		{"rsa cbPublicExp 9", put(rsa1, 8, 9), ErrKeyBlob},
		{"rsa exponent leading zero", mut(rsa1, func(c []byte) []byte {
			c[8] = 4
			return append(append(c[:24:24], 0, 1, 0, 1), rsa1[27:]...)
		}), ErrKeyBlob},
		{"rsa even exponent", mut(rsa1, func(c []byte) []byte { c[26] = 0; return c }), ErrKeyBlob},
		{"rsa exponent 1", mut(rsa1, func(c []byte) []byte { c[24], c[25], c[26] = 0, 0, 1; return c }), ErrKeyBlob},
		{"rsa exponent above 2^31", mut(rsa1, func(c []byte) []byte {
			c[8] = 5
			return append(append(c[:24:24], 1, 0, 0, 0, 1), rsa1[27:]...)
		}), ErrKeyType},
		{"rsa modulus top byte zero", mut(rsa1, func(c []byte) []byte { c[27] = 0; return c }), ErrKeyBlob},
		{"rsa even modulus", mut(rsa1, func(c []byte) []byte { c[len(c)-1] &^= 1; return c }), ErrKeyBlob},
		{"ecc cbKey 48", put(ecs1, 4, 48), ErrKeyBlob},
		{"ecc truncated", ecs1[:len(ecs1)-1], ErrTruncated},
		{"ecc trailing", append(append([]byte(nil), ecs1...), 0), ErrTrailingData},
		{"ecc point off the curve", mut(ecs1, func(c []byte) []byte { c[len(c)-1] ^= 1; return c }), ErrKeyBlob},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParsePublicKey(tc.blob)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}
