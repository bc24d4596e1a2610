package reliability

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// replacerRun starts a replacer child, waits until it is ready, sleeps for
// delay and kills it with SIGKILL (delay < 0: lets it finish).
func replacerRun(t *testing.T, dir, poolFile string, ops int, delay time.Duration) (finished bool, ran time.Duration) {
	t.Helper()
	return killChild(t, childCommand(t, roleReplacer, dir, poolFile, strconv.Itoa(ops)), delay)
}

// containerFiles lists the container files on disk, bypassing the Store.
func containerFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".ngc")
		if ok && container.ValidID(id) {
			out = append(out, id)
		}
	}
	return out
}

// TestStoreOperationsSurviveSIGKILL kills a process that runs every write
// of the Store (Save, Replace to a new ID, Delete) on one user's container,
// at random moments. After every kill: every container file on disk is,
// byte for byte, one the child wrote (never torn); the Store shows at most
// one container for the user, and Lookup agrees with List; two files
// exist only while the replace journal does, and the next write leaves at
// most one.
func TestStoreOperationsSurviveSIGKILL(t *testing.T) {
	kills := size(20, 60, 300)
	ctx := context.Background()
	tp := tpmtest.Open(t)
	const poolSize = 3
	var enc [][]byte
	byID := map[string][]byte{}
	for range poolSize {
		c, err := container.Provision(ctx, tp, testConfig(tpm.ECCP256), pin1)
		require.NoError(t, err)
		b, err := c.MarshalBinary()
		require.NoError(t, err)
		enc = append(enc, b)
		byID[c.ID()] = b
	}
	cfg := testConfig(tpm.ECCP256)
	work := t.TempDir()
	poolFile := filepath.Join(work, "pool")
	require.NoError(t, os.WriteFile(poolFile, encodeChain(enc), 0o600))
	dir := filepath.Join(work, "store")
	st, err := store.Open(dir)
	require.NoError(t, err)

	const ops = 40
	finished, window := replacerRun(t, dir, poolFile, ops, -1)
	require.True(t, finished)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d, %d operations take %v", seed, ops, window)
	window /= 2 // most kills land in the middle of the run

	midRun, twoFiles := 0, 0
	check := func(i int) {
		t.Helper()
		files := containerFiles(t, dir)
		for _, id := range files {
			data, err := os.ReadFile(filepath.Join(dir, id+".ngc"))
			require.NoError(t, err)
			require.Equal(t, byID[id], data, "kill %d: file %s is not a container as written", i, id)
		}
		ids, err := st.List()
		require.NoError(t, err)
		require.LessOrEqual(t, len(ids), 1, "kill %d: two containers for one user: %v", i, ids)
		c, err := st.Lookup(cfg.TenantID, cfg.UserID)
		if len(ids) == 0 {
			require.ErrorIs(t, err, store.ErrNotFound, "kill %d", i)
		} else {
			require.NoError(t, err, "kill %d", i)
			require.Equal(t, ids[0], c.ID(), "kill %d", i)
		}
		_, jerr := os.Stat(filepath.Join(dir, ".replace"))
		if len(files) > 1 {
			twoFiles++
			require.Len(t, files, 2, "kill %d", i)
			require.NoError(t, jerr, "kill %d: two container files and no replace journal", i)
		}
	}
	for i := range kills {
		delay := time.Duration(rng.Int64N(int64(window) + 1))
		if finished, _ := replacerRun(t, dir, poolFile, ops, delay); !finished {
			midRun++
		}
		check(i)
	}
	t.Logf("%d kills (%d before the child finished), %d left a replace half-done", kills, midRun, twoFiles)
	assert.Positive(t, midRun, "no kill landed while the child was working")

	// Any write finishes an interrupted replace.
	err = st.Delete("00000000-0000-4000-8000-000000000000")
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.LessOrEqual(t, len(containerFiles(t, dir)), 1)
	_, err = os.Stat(filepath.Join(dir, ".replace"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
