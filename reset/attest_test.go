package reset_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/resettest"
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
