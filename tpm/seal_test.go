package tpm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

func TestSealUnsealRoundTrip(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	for _, size := range []int{1, 32, tpm.MaxSecretSize} {
		secret := make([]byte, size)
		_, _ = rand.Read(secret)
		auth := []byte("correct horse battery staple")
		b, err := tp.Seal(ctx, secret, auth)
		require.NoError(t, err)
		got, err := tp.Unseal(ctx, b, auth)
		require.NoError(t, err)
		assert.Equal(t, secret, got, "size %d", size)
		requireOnlyBaseline(t, tp, 0)
	}
}

func TestSealEmptyAuth(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	b, err := tp.Seal(ctx, []byte("secret"), nil)
	require.NoError(t, err)
	got, err := tp.Unseal(ctx, b, nil)
	require.NoError(t, err)
	assert.Equal(t, []byte("secret"), got)
	_, err = tp.Unseal(ctx, b, []byte{1})
	assert.ErrorIs(t, err, tpm.ErrAuthFailed)
}

func TestSealRefusesBadSizes(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	_, err := tp.Seal(ctx, nil, []byte("a"))
	assert.Error(t, err)
	_, err = tp.Seal(ctx, make([]byte, tpm.MaxSecretSize+1), []byte("a"))
	assert.Error(t, err)
	_, err = tp.Seal(ctx, []byte("s"), make([]byte, tpm.MaxAuthSize+1))
	assert.Error(t, err)
	assert.Zero(t, tp.Stats().Total(), "refused before reaching the TPM")
}

// The authValue zero-byte bug of go-tpm v0.9.8 (it cuts the HMAC key at the
// first 0x00) must not bite: values with zero bytes inside, at the start
// and at the end all work, and trailing zeros do not count, as in the TPM.
func TestAuthValuesWithZeroBytes(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	auths := [][]byte{
		{0x00, 0x01, 0x02, 0x03},
		{0x61, 0x00, 0x62},
		{0x61, 0x62, 0x00, 0x00},
		bytes.Repeat([]byte{0}, 31),
		append(bytes.Repeat([]byte{0xff}, 16), bytes.Repeat([]byte{0x00, 0x7f}, 8)...),
	}
	// Random 32-byte values with a zero byte somewhere, as an HMAC-derived
	// authValue has about 12% of the time.
	for len(auths) < 12 {
		a := make([]byte, 32)
		_, _ = rand.Read(a)
		a[1+len(auths)%30] = 0
		auths = append(auths, a)
	}
	for i, auth := range auths {
		secret := []byte{byte(i), 1, 2, 3}
		b, err := tp.Seal(ctx, secret, auth)
		require.NoError(t, err, "auth %d", i)
		got, err := tp.Unseal(ctx, b, auth)
		require.NoError(t, err, "auth %x", auth)
		assert.Equal(t, secret, got)
	}
	// Trailing zeros are not part of the authValue (TPM 2.0 Part 1 §19.6.8).
	b, err := tp.Seal(ctx, []byte("trailing"), []byte{0x61, 0x62, 0x00})
	require.NoError(t, err)
	got, err := tp.Unseal(ctx, b, []byte{0x61, 0x62})
	require.NoError(t, err)
	assert.Equal(t, []byte("trailing"), got)
	// But inner zeros are.
	_, err = tp.Unseal(ctx, b, []byte{0x61})
	require.ErrorIs(t, err, tpm.ErrAuthFailed)

	// An inner zero is part of the value: the same bytes without it are
	// another authValue, whatever the library does with zeros on its side.
	b, err = tp.Seal(ctx, []byte("inner"), []byte{0x61, 0x00, 0x62})
	require.NoError(t, err)
	_, err = tp.Unseal(ctx, b, []byte{0x61, 0x62})
	require.ErrorIs(t, err, tpm.ErrAuthFailed, "{61 00 62} sealed, {61 62} must not unseal")
	got, err = tp.Unseal(ctx, b, []byte{0x61, 0x00, 0x62, 0x00})
	require.NoError(t, err)
	assert.Equal(t, []byte("inner"), got)

	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), st.Failures, "only the deliberate wrong auths counted")
}

func TestWrongAuthCountsDown(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	b, err := tp.Seal(ctx, []byte("secret"), []byte("1234"))
	require.NoError(t, err)

	var last = tpm.WindowsMaxTries
	for range 3 {
		_, err := tp.Unseal(ctx, b, []byte("9999"))
		require.ErrorIs(t, err, tpm.ErrAuthFailed)
		var ae *tpm.AuthError
		require.True(t, errors.As(err, &ae))
		assert.Equal(t, last-1, ae.Remaining)
		last = ae.Remaining
		assert.NotContains(t, err.Error(), "9999")
		requireOnlyBaseline(t, tp, 0)
	}
	// A correct authValue still works, and does not reset the counter.
	got, err := tp.Unseal(ctx, b, []byte("1234"))
	require.NoError(t, err)
	assert.Equal(t, []byte("secret"), got)
	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint32(3), st.Failures)
	assert.Equal(t, last, st.Remaining())
}

func TestUnsealCommandCounts(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	// Warm-up: the SRK and the session exist from Open.
	tp.ResetStats()
	b, err := tp.Seal(ctx, []byte("secret"), []byte("auth"))
	require.NoError(t, err)
	s := tp.Stats()
	assert.Equal(t, uint64(1), s.Total(), "seal: %v", s.Commands)
	assert.Equal(t, uint64(1), count(s, tpm2.TPMCCCreate))

	tp.ResetStats()
	_, err = tp.Unseal(ctx, b, []byte("auth"))
	require.NoError(t, err)
	s = tp.Stats()
	assert.Equal(t, uint64(3), s.Total(), "unseal: %v", s.Commands)
	assert.Equal(t, uint64(1), count(s, tpm2.TPMCCLoad))
	assert.Equal(t, uint64(1), count(s, tpm2.TPMCCUnseal))
	assert.Equal(t, uint64(1), count(s, tpm2.TPMCCFlushContext))

	tp.ResetStats()
	assert.Zero(t, tp.Stats().Total())
}

func TestContextCancelledSendsNothing(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := tp.Seal(ctx, []byte("secret"), []byte("auth"))
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, tp.Stats().Total())
	_, err = tp.LockoutStatus(ctx)
	require.ErrorIs(t, err, context.Canceled)
	requireOnlyBaseline(t, tp, 0)
}

func TestClosedTPM(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	b, err := tp.Seal(ctx, []byte("secret"), nil)
	require.NoError(t, err)
	kb, _, err := tp.CreateKey(ctx, tpm.ECCP256, nil)
	require.NoError(t, err)
	k, err := tp.LoadKey(ctx, kb, nil)
	require.NoError(t, err)

	require.NoError(t, tp.Close())
	require.NoError(t, tp.Close(), "closing twice is harmless")
	_, err = tp.Seal(ctx, []byte("secret"), nil)
	assert.ErrorIs(t, err, tpm.ErrClosed)
	_, err = tp.Unseal(ctx, b, nil)
	assert.ErrorIs(t, err, tpm.ErrClosed)
	_, _, err = tp.CreateKey(ctx, tpm.ECCP256, nil)
	assert.ErrorIs(t, err, tpm.ErrClosed)
	_, err = tp.LoadKey(ctx, kb, nil)
	assert.ErrorIs(t, err, tpm.ErrClosed)
	_, err = k.SignContext(ctx, digestOf("x"), cryptoSHA256)
	assert.ErrorIs(t, err, tpm.ErrClosed)
	assert.NoError(t, k.Close())
	_, err = tp.LockoutStatus(ctx)
	assert.ErrorIs(t, err, tpm.ErrClosed)
	assert.ErrorIs(t, tp.ResetLockout(ctx, nil), tpm.ErrClosed)
	assert.ErrorIs(t, tp.CheckSRK(tp.SRKName()), tpm.ErrClosed)
	_, _, err = tp.LoadedHandles(ctx)
	assert.ErrorIs(t, err, tpm.ErrClosed)
}
