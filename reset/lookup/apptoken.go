package lookup

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// App token limits.
const (
	// MaxAppTokenLifetime bounds exp − iat of an app token: a stolen one is
	// good for minutes, as a certificate-credential assertion is at Entra
	// (which accepts at most ten minutes).
	MaxAppTokenLifetime = 10 * time.Minute
	// appTokenSkew is the clock skew tolerated on exp and iat.
	appTokenSkew = time.Minute
	// maxAppTokenBytes bounds what the Handler parses.
	maxAppTokenBytes = 4 << 10
)

// KeyID is the RFC 7638 SHA-256 thumbprint of a P-256 public key,
// base64url: the kid of the app tokens it signs, and how a Handler finds
// the key that verifies them.
func KeyID(pub *ecdsa.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("app credential thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// signAppToken signs an app token for clientID to audience, valid for
// lifetime from now.
func signAppToken(key *ecdsa.PrivateKey, clientID, audience string, now time.Time, lifetime time.Duration) (string, error) {
	kid, err := KeyID(&key.PublicKey)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("app token signer: %w", err)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("app token id: %w", err)
	}
	return jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{audience},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(lifetime)),
		ID:     base64.RawURLEncoding.EncodeToString(jti[:]),
	}).Serialize()
}

// errAppToken is every refusal of an app token; the reason stays on the
// server.
var errAppToken = errors.New("app token refused")

// verifyAppToken checks an app token against the trusted credentials
// (by kid) and returns the client ID it names.
func verifyAppToken(token string, trusted map[string]trustedApp, audience string, now time.Time) (string, error) {
	if token == "" || len(token) > maxAppTokenBytes {
		return "", errAppToken
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(tok.Headers) != 1 || tok.Headers[0].JSONWebKey != nil {
		return "", errAppToken
	}
	app, ok := trusted[tok.Headers[0].KeyID]
	if !ok {
		return "", errAppToken
	}
	var c jwt.Claims
	if err := tok.Claims(app.pub, &c); err != nil {
		return "", errAppToken
	}
	if c.Issuer != app.clientID || c.Subject != app.clientID || c.IssuedAt == nil || c.Expiry == nil {
		return "", errAppToken
	}
	if err := c.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{audience}, Time: now}, appTokenSkew); err != nil {
		return "", errAppToken
	}
	if c.Expiry.Time().Sub(c.IssuedAt.Time()) > MaxAppTokenLifetime {
		return "", errAppToken
	}
	return app.clientID, nil
}

// trustedApp is one application credential a Handler accepts.
type trustedApp struct {
	clientID string
	pub      *ecdsa.PublicKey
}

// AppCredential is an application's credential as the directory holds it:
// its client ID and the public key its app tokens verify under.
type AppCredential struct {
	ClientID  string
	PublicKey *ecdsa.PublicKey
}

func trustedSet(creds []AppCredential) (map[string]trustedApp, error) {
	m := make(map[string]trustedApp, len(creds))
	for _, c := range creds {
		if c.ClientID == "" || c.PublicKey == nil || c.PublicKey.Curve != elliptic.P256() {
			return nil, errors.New("lookup handler: an app credential needs a client ID and a P-256 public key")
		}
		kid, err := KeyID(c.PublicKey)
		if err != nil {
			return nil, err
		}
		m[kid] = trustedApp{clientID: c.ClientID, pub: c.PublicKey}
	}
	return m, nil
}
