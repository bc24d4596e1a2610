//go:build linux || darwin || freebsd

package examples_test

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ttyRun is hello on a pseudo-terminal: what a person at a terminal sees.
type ttyRun struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	out  syncBuffer
	done chan struct{}
}

func startTTY(t *testing.T, h *helloCLI, args ...string) *ttyRun {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "hello"), append([]string{"-state", h.state}, args...)...)
	cmd.Dir = h.home
	cmd.Env = append(os.Environ(), "HOME="+h.home, "XDG_CONFIG_HOME="+filepath.Join(h.home, ".config"), "HELLOSIM_TPM=")
	tty, err := pty.Start(cmd)
	require.NoError(t, err)
	r := &ttyRun{t: t, cmd: cmd, tty: tty, done: make(chan struct{})}
	go func() {
		io.Copy(&r.out, tty)
		close(r.done)
	}()
	t.Cleanup(func() { tty.Close(); cmd.Process.Kill() })
	return r
}

func (r *ttyRun) waitFor(s string) { r.t.Helper(); waitFor(r.t, &r.out, s) }

func (r *ttyRun) send(s string) {
	r.t.Helper()
	_, err := r.tty.WriteString(s)
	require.NoError(r.t, err)
}

// wait returns the exit code.
func (r *ttyRun) wait() int {
	r.t.Helper()
	err := r.cmd.Wait()
	<-r.done
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(r.t, err)
	return 0
}

// At a terminal the PIN is not echoed, and Ctrl-D at a prompt cancels.
func TestHelloTerminalHidesThePINAndCtrlDCancels(t *testing.T) {
	t.Parallel()
	h := newHello(t)

	r := startTTY(t, h, "provision", "-alg", "ecc")
	r.waitFor("New PIN: ")
	r.send("135792\r")
	r.waitFor("Confirm new PIN: ")
	r.send("\x04") // Ctrl-D
	code := r.wait()
	assert.Equal(t, exitFailure, code, r.out.String())
	assert.Contains(t, r.out.String(), "hello provision: cancelled")
	assert.NotContains(t, r.out.String(), "135792", "the PIN was echoed")
	_, err := os.Stat(filepath.Join(h.state, "containers"))
	assert.True(t, os.IsNotExist(err) || len(h.containerFiles()) == 0, "a cancelled provision left a container")

	r = startTTY(t, h, "provision", "-alg", "ecc")
	r.waitFor("New PIN: ")
	r.send("135792\r")
	r.waitFor("Confirm new PIN: ")
	r.send("135792\r")
	assert.Equal(t, exitOK, r.wait(), r.out.String())
	assert.Contains(t, r.out.String(), "Windows Hello is set up")
	assert.NotContains(t, r.out.String(), "135792")

	// Ctrl-D at the PIN prompt of sign: cancelled, and no TPM try spent.
	r = startTTY(t, h, "sign")
	r.waitFor("PIN: ")
	r.send("\x04")
	assert.Equal(t, exitFailure, r.wait())
	assert.Contains(t, r.out.String(), "hello sign: cancelled")

	// A confirmation at the terminal.
	r = startTTY(t, h, "delete")
	r.waitFor("[y/N] ")
	r.send("\x04")
	assert.Equal(t, exitFailure, r.wait())
	assert.True(t, strings.Contains(r.out.String(), "cancelled"), r.out.String())
	assert.Len(t, h.containerFiles(), 1)
}

// Enter alone at a PIN prompt asks again (three times, as provision does),
// costs no TPM try, and three of them end with "no PIN entered", exit 3.
func TestHelloEnterAtThePINPromptAsksAgain(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	r := startTTY(t, h, "sign", "-m", "after Enter")
	r.waitFor("PIN: ")
	r.send("\r")
	r.waitFor("No PIN entered; type your PIN, or press Ctrl-D to cancel. Try again.")
	r.send("135792\r")
	assert.Equal(t, exitOK, r.wait(), r.out.String())
	assert.Contains(t, r.out.String(), "Signature")
	assert.NotContains(t, r.out.String(), "PIN policy")

	r = startTTY(t, h, "change-pin")
	r.waitFor("Current PIN: ")
	r.send("\r")
	r.waitFor("No PIN entered")
	r.send("\r")
	r.waitFor("No PIN entered; type your PIN, or press Ctrl-D to cancel. Try again.\r\nCurrent PIN: ")
	r.send("\r")
	assert.Equal(t, exitWrongPIN, r.wait(), r.out.String())
	assert.Contains(t, r.out.String(), "hello change-pin: no PIN entered")

	st := h.expect(exitOK, "", "status")
	assert.Contains(t, st.stdout, "PIN tries left : 32 of 32", "an empty PIN reached the TPM")
}

// Ctrl-C where the terminal sends SIGINT (a prompt with echo; at a PIN
// prompt Ctrl-C cancels) shuts the simulated TPM down before the command
// exits: it costs no PIN try (a TPM stopped without TPM2_Shutdown counts
// one at its next start).
func TestHelloCtrlCCostsNoTry(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	r := startTTY(t, h, "reset", "--destructive")
	r.waitFor("[y/N] ") // the TPM is open
	r.send("\x03")      // Ctrl-C: SIGINT
	assert.Equal(t, 130, r.wait(), r.out.String())
	st := h.expect(exitOK, "", "status")
	assert.Contains(t, st.stdout, "PIN tries left : 32 of 32", "the interrupted command cost a try")
}
