//go:build linux || darwin || freebsd

package examples_test

import (
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
	cmd := h.cmd(args...)
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
	return exitCode(r.t, err, "hello")
}

// atTerminal runs hello with args at a terminal, answering its prompts in
// turn (dialogue is prompt, input, prompt, input, ...), checks its exit
// code and returns what the terminal showed.
func (h *helloCLI) atTerminal(code int, args []string, dialogue ...string) string {
	h.t.Helper()
	r := startTTY(h.t, h, args...)
	for i := 0; i+1 < len(dialogue); i += 2 {
		r.waitFor(dialogue[i])
		r.send(dialogue[i+1])
	}
	assert.Equal(h.t, code, r.wait(), r.out.String())
	return r.out.String()
}

// At a terminal the PIN is not echoed, and Ctrl-D at a prompt cancels.
func TestHelloTerminalHidesThePINAndCtrlDCancels(t *testing.T) {
	t.Parallel()
	h := newHello(t)

	out := h.atTerminal(exitFailure, []string{"provision", "-alg", "ecc"},
		"New PIN: ", "135792\r", "Confirm new PIN: ", "\x04") // Ctrl-D
	assert.Contains(t, out, "hello provision: cancelled")
	assert.NotContains(t, out, "135792", "the PIN was echoed")
	_, err := os.Stat(filepath.Join(h.state, "containers"))
	assert.True(t, os.IsNotExist(err) || len(h.containerFiles()) == 0, "a cancelled provision left a container")

	out = h.atTerminal(exitOK, []string{"provision", "-alg", "ecc"},
		"New PIN: ", "135792\r", "Confirm new PIN: ", "135792\r")
	assert.Contains(t, out, "Windows Hello is set up")
	assert.NotContains(t, out, "135792")

	// Ctrl-D at the PIN prompt of sign: cancelled, and no TPM try spent.
	out = h.atTerminal(exitFailure, []string{"sign"}, "PIN: ", "\x04")
	assert.Contains(t, out, "hello sign: cancelled")

	// A confirmation at the terminal.
	out = h.atTerminal(exitFailure, []string{"delete"}, "[y/N] ", "\x04")
	assert.True(t, strings.Contains(out, "cancelled"), out)
	assert.Len(t, h.containerFiles(), 1)
}

// Enter alone at a PIN prompt asks again (three times, as provision does),
// costs no TPM try, and three of them end with "no PIN entered", exit 3.
func TestHelloEnterAtThePINPromptAsksAgain(t *testing.T) {
	t.Parallel()
	h := provisioned(t)
	out := h.atTerminal(exitOK, []string{"sign", "-m", "after Enter"},
		"PIN: ", "\r", "No PIN entered; type your PIN, or press Ctrl-D to cancel. Try again.", "135792\r")
	assert.Contains(t, out, "Signature")
	assert.NotContains(t, out, "PIN policy")

	out = h.atTerminal(exitWrongPIN, []string{"change-pin"},
		"Current PIN: ", "\r", "No PIN entered", "\r",
		"No PIN entered; type your PIN, or press Ctrl-D to cancel. Try again.\r\nCurrent PIN: ", "\r")
	assert.Contains(t, out, "hello change-pin: no PIN entered")

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
	h.atTerminal(130, []string{"reset", "--destructive"},
		"[y/N] ", "\x03") // the TPM is open; Ctrl-C: SIGINT
	st := h.expect(exitOK, "", "status")
	assert.Contains(t, st.stdout, "PIN tries left : 32 of 32", "the interrupted command cost a try")
}
