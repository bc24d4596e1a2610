package reset_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/resettest"
)

// managedPolicy is the PIN policy device management sets: eight characters.
var managedPolicy = container.PINPolicy{MinimumLength: 8}

const managedPIN = "28461937"

// weakenPolicyInFile is an attacker's edit of the container file: the
// stored MinimumPINLength lowered to 4 and the checksum recomputed, so the
// file parses. The tag cannot be recomputed without the container secret,
// but a destructive reset never checks it.
func weakenPolicyInFile(t *testing.T, c *container.Container) *container.Container {
	t.Helper()
	b := marshal(t, c)
	cfg := c.Config()
	// magic, version, generation, id, keyID, user, userID, tenantID (see
	// the format in package container), then MinimumPINLength.
	off := 5 + 1 + 8 + 1 + len(c.ID()) + 1 + len(c.KeyID()) + 2 + len(cfg.User) + 2 + len(cfg.UserID) + 2 + len(cfg.TenantID)
	require.Equal(t, byte(cfg.PINPolicy.MinimumLength), b[off], "format offset")
	b[off] = 4
	sum := sha256.Sum256(b[:len(b)-sha256.Size])
	copy(b[len(b)-sha256.Size:], sum[:])
	out, err := container.Parse(b)
	require.NoError(t, err)
	require.Equal(t, 4, out.Config().PINPolicy.MinimumLength)
	return out
}

func TestDestructiveResetAppliesManagedPolicy(t *testing.T) {
	ctx := context.Background()
	w := resettest.New(t, resettest.WithoutRecovery(), resettest.WithPINPolicy(managedPolicy), resettest.WithPIN(managedPIN))
	edited := weakenPolicyInFile(t, w.Container)
	env := w.Env()
	env.PINPolicy = &managedPolicy

	tok := w.Token(t)
	w.TPM.ResetStats()
	_, err := reset.Destructive(ctx, env, edited, reset.Request{Token: tok, NewPIN: newPIN})
	assert.ErrorIs(t, err, reset.ErrWeakPIN)
	assert.ErrorIs(t, err, container.ErrPINPolicy)
	var pe *container.PolicyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, container.RuleMinimumLength, pe.Rule)
	assert.Zero(t, w.TPM.Stats().Total(), "a weak PIN reached the TPM")
	keys, err := w.IdP.RegisteredKeys(w.User.UPN)
	require.NoError(t, err)
	assert.Empty(t, keys, "a weak PIN's key reached the directory")

	n, err := reset.Destructive(ctx, env, edited, reset.Request{Token: tok, NewPIN: managedPIN})
	require.NoError(t, err)
	assert.Equal(t, 8, n.Config().PINPolicy.MinimumLength, "the new container records the managed policy")
	sign(t, w.TPM, n, managedPIN)
	_, err = container.ChangePIN(ctx, w.TPM, n, managedPIN, newPIN)
	assert.ErrorIs(t, err, container.ErrPINPolicy)
}

// The managed policy also wins over a genuine container policy: a policy
// change from device management applies at the next reset.
func TestResetsApplyManagedPolicyOverContainers(t *testing.T) {
	ctx := context.Background()
	w := resettest.New(t)
	require.Equal(t, 4, w.Container.Config().PINPolicy.MinimumLength)
	env := w.Env()
	env.PINPolicy = &managedPolicy

	// Non-destructive: the weak PIN is refused before the token is spent,
	// so the same token still works for a good one.
	tok := w.Token(t)
	_, err := reset.NonDestructive(ctx, env, w.Container, reset.Request{Token: tok, NewPIN: newPIN})
	assert.ErrorIs(t, err, reset.ErrWeakPIN)
	n, err := reset.NonDestructive(ctx, env, w.Container, reset.Request{Token: tok, NewPIN: managedPIN})
	require.NoError(t, err)
	assert.Equal(t, w.Container.KeyID(), n.KeyID())
	assert.Equal(t, 8, n.Config().PINPolicy.MinimumLength)
	sign(t, w.TPM, n, managedPIN)

	d, err := reset.Destructive(ctx, env, n, reset.Request{Token: w.Token(t), NewPIN: managedPIN})
	require.NoError(t, err)
	assert.Equal(t, 8, d.Config().PINPolicy.MinimumLength)

	// Without it, the container's own policy applies, as before.
	n2, err := reset.NonDestructive(ctx, w.Env(), w.Container, reset.Request{Token: w.Token(t), NewPIN: newPIN})
	require.NoError(t, err)
	assert.Equal(t, 4, n2.Config().PINPolicy.MinimumLength)
}

func TestResetsRefuseInvalidManagedPolicy(t *testing.T) {
	w := resettest.New(t)
	env := w.Env()
	env.PINPolicy = &container.PINPolicy{MinimumLength: 9, MaximumLength: 8}
	before := marshal(t, w.Container)
	for name, run := range map[string]func() error{
		"non-destructive": func() error {
			_, err := reset.NonDestructive(context.Background(), env, w.Container, reset.Request{Token: w.Token(t), NewPIN: managedPIN})
			return err
		},
		"destructive": func() error {
			_, err := reset.Destructive(context.Background(), env, w.Container, reset.Request{Token: w.Token(t), NewPIN: managedPIN})
			return err
		},
	} {
		err := run()
		assert.ErrorIs(t, err, reset.ErrInvalidEnv, name)
		assert.ErrorIs(t, err, container.ErrInvalidConfig, name)
	}
	keys, err := w.IdP.RegisteredKeys(w.User.UPN)
	require.NoError(t, err)
	assert.Empty(t, keys)
	assertIntact(t, w, w.Container, before, w.PIN)
}

func TestFlowAsksForAPINMeetingTheManagedPolicy(t *testing.T) {
	w := resettest.New(t)
	f := w.Flow(t, reset.EntrySettings, newPIN, managedPIN)
	f.Env.PINPolicy = &managedPolicy
	n, rec, err := run(t, f, w.Container)
	require.NoError(t, err)
	assert.Equal(t, []string{"check", "authenticate", "mfa", "new-pin!", "new-pin", "reset", "done"}, rec.steps())
	assert.Equal(t, 8, n.Config().PINPolicy.MinimumLength)
	sign(t, w.TPM, n, managedPIN)
}

// Destructive with no Directory checks no token: authentication is the
// caller's (see its documentation). This pins that contract down.
func TestDestructiveWithoutDirectoryChecksNoToken(t *testing.T) {
	w := resettest.New(t, resettest.WithoutRecovery())
	env := w.Env()
	env.Directory = nil
	n, err := reset.Destructive(context.Background(), env, w.Container, reset.Request{Token: "not a token", NewPIN: newPIN})
	require.NoError(t, err)
	_, err = w.IdP.LookupKey(n.KeyID())
	assert.ErrorIs(t, err, idp.ErrKeyNotFound)
}
