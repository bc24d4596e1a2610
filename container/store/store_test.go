package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
)

func TestStoreSaveLoadListDelete(t *testing.T) {
	tp := openTPM(t)
	st, err := Open(filepath.Join(t.TempDir(), "ngc"))
	require.NoError(t, err)
	a := provision(t, tp, testConfig())
	b := provision(t, tp, otherUserConfig())

	ids, err := st.List()
	require.NoError(t, err)
	assert.Empty(t, ids)
	_, err = st.Load(a.ID())
	assert.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, st.Save(a))
	require.NoError(t, st.Save(b))
	got, err := st.Load(a.ID())
	require.NoError(t, err)
	assert.Equal(t, marshal(t, a), marshal(t, got))
	ids, err = st.List()
	require.NoError(t, err)
	want := []string{a.ID(), b.ID()}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	assert.Equal(t, want, ids)

	fi, err := os.Stat(st.Path(a.ID()))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	require.NoError(t, st.Delete(a.ID()))
	_, err = st.Load(a.ID())
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, st.Delete(a.ID()), ErrNotFound)
	ids, err = st.List()
	require.NoError(t, err)
	assert.Equal(t, []string{b.ID()}, ids)

	// Nothing but container files and the lock file are left behind.
	entries, err := os.ReadDir(st.Dir())
	require.NoError(t, err)
	for _, e := range entries {
		assert.Contains(t, []string{b.ID() + storeExt, lockName}, e.Name())
	}
}

func TestStoreRefusesSameOrOlderGeneration(t *testing.T) {
	tp := openTPM(t)
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	gens := generations(t, tp, provision(t, tp, testConfig()), 3)
	require.NoError(t, st.Save(gens[1]))

	for _, g := range gens[:2] {
		err := st.Save(g)
		require.ErrorIs(t, err, ErrConflict)
		var ce *ConflictError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, uint64(2), ce.Stored)
		assert.Equal(t, g.Generation(), ce.Saving)
	}
	require.NoError(t, st.Save(gens[2]))
	got, err := st.Load(gens[0].ID())
	require.NoError(t, err)
	assert.Equal(t, uint64(3), got.Generation())
}

// Savers racing with generations 2..9: the store ends with the newest, and
// every save either succeeded or was refused with ErrConflict.
func TestStoreConcurrentSavers(t *testing.T) {
	tp := openTPM(t)
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	gens := generations(t, tp, provision(t, tp, testConfig()), 9)
	var wg sync.WaitGroup
	errs := make([]error, len(gens))
	for i := len(gens) - 1; i >= 1; i-- {
		wg.Go(func() {
			other, err := Open(st.Dir()) // as another process would
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = other.Save(gens[i])
		})
	}
	wg.Wait()
	saved := 0
	for i, err := range errs[1:] {
		if err == nil {
			saved++
			continue
		}
		assert.ErrorIs(t, err, ErrConflict, "generation %d", i+2)
	}
	assert.GreaterOrEqual(t, saved, 1)
	got, err := st.Load(gens[0].ID())
	require.NoError(t, err)
	assert.Equal(t, uint64(len(gens)), got.Generation())
}

func TestStoreCorruptFile(t *testing.T) {
	tp := openTPM(t)
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	gens := generations(t, tp, provision(t, tp, testConfig()), 2)
	c := gens[0]
	require.NoError(t, st.Save(c))
	path := st.Path(c.ID())
	good, err := os.ReadFile(path)
	require.NoError(t, err)

	for name, bad := range map[string][]byte{
		"truncated": good[:len(good)/2],
		"flipped":   append(append([]byte(nil), good[:100]...), append([]byte{good[100] ^ 4}, good[101:]...)...),
		"empty":     {},
		"garbage":   []byte("not a container\n"),
	} {
		require.NoError(t, os.WriteFile(path, bad, 0o600))
		_, err := st.Load(c.ID())
		require.Error(t, err, name)
		assert.ErrorIs(t, err, container.ErrCorrupt, name)
		var fe *FileError
		require.ErrorAs(t, err, &fe, name)
		assert.Equal(t, path, fe.Path)
		assert.Contains(t, err.Error(), path, "the error names the file")

		// Save refuses to overwrite it; the bad file stays as it was.
		err = st.Save(gens[1])
		assert.ErrorIs(t, err, container.ErrCorrupt, name)
		left, rerr := os.ReadFile(path)
		require.NoError(t, rerr)
		assert.Equal(t, bad, left, "%s: the corrupt file is left alone", name)
		ids, lerr := st.List()
		require.NoError(t, lerr)
		assert.Equal(t, []string{c.ID()}, ids, "a corrupt file is still listed")
	}
	// Deleting it is the caller's explicit choice.
	require.NoError(t, st.Delete(c.ID()))
	require.NoError(t, st.Save(c))
}

func TestStoreLoadChecksTheID(t *testing.T) {
	tp := openTPM(t)
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	a := provision(t, tp, testConfig())
	b := provision(t, tp, otherUserConfig())
	require.NoError(t, st.Save(a))
	require.NoError(t, os.Rename(st.Path(a.ID()), st.Path(b.ID())))
	_, err = st.Load(b.ID())
	assert.ErrorIs(t, err, container.ErrCorrupt, "a file that holds another container")

	for _, id := range []string{"", "../etc/passwd", "ABCDEF01-2345-4678-89AB-CDEF01234567", a.ID() + "x"} {
		_, err := st.Load(id)
		assert.Error(t, err, id)
		assert.Error(t, st.Delete(id), id)
	}
}

func TestOpenStoreRefusesAFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(f, nil, 0o600))
	_, err := Open(f)
	assert.Error(t, err)
	_, err = Open("")
	assert.Error(t, err)
}

// The store lock holds across processes: while another process holds it, Save
// waits.
func TestStoreLockAcrossProcesses(t *testing.T) {
	if os.Getenv("HELLOSIM_LOCK_HOLDER") != "" {
		unlock, err := lockDir(os.Getenv("HELLOSIM_LOCK_HOLDER"), true)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		bufio.NewReader(os.Stdin).ReadString('\n')
		unlock()
		os.Exit(0)
	}
	tp := openTPM(t)
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	c := provision(t, tp, testConfig())

	cmd := exec.Command(os.Args[0], "-test.run=^TestStoreLockAcrossProcesses$")
	cmd.Env = append(os.Environ(), "HELLOSIM_LOCK_HOLDER="+st.Dir())
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "locked\n", line)

	done := make(chan error, 1)
	go func() { done <- st.Save(c) }()
	select {
	case err := <-done:
		t.Fatalf("Save finished while another process held the lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	_, err = os.Stat(st.Path(c.ID()))
	assert.True(t, errors.Is(err, os.ErrNotExist), "nothing written while locked")
	stdin.Close()
	require.NoError(t, <-done)
	require.NoError(t, cmd.Wait())
	_, err = st.Load(c.ID())
	assert.NoError(t, err)
}

// Save writes nothing that Load could not read back: a zero Container would
// otherwise land in the store as an unloadable ".ngc" file.
func TestStoreSaveRefusesUnloadableContainer(t *testing.T) {
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	err = st.Save(&container.Container{})
	assert.ErrorIs(t, err, container.ErrCorrupt)
	entries, err := os.ReadDir(st.Dir())
	require.NoError(t, err)
	for _, e := range entries {
		assert.Equal(t, lockName, e.Name(), "only the lock file may exist")
	}
}
