package service_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

// skewedVerifier builds a verifier of the world's IdP tokens tolerating skew.
func skewedVerifier(t *testing.T, w *world, skew time.Duration) *service.JWTVerifier {
	t.Helper()
	v, err := service.NewJWTVerifier(service.VerifierConfig{
		Keys: w.idp.JWKS, Issuer: w.idp.IssuerTemplate(), Audience: identity.PINResetServiceAppID, Clock: w.clk.Now, Skew: skew,
	})
	require.NoError(t, err)
	return v
}

// hiddenSkew is a verifier that does not say what skew it tolerates.
type hiddenSkew struct{ v service.TokenVerifier }

func (h hiddenSkew) Verify(ctx context.Context, tok string) (*service.Claims, error) {
	return h.v.Verify(ctx, tok)
}

func serviceWith(t *testing.T, w *world, v service.TokenVerifier, replaySkew time.Duration) (*service.Service, error) {
	t.Helper()
	return service.New(service.Config{
		Verifier: v, Directory: w.idp, Clock: w.clk.Now, ReplaySkew: replaySkew, MFAMaxAge: time.Hour,
		Keys: []protector.Unwrapper{w.counters[0], w.counters[1], w.counters[2]},
	})
}

func TestNewRefusesReplaySkewBelowVerifierSkew(t *testing.T) {
	w := newWorld(t)
	v := skewedVerifier(t, w, 5*time.Minute)
	assert.Equal(t, 5*time.Minute, v.Skew())
	for _, rs := range []time.Duration{time.Second, 4 * time.Minute, -time.Second} {
		_, err := serviceWith(t, w, v, rs)
		var ce *service.ConfigError
		require.ErrorAs(t, err, &ce, "ReplaySkew %s", rs)
		assert.Equal(t, "ReplaySkew", ce.Field)
		assert.ErrorIs(t, err, service.ErrInvalidServiceConfig)
	}
	for _, rs := range []time.Duration{0, 5 * time.Minute, time.Hour} {
		_, err := serviceWith(t, w, v, rs)
		assert.NoError(t, err, "ReplaySkew %s", rs)
	}
	_, err := service.New(service.Config{Directory: w.idp, Keys: []protector.Unwrapper{w.counters[0]}})
	assert.ErrorIs(t, err, service.ErrInvalidServiceConfig)
}

// With ReplaySkew left at zero the service takes the verifier's skew, so a
// token the verifier still accepts past its expiry is still remembered.
func TestReplaySkewDefaultsToVerifierSkew(t *testing.T) {
	w := newWorld(t)
	svc, err := serviceWith(t, w, skewedVerifier(t, w, 5*time.Minute), 0)
	require.NoError(t, err)
	c := service.NewInProcess(svc).WithDevice(w.alice.device).WithClock(w.clk.Now)
	tok := w.alice.token(t)
	env := x25519Env(t, w, w.alice)
	w.clk.Advance(idp.DefaultTokenLifetime + 30*time.Second) // expired, within the verifier's skew
	k, err := c.Recover(context.Background(), tok, env)
	require.NoError(t, err)
	k.Destroy()
	w.clk.Advance(2 * time.Minute) // past DefaultSkew, still within the verifier's
	before := w.unwraps()
	_, err = c.Recover(context.Background(), tok, env)
	assert.ErrorIs(t, err, service.ErrReplay)
	assert.Equal(t, before, w.unwraps(), "a replayed token reached the service key")
}

// A verifier that hides a larger skew cannot stretch a token's life past what
// the replay cache remembers: the service refuses it itself.
func TestServiceRefusesTokensPastReplayWindow(t *testing.T) {
	w := newWorld(t)
	svc, err := serviceWith(t, w, hiddenSkew{skewedVerifier(t, w, 10*time.Minute)}, 0)
	require.NoError(t, err)
	c := service.NewInProcess(svc).WithDevice(w.alice.device).WithClock(w.clk.Now)
	tok := w.alice.token(t)
	env := x25519Env(t, w, w.alice)
	w.clk.Advance(idp.DefaultTokenLifetime + 30*time.Second) // within DefaultSkew
	k, err := c.Recover(context.Background(), tok, env)
	require.NoError(t, err)
	k.Destroy()
	w.clk.Advance(2 * time.Minute) // past DefaultSkew: the jti is forgotten
	before := w.unwraps()
	_, err = c.Recover(context.Background(), tok, env)
	assert.ErrorIs(t, err, service.ErrUnauthorized)
	assert.Equal(t, before, w.unwraps(), "a replayed token reached the service key")
	// A fresh token at the same time is fine.
	k, err = c.Recover(context.Background(), w.alice.token(t), env)
	require.NoError(t, err)
	k.Destroy()
}
