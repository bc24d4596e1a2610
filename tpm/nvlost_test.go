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

// TestChangeSecretAuthLostAnswer loses the answer to TPM2_NV_ChangeAuth on
// the bus, in each way it can be lost, and checks that ChangeSecretAuth
// tells which authValue the index holds: nil when the new one, an error
// when still the old one, ErrChangeAuthLost only when it cannot find out;
// that the answer it gives is what the TPM holds; and what it cost in
// dictionary-attack counts: none, but for a forged hint, where one count
// is the most it spends.
func TestChangeSecretAuthLostAnswer(t *testing.T) {
	secret := bytes.Repeat([]byte{0xa5}, tpm.NVSecretSize)
	oldAuth, newAuth := []byte("old auth value"), []byte("new auth value")
	for _, tc := range []struct {
		name     string
		arm      func(ip *tpmtest.Interposer)
		changed  bool // the TPM holds newAuth afterwards
		unknown  bool // ErrChangeAuthLost
		failures uint32
	}{
		{
			name:    "executed, answer lost",
			arm:     func(ip *tpmtest.Interposer) { ip.Arm(tpm2.TPMCCNVChangeAuth, tpmtest.LoseAnswer) },
			changed: true,
		},
		{
			name: "executed, answer changed on the bus",
			arm: func(ip *tpmtest.Interposer) {
				ip.Rewrite(tpm2.TPMCCNVChangeAuth, func(_, rsp []byte) []byte { return flipAt(fromEnd(hmacFromE), 0x01)(rsp) })
			},
			changed: true,
		},
		{
			name: "command dropped",
			arm:  func(ip *tpmtest.Interposer) { ip.Arm(tpm2.TPMCCNVChangeAuth, tpmtest.DropCommand) },
		},
		{
			name:    "executed, answer lost, bus down",
			arm:     func(ip *tpmtest.Interposer) { ip.Arm(tpm2.TPMCCNVChangeAuth, tpmtest.LoseAnswerThenDown) },
			changed: true,
			unknown: true,
		},
		{
			// The session was flushed by the probe itself, and its answer
			// forged: the hint says "changed" when nothing changed. The
			// read with the new authValue fails at one count, the read
			// with the old one settles it.
			name: "command dropped, hint forged",
			arm: func(ip *tpmtest.Interposer) {
				ip.Arm(tpm2.TPMCCNVChangeAuth, tpmtest.DropCommand)
				ip.Rewrite(tpm2.TPMCCFlushContext, func(_, _ []byte) []byte { return tpmtest.ErrorAnswer(tpm2.TPMRCHandle) })
			},
			failures: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ip := tpmtest.NewInterposer(tpmtest.OpenTransport(t))
			tp := tpmtest.OpenOn(t, ip)
			s, err := tp.DefineSecret(ctx, secret, oldAuth)
			require.NoError(t, err)
			t.Cleanup(func() { _ = tp.UndefineSecret(context.Background(), s) })

			tc.arm(ip)
			err = tp.ChangeSecretAuth(ctx, s, oldAuth, newAuth)
			require.NotZero(t, ip.Fired(), "the fault was injected")
			ip.Up()
			switch {
			case tc.unknown:
				require.ErrorIs(t, err, tpm.ErrChangeAuthLost)
			case tc.changed:
				require.NoError(t, err, "the change went through: ChangeSecretAuth says so")
			default:
				require.Error(t, err, "nothing changed: ChangeSecretAuth fails")
				assert.NotErrorIs(t, err, tpm.ErrChangeAuthLost, "the outcome is known")
				assert.NotErrorIs(t, err, tpm.ErrAuthFailed, "the old authValue was right")
			}
			st, err := tp.LockoutStatus(ctx)
			require.NoError(t, err)
			assert.Equal(t, tc.failures, st.Failures, "dictionary-attack counts spent finding out")

			holds, other := oldAuth, newAuth
			if tc.changed {
				holds, other = newAuth, oldAuth
			}
			got, err := tp.ReadSecret(ctx, s, holds)
			require.NoError(t, err, "the TPM holds the authValue the answer names")
			assert.Equal(t, secret, got)
			_, err = tp.ReadSecret(ctx, s, other)
			require.ErrorIs(t, err, tpm.ErrAuthFailed)
			requireOnlyBaseline(t, tp, 0)
			require.NoError(t, tp.ResetLockout(ctx, nil))
		})
	}
}
