package container

import (
	"context"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// TestChangePINLostAnswer loses the TPM's answer to the PIN change
// (TPM2_NV_ChangeAuth) on the bus. With the TPM still reachable, ChangePIN
// finds out which PIN the TPM holds and says so: success when the change
// went through, an error when the command never arrived. With the bus down
// after the lost answer it cannot ask, and the error is
// ErrPINMayHaveChanged; the file from before then opens with the new PIN.
// In no case is a dictionary-attack try spent finding out.
func TestChangePINLostAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fault   tpmtest.Fault
		changed bool // the TPM holds the new PIN afterwards
		unknown bool // ErrPINMayHaveChanged
	}{
		{name: "answer lost", fault: tpmtest.LoseAnswer, changed: true},
		{name: "command dropped", fault: tpmtest.DropCommand},
		{name: "answer lost, bus down", fault: tpmtest.LoseAnswerThenDown, changed: true, unknown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ip := tpmtest.NewInterposer(tpmtest.OpenTransport(t))
			tp := tpmtest.OpenOn(t, ip)
			c := provision(t, tp, testConfig())
			require.True(t, c.RollbackProtection().On, "the PIN lives in NV: %v", c.RollbackProtection())

			ip.Arm(tpm2.TPMCCNVChangeAuth, tc.fault)
			n, err := ChangePIN(ctx, tp, c, testPIN, otherPIN)
			require.Equal(t, 1, ip.Fired(), "the fault was injected")
			ip.Up()
			switch {
			case tc.unknown:
				require.ErrorIs(t, err, ErrPINMayHaveChanged)
				assert.Contains(t, err.Error(), "the PIN may have changed: try the new PIN")
				assert.NotErrorIs(t, err, ErrWrongPIN)
				assert.Nil(t, n)
			case tc.changed:
				require.NoError(t, err)
				signVerify(t, unlock(t, tp, n, otherPIN).Signer(), c.PublicKey())
			default:
				require.Error(t, err)
				assert.NotErrorIs(t, err, ErrPINMayHaveChanged, "the TPM said which PIN it holds")
				assert.NotErrorIs(t, err, ErrWrongPIN, "the old PIN was right")
				assert.Nil(t, n)
			}
			st, err := tp.LockoutStatus(ctx)
			require.NoError(t, err)
			assert.Zero(t, st.Failures, "no dictionary-attack try spent")

			holds := testPIN
			if tc.changed {
				holds = otherPIN
			}
			signVerify(t, unlock(t, tp, c, holds).Signer(), c.PublicKey())
		})
	}
}
