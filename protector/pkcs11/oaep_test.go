package pkcs11

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048) // the size does not matter to the padding
	if err != nil {
		panic(err)
	}
	return k
})

// rawDecrypt is what CKM_RSA_X_509 returns: c^d mod n, without leading zeros.
func rawDecrypt(k *rsa.PrivateKey, ct []byte) []byte {
	return new(big.Int).Exp(new(big.Int).SetBytes(ct), k.D, k.N).Bytes()
}

// TestOAEPDecodeAgreesWithCryptoRSA: on good ciphertexts and on every kind
// of bad one, oaepDecode answers exactly as rsa.DecryptOAEP does.
func TestOAEPDecodeAgreesWithCryptoRSA(t *testing.T) {
	k := testRSAKey()
	size := k.Size()
	label := []byte("hellosim protector v1 wrap|header")
	msg := []byte("0123456789abcdef0123456789abcdef")
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, msg, label)
	require.NoError(t, err)

	got, err := oaepDecode(rawDecrypt(k, ct), size, label)
	require.NoError(t, err)
	assert.Equal(t, msg, got)

	_, err = oaepDecode(rawDecrypt(k, ct), size, []byte("another label"))
	assert.ErrorIs(t, err, rsa.ErrDecryption, "the label is checked")

	empty, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, nil, label)
	require.NoError(t, err)
	got, err = oaepDecode(rawDecrypt(k, empty), size, label)
	require.NoError(t, err)
	assert.Empty(t, got)

	for i := range 200 {
		bad := append([]byte(nil), ct...)
		bad[i%size] ^= byte(1 << (i % 8))
		if new(big.Int).SetBytes(bad).Cmp(k.N) >= 0 {
			continue
		}
		want, werr := rsa.DecryptOAEP(sha256.New(), nil, k, bad, label)
		got, gerr := oaepDecode(rawDecrypt(k, bad), size, label)
		assert.Equal(t, werr == nil, gerr == nil, "flip %d", i)
		assert.Equal(t, want, got, "flip %d", i)
		if gerr != nil {
			assert.ErrorIs(t, gerr, rsa.ErrDecryption)
		}
	}
	// Random integers below n are (almost surely) not OAEP encodings.
	for range 50 {
		r, err := rand.Int(rand.Reader, k.N)
		require.NoError(t, err)
		_, err = oaepDecode(r.Bytes(), size, label)
		assert.ErrorIs(t, err, rsa.ErrDecryption)
	}
	_, err = oaepDecode(make([]byte, size+1), size, label)
	assert.ErrorIs(t, err, rsa.ErrDecryption, "longer than the modulus")
	_, err = oaepDecode(nil, 2*sha256.Size+1, label)
	assert.ErrorIs(t, err, rsa.ErrDecryption, "modulus too small")
}

func TestOAEPDecodeWipesTheEncoding(t *testing.T) {
	k := testRSAKey()
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, []byte("secret"), nil)
	require.NoError(t, err)
	em := rawDecrypt(k, ct)
	_, err = oaepDecode(em, k.Size(), nil)
	require.NoError(t, err)
	assert.Equal(t, make([]byte, len(em)), em)
}

// FuzzOAEPDecode: whatever integer a token returns (the attacker chooses
// the ciphertext, hence the integer), decoding never panics, and what it
// accepts is a valid encoding: re-encoding the message under the same seed
// gives the same integer back.
func FuzzOAEPDecode(f *testing.F) {
	k := testRSAKey()
	label := []byte("label")
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, []byte("0123456789abcdef0123456789abcdef"), label)
	require.NoError(f, err)
	f.Add(rawDecrypt(k, ct))
	f.Add([]byte{})
	f.Add(make([]byte, k.Size()))
	f.Fuzz(func(t *testing.T, em []byte) {
		in := append([]byte(nil), em...)
		msg, err := oaepDecode(em, k.Size(), label)
		if err != nil {
			if !errors.Is(err, rsa.ErrDecryption) {
				t.Fatalf("error %v is not rsa.ErrDecryption", err)
			}
			return
		}
		// Accepted: the encryption of msg under k, decrypted by crypto/rsa
		// from the same integer, must agree.
		if len(in) > k.Size() {
			t.Fatal("accepted an integer longer than the modulus")
		}
		c := new(big.Int).Exp(new(big.Int).SetBytes(in), big.NewInt(int64(k.E)), k.N)
		if new(big.Int).SetBytes(in).Cmp(k.N) >= 0 {
			return // not a possible token output
		}
		want, werr := rsa.DecryptOAEP(sha256.New(), nil, k, c.FillBytes(make([]byte, k.Size())), label)
		if werr != nil || !bytes.Equal(want, msg) {
			t.Fatalf("accepted what crypto/rsa refuses (%v)", werr)
		}
	})
}
