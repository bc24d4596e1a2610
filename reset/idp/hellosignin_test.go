package idp_test

import (
	"context"
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/clocktest"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/internal/idptest"
	"github.com/hellosim/hellosim/reset/keycred"
	"github.com/hellosim/hellosim/reset/resettest"
)

// helloWorld has alice's RSA login key registered from the device.
type helloWorld struct {
	*drsWorld
	key crypto.Signer
	kid string
}

func newHelloWorld(t *testing.T) *helloWorld {
	t.Helper()
	w := newDRSWorld(t, idp.TenantConfig{})
	key := idptest.RSAKey(t)
	res, err := w.client.RegisterHelloKey(context.Background(), w.drsToken(t), &key.PublicKey)
	require.NoError(t, err)
	return &helloWorld{drsWorld: w, key: key, kid: res.KID}
}

func (w *helloWorld) assertion(t *testing.T, signer crypto.Signer, nonce string, edit func(*keycred.Assertion)) string {
	t.Helper()
	now := w.clk.Now()
	a := keycred.Assertion{
		Issuer: w.alice.UPN, Audience: w.tenant.ID, Nonce: nonce, Scope: "openid aza ugs",
		IssuedAt: now, Expiry: now.Add(5 * time.Minute),
	}
	if edit != nil {
		edit(&a)
	}
	tok, err := keycred.SignAssertion(signer, a)
	require.NoError(t, err)
	return tok
}

func (w *helloWorld) nonce(t *testing.T) string {
	t.Helper()
	n, err := w.p.HelloNonce()
	require.NoError(t, err)
	return n
}

func TestHelloSignInYieldsNGCMFAToken(t *testing.T) {
	t.Parallel()
	w := newHelloWorld(t)
	w.clk.Advance(time.Hour)
	tok, err := w.p.SignInWithHelloKey(context.Background(), w.assertion(t, w.key, w.nonce(t), nil), identity.PINResetServiceAppID)
	require.NoError(t, err)
	c := payload(t, tok)
	assert.Equal(t, []any{"rsa", "mfa", "ngcmfa"}, c["amr"])
	assert.Equal(t, w.device.DeviceID, c["deviceid"])
	assert.Equal(t, idp.WindowsSignInAppID, c["azp"])
	assert.Equal(t, float64(w.clk.Now().Unix()), c["auth_time"])
	assert.Equal(t, w.alice.ObjectID, c["oid"])

	// The sign-in is the key's last logon in its msDS-KeyCredentialLink value.
	u, err := w.p.DirectoryUser(w.alice.UPN)
	require.NoError(t, err)
	kc, _, err := keycred.ParseAttributeValue(u.Keys[0].KeyCredentialLink)
	require.NoError(t, err)
	assert.Equal(t, w.clk.Now(), kc.LastLogon)
	assert.Equal(t, w.clk.Now().Add(-time.Hour), kc.Created)
}

func TestHelloSignInRefusals(t *testing.T) {
	t.Parallel()
	w := newHelloWorld(t)
	stranger := idptest.RSAKey(t)
	ctx := context.Background()
	sign := func(a string) error {
		_, err := w.p.SignInWithHelloKey(ctx, a, idp.DRSResource)
		return err
	}

	t.Run("wrong key: not registered", func(t *testing.T) {
		err := sign(w.assertion(t, stranger, w.nonce(t), nil))
		assert.ErrorIs(t, err, idp.ErrAssertionRefused)
		assert.ErrorIs(t, err, idp.ErrKeyNotFound)
	})
	t.Run("wrong key: the registered kid, another key's signature", func(t *testing.T) {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: stranger},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", w.kid).WithHeader("use", "ngc"))
		require.NoError(t, err)
		now := w.clk.Now()
		tok, err := jwt.Signed(signer).Claims(map[string]any{
			"iss": w.alice.UPN, "aud": w.tenant.ID, "request_nonce": w.nonce(t),
			"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		}).Serialize()
		require.NoError(t, err)
		assert.ErrorIs(t, sign(tok), idp.ErrAssertionRefused)
	})
	t.Run("stale nonce", func(t *testing.T) {
		n := w.nonce(t)
		w.clk.Advance(idp.HelloNonceLifetime + time.Second)
		assert.ErrorIs(t, sign(w.assertion(t, w.key, n, nil)), idp.ErrNonceExpired)
	})
	t.Run("replay", func(t *testing.T) {
		a := w.assertion(t, w.key, w.nonce(t), nil)
		require.NoError(t, sign(a))
		assert.ErrorIs(t, sign(a), idp.ErrNonceUnknown)
	})
	t.Run("nonce never issued", func(t *testing.T) {
		assert.ErrorIs(t, sign(w.assertion(t, w.key, "made-up", nil)), idp.ErrNonceUnknown)
	})
	for name, edit := range map[string]func(*keycred.Assertion){
		"another user":   func(a *keycred.Assertion) { a.Issuer = "bob@contoso.test" },
		"another tenant": func(a *keycred.Assertion) { a.Audience = "00000000-0000-4000-8000-000000000001" },
		"expired": func(a *keycred.Assertion) {
			a.IssuedAt, a.Expiry = a.IssuedAt.Add(-time.Hour), a.IssuedAt.Add(-2*time.Minute)
		},
		"issued in the future": func(a *keycred.Assertion) {
			a.IssuedAt = a.IssuedAt.Add(time.Hour)
			a.Expiry = a.IssuedAt.Add(time.Minute)
		},
		"valid for a day": func(a *keycred.Assertion) { a.Expiry = a.IssuedAt.Add(24 * time.Hour) },
	} {
		t.Run(name, func(t *testing.T) {
			n := w.nonce(t)
			assert.ErrorIs(t, sign(w.assertion(t, w.key, n, edit)), idp.ErrAssertionRefused)
			// A refused assertion does not spend the nonce.
			require.NoError(t, sign(w.assertion(t, w.key, n, nil)))
		})
	}
	t.Run("not an assertion", func(t *testing.T) {
		assert.ErrorIs(t, sign("a.b.c"), idp.ErrAssertionRefused)
		assert.ErrorIs(t, sign(strings.Repeat("a", 20<<10)), idp.ErrAssertionRefused)
	})
	t.Run("unknown resource", func(t *testing.T) {
		_, err := w.p.SignInWithHelloKey(ctx, w.assertion(t, w.key, w.nonce(t), nil), "https://graph.example")
		assert.ErrorIs(t, err, idp.ErrInvalid)
	})
}

func TestOpenIDConfigurationPublishesTheKeys(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	clk := clocktest.New(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))
	p, err := idp.New(idp.WithClock(clk.Now), idp.WithArgon2(resettest.CheapArgon2()), idp.WithIssuer(srv.URL+"/{tid}/v2.0"))
	require.NoError(t, err)
	mux.Handle("/", p.OIDCHandler())
	tenant, err := p.AddTenant(idp.TenantConfig{Domain: "contoso.test"})
	require.NoError(t, err)
	alice, err := p.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: "alice@contoso.test", Password: alicePW})
	require.NoError(t, err)
	pending, err := p.SignIn(context.Background(), alice.UPN, alicePW)
	require.NoError(t, err)
	code, err := p.TOTPCode(alice.UPN)
	require.NoError(t, err)
	tok, err := pending.CompleteMFA(context.Background(), code)
	require.NoError(t, err)
	hc := srv.Client()
	get := func(u string, v any) {
		resp, err := hc.Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, u)
		require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	}

	// Discovery as an OIDC library does it: issuer + well-known path.
	iss := payload(t, tok)["iss"].(string)
	var meta struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
		Token   string   `json:"token_endpoint"`
	}
	get(iss+"/.well-known/openid-configuration", &meta)
	assert.Equal(t, iss, meta.Issuer)
	assert.Equal(t, []string{"ES256"}, meta.Algs)
	var set jose.JSONWebKeySet
	get(meta.JWKSURI, &set)
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	keys := set.Key(parsed.Headers[0].KeyID)
	require.Len(t, keys, 1)
	var claims jwt.Claims
	require.NoError(t, parsed.Claims(keys[0].Key, &claims), "the published key verifies the token")

	var common struct {
		Issuer string `json:"issuer"`
	}
	get(srv.URL+"/.well-known/openid-configuration", &common)
	assert.Equal(t, srv.URL+"/{tenantid}/v2.0", common.Issuer)

	resp, err := hc.Get(srv.URL + "/00000000-0000-4000-8000-000000000009/v2.0/.well-known/openid-configuration")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "unknown tenant")

	// The token endpoint hands out a sign-in nonce.
	resp, err = hc.PostForm(meta.Token, url.Values{"grant_type": {"srv_challenge"}})
	require.NoError(t, err)
	defer resp.Body.Close()
	var nonce map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&nonce))
	assert.NotEmpty(t, nonce["Nonce"])
}

func TestHelloSignInOverTheTokenEndpoint(t *testing.T) {
	t.Parallel()
	w := newHelloWorld(t)
	srv := httptest.NewServer(w.p.OIDCHandler())
	defer srv.Close()
	endpoint := srv.URL + "/" + w.tenant.ID + "/oauth2/v2.0/token"
	resp, err := http.PostForm(endpoint, url.Values{"grant_type": {"srv_challenge"}})
	require.NoError(t, err)
	var n map[string]string
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&n))
	resp.Body.Close()

	form := url.Values{
		"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"},
		"assertion":  {w.assertion(t, w.key, n["Nonce"], nil)},
		"resource":   {idp.DRSResource},
	}
	resp, err = http.PostForm(endpoint, form)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, out)
	assert.Equal(t, []any{"rsa", "mfa", "ngcmfa"}, payload(t, out["access_token"].(string))["amr"])

	resp, err = http.PostForm(endpoint, form) // replayed
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "invalid_grant", out["error"])
}

func TestHelloNoncesAreBounded(t *testing.T) {
	t.Parallel()
	w := newHelloWorld(t)
	for range idp.MaxOutstandingNonces {
		_, err := w.p.HelloNonce()
		require.NoError(t, err)
	}
	_, err := w.p.HelloNonce()
	assert.ErrorIs(t, err, idp.ErrTooManyNonces)
	// Expired ones make room again.
	w.clk.Advance(idp.HelloNonceLifetime + time.Second)
	_, err = w.p.HelloNonce()
	assert.NoError(t, err)
}
