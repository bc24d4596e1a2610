package tpm_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// A secret index reads with its authValue only; after ChangeSecretAuth the
// old authValue is refused by the TPM, and after UndefineSecret nothing
// reads it. Commands counted: define 2, read 1, change 4, undefine 1.
func TestNVSecretLifecycle(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	secret := bytes.Repeat([]byte{0x5a}, tpm.NVSecretSize)
	oldAuth, newAuth := []byte{0x61, 0x00, 0x62}, []byte("new auth value")

	tp.ResetStats()
	s, err := tp.DefineSecret(ctx, secret, oldAuth)
	require.NoError(t, err)
	assert.Equal(t, uint64(2), tp.Stats().Total(), "define: NV_DefineSpace, NV_Write")
	assert.GreaterOrEqual(t, s.Handle, tpm.NVFirst)
	assert.LessOrEqual(t, s.Handle, tpm.NVLast)

	tp.ResetStats()
	got, err := tp.ReadSecret(ctx, s, oldAuth)
	require.NoError(t, err)
	assert.Equal(t, secret, got)
	assert.Equal(t, uint64(1), tp.Stats().Total(), "read: NV_Read")

	_, err = tp.ReadSecret(ctx, s, []byte{0x61, 0x62})
	var ae *tpm.AuthError
	require.ErrorAs(t, err, &ae, "an inner zero counts")
	assert.Equal(t, tpm.WindowsMaxTries-1, ae.Remaining, "a wrong authValue counts toward lockout")

	tp.ResetStats()
	require.NoError(t, tp.ChangeSecretAuth(ctx, s, oldAuth, newAuth))
	assert.Equal(t, uint64(4), tp.Stats().Total(), "change: StartAuthSession, PolicyCommandCode, PolicyAuthValue, NV_ChangeAuth")
	requireOnlyBaseline(t, tp, 0)

	_, err = tp.ReadSecret(ctx, s, oldAuth)
	require.ErrorIs(t, err, tpm.ErrAuthFailed, "the old authValue is refused")
	got, err = tp.ReadSecret(ctx, s, newAuth)
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	err = tp.ChangeSecretAuth(ctx, s, oldAuth, []byte("attacker"))
	require.ErrorIs(t, err, tpm.ErrAuthFailed, "changing needs the current authValue")
	requireOnlyBaseline(t, tp, 0)

	list, err := tp.Secrets(ctx)
	require.NoError(t, err)
	assert.Contains(t, list, s)

	tp.ResetStats()
	require.NoError(t, tp.UndefineSecret(ctx, s))
	assert.Equal(t, uint64(1), tp.Stats().Total())
	_, err = tp.ReadSecret(ctx, s, newAuth)
	require.ErrorIs(t, err, tpm.ErrNVGone)
	require.NoError(t, tp.UndefineSecret(ctx, s), "already gone is done")
	list, err = tp.Secrets(ctx)
	require.NoError(t, err)
	assert.NotContains(t, list, s)
	_ = tpm2.TPMCCNVRead
}
