package service

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Claims are the verified claims of an access token, as the identity
// provider issues them after the user signed in (and, for a PIN reset,
// completed multi-factor authentication).
type Claims struct {
	Issuer    string    // iss
	Audience  []string  // aud
	TenantID  string    // tid: the directory (tenant) ID
	ObjectID  string    // oid: the user's directory object ID
	UPN       string    // upn
	AMR       []string  // amr: authentication methods, "pwd", "mfa" (RFC 8176)
	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf (IssuedAt when the token has none)
	Expiry    time.Time // exp
	JTI       string    // jti: unique token ID, used to refuse replays
}

// HasMFA reports whether the token shows multi-factor authentication.
func (c *Claims) HasMFA() bool { return slices.Contains(c.AMR, "mfa") }

// TokenVerifier checks an access token and returns its claims. Any error
// means "unauthorized"; it should wrap ErrInvalidToken and say why in a few
// words that reveal nothing of the token. The claims must carry the token's
// Expiry and JTI: the service remembers the jti until the expiry plus
// Config.ReplaySkew, and refuses the token after that. A verifier that
// tolerates clock skew should report it (VerifierSkew).
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*Claims, error)
}

// ErrInvalidToken is what JWTVerifier's errors match: the token was refused.
var ErrInvalidToken = errors.New("invalid access token")

// TokenError says why a token was refused. It matches ErrInvalidToken.
type TokenError struct{ Reason string }

// Error says why the token was refused.
func (e *TokenError) Error() string { return "invalid access token: " + e.Reason }

// Is matches ErrInvalidToken.
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }

// Verifier defaults.
const (
	// DefaultSkew is the clock skew tolerated on exp, nbf and iat.
	DefaultSkew = time.Minute
	// DefaultMaxLifetime bounds exp-iat: a longer-lived token is refused (and
	// so the replay cache never holds an entry longer than this).
	DefaultMaxLifetime = 2 * time.Hour
	// MaxTokenBytes bounds the compact serialization the verifier will parse.
	MaxTokenBytes = 8 << 10
)

// VerifierConfig configures a JWTVerifier.
type VerifierConfig struct {
	// Keys returns the identity provider's current JSON Web Key Set (public
	// keys only). It is called on every verification, so a rotation at the
	// provider is seen at once; it must be safe for concurrent use.
	Keys func() *jose.JSONWebKeySet
	// Issuer is the expected iss. It may contain the placeholder "{tid}",
	// replaced by the token's tid before comparing, as a multi-tenant Azure AD
	// application validates "https://login.microsoftonline.com/{tid}/v2.0".
	Issuer string
	// Audience must be one of the token's aud values: for the PIN reset
	// service, its application ID.
	Audience string
	// Clock; nil means time.Now.
	Clock func() time.Time
	// Skew tolerated on time claims; 0 means DefaultSkew.
	Skew time.Duration
	// MaxLifetime bounds exp-iat; 0 means DefaultMaxLifetime.
	MaxLifetime time.Duration
}

// JWTVerifier verifies ES256-signed JWT access tokens against a JSON Web Key
// Set, as a relying party verifies Azure AD tokens: the signature first (only
// ES256, only a P-256 public key named by kid — so no "alg":"none" and no
// HMAC confusion, where a public key is abused as an HS256 secret), then
// iss, aud, exp, nbf and iat with a small skew, and the presence of tid, oid
// and jti.
type JWTVerifier struct {
	cfg VerifierConfig
}

var _ TokenVerifier = (*JWTVerifier)(nil)

// NewJWTVerifier returns a verifier for cfg.
func NewJWTVerifier(cfg VerifierConfig) (*JWTVerifier, error) {
	if cfg.Keys == nil {
		return nil, errors.New("new jwt verifier: no key source")
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("new jwt verifier: issuer and audience are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Skew <= 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.MaxLifetime <= 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	return &JWTVerifier{cfg: cfg}, nil
}

var _ VerifierSkew = (*JWTVerifier)(nil)

// Skew is the clock skew the verifier tolerates on exp, nbf and iat: it
// accepts a token until its expiry plus Skew. A Service reads it to keep a
// token's jti at least that long.
func (v *JWTVerifier) Skew() time.Duration { return v.cfg.Skew }

// accessClaims is the JSON shape of the claims the verifier reads.
type accessClaims struct {
	jwt.Claims
	TenantID string   `json:"tid"`
	ObjectID string   `json:"oid"`
	UPN      string   `json:"upn"`
	AMR      []string `json:"amr"`
}

func refuse(reason string) error { return &TokenError{Reason: reason} }

// Verify checks token and returns its claims.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*Claims, error) {
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
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, refuse("malformed or algorithm not allowed")
	}
	if len(tok.Headers) != 1 {
		return nil, refuse("not a single signature")
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return nil, refuse("no key id")
	}
	if h.JSONWebKey != nil {
		// A key embedded in the header is the attacker's choice; never use it.
		return nil, refuse("embedded key not allowed")
	}
	pub, err := v.key(h.KeyID)
	if err != nil {
		return nil, err
	}
	var c accessClaims
	if err := tok.Claims(pub, &c); err != nil {
		return nil, refuse("bad signature")
	}
	now := v.cfg.Clock()
	skew := v.cfg.Skew
	switch {
	case c.TenantID == "" || c.ObjectID == "":
		return nil, refuse("no tenant or object id")
	case !ValidGUID(c.TenantID) || !ValidGUID(c.ObjectID):
		return nil, refuse("tenant or object id is not a GUID")
	case c.Issuer != strings.ReplaceAll(v.cfg.Issuer, "{tid}", c.TenantID):
		return nil, refuse("wrong issuer")
	case !slices.Contains([]string(c.Audience), v.cfg.Audience):
		return nil, refuse("wrong audience")
	case c.Expiry == nil:
		return nil, refuse("no expiry")
	case c.IssuedAt == nil:
		return nil, refuse("no issued-at")
	case c.ID == "":
		return nil, refuse("no jti")
	}
	exp, iat := c.Expiry.Time().UTC(), c.IssuedAt.Time().UTC()
	nbf := iat
	if c.NotBefore != nil {
		nbf = c.NotBefore.Time().UTC()
	}
	switch {
	case !now.Before(exp.Add(skew)):
		return nil, refuse("expired")
	case now.Add(skew).Before(nbf):
		return nil, refuse("not yet valid")
	case now.Add(skew).Before(iat):
		return nil, refuse("issued in the future")
	case exp.Sub(iat) > v.cfg.MaxLifetime || exp.Before(iat):
		return nil, refuse("lifetime out of bounds")
	}
	return &Claims{
		Issuer:    c.Issuer,
		Audience:  []string(c.Audience),
		TenantID:  c.TenantID,
		ObjectID:  c.ObjectID,
		UPN:       c.UPN,
		AMR:       c.AMR,
		IssuedAt:  iat,
		NotBefore: nbf,
		Expiry:    exp,
		JTI:       c.ID,
	}, nil
}

// key finds the verification key named kid: exactly one public P-256 ECDSA
// key meant for signatures with ES256.
func (v *JWTVerifier) key(kid string) (*ecdsa.PublicKey, error) {
	set := v.cfg.Keys()
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

// ValidGUID reports whether s has the 8-4-4-4-12 hexadecimal form of a
// directory GUID (without braces).
func ValidGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// String names the verifier's configuration (no keys).
func (v *JWTVerifier) String() string {
	return fmt.Sprintf("JWTVerifier{iss=%q aud=%q}", v.cfg.Issuer, v.cfg.Audience)
}
