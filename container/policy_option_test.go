package container

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// weakenPolicy is an attacker's edit of a container file: the stored policy
// lowered to the Windows default (4 digits). The checksum is recomputed, so
// the file parses; the tag, which needs the container secret, is not.
func weakenPolicy(t *testing.T, c *Container) *Container {
	t.Helper()
	ed := c.clone()
	ed.cfg.PINPolicy = PINPolicy{}.withDefaults()
	out, err := Parse(marshal(t, ed))
	require.NoError(t, err)
	require.Equal(t, DefaultMinPINLength, out.Config().PINPolicy.MinimumLength)
	return out
}

var strictPolicy = PINPolicy{MinimumLength: 8}

const strictPIN = "28461937"

func TestReprovisionTrustsFileWithoutPolicyOption(t *testing.T) {
	// What the option is for: Reprovision holds no container secret, so it
	// cannot tell an edited policy from a genuine one.
	tp := openTPM(t)
	cfg := testConfig()
	cfg.PINPolicy = strictPolicy
	c, err := Provision(context.Background(), tp, cfg, strictPIN)
	require.NoError(t, err)
	_, err = Reprovision(context.Background(), tp, weakenPolicy(t, c), testPIN)
	assert.NoError(t, err, "the edited file's policy is what Reprovision sees")
}

func TestReprovisionAppliesPolicyOption(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.PINPolicy = strictPolicy
	c, err := Provision(ctx, tp, cfg, strictPIN)
	require.NoError(t, err)
	edited := weakenPolicy(t, c)

	tp.ResetStats()
	_, err = Reprovision(ctx, tp, edited, testPIN, WithPINPolicy(strictPolicy))
	var pe *PolicyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, RuleMinimumLength, pe.Rule)
	assert.Zero(t, tp.Stats().Total(), "a refused PIN reached the TPM")

	n, err := Reprovision(ctx, tp, edited, strictPIN, WithPINPolicy(strictPolicy))
	require.NoError(t, err)
	assert.Equal(t, strictPolicy.withDefaults(), n.Config().PINPolicy, "the new container records the managed policy")
	signVerify(t, unlock(t, tp, n, strictPIN).Signer(), n.PublicKey())
	_, err = ChangePIN(ctx, tp, n, strictPIN, testPIN)
	assert.ErrorIs(t, err, ErrPINPolicy, "the recorded policy holds from now on")
}

func TestResetPINAndChangePINApplyPolicyOption(t *testing.T) {
	tp, svc := openWithService(t)
	ctx := context.Background()
	cfg := testConfig()
	cfg.PINPolicy.History = 5
	c := provision(t, tp, cfg)
	e := enableRecovery(t, tp, c, testPIN, svc)
	r := recovered(t, svc, e)
	defer r.Destroy()

	_, err := ResetPIN(ctx, tp, e, r, otherPIN, nil, WithPINPolicy(strictPolicy))
	assert.ErrorIs(t, err, ErrPINPolicy)
	n, err := ResetPIN(ctx, tp, e, r, strictPIN, nil, WithPINPolicy(strictPolicy))
	require.NoError(t, err)
	assert.Equal(t, 8, n.Config().PINPolicy.MinimumLength)
	assert.Zero(t, n.Config().PINPolicy.History)

	// ChangePIN: the managed policy's History decides how far back reuse
	// is refused; the container's is 5.
	a, err := ChangePIN(ctx, tp, e, testPIN, otherPIN)
	require.NoError(t, err)
	b, err := ChangePIN(ctx, tp, a, otherPIN, thirdPIN)
	require.NoError(t, err)
	_, err = ChangePIN(ctx, tp, b, thirdPIN, testPIN)
	assert.ErrorIs(t, err, ErrPINPolicy, "testPIN is among the last 5")
	_, err = ChangePIN(ctx, tp, b, thirdPIN, testPIN, WithPINPolicy(PINPolicy{History: 2}))
	assert.NoError(t, err, "testPIN is not among the last 2")
	// The TPM holds testPIN now; b, the file from before, opens with it.
	_, err = ChangePIN(ctx, tp, b, testPIN, otherPIN, WithPINPolicy(PINPolicy{History: 2}))
	assert.ErrorIs(t, err, ErrPINPolicy, "otherPIN is among the last 2")
	ch, err := ChangePIN(ctx, tp, b, testPIN, strictPIN, WithPINPolicy(strictPolicy))
	require.NoError(t, err)
	assert.Equal(t, strictPolicy.withDefaults(), ch.Config().PINPolicy)
}

func TestPolicyOptionRefusesInvalidPolicy(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	c := provision(t, tp, testConfig())
	bad := WithPINPolicy(PINPolicy{MinimumLength: 200})
	tp.ResetStats()
	_, err := Reprovision(ctx, tp, c, testPIN, bad)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = ChangePIN(ctx, tp, c, testPIN, otherPIN, bad)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = Unlock(ctx, tp, c, testPIN, bad)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	_, err = Provision(ctx, tp, testConfig(), testPIN, bad)
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Zero(t, tp.Stats().Total(), "an invalid policy reached the TPM")

	p, err := Provision(ctx, tp, testConfig(), strictPIN, WithPINPolicy(strictPolicy))
	require.NoError(t, err)
	assert.Equal(t, 8, p.Config().PINPolicy.MinimumLength, "Provision records the managed policy")
}
