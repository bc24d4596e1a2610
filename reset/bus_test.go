package reset_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// tape is a deterministic random source that remembers every 32-byte read:
// the container secret S, the protectors R and R' and the PIN salts are
// all drawn in 32-byte reads, so the test knows them without any access to
// the container's insides.
type tape struct {
	mu     sync.Mutex
	r      *rand.ChaCha8
	secret [][]byte
}

func (t *tape) Read(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, _ := t.r.Read(p)
	if len(p) == 32 {
		t.secret = append(t.secret, bytes.Clone(p))
	}
	return n, nil
}

// TestResetsKeepSecretsOffTheBus records every byte that crosses the TPM
// transport while a container is provisioned, enrolled and reset both
// ways, and checks that no secret drawn from the random source (S, R, R',
// salts), no PIN and no token appears in clear.
func TestResetsKeepSecretsOffTheBus(t *testing.T) {
	ctx := context.Background()
	tp, rec := tpmtest.OpenRecorded(t)
	w := resettest.New(t, resettest.WithTPM(tp), resettest.WithoutRecovery())
	src := &tape{r: rand.NewChaCha8([32]byte{1, 2, 3})}
	opt := container.WithRand(src)

	cfg := w.Container.Config()
	c, err := container.Provision(ctx, tp, cfg, w.PIN, opt)
	require.NoError(t, err)
	key, err := w.Client.ServiceKey(ctx)
	require.NoError(t, err)
	s, err := container.Unlock(ctx, tp, c, w.PIN, opt)
	require.NoError(t, err)
	c, err = s.EnablePINRecoveryOnDevice(ctx, key, w.DeviceIdentity.ID())
	require.NoError(t, err)
	require.NoError(t, s.Close())

	env := w.Env()
	env.Rand = src
	tok1, tok2 := w.Token(t), w.Token(t)
	n, err := reset.NonDestructive(ctx, env, c, reset.Request{Token: tok1, NewPIN: newPIN})
	require.NoError(t, err)
	_, err = reset.Destructive(ctx, env, n, reset.Request{Token: tok2, NewPIN: "918273"})
	require.NoError(t, err)

	require.GreaterOrEqual(t, len(src.secret), 6, "the tape saw fewer secrets than provision, enrol and two resets draw")
	require.NotEmpty(t, rec.Exchanges())
	secrets := append([][]byte{[]byte(w.PIN), []byte(newPIN), []byte("918273"), []byte(tok1), []byte(tok2)}, src.secret...)
	rec.AssertAbsent(t, secrets...)

	// Control: what is public does cross the bus, so the recording is real.
	pub, ok := n.PublicKey().(*rsa.PublicKey)
	require.True(t, ok)
	where, err := rec.Find(pub.N.Bytes()[:32])
	require.NoError(t, err)
	require.NotEmpty(t, where, "the login key's modulus never crossed the recorded bus")
}
