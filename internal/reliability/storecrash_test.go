package reliability

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// generationChain makes n generations of one container through real
// operations: Provision, then EnablePINRecovery again and again (each a
// generation on, re-wrapping a fresh protector, without TPM commands). It
// returns the containers and their encodings.
func generationChain(t *testing.T, n int) ([]*container.Container, [][]byte) {
	t.Helper()
	ctx := context.Background()
	tp := tpmtest.Open(t)
	priv, err := protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	c, err := container.Provision(ctx, tp, testConfig(tpm.ECCP256), pin1)
	require.NoError(t, err)
	s, err := container.Unlock(ctx, tp, c, pin1)
	require.NoError(t, err)
	defer s.Close()
	cs := []*container.Container{c}
	for len(cs) < n {
		c, err = s.EnablePINRecovery(ctx, priv.Public())
		require.NoError(t, err)
		require.Equal(t, cs[len(cs)-1].Generation()+1, c.Generation())
		cs = append(cs, c)
	}
	enc := make([][]byte, n)
	for i, c := range cs {
		enc[i], err = c.MarshalBinary()
		require.NoError(t, err)
	}
	return cs, enc
}

// strayTemps lists files in dir that are neither containers nor the lock.
func strayTemps(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		n := e.Name()
		if n == ".lock" || (strings.HasSuffix(n, ".ngc") && container.ValidID(strings.TrimSuffix(n, ".ngc"))) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// saverRun starts a saver child, waits until it is about to save, sleeps
// for delay and kills it with SIGKILL. It reports whether the child had
// already finished its chain.
func saverRun(t *testing.T, dir, chainFile string, delay time.Duration) (finished bool, ran time.Duration) {
	t.Helper()
	return killChild(t, childCommand(t, roleSaver, dir, chainFile), delay)
}

// killChild starts a child that prints "ready" when it starts its work and
// "done" when it has finished it, sleeps for delay after "ready" and kills
// it with SIGKILL (delay < 0: lets it finish). It reports whether the child
// said "done", and how long it ran after "ready"; a child that failed on
// its own fails the test.
func killChild(t *testing.T, cmd *exec.Cmd, delay time.Duration) (finished bool, ran time.Duration) {
	t.Helper()
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	require.True(t, sc.Scan(), "child did not start: %s", stderr.String())
	require.Equal(t, "ready", sc.Text(), "child: %s", stderr.String())
	start := time.Now()
	if delay >= 0 {
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	for sc.Scan() {
		if sc.Text() == "done" {
			finished = true
		}
	}
	ran = time.Since(start)
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && !ee.Exited()) {
		t.Fatalf("child failed: %v: %s", err, stderr.String())
	}
	return finished, ran
}

// TestStoreSurvivesSIGKILL kills a process that saves generation after
// generation of a container, at random moments, hundreds of times (with
// HELLOSIM_LONG). After every kill the file on disk parses and is, byte for
// byte, one whole generation the child saved — the one stored before or a
// later one, never a mix and never older than what was stored before.
func TestStoreSurvivesSIGKILL(t *testing.T) {
	kills := size(30, 100, 300)
	const chainLen = 24
	cs, enc := generationChain(t, chainLen)
	byGen := map[uint64][]byte{}
	for i, c := range cs {
		byGen[c.Generation()] = enc[i]
	}
	work := t.TempDir()
	chainFile := filepath.Join(work, "chain")
	require.NoError(t, os.WriteFile(chainFile, encodeChain(enc), 0o600))
	dir := filepath.Join(work, "store")
	st, err := store.Open(dir)
	require.NoError(t, err)
	id := cs[0].ID()
	first, last := cs[0].Generation(), cs[chainLen-1].Generation()

	// How long does a whole chain take? Kill within that window.
	finished, window := saverRun(t, dir, chainFile, -1)
	require.True(t, finished)
	require.NoError(t, st.Delete(id))

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d, a whole chain of %d saves takes %v", seed, chainLen, window)
	// Kill within the time of a few saves, so that most kills land in
	// the middle of one.
	window /= chainLen / 4
	var stored uint64 // generation on disk, 0 for none
	midRun, maxStray, restarts := 0, 0, 0
	for i := 0; i < kills; i++ {
		delay := time.Duration(rng.Int64N(int64(window) + 1))
		finished, _ := saverRun(t, dir, chainFile, delay)
		if !finished {
			midRun++
		}
		data, err := os.ReadFile(st.Path(id))
		if errors.Is(err, fs.ErrNotExist) {
			require.Zero(t, stored, "kill %d: the file vanished (had generation %d)", i, stored)
			continue
		}
		require.NoError(t, err)
		c, err := container.Parse(data)
		require.NoError(t, err, "kill %d: the file does not parse", i)
		g := c.Generation()
		require.Equal(t, byGen[g], data, "kill %d: the file is not generation %d as saved", i, g)
		require.GreaterOrEqual(t, g, stored, "kill %d: the store went back in time", i)
		loaded, err := st.Load(id)
		require.NoError(t, err, "kill %d: Load", i)
		require.Equal(t, g, loaded.Generation())
		stored = g
		maxStray = max(maxStray, len(strayTemps(t, dir)))
		if g == last {
			require.NoError(t, st.Delete(id))
			stored = 0
			restarts++
		}
	}
	strays := strayTemps(t, dir)
	t.Logf("%d kills (%d before the child finished), chain restarted %d times; stray temporary files: up to %d, %d at the end",
		kills, midRun, restarts, maxStray, len(strays))
	assert.Positive(t, midRun, "no kill landed while the child was saving")

	// The rule this test holds the store to: a temporary file exists only
	// while a Save holds the store's lock, so any temporary file a later
	// Save finds under that lock was left by a crash, and that Save removes
	// it. Stray files therefore never pile up.
	t.Run("a later save removes stray temporary files", func(t *testing.T) {
		if len(strays) == 0 {
			// Make sure there is one to clean: kill right after ready.
			for tries := 0; tries < 50 && len(strayTemps(t, dir)) == 0; tries++ {
				saverRun(t, dir, chainFile, time.Duration(rng.Int64N(int64(window)+1)))
				if c, err := st.Load(id); err == nil && c.Generation() == last {
					require.NoError(t, st.Delete(id))
				}
			}
		}
		strays := strayTemps(t, dir)
		if len(strays) == 0 {
			t.Skip("no kill left a temporary file behind")
		}
		c, err := st.Load(id)
		next := cs[0]
		if err == nil {
			if c.Generation() == last {
				require.NoError(t, st.Delete(id))
			} else {
				next = cs[c.Generation()-first+1]
			}
		}
		require.NoError(t, st.Save(next))
		assert.Empty(t, strayTemps(t, dir), "temporary files left by crashed saves survive a later Save (%d before it)", len(strays))
	})
}
