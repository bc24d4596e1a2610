// Package accesstoken verifies the ES256 JWT access tokens of the simulated
// identity provider, as a relying party verifies Azure AD tokens. The PIN
// reset service (its JWTVerifier) and the identity provider (when a token
// authorises a key registration) both verify with it, so the two never
// disagree about which token is valid and neither imports the other.
package accesstoken

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/hellosim/hellosim/reset/identity"
)

// Defaults.
const (
	// DefaultSkew is the clock skew tolerated on exp, nbf and iat.
	DefaultSkew = time.Minute
	// DefaultMaxLifetime bounds exp-iat.
	DefaultMaxLifetime = 2 * time.Hour
	// MaxTokenBytes bounds the compact serialization Verify will parse.
	MaxTokenBytes = 8 << 10
)

// Config says which tokens Verify accepts. Keys, Issuer and Audience are
// required; zero Clock, Skew and MaxLifetime take the defaults.
type Config struct {
	Keys        func() *jose.JSONWebKeySet
	Issuer      string // may contain "{tid}"
	Audience    string
	Clock       func() time.Time
	Skew        time.Duration
	MaxLifetime time.Duration
}

// Claims are a verified token's claims.
type Claims struct {
	Issuer    string
	Audience  []string
	TenantID  string
	ObjectID  string
	UPN       string
	AMR       []string
	IssuedAt  time.Time
	NotBefore time.Time
	Expiry    time.Time
	JTI       string
	// AZP is the client application the token was issued to: azp (v2
	// tokens), or appid (v1) when azp is absent.
	AZP string
	// AuthTime is when the user last authenticated interactively (the MFA,
	// for a token with "mfa" in amr); zero when the token has no auth_time.
	AuthTime time.Time
	// DeviceID is the device object the sign-in was bound to (deviceid).
	DeviceID string
	// JKT is cnf.jkt: the thumbprint of the key the token is bound to
	// (RFC 9449 §6.1); "" for a bearer token.
	JKT string
}

// RefusedError is a token Verify refused; Reason says why in a few words
// that reveal nothing of the token.
type RefusedError struct{ Reason string }

// Error returns the reason.
func (e *RefusedError) Error() string { return e.Reason }

func refuse(reason string) error { return &RefusedError{Reason: reason} }

// WithDefaults fills the zero optional fields of c.
func (c Config) WithDefaults() Config {
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Skew <= 0 {
		c.Skew = DefaultSkew
	}
	if c.MaxLifetime <= 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	return c
}

// accessClaims is the JSON shape of the claims Verify reads.
type accessClaims struct {
	jwt.Claims
	TenantID string   `json:"tid"`
	ObjectID string   `json:"oid"`
	UPN      string   `json:"upn"`
	AMR      []string `json:"amr"`
	AZP      string   `json:"azp"`
	AppID    string   `json:"appid"`
	AuthTime *int64   `json:"auth_time"`
	DeviceID string   `json:"deviceid"`
	CNF      *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// Verify checks token under c (which WithDefaults has filled): the
// signature first (only ES256, only a P-256 public key named by kid — so no
// "alg":"none" and no HMAC confusion), then iss, aud, exp, nbf and iat with
// the skew, and the presence of tid, oid and jti. A refusal is a
// *RefusedError; a done ctx returns its error.
func (c Config) Verify(ctx context.Context, token string) (*Claims, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if token == "" {
		return nil, refuse("empty")
	}
	if len(token) > MaxTokenBytes {
		return nil, refuse("too large")
	}
	// Only ES256 is accepted: ParseSigned refuses any other "alg", among
	// them "none" and "HS256".
	tok, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, refuse("malformed or algorithm not allowed")
	}
	if len(tok.Signatures) != 1 {
		return nil, refuse("not a single signature")
	}
	h := tok.Signatures[0].Header
	if h.KeyID == "" {
		return nil, refuse("no key id")
	}
	if h.JSONWebKey != nil {
		// A key embedded in the header is the attacker's choice; never use it.
		return nil, refuse("embedded key not allowed")
	}
	pub, err := c.key(h.KeyID)
	if err != nil {
		return nil, err
	}
	payload, err := tok.Verify(pub)
	switch {
	case errors.Is(err, jose.ErrUnsupportedCriticalHeader):
		// Refused for the header it marks critical, before its signature
		// is checked: say so, not "bad signature".
		return nil, refuse("unsupported critical header")
	case err != nil:
		return nil, refuse("bad signature")
	}
	// Validly signed from here: a claim that does not decode is the
	// issuer's malformed token, not a forgery, and is reported so.
	var ac accessClaims
	if err := json.Unmarshal(payload, &ac); err != nil {
		return nil, refuse("malformed claims")
	}
	now := c.Clock()
	skew := c.Skew
	switch {
	case ac.TenantID == "" || ac.ObjectID == "":
		return nil, refuse("no tenant or object id")
	case !isGUID(ac.TenantID) || !isGUID(ac.ObjectID):
		return nil, refuse("tenant or object id is not a GUID")
	case ac.Issuer != strings.ReplaceAll(c.Issuer, "{tid}", ac.TenantID):
		return nil, refuse("wrong issuer")
	case !slices.Contains([]string(ac.Audience), c.Audience):
		return nil, refuse("wrong audience")
	case ac.Expiry == nil:
		return nil, refuse("no expiry")
	case ac.IssuedAt == nil:
		return nil, refuse("no issued-at")
	case ac.ID == "":
		return nil, refuse("no jti")
	}
	exp, iat := ac.Expiry.Time().UTC(), ac.IssuedAt.Time().UTC()
	nbf := iat
	if ac.NotBefore != nil {
		nbf = ac.NotBefore.Time().UTC()
	}
	switch {
	case !now.Before(exp.Add(skew)):
		return nil, refuse("expired")
	case now.Add(skew).Before(nbf):
		return nil, refuse("not yet valid")
	case now.Add(skew).Before(iat):
		return nil, refuse("issued in the future")
	case exp.Sub(iat) > c.MaxLifetime || exp.Before(iat):
		return nil, refuse("lifetime out of bounds")
	}
	out := &Claims{
		Issuer:    ac.Issuer,
		Audience:  []string(ac.Audience),
		TenantID:  ac.TenantID,
		ObjectID:  ac.ObjectID,
		UPN:       ac.UPN,
		AMR:       ac.AMR,
		IssuedAt:  iat,
		NotBefore: nbf,
		Expiry:    exp,
		JTI:       ac.ID,
		AZP:       ac.AZP,
		DeviceID:  ac.DeviceID,
	}
	if out.AZP == "" {
		out.AZP = ac.AppID
	}
	if ac.AuthTime != nil {
		out.AuthTime = time.Unix(*ac.AuthTime, 0).UTC()
	}
	if ac.CNF != nil {
		out.JKT = ac.CNF.JKT
	}
	return out, nil
}

func isGUID(s string) bool {
	_, err := identity.ParseGUID(s)
	return err == nil
}

// key finds the verification key named kid: exactly one public P-256 ECDSA
// key meant for signatures with ES256.
func (c Config) key(kid string) (*ecdsa.PublicKey, error) {
	set := c.Keys()
	if set == nil {
		return nil, refuse("unknown key id")
	}
	keys := set.Key(kid)
	if len(keys) != 1 {
		return nil, refuse("unknown key id")
	}
	k := keys[0]
	if (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != string(jose.ES256)) {
		return nil, refuse("key not for ES256 signatures")
	}
	pub, ok := k.Key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, refuse("key is not a P-256 public key")
	}
	return pub, nil
}

// HasMFA reports whether the token shows multi-factor authentication.
func (c *Claims) HasMFA() bool { return slices.Contains(c.AMR, "mfa") }
