package service_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

// countingVerifier counts the tokens it is asked to verify. It hides the
// verifier's skew from the service, as any verifier that does not report
// one would.
type countingVerifier struct {
	service.TokenVerifier
	calls atomic.Int32
}

func (v *countingVerifier) Verify(ctx context.Context, token string) (*service.Claims, error) {
	v.calls.Add(1)
	return v.TokenVerifier.Verify(ctx, token)
}

// verifierFunc is a TokenVerifier that reports no skew.
type verifierFunc func(ctx context.Context, token string) (*service.Claims, error)

func (f verifierFunc) Verify(ctx context.Context, token string) (*service.Claims, error) {
	return f(ctx, token)
}

// With the state store down, the address limit cannot be drawn: the
// refusal comes from that step, before any token is verified.
func TestAddressLimitStoreDownRefusesBeforeTheToken(t *testing.T) {
	var cv *countingVerifier
	w, cs := attackWorld(t, func(c *service.Config) {
		cv = &countingVerifier{TokenVerifier: c.Verifier}
		c.Verifier = cv
	})
	cs.breakDown()
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	resp, code := w.send(t, attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device})
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, service.CodeUnavailable, code)
	assert.Zero(t, cv.calls.Load(), "no token verified while the address limit could not be drawn")
	recs := w.audit.records(t)
	assert.Equal(t, "address_limit", recs[len(recs)-1]["check"])
	assert.Zero(t, w.unwraps())
}

// A verifier more lenient than the service's replay window (here one
// with ten minutes of skew that does not say so) accepts a token the
// replay records would no longer hold: the service's own window check
// refuses it, at the token step, before the state store is asked.
func TestReplayWindowCheckedByTheService(t *testing.T) {
	var v service.TokenVerifier // made once the world's IdP exists
	w, cs := attackWorld(t, func(c *service.Config) {
		c.Verifier = verifierFunc(func(ctx context.Context, tok string) (*service.Claims, error) { return v.Verify(ctx, tok) })
	})
	v, err := service.NewJWTVerifier(service.VerifierConfig{
		Keys:   func() *jose.JSONWebKeySet { return &jose.JSONWebKeySet{Keys: w.idp.JWKS().Keys} },
		Issuer: w.idp.IssuerTemplate(), Audience: identity.PINResetServiceAppID, Clock: w.clk.Now, Skew: 10 * time.Minute,
	})
	require.NoError(t, err)
	tok := w.alice.token(t)
	w.clk.Advance(idp.DefaultTokenLifetime + service.DefaultSkew + time.Second)
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	once0, _ := cs.counts()
	resp, code := w.send(t, attackRequest{token: tok, env: env, signer: w.alice.device})
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, service.CodeInvalidToken, code)
	recs := w.audit.records(t)
	last := recs[len(recs)-1]
	assert.Equal(t, "token", last["check"])
	assert.Equal(t, "expired past the replay window", last["reason"])
	once, _ := cs.counts()
	assert.Equal(t, once0, once, "nothing recorded")
}
