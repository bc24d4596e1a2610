package tpm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

func TestVerifyEndorsementOfAManufacturedTPM(t *testing.T) {
	tp := tpmtest.Open(t)
	roots := tpmtest.Manufacture(t, tp)
	ctx := context.Background()
	tp.ResetStats()

	e, err := tp.VerifyEndorsement(ctx, roots)
	require.NoError(t, err)
	assert.Equal(t, tpm.NVECCP256EKCert, e.Index)
	assert.Equal(t, "id:48534D00", e.TPM.Manufacturer)
	assert.Equal(t, "hellosim", e.TPM.Model)
	assert.Len(t, e.Chain, 3, "EK certificate, intermediate from NV, root")
	first := tp.Stats()
	t.Logf("verification: %d commands %v", first.Total(), first.Commands)
	requireOnlyBaseline(t, tp, 0)

	// Once per connection: the second call sends nothing.
	tp.ResetStats()
	again, err := tp.VerifyEndorsement(ctx, roots)
	require.NoError(t, err)
	assert.Same(t, e, again)
	assert.Zero(t, tp.Stats().Total())
}

func TestVerifyEndorsementOfTheRSAEK(t *testing.T) {
	tp := tpmtest.Open(t)
	roots := tpmtest.ManufactureWith(t, tp, tpmtest.ManufactureOptions{RSA: true})
	e, err := tp.VerifyEndorsement(context.Background(), roots)
	require.NoError(t, err)
	assert.Equal(t, tpm.NVRSA2048EKCert, e.Index)
	requireOnlyBaseline(t, tp, 0)
}

func TestVerifyEndorsementRefuses(t *testing.T) {
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, tp *tpm.TPM) *x509.CertPool
		failure tpm.TrustFailure
		check   func(t *testing.T, err error)
	}{
		{
			name: "no EK certificate",
			setup: func(t *testing.T, tp *tpm.TPM) *x509.CertPool {
				requireSimulator(t) // swtpm comes with its own
				return x509.NewCertPool()
			},
			failure: tpm.NoEKCertificate,
		},
		{
			name: "certificate from another CA",
			setup: func(t *testing.T, tp *tpm.TPM) *x509.CertPool {
				tpmtest.Manufacture(t, tp)
				root, _ := tpmtest.NewCA(t, "another manufacturer", nil, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
				pool := x509.NewCertPool()
				pool.AddCert(root)
				return pool
			},
			failure: tpm.EKChainInvalid,
			check: func(t *testing.T, err error) {
				var ua x509.UnknownAuthorityError
				assert.ErrorAs(t, err, &ua)
			},
		},
		{
			name: "certificate for another key",
			setup: func(t *testing.T, tp *tpm.TPM) *x509.CertPool {
				return tpmtest.ManufactureWith(t, tp, tpmtest.ManufactureOptions{Key: other.Public()})
			},
			failure: tpm.EKMismatch,
		},
		{
			name: "expired intermediate",
			setup: func(t *testing.T, tp *tpm.TPM) *x509.CertPool {
				return tpmtest.ManufactureWith(t, tp, tpmtest.ManufactureOptions{ExpiredIntermediate: true})
			},
			failure: tpm.EKChainInvalid,
			check: func(t *testing.T, err error) {
				var ci x509.CertificateInvalidError
				require.ErrorAs(t, err, &ci)
				assert.Equal(t, x509.Expired, ci.Reason)
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := tpmtest.Open(t)
			roots := tc.setup(t, tp)
			before, err := tp.LockoutStatus(context.Background())
			require.NoError(t, err)
			_, err = tp.VerifyEndorsement(context.Background(), roots)
			require.ErrorIs(t, err, tpm.ErrUntrustedTPM)
			var ue *tpm.UntrustedError
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, tc.failure, ue.Failure, "%v", err)
			if tc.check != nil {
				tc.check(t, err)
			}
			after, err := tp.LockoutStatus(context.Background())
			require.NoError(t, err)
			assert.Equal(t, before.Failures, after.Failures, "no dictionary-attack count spent")
			requireOnlyBaseline(t, tp, 0)
		})
	}
}

// TestImpostorSRKIsNotProven: an interposer that answers for the SRK with
// its own key passes every EK check (the EK and its certificate are the
// real TPM's) and fails the credential activation for the SRK's Name.
func TestImpostorSRKIsNotProven(t *testing.T) {
	next := tpmtest.OpenTransport(t)
	imp, err := tpmtest.NewSRKImpostor(next)
	require.NoError(t, err)
	tp, err := tpm.New(imp)
	require.NoError(t, err)
	// Not tpmtest.Prepare: resetting the lockout needs the shared session,
	// whose salt the real TPM decrypted with its own SRK.
	t.Cleanup(func() { _ = tp.Close() })
	require.Equal(t, imp.Name(), tp.SRKName(), "the library believes the impostor's key")
	roots := tpmtest.Manufacture(t, tp)
	_, err = tp.VerifyEndorsement(context.Background(), roots)
	var ue *tpm.UntrustedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, tpm.SRKUnproven, ue.Failure, "%v", err)
	requireOnlyBaseline(t, tp, 0)
}

func TestVerifyEndorsementNeedsRoots(t *testing.T) {
	tp := tpmtest.Open(t)
	_, err := tp.VerifyEndorsement(context.Background(), nil)
	assert.True(t, errors.Is(err, tpm.ErrUntrustedTPM))
}

// TestGenuineTPM verifies the TPM under test against the roots named by
// HELLOSIM_TPM_ROOTS (swtpm's local CA in CI).
func TestGenuineTPM(t *testing.T) {
	roots := tpmtest.Roots(t)
	tp := tpmtest.Open(t)
	tp.ResetStats()
	e, err := tp.VerifyEndorsement(context.Background(), roots)
	require.NoError(t, err)
	t.Logf("EK certificate at NV %#x, TPM %+v, chain of %d; %d commands %v", e.Index, e.TPM, len(e.Chain), tp.Stats().Total(), tp.Stats().Commands)
	requireOnlyBaseline(t, tp, 0)
}
