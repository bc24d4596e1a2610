//go:build cgo

package tpm

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/google/go-tpm-tools/simulator"

	"github.com/hellosim/hellosim/tpm/internal/simtransport"
)

// keepsBuffers remembers the very buffers it is handed and hands back, not
// copies.
type keepsBuffers struct {
	simtransport.Transport
	mu   sync.Mutex
	cmds [][]byte
	rsps [][]byte
}

func (k *keepsBuffers) Send(cmd []byte) ([]byte, error) {
	k.mu.Lock()
	k.cmds = append(k.cmds, cmd)
	k.mu.Unlock()
	rsp, err := k.Transport.Send(cmd)
	k.mu.Lock()
	k.rsps = append(k.rsps, rsp)
	k.mu.Unlock()
	return rsp, err
}

// openKeepingBuffers opens a TPM on a new simulator through a
// keepsBuffers, closed when the test ends.
func openKeepingBuffers(t *testing.T) (*TPM, *keepsBuffers) {
	t.Helper()
	s, err := simulator.Get()
	if err != nil {
		t.Fatal(err)
	}
	tr := &keepsBuffers{Transport: simtransport.New(s)}
	tp, err := newTPM(tr, tr, onNewSimulator)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tp.Close() })
	return tp, tr
}

// The embedded simulator decrypts encrypted command parameters in place,
// in the library's own command buffer: after TPM2_Create that buffer held
// the secret and the authValue in clear. The library wipes it.
func TestCommandBufferWipedAfterSend(t *testing.T) {
	tp, tr := openKeepingBuffers(t)
	secret := []byte("a secret the simulator decrypts in place")
	auth := []byte("an authValue to look for")
	if _, err := tp.Seal(context.Background(), secret, auth); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tp.CreateKey(context.Background(), ECCP256, auth); err != nil {
		t.Fatal(err)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, c := range tr.cmds {
		if bytes.Contains(c, secret) || bytes.Contains(c, auth) {
			t.Errorf("command buffer %d still holds a secret in clear", i)
		}
	}
}

// TPM2_Unseal's response parameter is decrypted in place, in the buffer
// the transport returned: after Unseal that buffer held the secret in clear
// until the garbage collector reused it. The library wipes it (the caller
// gets its own copy).
func TestUnsealResponseBufferWiped(t *testing.T) {
	tp, tr := openKeepingBuffers(t)
	ctx := context.Background()
	secret := []byte("a secret decrypted in the response buffer")
	auth := []byte("an authValue")
	b, err := tp.Seal(ctx, secret, auth)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tp.Unseal(ctx, b, auth)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, secret) {
		t.Fatalf("unsealed %q", got)
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, r := range tr.rsps {
		if bytes.Contains(r, secret) {
			t.Errorf("response buffer %d still holds the secret in clear", i)
		}
	}
}
