package reliability

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// TestSecretsThroughRealService is TestSecretsStayInside in the complete
// world: the simulated directory signs in the user with password and TOTP,
// the reference PIN reset service checks the token and unwraps the
// protector over HTTP, and the destructive reset registers the new key with
// the directory. Recorded on the TPM interface and scanned in logs, events
// and errors: the PINs, the access tokens, and the secrets (S', R') the
// resets draw; the buffers that held S' and R' are zero afterwards and the
// protector the service returned was destroyed.
func TestSecretsThroughRealService(t *testing.T) {
	ctx := context.Background()
	raw := tpmtest.OpenTransport(t)
	rec := tpmtest.NewRecorder(raw)
	tp := tpmtest.OpenOn(t, rec)
	w := resettest.New(t, resettest.WithTPM(tp))

	rr := &drawingRand{}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil))
	var events eventLog
	env := w.Env()
	svc := &capturingService{Service: env.Service}
	env.Service, env.Rand = svc, rr
	env.Options = []container.Option{container.WithLogger(logger), container.WithEventHandler(events.handle)}

	require.NoError(t, unlockAndSign(ctx, tp, w.Container, w.PIN))
	tok1, tok2, tok3 := w.Token(t), w.Token(t), w.Token(t)
	var errs []error
	// Refused: a token without MFA; a weak PIN.
	_, err := reset.NonDestructive(ctx, env, w.Container, reset.Request{Token: w.TokenWithoutMFA(t), NewPIN: pin3})
	require.Error(t, err)
	errs = append(errs, err)
	_, err = reset.NonDestructive(ctx, env, w.Container, reset.Request{Token: tok1, NewPIN: "123456"})
	require.Error(t, err)
	errs = append(errs, err)
	c4, err := reset.NonDestructive(ctx, env, w.Container, reset.Request{Token: tok2, NewPIN: pin3})
	require.NoError(t, err)
	require.NoError(t, unlockAndSign(ctx, tp, c4, pin3))
	c5, err := reset.Destructive(ctx, env, c4, reset.Request{Token: tok3, NewPIN: "370415"})
	require.NoError(t, err)
	require.NoError(t, unlockAndSign(ctx, tp, c5, "370415"))
	_, err = reset.NonDestructive(ctx, env, w.Container, reset.Request{Token: tok2, NewPIN: pin2})
	require.Error(t, err, "a replayed token")
	errs = append(errs, err)

	var public [][]byte
	for _, c := range []*container.Container{w.Container, c4, c5} {
		b, err := c.MarshalBinary()
		require.NoError(t, err)
		public = append(public, b)
	}
	var secrets [][]byte
	for _, d := range rr.all() {
		if len(d.orig) != 32 {
			continue
		}
		pub := false
		for _, p := range public {
			pub = pub || bytes.Contains(p, d.orig)
		}
		if !pub {
			secrets = append(secrets, d.orig)
			assert.Equal(t, make([]byte, 32), d.buf, "a buffer that held S' or R' is not zero")
		}
	}
	assert.GreaterOrEqual(t, len(secrets), 2, "R' of the non-destructive reset and S' of the destructive one")
	require.NotEmpty(t, svc.keys)
	for _, k := range svc.keys {
		assert.False(t, k.Equal(k), "the protector the service returned was not destroyed")
	}

	pins := []string{w.PIN, pin3, "370415", "123456"}
	bus := [][]byte{[]byte(tok1), []byte(tok2), []byte(tok3)}
	for _, p := range pins {
		bus = append(bus, []byte(p))
	}
	for _, s := range secrets {
		bus = append(bus, s)
		for _, c := range []*container.Container{c4, c5} {
			bus = append(bus, keyAuthOf(s, c.ID(), container.LoginKeyName))
		}
	}
	rec.AssertAbsent(t, bus...)

	logMu.Lock()
	texts := []string{logBuf.String()}
	logMu.Unlock()
	for _, e := range events.events {
		texts = append(texts, fmt.Sprintf("%v %+v %#v", e, e, e))
	}
	for _, e := range errs {
		texts = append(texts, e.Error(), fmt.Sprintf("%+v %#v", e, e))
	}
	needles := append([]string{}, pins...)
	for _, tok := range []string{tok1, tok2, tok3} {
		needles = append(needles, tok, tok[strings.LastIndex(tok, ".")+1:])
	}
	for _, s := range secrets {
		needles = append(needles, encodings(s)...)
	}
	for _, txt := range texts {
		for _, n := range needles {
			if len(n) >= 6 && strings.Contains(txt, n) {
				t.Errorf("secret %.12q… found in %.200q", n, txt)
			}
		}
	}
	t.Logf("real service: %d TPM exchanges, %d bus secrets, %d texts, %d secret buffers zero, %d protectors destroyed",
		len(rec.Exchanges()), len(bus), len(texts), len(secrets), len(svc.keys))
}
