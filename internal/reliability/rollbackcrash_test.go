package reliability

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport/tcp"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/container/store"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// roleRotator loads the stored container (args: store directory, TPM spec,
// its current PIN) and cycles it through every operation that changes the
// PIN or revokes a container, saving after each as a client does: Retire
// of a pending retirement, EnablePINRecovery (a fresh service key of its
// own), a non-destructive reset, Retire, ChangePIN, a destructive reset,
// Retire; again and again. The PINs go round rotatorPINs. It prints
// "ready" once the TPM is open; the crash test kills it.
const roleRotator = "rotator"

var rotatorPINs = []string{pin1, pin2, pin3}

func nextPIN(pin string) string {
	for i, p := range rotatorPINs {
		if p == pin {
			return rotatorPINs[(i+1)%len(rotatorPINs)]
		}
	}
	return pin1
}

func childRotator(dir, spec, pin string) error {
	ctx := context.Background()
	st, err := store.Open(dir)
	if err != nil {
		return err
	}
	ids, err := st.List()
	if err != nil || len(ids) != 1 {
		return fmt.Errorf("want one container in the store: %v %v", ids, err)
	}
	t, err := tpm.Open(spec)
	if err != nil {
		return err
	}
	defer t.Close()
	c, err := st.Load(ids[0])
	if err != nil {
		return err
	}
	fmt.Println("ready")
	save := func(n *container.Container) error {
		c = n
		return st.Save(n)
	}
	retire := func() error {
		n, err := container.Retire(ctx, t, c)
		if err != nil || n == c {
			return err
		}
		return save(n)
	}
	for {
		// The next operation finishes what a killed one left half done.
		if err := retire(); err != nil {
			return fmt.Errorf("retire: %w", err)
		}
		priv, err := protector.GenerateServiceKey(protector.HPKEX25519)
		if err != nil {
			return err
		}
		s, err := container.Unlock(ctx, t, c, pin)
		if err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		n, err := s.EnablePINRecovery(ctx, priv.Public())
		s.Close()
		if err != nil {
			return err
		}
		if err := save(n); err != nil {
			return err
		}
		next := nextPIN(pin)
		if n, err = reset.NonDestructive(ctx, reset.Env{TPM: t, Service: directService{priv}}, c, reset.Request{NewPIN: next}); err != nil {
			return fmt.Errorf("non-destructive reset: %w", err)
		}
		if err := save(n); err != nil {
			return err
		}
		pin = next
		if err := retire(); err != nil {
			return err
		}
		next = nextPIN(pin)
		if n, err = container.ChangePIN(ctx, t, c, pin, next); err != nil {
			return fmt.Errorf("change PIN: %w", err)
		}
		pin = next
		if err := save(n); err != nil {
			return err
		}
		next = nextPIN(pin)
		if n, err = reset.Destructive(ctx, reset.Env{TPM: t}, c, reset.Request{NewPIN: next}); err != nil {
			return fmt.Errorf("destructive reset: %w", err)
		}
		if err := save(n); err != nil {
			return err
		}
		pin = next
		if err := retire(); err != nil {
			return err
		}
		fmt.Println("cycle")
	}
}

// TestRollbackSurvivesSIGKILL kills, at random moments, a process that
// changes the PIN of a stored container and resets it over and over on a
// TPM that outlives the process (swtpm: the embedded simulator dies with
// its process). After every kill: the stored container opens with one of
// the PINs (the old or the new one, never neither) and signs; the TPM holds
// the container's index, perhaps the one a reset retired, and at most one
// orphan (an index defined by a reset killed before its container was
// saved), which Store.RemoveOrphans then removes; and the next process
// carries on from there.
func TestRollbackSurvivesSIGKILL(t *testing.T) {
	spec := tpmtest.Spec()
	if !strings.HasPrefix(spec, "tcp://") {
		t.Skipf("needs a TPM that outlives a process (swtpm, HELLOSIM_TPM=tcp://…), not %s", spec)
	}
	kills := size(5, 20, 60)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(dir)
	require.NoError(t, err)
	pin := pin1
	withTPM(t, spec, func(tp *tpm.TPM) {
		left, err := tp.Secrets(ctx)
		require.NoError(t, err)
		for _, nv := range left {
			require.NoError(t, tp.UndefineSecret(ctx, nv))
		}
		c, err := container.Provision(ctx, tp, testConfig(tpm.ECCP256), pin)
		require.NoError(t, err)
		require.True(t, c.RollbackProtection().On)
		require.NoError(t, st.Save(c))
	})

	// How long does one cycle take? Kill within a cycle.
	window := rotatorCycle(t, dir, spec, pin)
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d, one cycle takes %v", seed, window)
	orphans, retiredLeft := 0, 0
	for i := 0; i < kills; i++ {
		pin = rotatorKill(t, dir, spec, pin, time.Duration(rng.Int64N(int64(window)+1)))
		withTPM(t, spec, func(tp *tpm.TPM) {
			ids, err := st.List()
			require.NoError(t, err)
			require.Len(t, ids, 1)
			c, err := st.Load(ids[0])
			require.NoError(t, err, "kill %d: the stored container does not load", i)
			pin = opensWithOneOf(t, tp, c, pin)
			require.NotEmpty(t, pin, "kill %d: the stored container opens with none of the PINs", i)
			if !c.Retired().IsZero() {
				retiredLeft++
			}
			all, err := tp.Secrets(ctx)
			require.NoError(t, err)
			o, err := st.OrphanedIndices(ctx, tp)
			require.NoError(t, err)
			require.LessOrEqual(t, len(o), 1, "kill %d: %d orphaned indices", i, len(o))
			require.LessOrEqual(t, len(all)-len(o), 2, "kill %d: the container and a retired one at most", i)
			n, err := st.RemoveOrphans(ctx, tp)
			require.NoError(t, err)
			orphans += n
		})
	}
	t.Logf("%d kills; %d left an orphaned index (removed), %d a retirement the next process finished", kills, orphans, retiredLeft)
}

// withTPM opens the TPM for the parent's checks, first flushing what a
// killed child left loaded (swtpm has no resource manager), and closes it.
func withTPM(t *testing.T, spec string, f func(*tpm.TPM)) {
	t.Helper()
	addr := strings.TrimPrefix(spec, "tcp://")
	host, port, ok := strings.Cut(addr, ":")
	require.True(t, ok)
	var p int
	_, err := fmt.Sscan(port, &p)
	require.NoError(t, err)
	raw, err := tcp.Open(tcp.Config{CommandAddress: addr, PlatformAddress: fmt.Sprintf("%s:%d", host, p+1)})
	require.NoError(t, err)
	objs, sess := rawHandles(t, raw)
	flushRaw(t, raw, append(objs, sess...)...)
	tp, err := tpm.New(raw)
	require.NoError(t, err)
	defer func() { require.NoError(t, tp.Close()) }()
	require.NoError(t, tp.ResetLockout(context.Background(), nil))
	f(tp)
	require.NoError(t, tp.ResetLockout(context.Background(), nil))
}

// opensWithOneOf returns the PIN of rotatorPINs, tried from hint on, that
// opens c and signs, or "" when none does. Wrong tries cost DA counts;
// withTPM resets them.
func opensWithOneOf(t *testing.T, tp *tpm.TPM, c *container.Container, hint string) string {
	pin := hint
	for range rotatorPINs {
		err := unlockAndSign(context.Background(), tp, c, pin)
		if err == nil {
			return pin
		}
		if !errors.Is(err, container.ErrWrongPIN) {
			t.Errorf("unlock with %d-digit PIN: %v", len(pin), err)
			return ""
		}
		pin = nextPIN(pin)
	}
	return ""
}

// rotatorCycle runs the rotator until it completes one cycle, and stops
// it (as a kill would); it returns how long the cycle took.
func rotatorCycle(t *testing.T, dir, spec, pin string) time.Duration {
	cmd, sc, stderr := startRotator(t, dir, spec, pin)
	start := time.Now()
	for sc.Scan() {
		if sc.Text() == "cycle" {
			break
		}
	}
	d := time.Since(start)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	waitKilled(t, cmd, stderr)
	require.NotZero(t, d)
	return d
}

// rotatorKill starts the rotator with the stored container's PIN, kills
// it after delay, and returns the PIN hint for the check (the one it was
// started with).
func rotatorKill(t *testing.T, dir, spec, pin string, delay time.Duration) string {
	cmd, sc, stderr := startRotator(t, dir, spec, pin)
	time.Sleep(delay)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	for sc.Scan() {
	}
	waitKilled(t, cmd, stderr)
	return pin
}

func startRotator(t *testing.T, dir, spec, pin string) (*exec.Cmd, *bufio.Scanner, *lockedBuffer) {
	t.Helper()
	cmd := childCommand(t, roleRotator, dir, spec, pin)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(out)
	require.True(t, sc.Scan(), "child did not start: %s", stderr.String())
	require.Equal(t, "ready", sc.Text(), "child: %s", stderr.String())
	return cmd, sc, stderr
}

// waitKilled waits for a child that must have died of the kill, not of an
// error of its own.
func waitKilled(t *testing.T, cmd *exec.Cmd, stderr *lockedBuffer) {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) || ee.Exited() {
		t.Fatalf("child ended by itself (%v): %s", err, stderr.String())
	}
}
