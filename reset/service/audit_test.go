package service_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/service"
)

// TestAuditLogsEveryDecisionAndNoSecret sends one request per kind of
// decision and checks that each produced exactly one audit record, carrying
// its request ID, and that no secret reached the log.
func TestAuditLogsEveryDecisionAndNoSecret(t *testing.T) {
	w := newWorld(t)
	var secrets []string
	addSecret := func(s string) {
		require.GreaterOrEqual(t, len(s), 8)
		secrets = append(secrets, s)
	}
	var ids []string
	send := func(method, path, ct, tok string, body []byte) *http.Response {
		resp := w.post(t, method, path, ct, tok, body)
		ids = append(ids, resp.Header.Get("X-Request-Id"))
		return resp
	}
	recoverOnce := func(tok string, env *protector.Envelope) *http.Response {
		body, rk := requestBody(t, env)
		t.Cleanup(rk.Destroy)
		addSecret(tok)
		addSecret(tok[strings.LastIndexByte(tok, '.')+1:]) // the signature alone
		raw, err := env.MarshalBinary()
		require.NoError(t, err)
		addSecret(base64.RawURLEncoding.EncodeToString(raw))
		addSecret(base64.RawURLEncoding.EncodeToString(raw[len(raw)-48:])) // the ciphertext
		addSecret(hex.EncodeToString(raw[len(raw)-48:]))
		addSecret(base64.RawURLEncoding.EncodeToString(rk.PublicKey()))
		resp := send("POST", service.PathRecover, "application/json", tok, body)
		if resp.StatusCode == 200 {
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			sealed, err := service.DecodeRecoverResponse(b)
			require.NoError(t, err)
			addSecret(base64.RawURLEncoding.EncodeToString(sealed))
			key, err := rk.Open(sealed, env)
			require.NoError(t, err)
			key.Destroy()
		}
		return resp
	}
	for _, k := range w.keys {
		der, err := k.MarshalBinary()
		require.NoError(t, err)
		addSecret(base64.StdEncoding.EncodeToString(der)[:40])
		addSecret(hex.EncodeToString(der)[:40])
	}
	addSecret(w.alice.password)
	addSecret(w.alice.user.TOTPSecret())

	env := x25519Env(t, w, w.alice)
	wantCodes := []string{"", service.CodeMFARequired, service.CodeBindingMismatch, service.CodeTokenReplayed,
		service.CodeInvalidToken, service.CodeBadEnvelope, service.CodeMalformedRequest, service.CodeUnsupportedMediaType,
		service.CodeMethodNotAllowed, service.CodeNotFound, "", service.CodeKeyRetired}

	tok := w.alice.token(t)
	require.Equal(t, 200, recoverOnce(tok, env).StatusCode)
	p, err := w.idp.SignIn(context.Background(), w.alice.user.UPN, w.alice.password)
	require.NoError(t, err)
	noMFA, err := p.TokenWithoutMFA(context.Background())
	require.NoError(t, err)
	require.Equal(t, 403, recoverOnce(noMFA, env).StatusCode)
	require.Equal(t, 403, recoverOnce(w.bob.token(t), env).StatusCode)
	require.Equal(t, 401, recoverOnce(tok, env).StatusCode)
	require.Equal(t, 401, recoverOnce(tok[:len(tok)-4]+"AAAA", env).StatusCode)
	require.Equal(t, 400, recoverOnce(w.alice.token(t), tamper(t, env, func(b []byte) { b[len(b)-3] ^= 0x80 })).StatusCode)
	require.Equal(t, 400, send("POST", service.PathRecover, "application/json", w.alice.token(t), []byte(`{"envelope":"`+tok+`"}`)).StatusCode)
	require.Equal(t, 415, send("POST", service.PathRecover, "text/plain", w.alice.token(t), nil).StatusCode)
	require.Equal(t, 405, send("GET", service.PathRecover, "", "", nil).StatusCode)
	require.Equal(t, 404, send("GET", "/v1/"+w.alice.password, "", "", nil).StatusCode)
	require.Equal(t, 200, send("GET", service.PathKeys, "", "", nil).StatusCode)
	envR, _ := w.alice.envelope(t, w.retired.Public())
	require.Equal(t, 410, recoverOnce(w.alice.token(t), envR).StatusCode)

	recs := w.audit.records(t)
	require.Len(t, recs, len(ids), "one record per request")
	for i, r := range recs {
		assert.Equal(t, ids[i], r["request_id"], "record %d", i)
		code, _ := r["code"].(string)
		assert.Equal(t, wantCodes[i], code, "record %d", i)
		if code == "" {
			assert.Equal(t, "allow", r["decision"])
		} else {
			assert.Equal(t, "deny", r["decision"])
		}
	}
	// Decisions after the token was verified name the tenant, user and key.
	assert.Equal(t, w.alice.user.TenantID, recs[0]["tenant"])
	assert.Equal(t, w.alice.user.ObjectID, recs[0]["user"])
	assert.Equal(t, w.keys[protector.HPKEX25519].Public().ID(), recs[0]["kid"])
	assert.Equal(t, w.bob.user.ObjectID, recs[2]["user"])

	log := w.audit.String()
	for _, s := range secrets {
		assert.NotContains(t, log, s)
	}
	// The hostile path is bounded and cleaned in the log.
	assert.NotContains(t, log, w.alice.password)
}
