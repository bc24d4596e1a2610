package protector

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSchemeNames(t *testing.T) {
	for _, s := range allSchemes {
		got, err := ParseScheme(s.String())
		require.NoError(t, err)
		assert.Equal(t, s, got)
		text, err := s.MarshalText()
		require.NoError(t, err)
		var back Scheme
		require.NoError(t, back.UnmarshalText(text))
		assert.Equal(t, s, back)
	}
	assert.Equal(t, HPKEX25519, Scheme(0), "the zero Scheme is the default")
	assert.Equal(t, "Scheme(9)", Scheme(9).String())
	_, err := ParseScheme("HPKE-X25519-SHA256-AES256GCM")
	assert.ErrorIs(t, err, ErrUnsupported, "names are case-sensitive")
	_, err = Scheme(-1).MarshalText()
	assert.ErrorIs(t, err, ErrUnsupported)
}

func TestKeyIDIsDerivedFromSchemeAndKey(t *testing.T) {
	for _, s := range allSchemes {
		pub := testKey(t, s).Public()
		h := sha256.Sum256(append([]byte{s.wire()}, pub.Bytes()...))
		assert.Equal(t, b64url().EncodeToString(h[:16]), pub.ID())
		assert.Len(t, pub.ID(), 22)
		assert.Equal(t, s.String()+":"+pub.ID(), pub.String())
	}
	assert.Empty(t, ServiceKey{}.ID())
	assert.False(t, ServiceKey{}.Equal(ServiceKey{}))
}

func TestNewServiceKeyRoundTrip(t *testing.T) {
	for _, s := range allSchemes {
		pub := testKey(t, s).Public()
		again, err := NewServiceKey(s, pub.Bytes())
		require.NoError(t, err)
		assert.True(t, again.Equal(pub))
		b := pub.Bytes()
		b[0] ^= 1
		assert.NotEqual(t, b, pub.Bytes(), "Bytes returns a copy")
	}
}

func TestNewServiceKeyRefusesBadKeys(t *testing.T) {
	x := testKey(t, HPKEX25519).Public().Bytes()
	w := testKey(t, HPKEXWing).Public().Bytes()
	r := testKey(t, RSAOAEP3072).Public().Bytes()
	rsa2048, err := rsa.GenerateKey(nil, 2048)
	require.NoError(t, err)
	der2048, err := x509.MarshalPKIXPublicKey(&rsa2048.PublicKey)
	require.NoError(t, err)
	p256, err := ecdh.P256().GenerateKey(nil)
	require.NoError(t, err)
	derP256, err := x509.MarshalPKIXPublicKey(p256.PublicKey())
	require.NoError(t, err)
	rsaE3 := *testKey(t, RSAOAEP3072).rsaKey()
	rsaE3.PublicKey.E = 3
	derE3, err := x509.MarshalPKIXPublicKey(&rsaE3.PublicKey)
	require.NoError(t, err)
	lowOrder := make([]byte, 32)
	lowOrder[0] = 1

	tests := []struct {
		name   string
		scheme Scheme
		pub    []byte
		want   error
	}{
		{"X25519 short", HPKEX25519, x[:31], ErrInvalidKey},
		{"X25519 long", HPKEX25519, append(bytes.Clone(x), 0), ErrInvalidKey},
		{"X25519 zero point", HPKEX25519, make([]byte, 32), ErrInvalidKey},
		{"X25519 small order", HPKEX25519, lowOrder, ErrInvalidKey},
		{"X-Wing as X25519", HPKEX25519, w, ErrInvalidKey},
		{"X-Wing short", HPKEXWing, w[:len(w)-1], ErrInvalidKey},
		{"X-Wing with zero X25519 share", HPKEXWing, append(bytes.Clone(w[:len(w)-32]), make([]byte, 32)...), ErrInvalidKey},
		{"X-Wing ML-KEM key not reduced", HPKEXWing, append(bytes.Repeat([]byte{0xff}, 1184), x...), ErrInvalidKey},
		{"RSA garbage", RSAOAEP3072, []byte{0x30, 0x00}, ErrInvalidKey},
		{"RSA truncated", RSAOAEP3072, r[:len(r)-1], ErrInvalidKey},
		{"RSA trailing", RSAOAEP3072, append(bytes.Clone(r), 0), ErrInvalidKey},
		{"RSA-2048", RSAOAEP3072, der2048, ErrInvalidKey},
		{"RSA e=3", RSAOAEP3072, derE3, ErrInvalidKey},
		{"P-256 as RSA", RSAOAEP3072, derP256, ErrInvalidKey},
		{"unknown scheme", Scheme(7), x, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewServiceKey(tt.scheme, tt.pub)
			assert.ErrorIs(t, err, tt.want)
			assert.Empty(t, k.ID())
		})
	}
}

func TestPrivateKeyMarshalRoundTrip(t *testing.T) {
	for _, s := range allSchemes {
		t.Run(s.String(), func(t *testing.T) {
			priv := testKey(t, s)
			raw, err := priv.MarshalBinary()
			require.NoError(t, err)
			twice, err := priv.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, raw, twice, "marshalling must not disturb the key (crypto/hpke aliases its seed)")
			back, err := ParsePrivateKey(raw)
			require.NoError(t, err)
			assert.True(t, back.Public().Equal(priv.Public()))
			again, err := back.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, raw, again)

			for n := range len(raw) {
				_, err := ParsePrivateKey(raw[:n])
				require.ErrorIs(t, err, ErrInvalidKey, "truncated to %d", n)
			}
			_, err = ParsePrivateKey(append(bytes.Clone(raw), 0))
			assert.ErrorIs(t, err, ErrInvalidKey, "trailing byte")
			bad := bytes.Clone(raw)
			bad[4] = 2
			_, err = ParsePrivateKey(bad)
			assert.ErrorIs(t, err, ErrUnsupported, "version 2")
			bad = bytes.Clone(raw)
			bad[5] = 9
			_, err = ParsePrivateKey(bad)
			assert.ErrorIs(t, err, ErrUnsupported, "scheme 9")
		})
	}
}

func TestParsePrivateKeyRefusesNonCanonicalX25519(t *testing.T) {
	raw, err := testKey(t, HPKEX25519).MarshalBinary()
	require.NoError(t, err)
	// Clamping (RFC 7748, 5) clears the low three bits; a stored key with
	// them set is the same scalar written another way.
	raw[len(raw)-32] |= 0x07
	_, err = ParsePrivateKey(raw)
	assert.ErrorIs(t, err, ErrInvalidKey)
}

func TestServicePrivateKeyNeverPrintsItsKey(t *testing.T) {
	for _, s := range allSchemes {
		priv := testKey(t, s)
		raw, err := priv.MarshalBinary()
		require.NoError(t, err)
		secret := raw[len(raw)-32:] // the last bytes of the private key
		assertNoSecret(t, priv, secret, "REDACTED")
		assert.Contains(t, priv.String(), priv.Public().ID())
		u, err := NewRSAUnwrapper(testKey(t, RSAOAEP3072).rsaKey())
		require.NoError(t, err)
		assertNoSecret(t, u, secret, "REDACTED")
	}
	h, err := NewHPKEUnwrapper(testKey(t, HPKEX25519).hpkeKey())
	require.NoError(t, err)
	hb, err := testKey(t, HPKEX25519).hpkeKey().Bytes()
	require.NoError(t, err)
	assertNoSecret(t, h, hb, "REDACTED")
}

// hsm is a crypto.Decrypter standing for a key in an HSM: it holds a real
// RSA key, counts the operations and can go offline.
type hsm struct {
	key     *rsa.PrivateKey
	calls   atomic.Int32
	offline atomic.Bool
}

func (h *hsm) Public() crypto.PublicKey { return &h.key.PublicKey }

func (h *hsm) Decrypt(rand io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	h.calls.Add(1)
	if h.offline.Load() {
		return nil, errHSMOffline
	}
	return h.key.Decrypt(rand, msg, opts)
}

var errHSMOffline = errors.New("hsm: device not reachable")

// requireRoundTrip wraps r to u's public key and requires u to unwrap it
// back; it returns the envelope.
func requireRoundTrip(t *testing.T, u Unwrapper, r *Key) *Envelope {
	t.Helper()
	env, err := u.Public().Wrap(r, testBinding, nil)
	require.NoError(t, err)
	got, err := u.Unwrap(env)
	require.NoError(t, err)
	assert.True(t, got.Equal(r))
	return env
}

func TestRSAUnwrapperUsesTheDecrypter(t *testing.T) {
	d := &hsm{key: testKey(t, RSAOAEP3072).rsaKey()}
	u, err := NewRSAUnwrapper(d)
	require.NoError(t, err)
	assert.True(t, u.Public().Equal(testKey(t, RSAOAEP3072).Public()))

	env := requireRoundTrip(t, u, newKey(t))
	assert.Equal(t, int32(1), d.calls.Load())

	forged := *env
	forged.binding.UserID = "someone else"
	_, err = u.Unwrap(&forged)
	assert.ErrorIs(t, err, ErrDecrypt)

	d.offline.Store(true)
	_, err = u.Unwrap(env)
	assert.ErrorIs(t, err, ErrDecrypt)
	assert.ErrorIs(t, err, errHSMOffline, "the cause stays visible to the service")

	_, err = NewRSAUnwrapper(&hsm{key: mustRSA(t, 2048)})
	assert.ErrorIs(t, err, ErrInvalidKey)
}

func mustRSA(t *testing.T, bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(nil, bits)
	require.NoError(t, err)
	return k
}

func TestHPKEUnwrapperFromExistingKey(t *testing.T) {
	for _, s := range []Scheme{HPKEX25519, HPKEXWing} {
		seed, err := testKey(t, s).hpkeKey().Bytes()
		require.NoError(t, err)
		priv, err := s.kem().NewPrivateKey(seed)
		require.NoError(t, err)
		u, err := NewHPKEUnwrapper(priv)
		require.NoError(t, err)
		assert.True(t, u.Public().Equal(testKey(t, s).Public()))
		r := newKey(t)
		env, _ := wrap(t, s, r, testBinding)
		got, err := u.Unwrap(env)
		require.NoError(t, err)
		assert.True(t, got.Equal(r))
	}

	// A key behind an ecdh.KeyExchanger, as hardware would hold it.
	ek, err := ecdh.X25519().GenerateKey(nil)
	require.NoError(t, err)
	hk, err := hpke.NewDHKEMPrivateKey(ek)
	require.NoError(t, err)
	u, err := NewHPKEUnwrapper(hk)
	require.NoError(t, err)
	r := newKey(t)
	requireRoundTrip(t, u, r)

	// DHKEM(P-256) behind an ecdh.KeyExchanger: the PKCS #11 case.
	pk, err := ecdh.P256().GenerateKey(nil)
	require.NoError(t, err)
	hp, err := hpke.NewDHKEMPrivateKey(pk)
	require.NoError(t, err)
	u, err = NewHPKEUnwrapper(hp)
	require.NoError(t, err)
	assert.Equal(t, HPKEP256, u.Public().Scheme())
	requireRoundTrip(t, u, r)

	p384, err := hpke.DHKEM(ecdh.P384()).GenerateKey()
	require.NoError(t, err)
	_, err = NewHPKEUnwrapper(p384)
	assert.ErrorIs(t, err, ErrUnsupported)
	_, err = NewHPKEUnwrapper(nil)
	assert.ErrorIs(t, err, ErrInvalidKey)
	_, err = NewServicePrivateKey("not a key")
	assert.ErrorIs(t, err, ErrUnsupported)
	_, err = GenerateServiceKey(Scheme(5))
	assert.ErrorIs(t, err, ErrUnsupported)
}

func TestGenerateServiceKeyGivesDistinctKeys(t *testing.T) {
	for _, s := range []Scheme{HPKEX25519, HPKEXWing} {
		a, err := GenerateServiceKey(s)
		require.NoError(t, err)
		b, err := GenerateServiceKey(s)
		require.NoError(t, err)
		assert.NotEqual(t, a.Public().ID(), b.Public().ID())
		assert.Equal(t, s, a.Public().Scheme())
	}
}

func TestUnwrapIsSafeForConcurrentUse(t *testing.T) {
	for _, s := range []Scheme{HPKEX25519, HPKEXWing} {
		priv := testKey(t, s)
		envs := make([]*Envelope, 8)
		keys := make([]*Key, 8)
		for i := range envs {
			keys[i] = newKey(t)
			envs[i], _ = wrap(t, s, keys[i], testBinding)
		}
		errs := make(chan error, len(envs))
		for i := range envs {
			go func() {
				got, err := priv.Unwrap(envs[i])
				if err == nil && !got.Equal(keys[i]) {
					err = fmt.Errorf("envelope %d: wrong key", i)
				}
				errs <- err
			}()
		}
		for range envs {
			assert.NoError(t, <-errs)
		}
	}
}

func TestUnknownKeyErrorNamesBothKeys(t *testing.T) {
	env, _ := wrap(t, HPKEX25519, newKey(t), testBinding)
	_, err := testKey(t, HPKEXWing).Unwrap(env)
	require.ErrorIs(t, err, ErrUnknownKey)
	assert.True(t, strings.Contains(err.Error(), env.KeyID()) && strings.Contains(err.Error(), testKey(t, HPKEXWing).Public().ID()), err.Error())
}

func TestWrapUsesRandForRSA(t *testing.T) {
	pub := testKey(t, RSAOAEP3072).Public()
	r := newKey(t)
	seed := bytes.Repeat([]byte{0x42}, 64)
	a, err := pub.Wrap(r, testBinding, bytes.NewReader(seed))
	require.NoError(t, err)
	b, err := pub.Wrap(r, testBinding, bytes.NewReader(seed))
	require.NoError(t, err)
	assert.True(t, a.Equal(b), "the same OAEP seed gives the same envelope")
	_, err = pub.Wrap(r, testBinding, bytes.NewReader(nil))
	assert.Error(t, err, "a failing reader fails the wrap")
}

func TestNewServiceKeyP256TakesOnlyUncompressedPointsOnTheCurve(t *testing.T) {
	pub := testKey(t, HPKEP256).Public().Bytes()
	require.Len(t, pub, 65)
	_, err := NewServiceKey(HPKEP256, pub)
	require.NoError(t, err)
	compressed := append([]byte{0x02 | pub[64]&1}, pub[1:33]...)
	offCurve := bytes.Clone(pub)
	offCurve[64] ^= 1
	infinity := make([]byte, 65)
	infinity[0] = 4
	for name, b := range map[string][]byte{
		"compressed": compressed, "off the curve": offCurve, "zero point": infinity,
		"truncated": pub[:64], "trailing byte": append(bytes.Clone(pub), 0),
	} {
		_, err := NewServiceKey(HPKEP256, b)
		assert.ErrorIs(t, err, ErrInvalidKey, name)
	}
}

// failingExchanger is an ecdh.KeyExchanger whose device has gone away.
type failingExchanger struct{ ecdh.KeyExchanger }

func (failingExchanger) ECDH(*ecdh.PublicKey) ([]byte, error) {
	return nil, fmt.Errorf("%w: hsm: connection refused", ErrKeyUnavailable)
}

// failingDecrypter is a crypto.Decrypter whose device has gone away.
type failingDecrypter struct{ crypto.Decrypter }

func (failingDecrypter) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	return nil, fmt.Errorf("%w: hsm: connection refused", ErrKeyUnavailable)
}

// TestUnwrapTellsAnUnavailableKeyFromABadEnvelope: a key holder that fails
// gives ErrKeyUnavailable, never ErrDecrypt, so that a service does not
// count an HSM outage as the user's failure; other decrypter errors stay
// ErrDecrypt.
func TestUnwrapTellsAnUnavailableKeyFromABadEnvelope(t *testing.T) {
	ek, err := ecdh.P256().GenerateKey(nil)
	require.NoError(t, err)
	hk, err := hpke.NewDHKEMPrivateKey(failingExchanger{ek})
	require.NoError(t, err)
	hu, err := NewHPKEUnwrapper(hk)
	require.NoError(t, err)
	ru, err := NewRSAUnwrapper(failingDecrypter{testKey(t, RSAOAEP3072).rsaKey()})
	require.NoError(t, err)
	for _, u := range []Unwrapper{hu, ru} {
		env, err := u.Public().Wrap(newKey(t), testBinding, nil)
		require.NoError(t, err)
		_, err = u.Unwrap(env)
		assert.ErrorIs(t, err, ErrKeyUnavailable, "%v", u.Public().Scheme())
		assert.NotErrorIs(t, err, ErrDecrypt, "%v", u.Public().Scheme())
	}
}
