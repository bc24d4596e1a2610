package examples_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHelloChangePINAnswerLost: between hello and swtpm sits a bus on
// loopback that passes every command on and, at TPM2_NV_ChangeAuth, lets
// swtpm execute the change and then cuts the connection without passing
// the answer. hello change-pin cannot ask the TPM again: it says the PIN
// may have changed and to try the new PIN, exits with code 8, and keeps the
// container, which then opens with the new PIN (the TPM holds it) and not
// with the old one.
func TestHelloChangePINAnswerLost(t *testing.T) {
	t.Parallel()
	spec := startSwtpm(t)
	bus, cut := startLosingBus(t, spec, tpm2.TPMCCNVChangeAuth)
	h := newHello(t)
	h.expect(exitOK, "135792\n135792\n", "provision", "-alg", "ecc", "-password", "demo password 42", "--tpm", spec)

	r := h.expect(exitPINUnsure, "135792\n582046\n582046\n", "change-pin", "--tpm", bus)
	require.True(t, cut.Load(), "the answer to NV_ChangeAuth was lost")
	assert.Contains(t, r.stderr, "the PIN may have changed: try the new PIN")
	assert.NotContains(t, r.stdout, "PIN changed.")

	h.expect(exitOK, "582046\n", "sign", "-m", "after the lost answer")
	h.expect(exitWrongPIN, "135792\n", "sign")
}

// startLosingBus starts a loopback relay for the TPM simulator protocol of
// swtpm (spec tcp://host:port; commands on port, platform on port+1) and
// returns its own spec. Platform traffic is relayed as is; each command is
// relayed with its answer, but the first command with code cc is executed
// by swtpm and then the connection is closed before its answer goes back.
// cut reports that it happened.
func startLosingBus(t *testing.T, spec string, cc tpm2.TPMCC) (string, *atomic.Bool) {
	t.Helper()
	target := strings.TrimPrefix(spec, "tcp://")
	host, port, err := net.SplitHostPort(target)
	require.NoError(t, err)
	var tport int
	_, err = fmt.Sscan(port, &tport)
	require.NoError(t, err)
	platTarget := net.JoinHostPort(host, fmt.Sprint(tport+1))

	// Two listeners on consecutive ports, each held from the start.
	var cmdLn, platLn net.Listener
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		p, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port+1))
		if err != nil {
			l.Close()
			continue
		}
		cmdLn, platLn = l, p
		break
	}
	require.NotNil(t, cmdLn, "no consecutive pair of loopback ports")
	var wg sync.WaitGroup
	t.Cleanup(func() { cmdLn.Close(); platLn.Close(); wg.Wait() })
	cut := new(atomic.Bool)
	serve := func(ln net.Listener, addr string, relay func(client, server net.Conn)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				s, err := net.Dial("tcp", addr)
				if err != nil {
					c.Close()
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					defer s.Close()
					relay(c, s)
				}()
			}
		}()
	}
	// Both ways until either side closes; then both are closed.
	pipe := func(c, s net.Conn) {
		go func() { _, _ = io.Copy(s, c); c.Close(); s.Close() }()
		_, _ = io.Copy(c, s)
	}
	serve(platLn, platTarget, pipe)
	serve(cmdLn, target, func(c, s net.Conn) {
		for {
			// TPM_SEND_COMMAND (8), locality (1 byte), size, command;
			// the answer: size, response, an acknowledgement (4 bytes).
			var hdr [9]byte
			if _, err := io.ReadFull(c, hdr[:4]); err != nil {
				return
			}
			if binary.BigEndian.Uint32(hdr[:4]) != 8 {
				// SESSION_END or STOP: pass it on, and the rest as is.
				_, _ = s.Write(hdr[:4])
				pipe(c, s)
				return
			}
			if _, err := io.ReadFull(c, hdr[4:]); err != nil {
				return
			}
			cmd := make([]byte, binary.BigEndian.Uint32(hdr[5:]))
			if _, err := io.ReadFull(c, cmd); err != nil {
				return
			}
			if _, err := s.Write(append(hdr[:], cmd...)); err != nil {
				return
			}
			var size [4]byte
			if _, err := io.ReadFull(s, size[:]); err != nil {
				return
			}
			rsp := make([]byte, binary.BigEndian.Uint32(size[:])+4)
			if _, err := io.ReadFull(s, rsp); err != nil {
				return
			}
			if len(cmd) >= 10 && tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) == cc && cut.CompareAndSwap(false, true) {
				return // executed by swtpm; the answer is lost
			}
			if _, err := c.Write(append(size[:], rsp...)); err != nil {
				return
			}
		}
	})
	return "tcp://" + cmdLn.Addr().String(), cut
}
