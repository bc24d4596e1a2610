//go:build cgo

package simnv

import (
	"debug/elf"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSymbolsPinned fails loudly when go-tpm-tools changes the simulator's
// platform layer underneath us: the symbols this package writes to must
// exist in the linked binary with the sizes it assumes. (The behaviour —
// an NV index that survives Load and PowerCycle — is pinned by the tpm
// package's state-file tests.)
func TestSymbolsPinned(t *testing.T) {
	// go test strips its binaries; build one that keeps its symbols.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build an unstripped binary with")
	}
	exe := filepath.Join(t.TempDir(), "pin")
	out, err := exec.Command(goTool, "build", "-o", exe, "./testdata/pin").CombinedOutput()
	require.NoError(t, err, "%s", out)
	// The release this package was checked against. Bumping the dependency
	// fails here first: read the symbols above in the new release's
	// Samples/Google/NVMem.c, Clock.c and Run.c, then update the version.
	ver, err := exec.Command(exe).Output()
	require.NoError(t, err)
	assert.Equal(t, "v0.4.11", strings.TrimSpace(string(ver)), "simnv was checked against go-tpm-tools v0.4.11 only")

	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("the binary is not ELF (%v); the symbol sizes are checked on Linux", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	require.NoError(t, err, "the test binary must keep its symbol table")
	want := map[string]struct {
		typ  elf.SymType
		size uint64
	}{
		"s_NV":         {elf.STT_OBJECT, Size},
		"s_tpmTime":    {elf.STT_OBJECT, 8},
		"_plat__Reset": {elf.STT_FUNC, 0},
	}
	found := map[string]bool{}
	for _, s := range syms {
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		found[s.Name] = true
		assert.Equal(t, w.typ, elf.ST_TYPE(s.Info), "%s: symbol type", s.Name)
		if w.size != 0 {
			assert.Equal(t, w.size, s.Size, "%s: size (go-tpm-tools changed the simulator's NV layout?)", s.Name)
		}
	}
	for name := range want {
		assert.True(t, found[name], "symbol %s missing from the simulator (go-tpm-tools changed?)", name)
	}
}

// TestReadLoadRoundTrip checks that Read sees what Load wrote.
func TestReadLoadRoundTrip(t *testing.T) {
	var img, back [Size]byte
	Read(&img)
	saved := img
	img[Size-1] ^= 0x5a
	Load(&img)
	Read(&back)
	assert.Equal(t, img, back)
	Load(&saved)
}
