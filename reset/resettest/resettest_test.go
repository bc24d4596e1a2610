package resettest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/tpm"
)

func TestNewBuildsAReadyWorld(t *testing.T) {
	ctx := context.Background()
	w := resettest.New(t)

	require.NotNil(t, w.Container)
	assert.True(t, w.Container.HasProtector())
	assert.Equal(t, container.DestructiveAndNonDestructive, w.Container.UserState().CanReset)
	assert.Equal(t, w.User.UPN, w.Container.Config().User)
	assert.Equal(t, w.Tenant.ID, w.Container.Config().TenantID)
	assert.True(t, w.Tenant.Onboarded())
	s, err := container.Unlock(ctx, w.TPM, w.Container, w.PIN)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// Tokens: fresh each time, with MFA, accepted by the service.
	a, b := w.Token(t), w.Token(t)
	assert.NotEqual(t, a, b)
	claims, err := mustVerifier(w.IdP).Verify(ctx, a)
	require.NoError(t, err)
	assert.True(t, claims.HasMFA())
	assert.Equal(t, w.User.ObjectID, claims.ObjectID)
	r, err := w.Client.Recover(ctx, b, w.Container.Envelope())
	require.NoError(t, err)
	r.Destroy()

	// Without MFA the service refuses.
	noMFA := w.TokenWithoutMFA(t)
	claims, err = mustVerifier(w.IdP).Verify(ctx, noMFA)
	require.NoError(t, err)
	assert.False(t, claims.HasMFA())
	_, err = w.Client.Recover(ctx, noMFA, w.Container.Envelope())
	assert.ErrorIs(t, err, service.ErrMFARequired)

	// Eligibility facts agree with the world.
	assert.NoError(t, reset.Check(w.Device(), w.Policy(), w.ResetTenant(), reset.EntrySettings, reset.KindNonDestructive))
	env := w.Env()
	assert.Same(t, w.TPM, env.TPM)
	assert.NotNil(t, env.Service)
	assert.NotNil(t, env.Directory)
}

func TestOptions(t *testing.T) {
	t.Run("scheme, algorithm, PIN", func(t *testing.T) {
		w := resettest.New(t, resettest.WithScheme(protector.RSAOAEP3072), resettest.WithAlgorithm(tpm.ECCP256), resettest.WithPIN("24681"))
		assert.Equal(t, protector.RSAOAEP3072, w.Container.Envelope().Scheme())
		assert.Equal(t, tpm.ECCP256, w.Container.Config().Algorithm)
		assert.Equal(t, "24681", w.PIN)
	})
	t.Run("government, not onboarded, no recovery", func(t *testing.T) {
		w := resettest.New(t, resettest.WithoutRecovery(), resettest.WithCloud(identity.AzureGovernment), resettest.WithoutOnboarding())
		assert.False(t, w.Container.HasProtector())
		assert.False(t, w.Tenant.Onboarded())
		assert.Equal(t, identity.AzureGovernment, w.ResetTenant().Cloud)
		assert.False(t, w.Policy().EnablePINRecovery)
		assert.Equal(t, container.DestructiveOnly, reset.CanReset(w.Device(), w.Policy(), w.ResetTenant()))
	})
	t.Run("hybrid, federated", func(t *testing.T) {
		w := resettest.New(t, resettest.WithHybrid(identity.CertificateTrust), resettest.WithFederation("https://sts.contoso.test/adfs/ls"))
		d := w.Device()
		assert.Equal(t, identity.HybridAzureADJoined, d.Join)
		assert.Equal(t, identity.CertificateTrust, d.Trust)
		assert.True(t, w.ResetTenant().ADFS)
		assert.True(t, w.Policy().AllowsHost("sts.contoso.test"))
	})
}

// Two worlds in one test share a TPM: the simulator is one per process.
func TestWithTPMSharesTheTPM(t *testing.T) {
	a := resettest.New(t)
	b := resettest.New(t, resettest.WithTPM(a.TPM))
	assert.Same(t, a.TPM, b.TPM)
	assert.NotEqual(t, a.Tenant.ID, b.Tenant.ID)
}

func TestAddUserAndTokenFor(t *testing.T) {
	w := resettest.New(t)
	bob := w.AddUser(t, "bob")
	c := w.Provision(t, bob, "97532", true, container.Config{})
	assert.Equal(t, bob.ObjectID, c.Config().UserID)
	n, err := reset.NonDestructive(context.Background(), w.Env(), c, reset.Request{Token: w.TokenFor(t, bob.UPN), NewPIN: "582046"})
	require.NoError(t, err)
	assert.Equal(t, c.KeyID(), n.KeyID())
}

// WithPINPolicy is the device's managed policy: Env carries it, so a reset
// through the world holds the new PIN to it even when the container file
// records a weaker one.
func TestWithPINPolicyIsTheManagedPolicyOfResets(t *testing.T) {
	ctx := context.Background()
	managed := container.PINPolicy{MinimumLength: 8}
	w := resettest.New(t, resettest.WithPINPolicy(managed), resettest.WithPIN("28461937"))
	assert.Equal(t, 8, w.Container.Config().PINPolicy.MinimumLength, "provisioned under the managed policy")
	env := w.Env()
	require.NotNil(t, env.PINPolicy)
	assert.Equal(t, managed, *env.PINPolicy)
	env.PINPolicy.MinimumLength = 4
	assert.Equal(t, 8, w.Env().PINPolicy.MinimumLength, "each Env has its own copy")

	// A container that records the Windows default (4 digits and up).
	weak := w.Provision(t, w.User, "97532", true, container.Config{})
	require.Equal(t, 4, weak.Config().PINPolicy.MinimumLength)
	const short = "5820" // the default policy accepts it; the managed one does not
	require.NoError(t, weak.Config().PINPolicy.Check(short))
	require.Error(t, managed.Check(short))

	_, err := reset.NonDestructive(ctx, w.Env(), weak, reset.Request{Token: w.Token(t), NewPIN: short})
	assert.ErrorIs(t, err, reset.ErrWeakPIN)
	assert.ErrorIs(t, err, container.ErrPINPolicy)
	_, err = reset.Destructive(ctx, w.Env(), weak, reset.Request{Token: w.Token(t), NewPIN: short})
	assert.ErrorIs(t, err, reset.ErrWeakPIN)

	n, err := reset.NonDestructive(ctx, w.Env(), weak, reset.Request{Token: w.Token(t), NewPIN: "71938264"})
	require.NoError(t, err)
	assert.Equal(t, 8, n.Config().PINPolicy.MinimumLength, "the new container records the managed policy")

	// Without the option the world manages no policy.
	assert.Nil(t, resettest.New(t, resettest.WithTPM(w.TPM)).Env().PINPolicy)
}

// mustVerifier is the PIN reset service's verifier for iss's tokens.
func mustVerifier(iss service.TokenIssuer) *service.JWTVerifier {
	v, err := service.VerifierFor(iss)
	if err != nil {
		panic(err)
	}
	return v
}
