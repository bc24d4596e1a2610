package service_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/service"
)

func TestRecoverHappyPathPerScheme(t *testing.T) {
	for _, s := range []protector.Scheme{protector.HPKEX25519, protector.HPKEXWing, protector.RSAOAEP3072} {
		t.Run(s.String(), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			env, want := w.alice.envelope(t, w.keys[s].Public())
			got, err := w.client.Recover(context.Background(), w.alice.token(t), env)
			require.NoError(t, err)
			defer got.Destroy()
			assert.True(t, got.Equal(want), "recovered protector differs")
			assert.Equal(t, 1, w.unwraps())
		})
	}
}

func TestRecoverWithIdPVerifier(t *testing.T) {
	// The same flow with the verifier the IdP hands out, and the in-process
	// client.
	w := newWorld(t)
	svc, err := service.New(service.Config{
		Verifier:  mustVerifier(w.idp),
		Directory: w.idp,
		Keys:      []protector.Unwrapper{w.keys[protector.HPKEX25519]},
		Clock:     w.clk.Now,
	})
	require.NoError(t, err)
	c := service.NewInProcess(svc).WithDevice(w.bob.device).WithClock(w.clk.Now)
	key, err := c.ServiceKey(context.Background())
	require.NoError(t, err)
	assert.Equal(t, w.keys[protector.HPKEX25519].Public().ID(), key.ID())
	env, want := w.bob.envelope(t, key)
	got, err := c.Recover(context.Background(), w.bob.token(t), env)
	require.NoError(t, err)
	assert.True(t, got.Equal(want))
	got.Destroy()
}

// refusal is one check of the recover endpoint. setup returns the token and
// envelope to send; everything else is valid.
type refusal struct {
	name     string
	setup    func(t *testing.T, w *world) (string, *protector.Envelope)
	status   int
	code     string
	sentinel error
}

func x25519Env(t *testing.T, w *world, p *person) *protector.Envelope {
	env, r := p.envelope(t, w.keys[protector.HPKEX25519].Public())
	r.Destroy()
	return env
}

// rawJWT assembles a compact JWS from a header, claims and a signature
// function.
func rawJWT(t *testing.T, header map[string]any, claims map[string]any, sign func(signingInput []byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	require.NoError(t, err)
	c, err := json.Marshal(claims)
	require.NoError(t, err)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return in + "." + base64.RawURLEncoding.EncodeToString(sign([]byte(in)))
}

// flipInEnvelope parses env's bytes after changing the byte at the given
// offset from the end (or the first occurrence of find).
func tamper(t *testing.T, env *protector.Envelope, edit func([]byte)) *protector.Envelope {
	t.Helper()
	raw, err := env.MarshalBinary()
	require.NoError(t, err)
	edit(raw)
	out, err := protector.ParseEnvelope(raw)
	require.NoError(t, err, "tampered envelope must still parse, so the service must decrypt to notice")
	return out
}

func refusals() []refusal {
	return []refusal{
		{
			name: "no MFA",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				p, err := w.idp.SignIn(context.Background(), w.alice.user.UPN, w.alice.password)
				require.NoError(t, err)
				tok, err := p.TokenWithoutMFA(context.Background())
				require.NoError(t, err)
				return tok, x25519Env(t, w, w.alice)
			},
			status: 403, code: service.CodeMFARequired, sentinel: service.ErrMFARequired,
		},
		{
			name: "expired",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				tok := w.alice.token(t)
				w.clk.Advance(idp.DefaultTokenLifetime + service.DefaultSkew + time.Second)
				return tok, x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "not yet valid",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				c := w.claims(w.alice)
				c["nbf"] = w.clk.Now().Add(5 * time.Minute).Unix()
				return w.minter.sign(t, c), x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "issued in the future",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				c := w.claims(w.alice)
				c["iat"] = w.clk.Now().Add(5 * time.Minute).Unix()
				c["exp"] = w.clk.Now().Add(15 * time.Minute).Unix()
				return w.minter.sign(t, c), x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "lifetime too long",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				c := w.claims(w.alice)
				c["exp"] = w.clk.Now().Add(30 * 24 * time.Hour).Unix()
				return w.minter.sign(t, c), x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "wrong audience",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				c := w.claims(w.alice)
				c["aud"] = identity.PINResetClientAppID
				return w.minter.sign(t, c), x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "wrong issuer",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				c := w.claims(w.alice)
				c["iss"] = "https://login.evil.test/" + w.alice.user.TenantID + "/v2.0"
				return w.minter.sign(t, c), x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "issuer of another tenant",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				c := w.claims(w.alice)
				c["iss"] = w.idp.Issuer(w.other.ID)
				return w.minter.sign(t, c), x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "no jti",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				c := w.claims(w.alice)
				delete(c, "jti")
				return w.minter.sign(t, c), x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "forged signature under the IdP's kid",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				require.NoError(t, err)
				forger := &minter{kid: w.idp.SigningKeyID(), priv: k}
				return forger.sign(t, w.claims(w.alice)), x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "real token with its signature swapped",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				a := strings.Split(w.alice.token(t), ".")
				b := strings.Split(w.alice.token(t), ".")
				return a[0] + "." + a[1] + "." + b[2], x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "unknown kid",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				require.NoError(t, err)
				return (&minter{kid: "not-a-known-kid", priv: k}).sign(t, w.claims(w.alice)), x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "alg none",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				tok := rawJWT(t, map[string]any{"alg": "none", "typ": "JWT", "kid": w.idp.SigningKeyID()}, w.claims(w.alice),
					func([]byte) []byte { return nil })
				return tok, x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "HS256 keyed with the IdP's public key",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				pub := w.idp.JWKS().Keys[0].Key
				der, err := x509.MarshalPKIXPublicKey(pub)
				require.NoError(t, err)
				secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
				tok := rawJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": w.idp.SigningKeyID()}, w.claims(w.alice),
					func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) })
				return tok, x25519Env(t, w, w.alice)
			},
			status: 401, code: service.CodeInvalidToken, sentinel: service.ErrUnauthorized,
		},
		{
			name: "token of another tenant's user",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				return w.carol.token(t), x25519Env(t, w, w.alice)
			},
			status: 403, code: service.CodeBindingMismatch, sentinel: service.ErrBindingMismatch,
		},
		{
			name: "same object ID in another tenant",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				u, err := w.idp.AddUser(idp.UserConfig{TenantID: w.other.ID, UPN: "alias@" + w.other.Domain,
					Password: "correct horse alias", ObjectID: w.alice.user.ObjectID})
				require.NoError(t, err)
				twin := w.addPersonFor(t, u, "correct horse alias")
				return twin.token(t), x25519Env(t, w, w.alice)
			},
			status: 403, code: service.CodeBindingMismatch, sentinel: service.ErrBindingMismatch,
		},
		{
			name: "other user's envelope",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				return w.bob.token(t), x25519Env(t, w, w.alice)
			},
			status: 403, code: service.CodeBindingMismatch, sentinel: service.ErrBindingMismatch,
		},
		{
			name: "not onboarded: no consent to the PIN Reset Service",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				require.NoError(t, w.idp.RevokeConsent(w.tenant.ID, identity.PINResetServiceAppID))
				return w.alice.token(t), x25519Env(t, w, w.alice)
			},
			status: 403, code: service.CodeNotOnboarded, sentinel: service.ErrNotOnboarded,
		},
		{
			name: "not onboarded: no consent to the PIN Reset Client",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				require.NoError(t, w.idp.RevokeConsent(w.tenant.ID, identity.PINResetClientAppID))
				return w.alice.token(t), x25519Env(t, w, w.alice)
			},
			status: 403, code: service.CodeNotOnboarded, sentinel: service.ErrNotOnboarded,
		},
		{
			name: "Azure Government tenant",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				gov := w.addTenant(t, idp.TenantConfig{Domain: "agency.test", Cloud: identity.AzureGovernment,
					ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}})
				dave := w.addPerson(t, gov, "dave")
				return dave.token(t), x25519Env(t, w, dave)
			},
			status: 403, code: service.CodeUnavailableInCloud, sentinel: service.ErrUnavailableInCloud,
		},
		{
			name: "replayed jti",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				tok, env := w.alice.token(t), x25519Env(t, w, w.alice)
				k, err := w.client.Recover(context.Background(), tok, env)
				require.NoError(t, err, "first use must succeed")
				k.Destroy()
				return tok, env
			},
			status: 401, code: service.CodeTokenReplayed, sentinel: service.ErrReplay,
		},
		{
			name: "rate limited",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				env := x25519Env(t, w, w.alice)
				for i := range service.DefaultRateLimit().Requests {
					k, err := w.client.Recover(context.Background(), w.alice.token(t), env)
					require.NoError(t, err, "request %d within the limit", i)
					k.Destroy()
				}
				return w.alice.token(t), env
			},
			status: 429, code: service.CodeRateLimited, sentinel: service.ErrRateLimited,
		},
		{
			name: "tampered ciphertext",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				env := tamper(t, x25519Env(t, w, w.alice), func(b []byte) { b[len(b)-1] ^= 1 })
				return w.alice.token(t), env
			},
			status: 400, code: service.CodeBadEnvelope, sentinel: service.ErrBadEnvelope,
		},
		{
			name: "tampered container id",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				env := tamper(t, x25519Env(t, w, w.alice), func(b []byte) {
					i := bytes.Index(b, []byte("FA0DB076"))
					require.GreaterOrEqual(t, i, 0)
					b[i] = 'E'
				})
				return w.alice.token(t), env
			},
			status: 400, code: service.CodeBadEnvelope, sentinel: service.ErrBadEnvelope,
		},
		{
			name: "unknown service key",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				env, r := w.alice.envelope(t, w.stranger.Public())
				r.Destroy()
				return w.alice.token(t), env
			},
			status: 400, code: service.CodeUnknownKey, sentinel: protector.ErrUnknownKey,
		},
		{
			name: "retired service key",
			setup: func(t *testing.T, w *world) (string, *protector.Envelope) {
				env, r := w.alice.envelope(t, w.retired.Public())
				r.Destroy()
				return w.alice.token(t), env
			},
			status: 410, code: service.CodeKeyRetired, sentinel: service.ErrKeyRetired,
		},
	}
}

func TestRecoverRefusals(t *testing.T) {
	for _, tc := range refusals() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			tok, env := tc.setup(t, w)
			before := w.unwraps()
			key, err := w.clientForToken(tok).Recover(context.Background(), tok, env)
			require.Error(t, err)
			assert.Nil(t, key)
			var se *service.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.status, se.Status)
			assert.Equal(t, tc.code, se.Code)
			assert.ErrorIs(t, err, tc.sentinel)
			if tc.code != service.CodeBadEnvelope {
				assert.Equal(t, before, w.unwraps(), "refused before any decryption")
			}
			if tc.status == 401 {
				// The same request over raw HTTP carries a DPoP challenge.
				body, _ := requestBody(t, env)
				resp := w.post(t, http.MethodPost, service.PathRecover, "application/json", tok, body)
				assert.Equal(t, 401, resp.StatusCode)
				assert.True(t, strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `DPoP realm="hellosim-pin-reset"`))
			}
			if tc.status == 429 {
				assert.Positive(t, se.RetryAfter)
				assert.LessOrEqual(t, se.RetryAfter, time.Minute)
			}
			// Every decision is audited with its code.
			recs := w.audit.records(t)
			require.NotEmpty(t, recs)
			last := recs[len(recs)-1]
			assert.Equal(t, tc.code, last["code"])
			assert.Equal(t, "deny", last["decision"])
		})
	}
}

func TestRateLimitRefills(t *testing.T) {
	w := newWorld(t)
	env := x25519Env(t, w, w.alice)
	for range service.DefaultRateLimit().Requests {
		k, err := w.client.Recover(context.Background(), w.alice.token(t), env)
		require.NoError(t, err)
		k.Destroy()
	}
	tok := w.alice.token(t)
	_, err := w.client.Recover(context.Background(), tok, env)
	var se *service.Error
	require.ErrorAs(t, err, &se)
	require.ErrorIs(t, err, service.ErrRateLimited)
	// Bob is not affected by Alice's limit.
	k, err := w.clientFor(w.bob).Recover(context.Background(), w.bob.token(t), x25519Env(t, w, w.bob))
	require.NoError(t, err)
	k.Destroy()
	// After Retry-After, the same token works: a rate-limited request does
	// not consume its jti.
	w.clk.Advance(se.RetryAfter)
	k, err = w.client.Recover(context.Background(), tok, env)
	require.NoError(t, err)
	k.Destroy()
}

func TestRecoverHTTPRefusals(t *testing.T) {
	w := newWorld(t)
	env := x25519Env(t, w, w.alice)
	good, _ := requestBody(t, env)
	big := append(append([]byte(`{"envelope":"`), bytes.Repeat([]byte("A"), service.DefaultMaxBodyBytes)...), `","return_key":""}`...)
	tests := []struct {
		name, method, path, ct string
		noToken                bool
		body                   []byte
		status                 int
		code                   string
		allow                  string
	}{
		{name: "GET recover", method: "GET", path: service.PathRecover, status: 405, code: service.CodeMethodNotAllowed, allow: "POST"},
		{name: "PUT recover", method: "PUT", path: service.PathRecover, ct: "application/json", body: good, status: 405, code: service.CodeMethodNotAllowed, allow: "POST"},
		{name: "POST keys", method: "POST", path: service.PathKeys, ct: "application/json", body: good, status: 405, code: service.CodeMethodNotAllowed, allow: "GET, HEAD"},
		{name: "unknown path", method: "POST", path: "/v1/recover/", ct: "application/json", body: good, status: 404, code: service.CodeNotFound},
		{name: "root", method: "GET", path: "/", status: 404, code: service.CodeNotFound},
		{name: "text/plain", method: "POST", path: service.PathRecover, ct: "text/plain", body: good, status: 415, code: service.CodeUnsupportedMediaType},
		{name: "no content type", method: "POST", path: service.PathRecover, body: good, status: 415, code: service.CodeUnsupportedMediaType},
		{name: "json with odd charset", method: "POST", path: service.PathRecover, ct: "application/json; charset=latin1", body: good, status: 415, code: service.CodeUnsupportedMediaType},
		{name: "oversize body", method: "POST", path: service.PathRecover, ct: "application/json", body: big, status: 413, code: service.CodeBodyTooLarge},
		{name: "no bearer token", method: "POST", path: service.PathRecover, ct: "application/json", noToken: true, body: good, status: 401, code: service.CodeInvalidToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := ""
			if !tc.noToken {
				tok = w.alice.token(t)
			}
			resp := w.post(t, tc.method, tc.path, tc.ct, tok, tc.body)
			assert.Equal(t, tc.status, resp.StatusCode)
			code, msg := errorBody(t, resp)
			assert.Equal(t, tc.code, code)
			assert.NotEmpty(t, msg)
			assert.NotEmpty(t, resp.Header.Get("X-Request-Id"))
			assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
			if tc.allow != "" {
				assert.Equal(t, tc.allow, resp.Header.Get("Allow"))
			}
		})
	}
	t.Run("oversize chunked body", func(t *testing.T) {
		// No Content-Length: the limit must hold while reading.
		req, err := http.NewRequest("POST", w.srv.URL+service.PathRecover, struct{ *bytes.Reader }{bytes.NewReader(big)})
		require.NoError(t, err)
		req.ContentLength = -1 // unknown: sent chunked
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+w.alice.token(t))
		resp, err := w.srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, 413, resp.StatusCode)
	})
	t.Run("charset utf-8 accepted", func(t *testing.T) {
		body, rk := requestBody(t, env)
		defer rk.Destroy()
		resp := w.post(t, "POST", service.PathRecover, "application/json; charset=UTF-8", w.alice.token(t), body)
		assert.Equal(t, 200, resp.StatusCode)
	})
	t.Run("GET keys", func(t *testing.T) {
		resp := w.post(t, "GET", service.PathKeys, "", "", nil)
		require.Equal(t, 200, resp.StatusCode)
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		ks, err := protector.ParseKeySet(buf.Bytes())
		require.NoError(t, err)
		cur, err := ks.Current()
		require.NoError(t, err)
		assert.Equal(t, w.keys[protector.HPKEX25519].Public().ID(), cur.ID(), "current key first")
		assert.Len(t, ks.Keys, 3)
		_, retired := ks.Lookup(w.retired.Public().ID())
		assert.False(t, retired, "retired keys are not published")
	})
}

func TestRecoverHostileJSON(t *testing.T) {
	w := newWorld(t)
	env := x25519Env(t, w, w.alice)
	raw, err := env.MarshalBinary()
	require.NoError(t, err)
	e := base64.RawURLEncoding.EncodeToString(raw)
	rk := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	bodies := map[string]string{
		"empty":             ``,
		"null":              `null`,
		"array":             `[]`,
		"string":            `"x"`,
		"unknown field":     `{"envelope":"` + e + `","return_key":"` + rk + `","admin":true}`,
		"duplicate field":   `{"envelope":"` + e + `","envelope":"` + e + `","return_key":"` + rk + `"}`,
		"missing field":     `{"envelope":"` + e + `"}`,
		"number value":      `{"envelope":1,"return_key":"` + rk + `"}`,
		"object value":      `{"envelope":{"a":"b"},"return_key":"` + rk + `"}`,
		"trailing data":     `{"envelope":"` + e + `","return_key":"` + rk + `"}{}`,
		"trailing garbage":  `{"envelope":"` + e + `","return_key":"` + rk + `"}x`,
		"truncated":         `{"envelope":"` + e,
		"padded base64":     `{"envelope":"` + base64.URLEncoding.EncodeToString(raw) + `=","return_key":"` + rk + `"}`,
		"std base64":        `{"envelope":"` + strings.ReplaceAll(e, "-", "+") + "+/" + `","return_key":"` + rk + `"}`,
		"short return key":  `{"envelope":"` + e + `","return_key":"AAAA"}`,
		"envelope garbage":  `{"envelope":"AAAAAAAA","return_key":"` + rk + `"}`,
		"deep nesting":      `{"envelope":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`,
		"case-folded names": `{"Envelope":"` + e + `","Return_Key":"` + rk + `"}`,
		"invalid utf8":      "{\"envelope\":\"\xff\xfe\",\"return_key\":\"" + rk + "\"}",
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			resp := w.post(t, "POST", service.PathRecover, "application/json", w.alice.token(t), []byte(body))
			assert.Equal(t, 400, resp.StatusCode)
			code, _ := errorBody(t, resp)
			assert.Equal(t, service.CodeMalformedRequest, code)
		})
	}
	assert.Zero(t, w.unwraps())
}

func TestKeyRotation(t *testing.T) {
	w := newWorld(t)
	oldKey := w.keys[protector.HPKEX25519]
	newKey := cachedKey(t, "stranger")
	svc, err := service.New(service.Config{
		Verifier: mustVerifier(w.idp), Directory: w.idp, Clock: w.clk.Now,
		Keys: []protector.Unwrapper{newKey, oldKey},
	})
	require.NoError(t, err)
	c := service.NewInProcess(svc).WithDevice(w.alice.device).WithClock(w.clk.Now)
	cur, err := c.ServiceKey(context.Background())
	require.NoError(t, err)
	assert.Equal(t, newKey.Public().ID(), cur.ID(), "the new key is published first")
	for _, k := range []*protector.ServicePrivateKey{oldKey, newKey} {
		env, want := w.alice.envelope(t, k.Public())
		got, err := c.Recover(context.Background(), w.alice.token(t), env)
		require.NoError(t, err, "envelopes under both keys open")
		assert.True(t, got.Equal(want))
		got.Destroy()
	}
	// Retiring the old key turns its envelopes into 410.
	svc2, err := service.New(service.Config{
		Verifier: mustVerifier(w.idp), Directory: w.idp, Clock: w.clk.Now,
		Keys: []protector.Unwrapper{newKey}, Retired: []string{oldKey.Public().ID()},
	})
	require.NoError(t, err)
	env, _ := w.alice.envelope(t, oldKey.Public())
	_, err = service.NewInProcess(svc2).WithDevice(w.alice.device).WithClock(w.clk.Now).Recover(context.Background(), w.alice.token(t), env)
	assert.ErrorIs(t, err, service.ErrKeyRetired)
	assert.ErrorIs(t, err, protector.ErrUnknownKey)
}

func TestNewRefusesBadConfig(t *testing.T) {
	w := newWorld(t)
	k := w.keys[protector.HPKEX25519]
	for name, cfg := range map[string]service.Config{
		"no verifier":        {Directory: w.idp, Keys: []protector.Unwrapper{k}},
		"no tenants":         {Verifier: mustVerifier(w.idp), Keys: []protector.Unwrapper{k}},
		"no keys":            {Verifier: mustVerifier(w.idp), Directory: w.idp},
		"duplicate key":      {Verifier: mustVerifier(w.idp), Directory: w.idp, Keys: []protector.Unwrapper{k, k}},
		"served and retired": {Verifier: mustVerifier(w.idp), Directory: w.idp, Keys: []protector.Unwrapper{k}, Retired: []string{k.Public().ID()}},
		"nil key":            {Verifier: mustVerifier(w.idp), Directory: w.idp, Keys: []protector.Unwrapper{nil}},
	} {
		_, err := service.New(cfg)
		assert.Error(t, err, name)
	}
	// A bad field is named for what it is.
	base := service.Config{Verifier: mustVerifier(w.idp), Directory: w.idp, Keys: []protector.Unwrapper{k}}
	for field, edit := range map[string]func(*service.Config){
		"MFAMaxAge":   func(c *service.Config) { c.MFAMaxAge = -time.Second },
		"ProofMaxAge": func(c *service.Config) { c.ProofMaxAge = -time.Second },
		"ReplaySkew":  func(c *service.Config) { c.ReplaySkew = -time.Second },
		"PublicURL":   func(c *service.Config) { c.PublicURL = "ftp://pinreset.example" },
	} {
		cfg := base
		edit(&cfg)
		_, err := service.New(cfg)
		var ce *service.ConfigError
		if assert.ErrorAs(t, err, &ce, field) {
			assert.Equal(t, field, ce.Field)
		}
		assert.ErrorIs(t, err, service.ErrInvalidServiceConfig, field)
	}
}

func TestConcurrentReplayAdmitsOne(t *testing.T) {
	w := newWorld(t, func(c *service.Config) { c.RateLimit = service.RateLimit{Unlimited: true} })
	tok, env := w.alice.token(t), x25519Env(t, w, w.alice)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			k, err := w.client.Recover(context.Background(), tok, env)
			if err == nil {
				k.Destroy()
			}
			errs <- err
		}()
	}
	ok, replayed := 0, 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case errors.Is(err, service.ErrReplay):
			replayed++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	assert.Equal(t, 1, ok)
	assert.Equal(t, n-1, replayed)
}

func TestRetryAfterHeader(t *testing.T) {
	w := newWorld(t)
	env := x25519Env(t, w, w.alice)
	for range service.DefaultRateLimit().Requests {
		body, _ := requestBody(t, env)
		resp := w.post(t, "POST", service.PathRecover, "application/json", w.alice.token(t), body)
		require.Equal(t, 200, resp.StatusCode)
	}
	body, _ := requestBody(t, env)
	resp := w.post(t, "POST", service.PathRecover, "application/json", w.alice.token(t), body)
	require.Equal(t, 429, resp.StatusCode)
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	require.NoError(t, err)
	assert.Equal(t, 12, secs, "5 per minute refills one every 12 s")
}

// nilVerifier is a broken TokenVerifier: no claims, no error.
type nilVerifier struct{}

func (nilVerifier) Verify(context.Context, string) (*service.Claims, error) { return nil, nil }

func TestBrokenVerifierIsUnauthorized(t *testing.T) {
	w := newWorld(t)
	svc, err := service.New(service.Config{Verifier: nilVerifier{}, Directory: w.idp, Keys: []protector.Unwrapper{w.keys[protector.HPKEX25519]}})
	require.NoError(t, err)
	_, err = service.NewInProcess(svc).WithDevice(w.alice.device).WithClock(w.clk.Now).Recover(context.Background(), w.alice.token(t), x25519Env(t, w, w.alice))
	assert.ErrorIs(t, err, service.ErrUnauthorized)
}
