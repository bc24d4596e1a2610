package web_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/hellosim/hellosim/reset/identity"
)

const pinResetScope = "https://cred.microsoft.com/.default"

// oauthConfig is the PIN Reset Client as a native app: the tenant's v2
// endpoints, a loopback redirect URI.
func (w *world) oauthConfig() *oauth2.Config {
	return &oauth2.Config{
		ClientID: identity.PINResetClientAppID,
		Endpoint: oauth2.Endpoint{
			AuthURL:       w.tenantURL("/oauth2/v2.0/authorize"),
			TokenURL:      w.tenantURL("/oauth2/v2.0/token"),
			DeviceAuthURL: w.tenantURL("/oauth2/v2.0/devicecode"),
			AuthStyle:     oauth2.AuthStyleInParams,
		},
		RedirectURL: loopback,
		Scopes:      []string{"openid", "offline_access", pinResetScope},
	}
}

// callback is the client's side of the redirect: the state must be the
// one it sent (RFC 6749 §10.12), or the code is someone else's.
func callback(u *url.URL, wantState string) (string, error) {
	q := u.Query()
	if q.Get("state") != wantState {
		return "", errors.New("state mismatch: the callback is not an answer to our request")
	}
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
	}
	return q.Get("code"), nil
}

func retrieveCode(t *testing.T, err error) string {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("want an OAuth error, got %v", err)
	}
	return re.ErrorCode
}

// golang.org/x/oauth2 against the directory over TLS: authorization code
// with PKCE S256 through the sign-in pages, the exchange with the
// verifier (DPoP-bound to the device), refresh with rotation, and reuse
// of a spent refresh token revoking the family. Each token is one the PIN
// reset service accepts.
func TestXOAuth2AuthCodePKCEAndRefresh(t *testing.T) {
	w := newWorld(t)
	w.onboard()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, w.deviceClient())
	conf := w.oauthConfig()
	verifier := oauth2.GenerateVerifier()
	state := oauth2.GenerateVerifier()[:24]
	cb := w.agent().authorize(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), userUPN)
	if cb.Host != "127.0.0.1:53123" || cb.Path != "/callback" {
		t.Fatalf("redirected to %s", cb)
	}

	// State tampering is the client's to catch: a callback whose state
	// is not ours is refused before the code is used.
	tampered := *cb
	q := tampered.Query()
	q.Set("state", "attacker-state")
	tampered.RawQuery = q.Encode()
	if _, err := callback(&tampered, state); err == nil {
		t.Fatal("a tampered state passed the client's check")
	}
	code, err := callback(cb, state)
	if err != nil {
		t.Fatal(err)
	}

	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" || tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Fatalf("token type %q, refresh %t, id token %v", tok.TokenType, tok.RefreshToken != "", tok.Extra("id_token") != nil)
	}
	w.serviceAccepts(tok.AccessToken)

	// Refresh: a new access token and a new refresh token.
	tok2, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
		t.Fatal("the refresh token was not rotated")
	}
	w.serviceAccepts(tok2.AccessToken)

	// The spent refresh token again: refused, and the family with it.
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if c := retrieveCode(t, err); c != "invalid_grant" {
		t.Fatalf("reused refresh token: %s", c)
	}
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
	if c := retrieveCode(t, err); c != "invalid_grant" {
		t.Fatalf("refresh token of a revoked family: %s", c)
	}
}

// coreos/go-oidc: discovery from the issuer finds every endpoint, grant
// and PKCE method; the ID token verifies with IDTokenVerifier against the
// published keys and carries the nonce; the access token is one the PIN
// reset service accepts.
func TestGoOIDCDiscoveryAndIDToken(t *testing.T) {
	w := newWorld(t)
	w.onboard()
	ctx := oidc.ClientContext(context.Background(), w.client)
	provider, err := oidc.NewProvider(ctx, w.dir.Issuer(w.tenant.ID))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Grants   []string `json:"grant_types_supported"`
		PKCE     []string `json:"code_challenge_methods_supported"`
		Device   string   `json:"device_authorization_endpoint"`
		Token    string   `json:"token_endpoint"`
		DPoPAlgs []string `json:"dpop_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code", "srv_challenge", "urn:ietf:params:oauth:grant-type:jwt-bearer"} {
		if !slices.Contains(meta.Grants, g) {
			t.Errorf("metadata lacks grant %s", g)
		}
	}
	if !slices.Equal(meta.PKCE, []string{"S256"}) || meta.Device != w.tenantURL("/oauth2/v2.0/devicecode") ||
		meta.Token != w.dir.TokenEndpoint(w.tenant.ID) || provider.Endpoint().DeviceAuthURL != meta.Device {
		t.Fatalf("metadata: %+v", meta)
	}

	conf := &oauth2.Config{ClientID: identity.PINResetClientAppID, Endpoint: provider.Endpoint(), RedirectURL: loopback,
		Scopes: []string{oidc.ScopeOpenID, "offline_access", pinResetScope}}
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	verifier, state, nonce := oauth2.GenerateVerifier(), "st-"+oauth2.GenerateVerifier()[:10], "n-"+oauth2.GenerateVerifier()[:16]
	cb := w.agent().authorize(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), userUPN)
	code, err := callback(cb, state)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, w.deviceClient()), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: identity.PINResetClientAppID, Now: w.clock.Now}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		UPN string `json:"preferred_username"`
		TID string `json:"tid"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Nonce != nonce || idt.Subject != w.user.ObjectID || claims.UPN != userUPN || claims.TID != w.tenant.ID {
		t.Fatalf("id token: nonce %q sub %q %+v", idt.Nonce, idt.Subject, claims)
	}
	// An ID token for another client does not verify.
	if _, err := provider.Verifier(&oidc.Config{ClientID: "someone-else", Now: w.clock.Now}).Verify(ctx, raw); err == nil {
		t.Fatal("an ID token verified for another client")
	}
	w.serviceAccepts(tok.AccessToken)
}

// golang.org/x/oauth2's device flow: DeviceAuth, the user enters the code
// on /devicelogin and signs in through the pages, DeviceAccessToken polls
// and gets a token the PIN reset service accepts.
func TestXOAuth2DeviceCode(t *testing.T) {
	w := newWorld(t)
	w.onboard()
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, w.deviceClient())
	conf := w.oauthConfig()
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if da.VerificationURI != w.base+"/devicelogin" || len(da.UserCode) != 9 || da.Interval != 1 {
		t.Fatalf("device auth: %+v", da)
	}
	a := w.agent()
	a.get(da.VerificationURI)
	a.post("/devicelogin", url.Values{"code": {strings.ToLower(da.UserCode)}}, "")
	if resp := a.signIn(userUPN); resp.StatusCode != 200 || !strings.Contains(a.last, "Are you trying to sign in to Microsoft Pin Reset Client Production") {
		t.Fatalf("no confirmation page: %s", a.last)
	}
	a.post("/login/confirm", url.Values{"action": {"accept"}}, "")
	if !strings.Contains(a.last, "You have signed in") {
		t.Fatalf("device login did not finish: %s", a.last)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatal(err)
	}
	w.serviceAccepts(tok.AccessToken)
}
