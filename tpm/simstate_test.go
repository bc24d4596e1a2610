//go:build cgo

package tpm_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
)

func openState(t *testing.T, path string) *tpm.TPM {
	t.Helper()
	tp, err := tpm.Open("sim:state=" + path)
	require.NoError(t, err)
	return tp
}

func failures(t *testing.T, tp *tpm.TPM) uint32 {
	t.Helper()
	st, err := tp.LockoutStatus(context.Background())
	require.NoError(t, err)
	return st.Failures
}

var stateSecret = bytes.Repeat([]byte{0x5c}, tpm.NVSecretSize)

// Sequential opens of one state file are one TPM: the NV index, the
// dictionary-attack counter and the seeds (the SRK) are the ones the last
// process left, and NV is persistent (rollback protection works).
func TestSimStateKeepsNVAndDACounter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tpm.state")

	tp := openState(t, path)
	ok, why := tp.PersistentNV()
	require.True(t, ok, why)
	srk := tp.SRKName()
	s, err := tp.DefineSecret(ctx, stateSecret, []byte("right"))
	require.NoError(t, err)
	_, err = tp.ReadSecret(ctx, s, []byte("wrong"))
	require.ErrorIs(t, err, tpm.ErrAuthFailed)
	require.EqualValues(t, 1, failures(t, tp))
	require.NoError(t, tp.Close())

	tp = openState(t, path)
	defer tp.Close()
	assert.Equal(t, srk, tp.SRKName(), "same seeds")
	assert.EqualValues(t, 1, failures(t, tp), "the wrong auth of the last process still counts")
	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, tpm.WindowsMaxTries, st.MaxTries, "the parameters set when the TPM was new")
	got, err := tp.ReadSecret(ctx, s, []byte("right"))
	require.NoError(t, err)
	assert.Equal(t, stateSecret, got)
}

// A fresh simulator without a state file is another TPM: nothing of the
// state file's leaks into it, and its own changes do not reach the file.
func TestSimStateOnlyThroughItsFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tpm.state")
	tp := openState(t, path)
	_, err := tp.DefineSecret(ctx, stateSecret, []byte("a"))
	require.NoError(t, err)
	require.NoError(t, tp.Close())
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	tp, err = tpm.OpenSimulator()
	require.NoError(t, err)
	list, err := tp.Secrets(ctx)
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = tp.DefineSecret(ctx, stateSecret, []byte("b"))
	require.NoError(t, err)
	require.NoError(t, tp.Close())
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

// One process at a time: a second open, in this process or another, is
// refused at once with a typed error, and works again after Close.
func TestSimStateLockedAgainstSecondOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tpm.state")
	tp := openState(t, path)

	_, err := tpm.Open("sim:state=" + path)
	require.ErrorIs(t, err, tpm.ErrSimStateLocked)
	var se *tpm.SimStateError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, path, se.Path)
	assert.Equal(t, "lock", se.Op)

	out, err := runChild(t, "open", path)
	require.Error(t, err, "a second process opened a locked state: %s", out)
	assert.Contains(t, out, "locked: true")

	require.NoError(t, tp.Close())
	tp = openState(t, path)
	require.NoError(t, tp.Close())
}

// A damaged state file is an error, never a new TPM, and it is left as it
// was.
func TestSimStateCorruptIsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tpm.state")
	require.NoError(t, openState(t, path).Close())
	good, err := os.ReadFile(path)
	require.NoError(t, err)

	flip := bytes.Clone(good)
	flip[len(flip)/2] ^= 1
	for name, content := range map[string][]byte{
		"empty":        {},
		"truncated":    good[:len(good)-1],
		"half":         good[:len(good)/2],
		"flipped bit":  flip,
		"extra byte":   append(bytes.Clone(good), 0),
		"not a state":  []byte("hello world\n"),
		"another type": bytes.Repeat([]byte{0xff}, len(good)),
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, content, 0o600))
			tp, err := tpm.Open("sim:state=" + path)
			require.ErrorIs(t, err, tpm.ErrSimStateCorrupt)
			require.Nil(t, tp)
			var se *tpm.SimStateError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, "read", se.Op)
			after, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, content, after, "the damaged file must stay as it was")
		})
	}
	// The lock was released by every failed open.
	require.NoError(t, os.WriteFile(path, good, 0o600))
	require.NoError(t, openState(t, path).Close())
}

// A save that fails is an error for that command and every later one: no
// caller sees an answer whose effect on NV might be lost.
func TestSimStateSaveFailureIsAnError(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "tpm.state")
	tp := openState(t, path)
	// Rename over a non-empty directory fails, even for root.
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.MkdirAll(filepath.Join(path, "x"), 0o700))

	_, err := tp.DefineSecret(ctx, stateSecret, []byte("a"))
	var se *tpm.SimStateError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "save", se.Op)
	_, err = tp.LockoutStatus(ctx)
	require.ErrorAs(t, err, &se, "every later command fails too")
	_ = tp.Close()
}

// A process killed between commands loses nothing: the NV index it defined
// and the failure it was told about are in the file. The unclean end itself
// counts as one more failure at the next open, as on a TPM that lost power
// without TPM2_Shutdown.
func TestSimStateSurvivesSIGKILL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tpm.state")
	require.NoError(t, openState(t, path).Close())

	cmd := childCommand(t, "define-and-wait", path)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	handle, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "defined ")), 10, 32)
	require.NoError(t, err, "child said %q", line)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()

	tp := openState(t, path)
	defer tp.Close()
	list, err := tp.Secrets(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.EqualValues(t, handle, list[0].Handle)
	got, err := tp.ReadSecret(ctx, list[0], []byte("right"))
	require.NoError(t, err)
	assert.Equal(t, stateSecret, got)
	assert.EqualValues(t, 2, failures(t, tp), "the wrong auth it saw, and the power loss")
}

// childCommand runs this test binary as a child that acts on a state file
// (TestSimStateChild).
func childCommand(t *testing.T, action, path string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestSimStateChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "HELLOSIM_SIMSTATE_CHILD="+action, "HELLOSIM_SIMSTATE_PATH="+path)
	cmd.Stderr = os.Stderr
	t.Cleanup(func() {
		if cmd.Process != nil && cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func runChild(t *testing.T, action, path string) (string, error) {
	cmd := childCommand(t, action, path)
	cmd.Stderr = nil
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestSimStateChild is the child process of the tests above; it does
// nothing in a normal run.
func TestSimStateChild(t *testing.T) {
	action, path := os.Getenv("HELLOSIM_SIMSTATE_CHILD"), os.Getenv("HELLOSIM_SIMSTATE_PATH")
	if action == "" {
		t.Skip("child process of the state-file tests")
	}
	ctx := context.Background()
	tp, err := tpm.Open("sim:state=" + path)
	if err != nil {
		fmt.Printf("locked: %v\n", errors.Is(err, tpm.ErrSimStateLocked))
		t.Fatal(err)
	}
	switch action {
	case "open":
		require.NoError(t, tp.Close())
	case "define-and-wait":
		s, err := tp.DefineSecret(ctx, stateSecret, []byte("right"))
		require.NoError(t, err)
		_, err = tp.ReadSecret(ctx, s, []byte("wrong"))
		require.ErrorIs(t, err, tpm.ErrAuthFailed)
		fmt.Printf("defined %d\n", s.Handle)
		time.Sleep(time.Minute) // killed here
	}
}
