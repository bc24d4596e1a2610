package container

import (
	"context"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// TestRetireChecksTheSRK: Retire undefines the index a reset replaced, on
// the TPM the container was made on, and only there. Through a connection
// whose storage root key is not the one pinned in the container (here an
// interposer answering for the SRK with its own key, on the same TPM and
// the same transport: the simulator is one per process), it
// fails with ErrSRKMismatch before it sends anything that touches the
// index: the old index stays defined, the old container still opens, and
// Retire on the right TPM then revokes it.
func TestRetireChecksTheSRK(t *testing.T) {
	raw := tpmtest.OpenTransport(t)
	tp := tpmtest.OpenOn(t, raw)
	ctx := context.Background()
	c, r := enrolled(t, tp)
	n, err := ResetPIN(ctx, tp, c, r, otherPIN, nil)
	require.NoError(t, err)
	require.False(t, n.Retired().IsZero(), "the reset recorded the replaced index")

	imp, err := tpmtest.NewSRKImpostor(raw)
	require.NoError(t, err)
	other, err := tpm.New(noClose{imp}) // raw stays open for tp
	require.NoError(t, err)
	t.Cleanup(func() { _ = other.Close() })
	other.ResetStats()
	_, err = Retire(ctx, other, n)
	require.ErrorIs(t, err, tpm.ErrSRKMismatch)
	assert.Zero(t, other.Stats().Commands[tpm2.TPMCCNVUndefineSpace], "nothing sent to undefine the index")

	signVerify(t, unlock(t, tp, c, testPIN).Signer(), c.PublicKey())
	_, err = Retire(ctx, tp, n)
	require.NoError(t, err)
	_, err = Unlock(ctx, tp, c, testPIN)
	require.ErrorIs(t, err, ErrRevoked)
}
