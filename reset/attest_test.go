package reset_test

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/attest"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

func TestDestructiveResetRegistersAnAttestedKey(t *testing.T) {
	w := resettest.New(t)
	roots := tpmtest.Manufacture(t, w.TPM)
	require.NoError(t, w.IdP.SetKeyAttestation(w.Tenant.ID, roots, true))
	env := w.Env()
	env.Options = append(env.Options, container.WithTrustedTPMs(roots))
	_, err := w.TPM.VerifyEndorsement(context.Background(), roots)
	require.NoError(t, err)
	tok := w.Token(t)

	w.TPM.ResetStats()
	n, err := reset.Destructive(context.Background(), env, w.Container, reset.Request{Token: tok, NewPIN: "918273"})
	require.NoError(t, err)
	t.Logf("attested destructive reset: %d commands %v", w.TPM.Stats().Total(), w.TPM.Stats().Commands)
	k, err := w.IdP.LookupKey(n.KeyID())
	require.NoError(t, err)
	assert.True(t, k.Attested, "the directory records the key as attested")
}

func TestTenantRequiringAttestationRefusesUnattestedKeys(t *testing.T) {
	w := resettest.New(t)
	roots := tpmtest.Manufacture(t, w.TPM)
	require.NoError(t, w.IdP.SetKeyAttestation(w.Tenant.ID, roots, true))

	// No WithTrustedTPMs: the TPM is never verified, so the key goes
	// unattested, and the tenant refuses it.
	n, err := reset.Destructive(context.Background(), w.Env(), w.Container, reset.Request{Token: w.Token(t), NewPIN: "918273"})
	require.ErrorIs(t, err, reset.ErrRegistration)
	require.ErrorIs(t, err, idp.ErrAttestationRequired)
	assert.Nil(t, n)
}

func TestUnattestedKeyRecordedAsSuchWhenNotRequired(t *testing.T) {
	w := resettest.New(t)
	n, err := reset.Destructive(context.Background(), w.Env(), w.Container, reset.Request{Token: w.Token(t), NewPIN: "918273"})
	require.NoError(t, err)
	k, err := w.IdP.LookupKey(n.KeyID())
	require.NoError(t, err)
	assert.False(t, k.Attested)
}

func TestDirectoryAttestationRefusals(t *testing.T) {
	w := resettest.New(t)
	ctx := context.Background()
	roots := tpmtest.Manufacture(t, w.TPM)
	_, err := w.TPM.VerifyEndorsement(ctx, roots)
	require.NoError(t, err)
	id, err := w.TPM.AttestationIdentity(ctx)
	require.NoError(t, err)

	// The tenant trusts no TPM roots yet.
	_, err = w.IdP.AttestationChallenge(ctx, w.Token(t), "{KEY}", *id)
	require.ErrorIs(t, err, idp.ErrInvalid)
	require.ErrorIs(t, w.IdP.SetKeyAttestation("no-such-tenant", roots, true), identity.ErrUnknownTenant)

	// Another manufacturer's roots: the EK certificate does not chain.
	other, _ := tpmtest.NewCA(t, "another manufacturer", nil, nil, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	pool := x509.NewCertPool()
	pool.AddCert(other)
	require.NoError(t, w.IdP.SetKeyAttestation(w.Tenant.ID, pool, false))
	_, err = w.IdP.AttestationChallenge(ctx, w.Token(t), "{KEY}", *id)
	require.ErrorIs(t, err, attest.ErrNotAttested)

	// An answer to no challenge.
	_, err = w.IdP.AttestationChallenge(ctx, w.TokenWithoutMFA(t), "{KEY}", *id)
	require.ErrorIs(t, err, idp.ErrTokenWithoutMFA)
	err = w.IdP.RegisterAttestedKey(ctx, w.Token(t), "{KEY}", w.Container.PublicKey(), &tpm.KeyCertification{})
	require.ErrorIs(t, err, attest.ErrNotAttested)
}

func TestProvisionedKeyRegisteredAttested(t *testing.T) {
	w := resettest.New(t)
	ctx := context.Background()
	roots := tpmtest.Manufacture(t, w.TPM)
	require.NoError(t, w.IdP.SetKeyAttestation(w.Tenant.ID, roots, true))
	cfg := container.Config{User: w.User.UPN, UserID: w.User.ObjectID, TenantID: w.User.TenantID}
	c, err := container.Provision(ctx, w.TPM, cfg, "918273", container.WithTrustedTPMs(roots))
	require.NoError(t, err)

	require.NoError(t, reset.Register(ctx, w.Env(), c, w.Token(t), "918273"))
	k, err := w.IdP.LookupKey(c.KeyID())
	require.NoError(t, err)
	assert.True(t, k.Attested)
}
