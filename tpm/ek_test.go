package tpm_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
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

// TestSRKWithOtherAttributesRefused: credential activation proves an object
// with the SRK's Name is in the TPM; only the template's attributes
// (fixedTPM among them) make that object a key no one else holds, since a
// key loaded with its private part (TPM2_LoadExternal) or imported must
// have fixedTPM clear. An SRK answered with other attributes is refused.
func TestSRKWithOtherAttributesRefused(t *testing.T) {
	next := tpmtest.OpenTransport(t)
	imp, err := tpmtest.NewSRKImpostor(next, func(p *tpm2.TPMTPublic) {
		p.ObjectAttributes.FixedTPM = false
		p.ObjectAttributes.FixedParent = false
	})
	require.NoError(t, err)
	tp, err := tpm.New(imp)
	if err == nil {
		_ = tp.Close()
	}
	require.ErrorContains(t, err, "other attributes")
}

// TestActivationRefusesPublicOnlyKeys is the TPM behaviour the SRK proof
// rests on: an interposer can load the public part of its own key, with
// the SRK's attributes, into the real TPM (TPM2_LoadExternal accepts it),
// but the TPM does not activate a credential for it: a public-only object
// has no authValue and no policy to authorize it with.
func TestActivationRefusesPublicOnlyKeys(t *testing.T) {
	tr := tpmtest.OpenTransport(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	pub := tpm2.ECCSRKTemplate
	pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: key.X.FillBytes(make([]byte, 32))},
		Y: tpm2.TPM2BECCParameter{Buffer: key.Y.FillBytes(make([]byte, 32))},
	})
	for _, policy := range []bool{false, true} {
		p := pub
		if policy {
			// An empty policy the interposer could satisfy at will.
			p.ObjectAttributes.AdminWithPolicy = true
			p.AuthPolicy = tpm2.TPM2BDigest{Buffer: make([]byte, 32)}
		}
		ext, err := tpm2.LoadExternal{InPublic: tpm2.New2B(p), Hierarchy: tpm2.TPMRHOwner}.Execute(tr)
		require.NoError(t, err, "the TPM takes the public part with the SRK's attributes")
		ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.ECCEKTemplate)}.Execute(tr)
		require.NoError(t, err)
		ekPub, err := ek.OutPublic.Contents()
		require.NoError(t, err)
		kem, err := tpm2.ImportEncapsulationKey(ekPub)
		require.NoError(t, err)
		blob, enc, err := tpm2.CreateCredential(rand.Reader, kem, ext.Name.Buffer, make([]byte, 16))
		require.NoError(t, err)
		var auth tpm2.Session = tpm2.PasswordAuth(nil)
		if policy {
			auth = tpm2.Policy(tpm2.TPMAlgSHA256, 16, tpm2.PolicyCallback(func(transport.TPM, tpm2.TPMISHPolicy, tpm2.TPM2BNonce) error { return nil }))
		}
		_, err = tpm2.ActivateCredential{
			ActivateHandle: tpm2.AuthHandle{Handle: ext.ObjectHandle, Name: ext.Name, Auth: auth},
			KeyHandle: tpm2.AuthHandle{Handle: ek.ObjectHandle, Name: ek.Name, Auth: tpm2.Policy(tpm2.TPMAlgSHA256, 16, tpm2.PolicyCallback(func(tr transport.TPM, h tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
				_, err := tpm2.PolicySecret{AuthHandle: tpm2.TPMRHEndorsement, PolicySession: h}.Execute(tr)
				return err
			}))},
			CredentialBlob: tpm2.TPM2BIDObject{Buffer: blob},
			Secret:         tpm2.TPM2BEncryptedSecret{Buffer: enc},
		}.Execute(tr)
		assert.ErrorIs(t, err, tpm2.TPMRCAuthUnavailable, "policy=%v", policy)
		_, _ = tpm2.FlushContext{FlushHandle: ext.ObjectHandle}.Execute(tr)
		_, _ = tpm2.FlushContext{FlushHandle: ek.ObjectHandle}.Execute(tr)
	}
}

// TestVerifyEndorsementOfTheP384EK: the high-range ECC P-384 EK (template
// H-3, NV 0x01C00016), recreated from its template where the platform made
// no persistent one. On swtpm the template's key is the persistent EK
// swtpm_setup made (0x81010016), which shows the template is the one.
func TestVerifyEndorsementOfTheP384EK(t *testing.T) {
	tp := tpmtest.Open(t)
	roots := tpmtest.ManufactureWith(t, tp, tpmtest.ManufactureOptions{Index: tpm.NVECCP384EKCert})
	ctx := context.Background()
	e, err := tp.VerifyEndorsement(ctx, roots)
	require.NoError(t, err)
	assert.Equal(t, tpm.NVECCP384EKCert, e.Index)
	requireOnlyBaseline(t, tp, 0)
}

// TestP384TemplateMakesTheGenuineEK: where the test TPM's real EK
// certificate set has a P-384 certificate (swtpm), the H-3 template makes
// the certified key.
func TestP384TemplateMakesTheGenuineEK(t *testing.T) {
	tpmtest.Roots(t)
	tp := tpmtest.Open(t)
	ctx := context.Background()
	der, err := tp.ReadEndorsementNV(ctx, tpm.NVECCP384EKCert)
	require.NoError(t, err)
	if der == nil {
		t.Skip("the test TPM has no P-384 EK certificate")
	}
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	key, err := tp.EndorsementKeyAt(ctx, tpm.NVECCP384EKCert)
	require.NoError(t, err)
	assert.True(t, key.(*ecdsa.PublicKey).Equal(cert.PublicKey))
}

// TestActivationAnswerIsCompared: an interposer lets TPM2_ActivateCredential
// reach the TPM and answers it with success and a secret of its own (random
// bytes of the right size). Nothing in the answer is out of its reach: the
// SRK's password session carries no HMAC, and the EK's policy session is
// unsalted and unbound with no PolicyAuthValue, so its response HMAC is
// keyed with the empty string and computed from what crossed the bus. Only
// the comparison with the secret the library sealed in the credential
// catches it: the TPM is refused as SRKUnproven.
func TestActivationAnswerIsCompared(t *testing.T) {
	ip := tpmtest.NewInterposer(tpmtest.OpenTransport(t))
	tp := tpmtest.OpenOn(t, ip)
	roots := tpmtest.Manufacture(t, tp)
	ip.Rewrite(tpm2.TPMCCActivateCredential, func(cmd, rsp []byte) []byte {
		require.Equal(t, tpm2.TPMRCSuccess, tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:10])), "the TPM activated the credential")
		// Response: header (10), parameterSize (4), certInfo (2+n), then
		// a TPMS_AUTH_RESPONSE per session.
		paramSize := int(binary.BigEndian.Uint32(rsp[10:14]))
		n := int(binary.BigEndian.Uint16(rsp[14:16]))
		_, err := rand.Read(rsp[16 : 16+n])
		require.NoError(t, err)
		forgeResponseHMACs(t, cmd, rsp, 2, rsp[14:14+paramSize])
		return rsp
	})
	_, err := tp.VerifyEndorsement(context.Background(), roots)
	require.Equal(t, 1, ip.Fired(), "the answer was replaced")
	require.ErrorIs(t, err, tpm.ErrUntrustedTPM)
	var ue *tpm.UntrustedError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, tpm.SRKUnproven, ue.Failure, "%v", err)
	assert.Contains(t, err.Error(), "the TPM returned another secret")
	requireOnlyBaseline(t, tp, 0)

	// The same TPM, its answer untouched, is proven.
	_, err = tp.VerifyEndorsement(context.Background(), roots)
	require.NoError(t, err)
}

// forgeResponseHMACs recomputes, over the parameters params, the response
// HMAC of every session of rsp that has one, with the empty key: what an
// attacker can do for an unsalted, unbound session whose entity's
// authValue is not in the key (Part 1 §19.6.5: HMAC(sessionKey ||
// authValue, rpHash || nonceTPM || nonceCaller || sessionAttributes)). The
// nonceCaller values come from cmd, which has handles command handles.
func forgeResponseHMACs(t *testing.T, cmd, rsp []byte, handles int, params []byte) {
	t.Helper()
	cut2B := func(b []byte) ([]byte, []byte) {
		n := int(binary.BigEndian.Uint16(b))
		return b[2 : 2+n], b[2+n:]
	}
	// Command: header (10), handles, authorizationSize (4), then per
	// session: handle (4), nonceCaller (2B), attributes (1), hmac (2B).
	area := cmd[10+4*handles:]
	area = area[4 : 4+binary.BigEndian.Uint32(area)]
	var callerNonces [][]byte
	for len(area) > 0 {
		nonce, rest := cut2B(area[4:])
		_, rest = cut2B(rest[1:])
		callerNonces = append(callerNonces, nonce)
		area = rest
	}
	rp := sha256.New()
	rp.Write(binary.BigEndian.AppendUint32(nil, uint32(tpm2.TPMRCSuccess)))
	rp.Write(cmd[6:10])
	rp.Write(params)
	rpHash := rp.Sum(nil)
	// Response sessions follow the parameters.
	auths := rsp[14+len(params):]
	for i := range callerNonces {
		nonceTPM, rest := cut2B(auths)
		attrs := rest[0]
		mac, next := cut2B(rest[1:])
		if len(mac) == sha256.Size {
			h := hmac.New(sha256.New, nil)
			h.Write(rpHash)
			h.Write(nonceTPM)
			h.Write(callerNonces[i])
			h.Write([]byte{attrs})
			copy(mac, h.Sum(nil))
		}
		auths = next
	}
}
