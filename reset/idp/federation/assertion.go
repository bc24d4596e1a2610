// Package federation is a federated tenant's identity provider (AD FS or a
// third party) in its smallest real form: a passive sign-in page that
// authenticates a user and sends the browser back to the directory with a
// signed assertion, and the check the directory makes of that assertion.
//
// The exchange follows WS-Federation's passive profile with a JWT for the
// token. The directory sends the browser to the sign-in page with
// wa=wsignin1.0, wtrealm (the directory's identifier: the assertion's
// audience), wreply (where the answer goes) and wctx (the directory's
// context for one pending sign-in); username pre-fills the page. The page
// answers only relying parties it is configured for, and only at their
// registered reply URLs (AD FS's relying party trust). After the password
// it redirects the browser to wreply with wresult, an ES256 JWT: iss the
// service, aud the realm, upn, wctx, jti, iat and exp a short Lifetime
// apart. A redirect (a top-level GET), not a posted form, carries it, so
// the directory's SameSite=Lax flow cookie comes along and no script runs.
//
// Verify is the directory's side: the signature by the key it trusts for
// the tenant, the issuer, the audience, the lifetime (at most
// MaxLifetime, not expired, not issued in the future) and the presence of
// every claim. What Verify cannot know — that the assertion answers this
// browser's pending sign-in (wctx) and was not used before (jti) — the
// caller checks (package reset/idp/web does).
package federation

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// SignInPath is the path of the sign-in page (AD FS's passive endpoint).
const SignInPath = "/adfs/ls/"

// Lifetimes of an assertion.
const (
	// DefaultLifetime is how long an assertion is good for: long enough
	// for a redirect, short enough that a copied one is soon worthless.
	DefaultLifetime = 2 * time.Minute
	// MaxLifetime is the longest lifetime Verify accepts.
	MaxLifetime = 5 * time.Minute
	// leeway is the clock difference Verify tolerates.
	leeway = 30 * time.Second
)

// ErrRefused is Verify's answer for an assertion it does not accept; the
// error says why.
var ErrRefused = errors.New("federation: assertion refused")

// Trust is what a directory holds for a federated tenant: the service's
// identifier (the assertions' iss) and its token-signing key.
type Trust struct {
	Issuer string
	Key    crypto.PublicKey
}

// Assertion is a verified assertion.
type Assertion struct {
	UPN     string
	Context string // wctx: the relying party's pending sign-in
	ID      string // jti
	Expiry  time.Time
}

type claims struct {
	jwt.Claims
	UPN     string `json:"upn"`
	Context string `json:"wctx"`
}

// Verify checks raw, a wresult, against trust for audience at now.
func Verify(raw string, trust Trust, audience string, now time.Time) (Assertion, error) {
	refuse := func(why string) (Assertion, error) { return Assertion{}, fmt.Errorf("%w: %s", ErrRefused, why) }
	if raw == "" || len(raw) > 8<<10 {
		return refuse("no assertion")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return refuse("not a signed JWT")
	}
	var c claims
	if err := tok.Claims(trust.Key, &c); err != nil {
		return refuse("the signature is not the federation service's")
	}
	if c.Issuer != trust.Issuer {
		return refuse("issued by " + clip(c.Issuer) + ", not the tenant's federation service")
	}
	if !c.Audience.Contains(audience) {
		return refuse("meant for another audience")
	}
	if c.Expiry == nil || c.IssuedAt == nil {
		return refuse("no lifetime")
	}
	exp, iat := c.Expiry.Time(), c.IssuedAt.Time()
	switch {
	case exp.Sub(iat) > MaxLifetime:
		return refuse("its lifetime is longer than " + MaxLifetime.String())
	case now.After(exp.Add(leeway)):
		return refuse("expired")
	case iat.After(now.Add(leeway)), c.NotBefore != nil && c.NotBefore.Time().After(now.Add(leeway)):
		return refuse("not valid yet")
	case c.ID == "" || c.UPN == "" || c.Context == "":
		return refuse("a claim is missing (jti, upn or wctx)")
	}
	return Assertion{UPN: strings.ToLower(c.UPN), Context: c.Context, ID: c.ID, Expiry: exp}, nil
}

// Issue signs an assertion for upn to audience, answering wctx: what the
// sign-in page sends back after a good password.
func Issue(key crypto.Signer, issuer, audience, upn, wctx string, now time.Time, lifetime time.Duration) (string, error) {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	c := claims{Claims: jwt.Claims{
		Issuer: issuer, Audience: jwt.Audience{audience}, Subject: upn,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(lifetime)),
		ID: base64.RawURLEncoding.EncodeToString(jti),
	}, UPN: upn, Context: wctx}
	return jwt.Signed(sig).Claims(c).Serialize()
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
