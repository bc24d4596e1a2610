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

// keepsBuffers remembers the very buffers it is handed, not copies.
type keepsBuffers struct {
	simtransport.Transport
	mu   sync.Mutex
	cmds [][]byte
}

func (k *keepsBuffers) Send(cmd []byte) ([]byte, error) {
	k.mu.Lock()
	k.cmds = append(k.cmds, cmd)
	k.mu.Unlock()
	return k.Transport.Send(cmd)
}

// The embedded simulator decrypts encrypted command parameters in place,
// in the library's own command buffer: after TPM2_Create that buffer held
// the secret and the authValue in clear. The library wipes it.
func TestCommandBufferWipedAfterSend(t *testing.T) {
	s, err := simulator.Get()
	if err != nil {
		t.Fatal(err)
	}
	tr := &keepsBuffers{Transport: simtransport.New(s)}
	tp, err := newTPM(tr, tr, true)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
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
