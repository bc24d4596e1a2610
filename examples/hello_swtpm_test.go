package examples_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startSwtpm starts swtpm with a fresh state on two adjacent free
// loopback ports (commands, and control one above, as tpm.Open's tcp://
// expects) and returns its spec; the test is skipped where swtpm is not
// installed. A port chosen free can be taken before swtpm binds it: swtpm
// then exits, and the next pair is tried. A port answers for this swtpm
// only while it runs, so a listener that is another program's is never
// taken for it.
func startSwtpm(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("swtpm")
	if err != nil {
		t.Skip("swtpm is not installed: the locked-TPM tests need a TPM whose lockout outlives a process")
	}
	for range 20 {
		port, ok := freePortPair(t)
		if !ok {
			continue
		}
		cmd := exec.Command(path, "socket", "--tpm2", "--tpmstate", "dir="+t.TempDir(),
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
			"--flags", "not-need-init,startup-clear")
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		if waitListening(port+1, exited) {
			return fmt.Sprintf("tcp://127.0.0.1:%d", port)
		}
	}
	t.Fatal("swtpm did not start on any of 20 port pairs")
	return ""
}

// freePortPair finds a free loopback port whose successor is free too.
func freePortPair(t *testing.T) (int, bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	ctrl, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
	if err != nil {
		return 0, false
	}
	ctrl.Close()
	return port, true
}

// waitListening waits until port accepts a connection while the process
// that should serve it runs: false when it exits first (it could not bind)
// or after 10 s.
func waitListening(port int, exited <-chan struct{}) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			select {
			case <-exited:
				return false
			default:
				return true
			}
		}
	}
	return false
}

// On a TPM in dictionary-attack lockout (swtpm: the lockout outlives the
// process), nothing asks for a PIN it could not try, status says so, and a
// destructive reset refuses before it starts instead of ending "All set"
// with a new PIN that is locked too.
func TestHelloOnALockedTPM(t *testing.T) {
	t.Parallel()
	spec := startSwtpm(t)
	h := newHello(t)
	h.expect(exitOK, "135792\n135792\n", "provision", "-alg", "ecc", "-password", "demo password 42", "--tpm", spec)
	locked := false
	for range 40 {
		r := h.run("000000\n", "sign")
		if r.code == exitLocked {
			locked = true
			break
		}
		require.Equal(t, exitWrongPIN, r.code, r.stderr)
	}
	require.True(t, locked, "the TPM never locked")

	r := h.expect(exitLocked, "135792\n", "sign")
	assert.NotContains(t, r.stderr, "PIN:", "asked for a PIN on a locked TPM")
	assert.Contains(t, r.stderr, "the TPM has locked the PIN (dictionary-attack protection); it forgives one wrong PIN at a time, so a PIN can be tried again in at most")

	r = h.expect(exitOK, "", "status")
	assert.Contains(t, r.stdout, "PIN tries left : none: the TPM is locked; next try in at most ")
	r = h.expect(exitOK, "", "status", "-json")
	var st struct {
		Lockout struct {
			Locked    bool  `json:"locked"`
			TriesLeft int   `json:"tries_left"`
			NextTry   int64 `json:"next_try_seconds"`
		} `json:"lockout"`
		TPM string `json:"tpm"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.True(t, st.Lockout.Locked)
	assert.Zero(t, st.Lockout.TriesLeft)
	assert.Positive(t, st.Lockout.NextTry)
	assert.Equal(t, spec, st.TPM)

	_, before := h.container()
	r = h.expect(exitLocked, "demo password 42\n"+h.totp()+"\n917364\n917364\n", "reset", "--destructive", "-y")
	out := r.stdout + r.stderr
	assert.NotContains(t, out, "All set")
	assert.NotContains(t, out, "Your PIN was reset")
	assert.NotContains(t, out, "Password for", "signed in before finding the TPM locked")
	assert.True(t, strings.Contains(r.stderr, "locked"), r.stderr)
	_, after := h.container()
	assert.Equal(t, before.KeyID(), after.KeyID(), "the container is unchanged")
	h.expect(exitLocked, "135792\n135792\n", "change-pin")
}
