package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/tpm"
)

// Remove undefines the container's index with its file; an index whose
// container was never saved (a process killed after container.Provision) is an
// orphan that OrphanedIndices finds and RemoveOrphans undefines.
func TestStoreRemoveAndOrphans(t *testing.T) {
	tp := openTPM(t)
	ctx := context.Background()
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	kept := provision(t, tp, testConfig())
	require.NoError(t, st.Save(kept))
	other := testConfig() // the store holds one container per user
	other.User, other.UserID = "bob@contoso.com", "0b0b0b0b-3a8b-4b6e-9a47-1b2c3d4e5f60"
	gone := provision(t, tp, other)
	require.NoError(t, st.Save(gone))
	lost := provision(t, tp, testConfig()) // never saved

	orphans, err := st.OrphanedIndices(ctx, tp)
	require.NoError(t, err)
	assert.Equal(t, []tpm.NVSecret{lost.NVIndex()}, orphans)

	require.NoError(t, st.Remove(ctx, tp, gone.ID()))
	_, err = container.Unlock(ctx, tp, gone, testPIN)
	require.ErrorIs(t, err, container.ErrRevoked, "the TPM no longer holds its secret")
	n, err := st.RemoveOrphans(ctx, tp)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	all, err := tp.Secrets(ctx)
	require.NoError(t, err)
	assert.Equal(t, []tpm.NVSecret{kept.NVIndex()}, all)
	s, err := container.Unlock(ctx, tp, kept, testPIN)
	require.NoError(t, err)
	require.NoError(t, s.Close())
}
