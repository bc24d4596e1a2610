package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/hellosim/hellosim/internal/accesstoken"
	"github.com/hellosim/hellosim/reset/identity"
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
	AZP       string    // azp (v2) or appid (v1): the client application
	AuthTime  time.Time // auth_time: when the user last authenticated; zero if absent
	DeviceID  string    // deviceid: the device the sign-in was bound to
	JKT       string    // cnf.jkt: thumbprint of the key the token is bound to (RFC 9449)
}

// HasMFA reports whether the token shows multi-factor authentication.
func (c *Claims) HasMFA() bool { return slices.Contains(c.AMR, "mfa") }

// TokenVerifier checks an access token and returns its claims. An error
// matching ErrUnavailable means the verifier cannot check tokens now (the
// issuer's keys cannot be fetched): the service answers 503 with
// Retry-After, audits it, and unwraps nothing. Any other error means
// "unauthorized"; it should wrap ErrInvalidToken and say why in a few
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
	DefaultSkew = accesstoken.DefaultSkew
	// DefaultMaxLifetime bounds exp-iat: a longer-lived token is refused (and
	// so the replay cache never holds an entry longer than this).
	DefaultMaxLifetime = accesstoken.DefaultMaxLifetime
	// MaxTokenBytes bounds the compact serialization the verifier will parse.
	MaxTokenBytes = accesstoken.MaxTokenBytes
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
	at  accesstoken.Config
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
	at := accesstoken.Config{
		Keys: cfg.Keys, Issuer: cfg.Issuer, Audience: cfg.Audience,
		Clock: cfg.Clock, Skew: cfg.Skew, MaxLifetime: cfg.MaxLifetime,
	}.WithDefaults()
	cfg.Clock, cfg.Skew, cfg.MaxLifetime = at.Clock, at.Skew, at.MaxLifetime
	return &JWTVerifier{cfg: cfg, at: at}, nil
}

// TokenIssuer is an identity provider as a JWTVerifier sees it: the keys it
// signs access tokens with, its issuer, and its clock. The simulated
// directory (package idp) implements it; a deployment against a real
// identity provider fills a VerifierConfig instead.
type TokenIssuer interface {
	// JWKS returns the current public signing keys. It is called on every
	// verification, so a rotation is seen at once; it must be safe for
	// concurrent use.
	JWKS() *jose.JSONWebKeySet
	// IssuerTemplate is the iss of its tokens, with "{tid}" for the tenant ID.
	IssuerTemplate() string
	// Now is the issuer's clock, which the verifier follows (a simulated
	// directory's test clock moves the verifier with it).
	Now() time.Time
}

// VerifierFor returns a JWTVerifier for the access tokens iss issues to the
// PIN reset service: iss's keys, issuer and clock, audience
// identity.PINResetServiceAppID.
func VerifierFor(iss TokenIssuer) (*JWTVerifier, error) {
	return NewJWTVerifier(VerifierConfig{
		Keys:     iss.JWKS,
		Issuer:   iss.IssuerTemplate(),
		Audience: identity.PINResetServiceAppID,
		Clock:    iss.Now,
	})
}

var _ VerifierSkew = (*JWTVerifier)(nil)

// Skew is the clock skew the verifier tolerates on exp, nbf and iat: it
// accepts a token until its expiry plus Skew. A Service reads it to keep a
// token's jti at least that long.
func (v *JWTVerifier) Skew() time.Duration { return v.cfg.Skew }

// Verify checks token and returns its claims.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (*Claims, error) {
	c, err := v.at.Verify(ctx, token)
	var refused *accesstoken.RefusedError
	if errors.As(err, &refused) {
		return nil, &TokenError{Reason: refused.Reason}
	}
	if err != nil {
		return nil, err
	}
	claims := Claims(*c)
	return &claims, nil
}

// String names the verifier's configuration (no keys).
func (v *JWTVerifier) String() string {
	return fmt.Sprintf("JWTVerifier{iss=%q aud=%q}", v.cfg.Issuer, v.cfg.Audience)
}
