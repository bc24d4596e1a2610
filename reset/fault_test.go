package reset_test

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// faulty fails every command with one of the codes ccs while armed, as a
// TPM that breaks, or a bus that drops, in the middle of a reset.
type faulty struct {
	next  transport.TPM
	armed atomic.Bool
	ccs   []tpm2.TPMCC
	hits  atomic.Int32
}

var errBusDown = errors.New("bus down")

func (f *faulty) Send(cmd []byte) ([]byte, error) {
	if f.armed.Load() && len(cmd) >= 10 && slices.Contains(f.ccs, tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10]))) {
		f.hits.Add(1)
		return nil, errBusDown
	}
	return f.next.Send(cmd)
}

// TestTPMFailureLeavesInputIntact fails the TPM commands each reset needs
// (NV_Write: the secret under the new PIN, with rollback protection;
// Create: a sealed secret, or the new login key) and checks that
// the reset returns an error and the input still unlocks with its PIN.
func TestTPMFailureLeavesInputIntact(t *testing.T) {
	f := &faulty{next: tpmtest.OpenTransport(t), ccs: []tpm2.TPMCC{tpm2.TPMCCCreate, tpm2.TPMCCNVWrite}}
	tp, err := tpm.New(f)
	require.NoError(t, err)
	tpmtest.Prepare(t, tp)
	w := resettest.New(t, resettest.WithTPM(tp))
	ctx := context.Background()
	before := marshal(t, w.Container)

	for _, run := range []func(context.Context, reset.Env, reset.Request) error{
		func(ctx context.Context, env reset.Env, req reset.Request) error {
			_, err := reset.NonDestructive(ctx, env, w.Container, req)
			return err
		},
		func(ctx context.Context, env reset.Env, req reset.Request) error {
			_, err := reset.Destructive(ctx, env, w.Container, req)
			return err
		},
	} {
		f.hits.Store(0)
		f.armed.Store(true)
		err := run(ctx, w.Env(), reset.Request{Token: w.Token(t), NewPIN: newPIN})
		f.armed.Store(false)
		require.Error(t, err)
		assert.ErrorIs(t, err, errBusDown)
		assert.Positive(t, f.hits.Load())
		assertIntact(t, w, w.Container, before, w.PIN)
	}
	keys, err := w.IdP.RegisteredKeys(w.User.UPN)
	require.NoError(t, err)
	assert.Empty(t, keys, "a failed destructive reset registered a key")

	// With the TPM healthy again the same input resets fine.
	n, err := reset.NonDestructive(ctx, w.Env(), w.Container, reset.Request{Token: w.Token(t), NewPIN: newPIN})
	require.NoError(t, err)
	sign(t, w.TPM, n, newPIN)
}
