package store

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// diskEvent is one durable-write call a Store made.
type diskEvent struct {
	op, name, to string
}

// recordDisk makes st record its syncs, renames and removes (doing them).
func recordDisk(st *Store) *[]diskEvent {
	var log []diskEvent
	real := realDiskOps()
	st.ops = diskOps{
		syncFile: func(f *os.File) error {
			log = append(log, diskEvent{op: "syncFile", name: f.Name()})
			return real.syncFile(f)
		},
		syncDir: func(dir string) error {
			log = append(log, diskEvent{op: "syncDir", name: dir})
			return real.syncDir(dir)
		},
		rename: func(from, to string) error {
			log = append(log, diskEvent{op: "rename", name: from, to: to})
			return real.rename(from, to)
		},
		remove: func(name string) error {
			log = append(log, diskEvent{op: "remove", name: name})
			return real.remove(name)
		},
	}
	return &log
}

// checkDurable holds a log of one operation to the rule that survives a
// power cut: each renamed file was synced before its rename, and the
// directory was synced after every rename and remove, before the operation
// returned.
func checkDurable(t *testing.T, what string, dir string, log []diskEvent) {
	t.Helper()
	require.NotEmpty(t, log, what)
	changed := false
	for i, e := range log {
		switch e.op {
		case "rename":
			synced := slices.ContainsFunc(log[:i], func(p diskEvent) bool { return p.op == "syncFile" && p.name == e.name })
			assert.True(t, synced, "%s: %s renamed to %s without an fsync of the file first", what, filepath.Base(e.name), filepath.Base(e.to))
			changed = true
		case "remove":
			changed = true
		case "syncDir":
			assert.Equal(t, dir, e.name, what)
			changed = false
		}
	}
	assert.False(t, changed, "%s: the directory was not synced after its last rename or remove: %v", what, log)
}

// Every write of the store syncs the file and the directory; removing
// either fsync turns this red.
func TestStoreSyncsFileAndDirectory(t *testing.T) {
	tp := openTPM(t)
	st, err := Open(t.TempDir())
	require.NoError(t, err)
	log := recordDisk(st)
	gens := generations(t, tp, provision(t, tp, testConfig()), 3)
	fresh := provision(t, tp, testConfig())

	steps := []struct {
		what    string
		do      func() error
		renames int
	}{
		{"save a new container", func() error { return st.Save(gens[0]) }, 1},
		{"save a generation", func() error { return st.Save(gens[1]) }, 1},
		{"replace, same ID", func() error { return st.Replace(gens[1], gens[2]) }, 1},
		{"replace, new ID", func() error { return st.Replace(gens[2], fresh) }, 2},
		{"delete", func() error { return st.Delete(fresh.ID()) }, 0},
	}
	for _, s := range steps {
		*log = nil
		require.NoError(t, s.do(), s.what)
		checkDurable(t, s.what, st.Dir(), *log)
		renames := 0
		for _, e := range *log {
			if e.op == "rename" {
				renames++
			}
		}
		assert.Equal(t, s.renames, renames, s.what)
	}
}
