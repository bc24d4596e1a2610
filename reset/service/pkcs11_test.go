//go:build cgo

package service_test

import (
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/redistest"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/protector/pkcs11"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/reset/service/state"
)

// TestInstancesPKCS11KeyRotated: two instances share one Redis and one
// PKCS #11 token, whose key opens the envelopes. A new key is made in the
// token; instances restarted from what the token lists (opened afresh, as
// another process would) open envelopes under the new key and, until it is
// destroyed, under the old one; then the old key is destroyed and retired,
// and its envelopes are refused as retired without any unwrap. Runs with
// HELLOSIM_REDIS and HELLOSIM_PKCS11_MODULE, _TOKEN and _PIN set.
func TestInstancesPKCS11KeyRotated(t *testing.T) {
	url := redistest.URL(t)
	cfg := pkcs11.Config{Module: os.Getenv("HELLOSIM_PKCS11_MODULE"), TokenLabel: os.Getenv("HELLOSIM_PKCS11_TOKEN"),
		PIN: os.Getenv("HELLOSIM_PKCS11_PIN"), Label: "hellosim-rotation-" + randString(8)}
	if cfg.Module == "" || cfg.TokenLabel == "" {
		t.Skip("HELLOSIM_PKCS11_MODULE and HELLOSIM_PKCS11_TOKEN (with HELLOSIM_PKCS11_PIN) are not set; skipping the PKCS11 test")
	}
	open := func() *pkcs11.Token {
		tok, err := pkcs11.Open(cfg)
		require.NoError(t, err)
		return tok
	}
	tok := open()
	t.Cleanup(func() {
		// tok is the Token open last: the keys of this test's label go.
		keys, _ := tok.Keys()
		for _, k := range keys {
			_ = tok.Destroy(k.Public().ID())
		}
		tok.Close()
	})
	old, err := tok.Generate(protector.HPKEP256)
	require.NoError(t, err)

	w := newWorld(t)
	prefix := redistest.Prefix()
	var counted []*countingUnwrapper
	// instance is one service instance on the shared Redis, serving the
	// token's keys as they are listed now.
	instance := func(tok *pkcs11.Token, retired ...string) *httptest.Server {
		t.Helper()
		st, err := state.NewRedis(url, state.RedisOptions{Prefix: prefix, Clock: w.clk.Now, Timeout: redistest.Timeout})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		listed, err := tok.Unwrappers()
		require.NoError(t, err)
		var keys []protector.Unwrapper
		for _, k := range listed {
			c := &countingUnwrapper{Unwrapper: k}
			counted = append(counted, c)
			keys = append(keys, c)
		}
		svc, err := service.New(service.Config{Verifier: mustVerifier(w.idp), Directory: w.idp, Clock: w.clk.Now,
			Keys: keys, Retired: retired, State: st, RateLimit: service.RateLimit{Unlimited: true}})
		require.NoError(t, err)
		srv := httptest.NewServer(svc)
		t.Cleanup(srv.Close)
		return srv
	}
	unwraps := func() int {
		n := 0
		for _, c := range counted {
			c.mu.Lock()
			n += c.n
			c.mu.Unlock()
		}
		return n
	}
	recoverAt := func(srv *httptest.Server, key protector.ServiceKey) (int, string) {
		env, r := w.alice.envelope(t, key)
		r.Destroy()
		return roundTrip(w.recoverRequest(t, srv, attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device}))
	}

	a, b := instance(tok), instance(tok)
	for _, srv := range []*httptest.Server{a, b} {
		status, code := recoverAt(srv, old.Public())
		require.Equal(t, 200, status, code)
	}

	// Rotate: the next key is made in the token.
	cur, err := tok.Generate(protector.HPKEP256)
	require.NoError(t, err)
	// The instances restart, and so does their Token (a module is open
	// once per process): what they serve is what the token now holds.
	require.NoError(t, tok.Close())
	tok = open()
	a, b = instance(tok), instance(tok)
	for _, c := range []struct {
		srv *httptest.Server
		key protector.ServiceKey
	}{{a, cur.Public()}, {b, cur.Public()}, {a, old.Public()}, {b, old.Public()}} {
		status, code := recoverAt(c.srv, c.key)
		assert.Equal(t, 200, status, "%s at an instance restarted after the rotation: %s", c.key.ID(), code)
	}

	// Retire the old key: destroyed in the token, refused by the service.
	require.NoError(t, tok.Destroy(old.Public().ID()))
	a = instance(tok, old.Public().ID())
	u := unwraps()
	status, code := recoverAt(a, old.Public())
	assert.Equal(t, 410, status)
	assert.Equal(t, service.CodeKeyRetired, code)
	assert.Equal(t, u, unwraps(), "an envelope under a retired key is not opened")
	status, code = recoverAt(a, cur.Public())
	assert.Equal(t, 200, status, code)
	assert.Equal(t, u+1, unwraps())
}
