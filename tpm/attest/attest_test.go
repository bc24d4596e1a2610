package attest_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/attest"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// attested is one TPM's side of a finished attestation.
type attested struct {
	pending *attest.Pending
	cert    *tpm.KeyCertification
	key     *tpm.Key
}

// attestOn provisions a signing key on tp and runs the protocol for it.
func attestOn(t *testing.T, tp *tpm.TPM, roots *x509.CertPool) attested {
	t.Helper()
	ctx := context.Background()
	_, err := tp.VerifyEndorsement(ctx, roots)
	require.NoError(t, err)
	auth := []byte("key auth\x00with a zero byte")
	blob, _, err := tp.CreateKey(ctx, tpm.RSA2048, auth)
	require.NoError(t, err)
	k, err := tp.LoadKey(ctx, blob, auth)
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })

	id, err := tp.AttestationIdentity(ctx)
	require.NoError(t, err)
	ch, p, err := attest.NewChallenge(rand.Reader, *id, roots, time.Now())
	require.NoError(t, err)
	cert, err := tp.Certify(ctx, k, ch.CredentialBlob, ch.EncryptedSecret, ch.Nonce)
	require.NoError(t, err)
	return attested{pending: p, cert: cert, key: k}
}

func TestAttestedKeyVerifies(t *testing.T) {
	tp := tpmtest.Open(t)
	roots := tpmtest.Manufacture(t, tp)
	tp.ResetStats()
	a := attestOn(t, tp, roots)
	t.Logf("attestation: %d commands %v", tp.Stats().Total(), tp.Stats().Commands)
	res, err := attest.Verify(a.pending, a.cert, a.key.Public())
	require.NoError(t, err)
	assert.Equal(t, "hellosim", res.TPM.Model)
	objs, _, err := tp.LoadedHandles(context.Background())
	require.NoError(t, err)
	assert.Len(t, objs, 2, "SRK and the key: the AK and EK are flushed")
}

func TestAttestationRefusals(t *testing.T) {
	tp := tpmtest.Open(t)
	roots := tpmtest.Manufacture(t, tp)
	a := attestOn(t, tp, roots)
	ctx := context.Background()

	t.Run("another key", func(t *testing.T) {
		blob, pub, err := tp.CreateKey(ctx, tpm.ECCP256, []byte("other"))
		require.NoError(t, err)
		_ = blob
		_, err = attest.Verify(a.pending, a.cert, pub)
		requireCheck(t, err, "key")
	})
	t.Run("wrong nonce", func(t *testing.T) {
		id, err := tp.AttestationIdentity(ctx)
		require.NoError(t, err)
		ch, p, err := attest.NewChallenge(rand.Reader, *id, roots, time.Now())
		require.NoError(t, err)
		c, err := tp.Certify(ctx, a.key, ch.CredentialBlob, ch.EncryptedSecret, []byte("not the nonce"))
		require.NoError(t, err)
		_, err = attest.Verify(p, c, a.key.Public())
		requireCheck(t, err, "certify info")
	})
	t.Run("untrusted roots", func(t *testing.T) {
		id, err := tp.AttestationIdentity(ctx)
		require.NoError(t, err)
		_, _, err = attest.NewChallenge(rand.Reader, *id, x509.NewCertPool(), time.Now())
		requireCheck(t, err, "ek certificate")
	})
	t.Run("flipped bytes", func(t *testing.T) {
		for _, f := range []func(c *tpm.KeyCertification) []byte{
			func(c *tpm.KeyCertification) []byte { return c.Proof },
			func(c *tpm.KeyCertification) []byte { return c.KeyPublic },
			func(c *tpm.KeyCertification) []byte { return c.CertifyInfo },
			func(c *tpm.KeyCertification) []byte { return c.Signature },
		} {
			for i := range len(f(a.cert)) {
				c := clone(a.cert)
				f(c)[i] ^= 0x01
				_, err := attest.Verify(a.pending, c, a.key.Public())
				require.ErrorIs(t, err, attest.ErrNotAttested, "byte %d", i)
			}
		}
	})
}

func clone(c *tpm.KeyCertification) *tpm.KeyCertification {
	return &tpm.KeyCertification{
		Proof:       append([]byte(nil), c.Proof...),
		KeyPublic:   append([]byte(nil), c.KeyPublic...),
		CertifyInfo: append([]byte(nil), c.CertifyInfo...),
		Signature:   append([]byte(nil), c.Signature...),
	}
}

func requireCheck(t *testing.T, err error, check string) {
	t.Helper()
	require.ErrorIs(t, err, attest.ErrNotAttested)
	var ae *attest.AttestationError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, check, ae.Check, "%v", err)
}

// TestKeyCertifiedByAnotherTPMsAKIsRefused: two genuine TPMs; what the
// second one certifies does not pass for the first one's attestation,
// whether sent whole or grafted onto the first one's activated credential.
func TestKeyCertifiedByAnotherTPMsAKIsRefused(t *testing.T) {
	if tpmtest.Spec() != "sim" {
		t.Skip("needs two simulators, one after the other")
	}
	openSim := func(seed int64) *tpm.TPM {
		tp, err := tpm.OpenSimulator(tpm.WithSeed(seed))
		require.NoError(t, err)
		return tp
	}
	first := openSim(1411)
	a := attestOn(t, first, tpmtest.Manufacture(t, first))
	firstKey := a.key.Public()
	require.NoError(t, first.Close())

	second := openSim(1412)
	t.Cleanup(func() { _ = second.Close() })
	b := attestOn(t, second, tpmtest.Manufacture(t, second))

	_, err := attest.Verify(a.pending, b.cert, b.key.Public())
	requireCheck(t, err, "credential activation")
	grafted := clone(b.cert)
	grafted.Proof = a.cert.Proof
	_, err = attest.Verify(a.pending, grafted, b.key.Public())
	requireCheck(t, err, "signature")
	_, err = attest.Verify(a.pending, a.cert, firstKey)
	require.NoError(t, err, "the first TPM's own attestation still verifies")
}

// TestGenuineTPMAttestsAKey attests a key of the test TPM against the roots
// of its real EK certificate (swtpm's local CA in CI).
func TestGenuineTPMAttestsAKey(t *testing.T) {
	roots := tpmtest.Roots(t)
	tp := tpmtest.Open(t)
	a := attestOn(t, tp, roots)
	res, err := attest.Verify(a.pending, a.cert, a.key.Public())
	require.NoError(t, err)
	t.Logf("attested by %+v", res.TPM)
}
