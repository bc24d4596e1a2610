package store

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
)

// storeFiles lists the names in the store's directory.
func storeFiles(t *testing.T, st *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(st.Dir())
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// A user has one container: a second one is refused with a typed error
// naming the first, until the caller replaces it explicitly.
func TestStoreOneContainerPerUser(t *testing.T) {
	tp := openTPM(t)
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	first := provision(t, tp, testConfig())
	second := provision(t, tp, testConfig())
	require.NotEqual(t, first.ID(), second.ID())
	require.NoError(t, st.Save(first))

	err = st.Save(second)
	require.ErrorIs(t, err, ErrUserHasContainer)
	var ue *UserHasContainerError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, first.ID(), ue.ID)
	assert.Equal(t, uint64(1), ue.Generation)
	assert.Equal(t, testConfig().UserID, ue.UserID)
	_, err = os.Stat(st.Path(second.ID()))
	assert.ErrorIs(t, err, os.ErrNotExist, "nothing written for the refused container")

	// Another user of the tenant is welcome; the same UPN in another case
	// with the same object ID is the same user.
	require.NoError(t, st.Save(provision(t, tp, otherUserConfig())))
	cfg := testConfig()
	cfg.UserID = "6F1C2F8E-3A8B-4B6E-9A47-1B2C3D4E5F60"
	c, err := st.Lookup(cfg.TenantID, cfg.UserID)
	require.NoError(t, err)
	assert.Equal(t, first.ID(), c.ID())

	// Explicit replacement.
	require.NoError(t, st.Replace(first, second))
	c, err = st.Lookup(testConfig().TenantID, testConfig().UserID)
	require.NoError(t, err)
	assert.Equal(t, second.ID(), c.ID())
	_, err = st.Load(first.ID())
	assert.ErrorIs(t, err, ErrNotFound)
	ids, err := st.List()
	require.NoError(t, err)
	assert.Len(t, ids, 2, "bob's and alice's new container")
	assert.NotContains(t, storeFiles(t, st), journalName, "the journal is gone after a replace")

	_, err = st.Lookup(testConfig().TenantID, "11111111-3a8b-4b6e-9a47-1b2c3d4e5f60")
	assert.ErrorIs(t, err, ErrNotFound)
}

// Replace is a compare-and-swap on the generation the caller read.
func TestStoreReplaceComparesTheGeneration(t *testing.T) {
	tp := openTPM(t)
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	gens := generations(t, tp, provision(t, tp, testConfig()), 3)
	require.NoError(t, st.Save(gens[0]))
	require.NoError(t, st.Save(gens[1])) // someone changed it after we read gens[0]

	fresh := provision(t, tp, testConfig())
	err = st.Replace(gens[0], fresh)
	require.ErrorIs(t, err, ErrConflict)
	var ce *ConflictError
	require.ErrorAs(t, err, &ce)
	assert.True(t, ce.Replace)
	assert.Equal(t, uint64(2), ce.Stored)
	assert.Equal(t, uint64(1), ce.Saving)
	assert.Contains(t, err.Error(), "changed meanwhile")
	_, err = os.Stat(st.Path(fresh.ID()))
	assert.ErrorIs(t, err, os.ErrNotExist)

	// The same ID (as a destructive reset keeps it): the new generation must be newer.
	require.NoError(t, st.Replace(gens[1], gens[2]))
	assert.ErrorIs(t, st.Replace(gens[2], gens[1]), ErrConflict)

	// Not across users.
	assert.Error(t, st.Replace(gens[2], provision(t, tp, otherUserConfig())))
	// Not a container that is gone: the caller's copy is stale.
	assert.ErrorIs(t, st.Replace(fresh, gens[2]), ErrConflict)
}

// Writers in many processes (here: Stores on one directory, each write
// under the directory lock) all replace the container they read: exactly
// one wins, and the user ends with one container.
func TestStoreConcurrentReplaceOneWins(t *testing.T) {
	tp := openTPM(t)
	dir := t.TempDir()
	st, err := Open(dir)
	require.NoError(t, err)
	old := provision(t, tp, testConfig())
	require.NoError(t, st.Save(old))
	const n = 6
	fresh := make([]*container.Container, n)
	for i := range fresh {
		fresh[i] = provision(t, tp, testConfig())
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			other, err := Open(dir)
			if err == nil {
				err = other.Replace(old, fresh[i])
			}
			errs[i] = err
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else {
			assert.ErrorIs(t, err, ErrConflict)
		}
	}
	assert.Equal(t, 1, wins)
	ids, err := st.List()
	require.NoError(t, err)
	assert.Len(t, ids, 1, "one container for the user")
}

// A damaged file is listed with its error, blocks a new container for
// any user (it might be theirs), and goes with Delete.
func TestStoreDamagedFileListedAndRemovable(t *testing.T) {
	tp := openTPM(t)
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	c := provision(t, tp, testConfig())
	require.NoError(t, st.Save(c))
	good, err := os.ReadFile(st.Path(c.ID()))
	require.NoError(t, err)
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 1
	require.NoError(t, os.WriteFile(st.Path(c.ID()), bad, 0o600))

	entries, err := st.Entries()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, c.ID(), entries[0].ID)
	assert.Equal(t, st.Path(c.ID()), entries[0].Path)
	assert.ErrorIs(t, entries[0].Err, container.ErrCorrupt)
	assert.Empty(t, entries[0].UserID)

	_, err = st.Lookup(testConfig().TenantID, testConfig().UserID)
	assert.ErrorIs(t, err, container.ErrCorrupt, "the damaged file might be the user's")
	assert.ErrorIs(t, st.Save(provision(t, tp, testConfig())), container.ErrCorrupt)

	require.NoError(t, st.Delete(entries[0].ID))
	entries, err = st.Entries()
	require.NoError(t, err)
	assert.Empty(t, entries)
	require.NoError(t, st.Save(provision(t, tp, testConfig())))

	// Healthy entries carry their user and generation.
	entries, err = st.Entries()
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.NoError(t, entries[0].Err)
	assert.Equal(t, testConfig().User, entries[0].User)
	assert.Equal(t, testConfig().UserID, entries[0].UserID)
	assert.Equal(t, uint64(1), entries[0].Generation)
}

// Reads write nothing: no lock file, no directory, no change of any kind.
func TestStoreReadsWriteNothing(t *testing.T) {
	tp := openTPM(t)
	src, err := Open(t.TempDir())
	require.NoError(t, err)
	c := provision(t, tp, testConfig())
	require.NoError(t, src.Save(c))
	data, err := os.ReadFile(src.Path(c.ID()))
	require.NoError(t, err)

	dir := filepath.Join(t.TempDir(), "ro")
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, c.ID()+storeExt), data, 0o400))
	past := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(dir, past, past))
	before, err := os.Stat(dir)
	require.NoError(t, err)

	_, err = OpenExisting(filepath.Join(dir, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(dir, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist, "OpenExisting created the directory")

	st, err := OpenExisting(dir)
	require.NoError(t, err)
	got, err := st.Load(c.ID())
	require.NoError(t, err)
	assert.Equal(t, c.Generation(), got.Generation())
	_, err = st.Lookup(testConfig().TenantID, testConfig().UserID)
	require.NoError(t, err)
	_, err = st.List()
	require.NoError(t, err)
	_, err = st.Entries()
	require.NoError(t, err)

	assert.Equal(t, []string{c.ID() + storeExt}, storeFiles(t, st), "a read created a file")
	after, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, before.ModTime(), after.ModTime(), "a read changed the directory")
}

// A Replace cut short: readers see exactly one container of the user, and
// the next writer finishes (new file written) or undoes (not written) it.
func TestStoreFinishesAnInterruptedReplace(t *testing.T) {
	tp := openTPM(t)
	old := provision(t, tp, testConfig())
	fresh := provision(t, tp, testConfig())
	for _, written := range []bool{true, false} {
		st, err := Open(t.TempDir())
		require.NoError(t, err)
		require.NoError(t, st.Save(old))
		require.NoError(t, os.WriteFile(filepath.Join(st.Dir(), journalName), encodeJournal(old.ID(), fresh.ID()), 0o600))
		want := old
		if written {
			require.NoError(t, os.WriteFile(st.Path(fresh.ID()), marshal(t, fresh), 0o600))
			want = fresh
		}
		ids, err := st.List()
		require.NoError(t, err)
		assert.Equal(t, []string{want.ID()}, ids, "written=%v", written)
		c, err := st.Lookup(testConfig().TenantID, testConfig().UserID)
		require.NoError(t, err)
		assert.Equal(t, want.ID(), c.ID())
		_, err = st.Load(old.ID())
		if written {
			assert.ErrorIs(t, err, ErrNotFound)
		} else {
			assert.NoError(t, err)
		}

		// The next writer cleans up.
		require.NoError(t, st.Save(provision(t, tp, otherUserConfig())))
		files := storeFiles(t, st)
		assert.NotContains(t, files, journalName)
		assert.Contains(t, files, want.ID()+storeExt)
		other := old
		if !written {
			other = fresh
		}
		assert.NotContains(t, files, other.ID()+storeExt, "written=%v", written)
	}

	// A journal the store did not write is reported, not guessed at.
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(st.Dir(), journalName), []byte("garbage\n"), 0o600))
	assert.ErrorIs(t, st.Save(old), container.ErrCorrupt)
	_, err = st.List()
	assert.ErrorIs(t, err, container.ErrCorrupt)
}
