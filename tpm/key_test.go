package tpm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

var algorithms = []tpm.KeyAlgorithm{tpm.RSA2048, tpm.ECCP256}

func newKey(t *testing.T, tp *tpm.TPM, alg tpm.KeyAlgorithm, auth []byte) *tpm.Key {
	t.Helper()
	ctx := context.Background()
	b, pub, err := tp.CreateKey(ctx, alg, auth)
	require.NoError(t, err)
	k, err := tp.LoadKey(ctx, b, auth)
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	require.Equal(t, pub, k.Public())
	return k
}

func TestSignaturesVerify(t *testing.T) {
	tp := tpmtest.Open(t)
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			k := newKey(t, tp, alg, []byte{0x00, 0x10, 0x00, 0x20})
			assert.Equal(t, alg, k.Algorithm())
			d := digestOf("hello")
			sig, err := k.Sign(rand.Reader, d, crypto.SHA256)
			require.NoError(t, err)
			verify(t, k.Public(), d, sig, crypto.SHA256)

			// Other hashes.
			for _, h := range []crypto.Hash{crypto.SHA384, crypto.SHA512} {
				hh := h.New()
				hh.Write([]byte("hello"))
				d := hh.Sum(nil)
				sig, err := k.Sign(rand.Reader, d, h)
				require.NoError(t, err, "%v", h)
				verify(t, k.Public(), d, sig, h)
			}

			// A signature over another digest does not verify.
			switch p := k.Public().(type) {
			case *ecdsa.PublicKey:
				assert.False(t, ecdsa.VerifyASN1(p, digestOf("other"), sig))
			case *rsa.PublicKey:
				assert.Error(t, rsa.VerifyPKCS1v15(p, crypto.SHA256, digestOf("other"), sig))
			}

			_, err = k.Sign(rand.Reader, d[:20], crypto.SHA256)
			assert.Error(t, err, "digest of the wrong length")
			_, err = k.Sign(rand.Reader, d, crypto.MD5)
			assert.Error(t, err, "unsupported hash")
		})
	}
}

func TestRSAPSS(t *testing.T) {
	tp := tpmtest.Open(t)
	k := newKey(t, tp, tpm.RSA2048, []byte("auth"))
	d := digestOf("pss")
	for _, salt := range []int{rsa.PSSSaltLengthAuto, rsa.PSSSaltLengthEqualsHash, 32} {
		opts := &rsa.PSSOptions{SaltLength: salt, Hash: crypto.SHA256}
		sig, err := k.Sign(rand.Reader, d, opts)
		require.NoError(t, err, "salt %d", salt)
		require.NoError(t, rsa.VerifyPSS(k.Public().(*rsa.PublicKey), crypto.SHA256, d, sig, &rsa.PSSOptions{SaltLength: 32}))
		assert.Error(t, rsa.VerifyPKCS1v15(k.Public().(*rsa.PublicKey), crypto.SHA256, d, sig), "PSS, not PKCS #1 v1.5")
	}
	_, err := k.Sign(rand.Reader, d, &rsa.PSSOptions{SaltLength: 20, Hash: crypto.SHA256})
	assert.Error(t, err, "a salt length the TPM does not use")
}

func TestSignCommandCount(t *testing.T) {
	tp := tpmtest.Open(t)
	for _, alg := range algorithms {
		k := newKey(t, tp, alg, []byte("auth"))
		tp.ResetStats()
		_, err := k.Sign(rand.Reader, digestOf("x"), crypto.SHA256)
		require.NoError(t, err)
		s := tp.Stats()
		assert.Equal(t, uint64(1), s.Total(), "%v: %v", alg, s.Commands)
		assert.Equal(t, uint64(1), count(s, tpm2.TPMCCSign))
	}
}

func TestWrongKeyAuth(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	b, _, err := tp.CreateKey(ctx, tpm.ECCP256, []byte("right"))
	require.NoError(t, err)
	k, err := tp.LoadKey(ctx, b, []byte("wrong"))
	require.NoError(t, err, "loading needs no key auth")
	defer k.Close()
	_, err = k.Sign(rand.Reader, digestOf("x"), crypto.SHA256)
	require.ErrorIs(t, err, tpm.ErrAuthFailed)
	var ae *tpm.AuthError
	require.True(t, errors.As(err, &ae))
	assert.Equal(t, -1, ae.Remaining, "noDA key: no lockout count")
	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Failures, "a noDA key does not count toward lockout")
}

func TestCertificateRequest(t *testing.T) {
	tp := tpmtest.Open(t)
	for _, alg := range algorithms {
		k := newKey(t, tp, alg, []byte("auth"))
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "user@contoso.example"},
		}, k)
		require.NoError(t, err, "%v", alg)
		csr, err := x509.ParseCertificateRequest(der)
		require.NoError(t, err)
		require.NoError(t, csr.CheckSignature())
		assert.Equal(t, k.Public(), csr.PublicKey)
	}
}

// A TPM key serves TLS 1.3 (RSA-PSS or ECDSA) and TLS 1.2 (PKCS #1 v1.5)
// through crypto/tls.
func TestTLS(t *testing.T) {
	tp := tpmtest.Open(t)
	for _, alg := range algorithms {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			k := newKey(t, tp, alg, []byte("auth"))
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(1),
				Subject:      pkix.Name{CommonName: "hellosim.test"},
				DNSNames:     []string{"hellosim.test"},
				NotBefore:    time.Now().Add(-time.Hour),
				NotAfter:     time.Now().Add(time.Hour),
				KeyUsage:     x509.KeyUsageDigitalSignature,
				ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
			require.NoError(t, err)
			cert, err := x509.ParseCertificate(der)
			require.NoError(t, err)
			pool := x509.NewCertPool()
			pool.AddCert(cert)

			c1, c2 := net.Pipe()
			server := tls.Server(c1, &tls.Config{
				Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k}},
				MinVersion:   version, MaxVersion: version,
			})
			client := tls.Client(c2, &tls.Config{RootCAs: pool, ServerName: "hellosim.test", MinVersion: version, MaxVersion: version})
			errc := make(chan error, 1)
			go func() { errc <- server.Handshake() }()
			require.NoError(t, client.Handshake(), "%v TLS %x", alg, version)
			require.NoError(t, <-errc)
			assert.Equal(t, version, client.ConnectionState().Version)
			// Close the pipe, not the TLS connections: their close_notify
			// would wait for a reader that is not there.
			_ = c1.Close()
			_ = c2.Close()
		}
	}
}

// The simulator has three object slots and no resource manager: with the
// SRK in one, five open keys take turns in the other two, evicted least
// recently used first and reloaded when they sign.
func TestManyKeysShareSlots(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	var keys []*tpm.Key
	for i := range 5 {
		keys = append(keys, newKey(t, tp, algorithms[i%2], []byte{byte(i), 0, 1}))
	}
	for round := range 3 {
		for i, k := range keys {
			d := digestOf(string(rune('a' + i + round)))
			sig, err := k.SignContext(ctx, d, crypto.SHA256)
			require.NoError(t, err, "round %d key %d", round, i)
			verify(t, k.Public(), d, sig, crypto.SHA256)
		}
		// Unsealing still finds a slot.
		b, err := tp.Seal(ctx, []byte("s"), []byte("a"))
		require.NoError(t, err)
		_, err = tp.Unseal(ctx, b, []byte("a"))
		require.NoError(t, err)
	}
	objs, sess, err := tp.LoadedHandles(ctx)
	require.NoError(t, err)
	assert.LessOrEqual(t, len(objs), 1+len(keys))
	assert.Len(t, sess, 1)
	for _, k := range keys {
		require.NoError(t, k.Close())
	}
	requireOnlyBaseline(t, tp, 0)
}

func TestKeyClose(t *testing.T) {
	tp := tpmtest.Open(t)
	k := newKey(t, tp, tpm.ECCP256, []byte("a"))
	requireOnlyBaseline(t, tp, 1)
	require.NoError(t, k.Close())
	require.NoError(t, k.Close())
	requireOnlyBaseline(t, tp, 0)
	_, err := k.Sign(rand.Reader, digestOf("x"), crypto.SHA256)
	assert.ErrorIs(t, err, tpm.ErrClosed)
}

func TestPublicKeyWithoutTPM(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	for _, alg := range algorithms {
		b, pub, err := tp.CreateKey(ctx, alg, nil)
		require.NoError(t, err)
		got, err := tpm.PublicKey(b)
		require.NoError(t, err)
		assert.Equal(t, pub, got)
	}
	sealed, err := tp.Seal(ctx, []byte("s"), nil)
	require.NoError(t, err)
	_, err = tpm.PublicKey(sealed)
	assert.ErrorIs(t, err, tpm.ErrCorruptBlob, "a sealed object is not a key")
	_, err = tp.LoadKey(ctx, sealed, nil)
	assert.ErrorIs(t, err, tpm.ErrCorruptBlob)
	kb, _, err := tp.CreateKey(ctx, tpm.ECCP256, nil)
	require.NoError(t, err)
	_, err = tp.Unseal(ctx, kb, nil)
	assert.ErrorIs(t, err, tpm.ErrCorruptBlob, "a key is not a sealed object")
	_, _, err = tp.CreateKey(ctx, tpm.KeyAlgorithm(7), nil)
	assert.Error(t, err)
}
