package tpm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

func TestLockoutStatusHasWindowsParameters(t *testing.T) {
	tp := tpmtest.Open(t)
	st, err := tp.LockoutStatus(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint32(tpm.WindowsMaxTries), st.MaxTries)
	assert.Equal(t, tpm.WindowsRecovery, st.Recovery)
	assert.Equal(t, tpm.WindowsLockoutRecovery, st.LockoutRecovery)
	assert.Zero(t, st.Failures)
	assert.False(t, st.Locked)
	assert.Equal(t, tpm.WindowsMaxTries, st.Remaining())
}

func TestLockout(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	require.NoError(t, tp.SetLockoutParameters(ctx, 3, 7*time.Minute, time.Hour, nil))
	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	require.Equal(t, uint32(3), st.MaxTries)
	require.Equal(t, 7*time.Minute, st.Recovery)

	b, err := tp.Seal(ctx, []byte("secret"), []byte("2580"))
	require.NoError(t, err)
	for want := 2; want >= 0; want-- {
		_, err := tp.Unseal(ctx, b, []byte("0000"))
		var ae *tpm.AuthError
		require.True(t, errors.As(err, &ae), "%v", err)
		assert.Equal(t, want, ae.Remaining)
	}
	// Locked: even the right authValue is refused.
	for _, auth := range []string{"0000", "2580"} {
		_, err = tp.Unseal(ctx, b, []byte(auth))
		require.ErrorIs(t, err, tpm.ErrLockedOut)
		var le *tpm.LockoutError
		require.True(t, errors.As(err, &le))
		assert.Equal(t, 7*time.Minute, le.RetryAfter)
		requireOnlyBaseline(t, tp, 0)
	}
	st, err = tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.True(t, st.Locked)
	assert.Equal(t, 0, st.Remaining())

	require.NoError(t, tp.ResetLockout(ctx, nil))
	st, err = tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.False(t, st.Locked)
	assert.Zero(t, st.Failures)
	got, err := tp.Unseal(ctx, b, []byte("2580"))
	require.NoError(t, err)
	assert.Equal(t, []byte("secret"), got)
}

func TestWrongLockoutAuth(t *testing.T) {
	// It blocks the lockout hierarchy for LockoutRecovery: only on a TPM
	// that the next test replaces.
	requireSimulator(t)
	tp := tpmtest.Open(t)
	ctx := context.Background()
	// Lockout authorization is empty on a test TPM: a wrong one fails as a
	// typed error (and the lockout hierarchy is then blocked for its
	// recovery time, so reset it with the right one first).
	err := tp.ResetLockout(ctx, []byte("not the lockout auth"))
	require.ErrorIs(t, err, tpm.ErrAuthFailed)
	var ae *tpm.AuthError
	require.True(t, errors.As(err, &ae))
	assert.Equal(t, -1, ae.Remaining)
	err = tp.ResetLockout(ctx, nil)
	// The lockout hierarchy is now itself locked out for LockoutRecovery.
	require.ErrorIs(t, err, tpm.ErrLockedOut)
	var le *tpm.LockoutError
	require.True(t, errors.As(err, &le))
	assert.Equal(t, tpm.WindowsLockoutRecovery, le.RetryAfter)
}

func TestLockoutParametersRange(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	assert.Error(t, tp.SetLockoutParameters(ctx, 3, -time.Second, time.Hour, nil))
	assert.Error(t, tp.SetLockoutParameters(ctx, 3, time.Second, time.Duration(1<<62), nil))
}
