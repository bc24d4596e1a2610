package reliability

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
)

// TestConcurrentUnlockSignChangePIN runs 16 goroutines on one TPM, each
// unlocking its own container, signing, and changing its PIN, while all of
// them also sign through one shared session. Every signature verifies,
// every PIN change takes, no dictionary-attack count is spent, and at the
// end only the SRK, the shared session and the shared session's key are
// loaded.
func TestConcurrentUnlockSignChangePIN(t *testing.T) {
	const workers = 16
	rounds := size(1, 3, 10)
	r := openFaulty(t)
	ctx := context.Background()
	cs := make([]*container.Container, workers)
	for i := range cs {
		var err error
		cs[i], err = container.Provision(ctx, r.tp, testConfig(tpm.ECCP256), pin1)
		require.NoError(t, err)
	}
	shared, err := container.Unlock(ctx, r.tp, cs[0], pin1)
	require.NoError(t, err)

	pins := []string{pin1, pin2, pin3}
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c, cur := cs[w], 0
			for i := range rounds {
				if err := unlockAndSign(ctx, r.tp, c, pins[cur]); err != nil {
					errs <- fmt.Errorf("worker %d round %d: %w", w, i, err)
					return
				}
				if err := signAndVerify(ctx, shared.Signer(), cs[0].PublicKey(), fmt.Sprintf("shared %d %d", w, i)); err != nil {
					errs <- fmt.Errorf("worker %d round %d: shared session: %w", w, i, err)
					return
				}
				n, err := container.ChangePIN(ctx, r.tp, c, pins[cur], pins[(cur+1)%len(pins)])
				if err != nil {
					errs <- fmt.Errorf("worker %d round %d: change PIN: %w", w, i, err)
					return
				}
				c, cur = n, (cur+1)%len(pins)
			}
			if err := unlockAndSign(ctx, r.tp, c, pins[cur]); err != nil {
				errs <- fmt.Errorf("worker %d: after its PIN changes: %w", w, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Zero(t, rawLockoutCounter(t, r.raw), "dictionary-attack counts spent")
	objs, sess := r.handles(t)
	assert.LessOrEqual(t, len(objs), 2, "SRK and at most the shared session's key: %s", hexHandles(objs))
	assert.Len(t, sess, 1, "the shared session")
	require.NoError(t, shared.Close())
	objs, _ = r.handles(t)
	assert.Equal(t, []tpm2.TPMHandle{r.srk}, objs, "only the SRK once every session is closed")
	t.Logf("%d goroutines × %d rounds: %d TPM commands", workers, rounds, r.tp.Stats().Total())
}

// TestTenSessionsOnThreeSlots opens 10 container sessions at once on the
// simulator, which has three transient object slots (the SRK takes one):
// keys are evicted and reloaded behind the sessions' backs, and every
// session still signs correctly, in turn and all at once.
func TestTenSessionsOnThreeSlots(t *testing.T) {
	const n = 10
	rounds := size(2, 3, 10)
	r := openFaulty(t)
	ctx := context.Background()
	sessions := make([]*container.Session, n)
	cs := make([]*container.Container, n)
	for i := range n {
		alg := tpm.ECCP256
		if i%5 == 4 && long() {
			alg = tpm.RSA2048 // slow to create on the simulator
		}
		c, err := container.Provision(ctx, r.tp, testConfig(alg), pin1)
		require.NoError(t, err)
		cs[i] = c
		sessions[i], err = container.Unlock(ctx, r.tp, c, pin1)
		require.NoError(t, err)
	}
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	objs, _ := r.handles(t)
	require.LessOrEqual(t, len(objs), 3, "the simulator holds at most three objects")
	loadsBefore := r.tp.Stats().Commands[tpm2.TPMCCLoad]

	for round := range rounds {
		for i, s := range sessions {
			require.NoError(t, signAndVerify(ctx, s.Signer(), cs[i].PublicKey(), fmt.Sprintf("turn %d %d", round, i)), "session %d", i)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n*rounds)
	for i, s := range sessions {
		for round := range rounds {
			wg.Go(func() {
				if err := signAndVerify(ctx, s.Signer(), cs[i].PublicKey(), fmt.Sprintf("together %d %d", round, i)); err != nil {
					errs <- fmt.Errorf("session %d: %w", i, err)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	reloads := r.tp.Stats().Commands[tpm2.TPMCCLoad] - loadsBefore
	assert.Greater(t, reloads, uint64(n), "keys were not evicted and reloaded")
	t.Logf("%d sessions, %d signatures each: %d reloads", n, 2*rounds, reloads)

	for _, s := range sessions {
		require.NoError(t, s.Close())
	}
	objs, sess := r.handles(t)
	assert.Equal(t, []tpm2.TPMHandle{r.srk}, objs, "only the SRK once every session is closed")
	assert.Len(t, sess, 1)
}

// TestTwoProcessesSaveTheSameContainer starts two processes that save two
// different successors of one generation of a container into the same
// store at the same moment: exactly one wins, the other gets ErrConflict,
// and the file is the winner's.
func TestTwoProcessesSaveTheSameContainer(t *testing.T) {
	rounds := size(2, 6, 30)
	r := openFaulty(t)
	ctx := context.Background()
	priv, err := protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	base, err := container.Provision(ctx, r.tp, testConfig(tpm.ECCP256), pin1)
	require.NoError(t, err)
	// Two successors of the same generation, with different contents.
	var succ [2][]byte
	for i := range succ {
		s, err := container.Unlock(ctx, r.tp, base, pin1)
		require.NoError(t, err)
		c, err := s.EnablePINRecovery(ctx, priv.Public())
		require.NoError(t, err)
		require.NoError(t, s.Close())
		require.Equal(t, base.Generation()+1, c.Generation())
		succ[i], err = c.MarshalBinary()
		require.NoError(t, err)
	}
	require.NotEqual(t, succ[0], succ[1])
	work := t.TempDir()
	var files [2]string
	for i := range succ {
		files[i] = filepath.Join(work, fmt.Sprintf("succ%d", i))
		require.NoError(t, os.WriteFile(files[i], succ[i], 0o600))
	}

	wins := [2]int{}
	for round := range rounds {
		dir := filepath.Join(work, fmt.Sprintf("store%d", round))
		st, err := store.Open(dir)
		require.NoError(t, err)
		require.NoError(t, st.Save(base))

		type child struct {
			stdin  *bufio.Writer
			out    *bufio.Scanner
			wait   func() error
			stderr *lockedBuffer
		}
		var kids [2]child
		for i := range kids {
			cmd := childCommand(t, roleRacer, dir, files[i])
			in, err := cmd.StdinPipe()
			require.NoError(t, err)
			out, err := cmd.StdoutPipe()
			require.NoError(t, err)
			var stderr lockedBuffer
			cmd.Stderr = &stderr
			require.NoError(t, cmd.Start())
			kids[i] = child{bufio.NewWriter(in), bufio.NewScanner(out), cmd.Wait, &stderr}
		}
		for i, k := range kids {
			require.True(t, k.out.Scan(), "racer %d: %s", i, k.stderr.String())
			require.Equal(t, "ready", k.out.Text())
		}
		for _, k := range kids { // go
			_, _ = k.stdin.WriteString("go\n")
			require.NoError(t, k.stdin.Flush())
		}
		var got [2]string
		for i, k := range kids {
			require.True(t, k.out.Scan(), "racer %d: %s", i, k.stderr.String())
			got[i] = k.out.Text()
			require.NoError(t, k.wait())
		}
		winner := -1
		switch got {
		case [2]string{"ok", "conflict"}:
			winner = 0
		case [2]string{"conflict", "ok"}:
			winner = 1
		default:
			t.Fatalf("round %d: want one ok and one conflict, got %q", round, got)
		}
		wins[winner]++
		data, err := os.ReadFile(st.Path(base.ID()))
		require.NoError(t, err)
		require.Equal(t, succ[winner], data, "round %d: the file is not the winner's", round)
	}
	t.Logf("%d rounds: process 0 won %d, process 1 won %d", rounds, wins[0], wins[1])
}
