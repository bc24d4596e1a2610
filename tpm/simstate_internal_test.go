//go:build cgo

package tpm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm/internal/simnv"
)

// The time between two processes counts as time the TPM was on: a state
// saved 25 minutes ago comes back with two of its three failures forgiven
// (one per WindowsRecovery, 10 minutes).
func TestSimStateHealsBetweenProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tpm.state")
	tp, err := Open("sim:state=" + path)
	require.NoError(t, err)
	s, err := tp.DefineSecret(ctx, bytes.Repeat([]byte{1}, NVSecretSize), []byte("right"))
	require.NoError(t, err)
	for range 3 {
		_, err = tp.ReadSecret(ctx, s, []byte("wrong"))
		require.ErrorIs(t, err, ErrAuthFailed)
	}
	require.NoError(t, tp.Close())

	ageState(t, path, 25*time.Minute)
	tp, err = Open("sim:state=" + path)
	require.NoError(t, err)
	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.Failures)
	require.NoError(t, tp.Close())

	// The forgiveness was saved: opening again at once forgives nothing more.
	tp, err = Open("sim:state=" + path)
	require.NoError(t, err)
	st, err = tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, st.Failures)
	require.NoError(t, tp.Close())
}

// ageState rewrites the state file at path as if saved d earlier.
func ageState(t *testing.T, path string, d time.Duration) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	img, savedAt, err := decodeSimState(b, simnv.Size)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, encodeSimState(img, savedAt.Add(-d)), 0o600))
}

func TestSimStateRoundTrip(t *testing.T) {
	img := bytes.Repeat([]byte{7}, 64)
	at := time.UnixMilli(1_700_000_000_123)
	got, gotAt, err := decodeSimState(encodeSimState(img, at), len(img))
	require.NoError(t, err)
	assert.Equal(t, img, got)
	assert.True(t, at.Equal(gotAt))
	_, _, err = decodeSimState(encodeSimState(img, at), len(img)+1)
	assert.ErrorIs(t, err, ErrSimStateCorrupt, "an image of another size")
}

func FuzzDecodeSimState(f *testing.F) {
	f.Add(encodeSimState(make([]byte, 16), time.UnixMilli(0)))
	f.Add([]byte(simStateMagic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		img, _, err := decodeSimState(b, 16)
		if err != nil {
			require.ErrorIs(t, err, ErrSimStateCorrupt)
			return
		}
		require.Len(t, img, 16)
	})
}

// BenchmarkSimStateOpenClose is what the state file costs a short-lived
// program (the hello CLI) per run: open (restore, TPM2_Startup, the SRK and
// the session) and close (TPM2_Shutdown, saved).
func BenchmarkSimStateOpenClose(b *testing.B) {
	path := filepath.Join(b.TempDir(), "tpm.state")
	tp, err := Open("sim:state=" + path)
	require.NoError(b, err)
	require.NoError(b, tp.Close())
	for b.Loop() {
		tp, err := Open("sim:state=" + path)
		require.NoError(b, err)
		require.NoError(b, tp.Close())
	}
}

// BenchmarkSimStateSaves counts the state-file writes of a wrong and a right
// authorization of an NV secret: only commands that change NV are saved.
func BenchmarkSimStateSaves(b *testing.B) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "tpm.state")
	tp, err := Open("sim:state=" + path)
	require.NoError(b, err)
	defer tp.Close()
	secret := bytes.Repeat([]byte{1}, NVSecretSize)
	s, err := tp.DefineSecret(ctx, secret, []byte("right"))
	require.NoError(b, err)
	st := tp.closer.(*simState)
	before := st.saves
	for b.Loop() {
		_, err := tp.ReadSecret(ctx, s, []byte("wrong"))
		require.ErrorIs(b, err, ErrAuthFailed)
		_, err = tp.ReadSecret(ctx, s, []byte("right"))
		require.NoError(b, err)
		require.NoError(b, tp.ResetLockout(ctx, nil))
	}
	b.ReportMetric(float64(st.saves-before)/float64(b.N), "saves/op")
}
