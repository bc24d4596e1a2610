package keycred

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
	"github.com/go-jose/go-jose/v4/jwt"
)

// The sign-in assertion is the JWT Windows sends after the PIN (or
// biometric) has unlocked the Hello login key: signed by that key, with
// "kid" = Identifier of its BCRYPT blob and "use" = "ngc" in the header,
// and in the payload the user ("iss"), the tenant ("aud"), the directory's
// nonce ("request_nonce"), a scope and iat/exp. Open-source clients that
// sign in with a Hello key (roadtx) build the same shape. Verifying it here
// is pure: it checks the form, that the header's kid names the key given,
// and the signature. Freshness, nonce and replay are the directory's
// checks, since they need its state.

// AssertionKeyUse is the "use" header value of a Hello sign-in assertion.
const AssertionKeyUse = "ngc"

var (
	// ErrAssertion: a token that is not a well-formed Hello sign-in
	// assertion (not compact JWS, wrong header, missing claims).
	ErrAssertion = errors.New("keycred: malformed sign-in assertion")
	// ErrAssertionKey: the assertion's kid does not name the key it was
	// checked against, or its algorithm does not fit that key.
	ErrAssertionKey = errors.New("keycred: sign-in assertion names another key")
	// ErrAssertionSignature: the signature does not verify.
	ErrAssertionSignature = errors.New("keycred: sign-in assertion signature invalid")
)

// Assertion is the payload of a Hello sign-in assertion.
type Assertion struct {
	Issuer   string    // "iss": the user's UPN
	Audience string    // "aud": the tenant ID
	Nonce    string    // "request_nonce": the nonce the directory handed out
	Scope    string    // "scope"
	IssuedAt time.Time // "iat"
	Expiry   time.Time // "exp"
}

type assertionClaims struct {
	Issuer   string           `json:"iss"`
	Audience string           `json:"aud"`
	IssuedAt *jwt.NumericDate `json:"iat"`
	Expiry   *jwt.NumericDate `json:"exp"`
	Nonce    string           `json:"request_nonce"`
	Scope    string           `json:"scope,omitempty"`
}

// algFor is the JWS algorithm a Hello key signs with: RS256 for RSA (as
// Windows), ES256 for this module's P-256 extension.
func algFor(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return jose.RS256, nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return jose.ES256, nil
		}
	}
	return "", fmt.Errorf("%w: %T", ErrKeyType, pub)
}

// SignAssertion signs a with signer, the unlocked Hello login key (any
// crypto.Signer: a TPM key works as well as a software one).
func SignAssertion(signer crypto.Signer, a Assertion) (string, error) {
	pub := signer.Public()
	alg, err := algFor(pub)
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	kid, err := PublicKeyIdentifier(pub)
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	if a.Issuer == "" || a.Audience == "" || a.Nonce == "" || a.IssuedAt.IsZero() || a.Expiry.IsZero() {
		return "", fmt.Errorf("sign assertion: %w: iss, aud, request_nonce, iat and exp are required", ErrAssertion)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid).WithHeader("use", AssertionKeyUse)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: cryptosigner.Opaque(signer)}, opts)
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	tok, err := jwt.Signed(s).Claims(assertionClaims{
		Issuer: a.Issuer, Audience: a.Audience, Nonce: a.Nonce, Scope: a.Scope,
		IssuedAt: jwt.NewNumericDate(a.IssuedAt), Expiry: jwt.NewNumericDate(a.Expiry),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign assertion: %w", err)
	}
	return tok, nil
}

// AssertionKeyID reads the kid from an assertion's header, unverified, so
// the directory can look up the registered key to verify it with.
func AssertionKeyID(token string) (string, error) {
	tok, err := parseAssertion(token)
	if err != nil {
		return "", err
	}
	return tok.Signatures[0].Protected.KeyID, nil
}

func parseAssertion(token string) (*jose.JSONWebSignature, error) {
	tok, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAssertion, err)
	}
	if len(tok.Signatures) != 1 {
		return nil, fmt.Errorf("%w: %d signatures", ErrAssertion, len(tok.Signatures))
	}
	h := tok.Signatures[0].Protected
	if h.KeyID == "" {
		return nil, fmt.Errorf("%w: no kid", ErrAssertion)
	}
	if use, _ := h.ExtraHeaders["use"].(string); use != AssertionKeyUse {
		return nil, fmt.Errorf("%w: use %q", ErrAssertion, h.ExtraHeaders["use"])
	}
	return tok, nil
}

// VerifyAssertion checks that token is a Hello sign-in assertion signed by
// pub: the header's kid must be pub's identifier and its algorithm the one
// pub signs with, the signature must verify, and iss, aud, request_nonce,
// iat and exp must be present. It does not judge times or the nonce.
func VerifyAssertion(token string, pub crypto.PublicKey) (*Assertion, error) {
	tok, err := parseAssertion(token)
	if err != nil {
		return nil, fmt.Errorf("verify assertion: %w", err)
	}
	alg, err := algFor(pub)
	if err != nil {
		return nil, fmt.Errorf("verify assertion: %w", err)
	}
	kid, err := PublicKeyIdentifier(pub)
	if err != nil {
		return nil, fmt.Errorf("verify assertion: %w", err)
	}
	h := tok.Signatures[0].Protected
	if h.KeyID != kid {
		return nil, fmt.Errorf("verify assertion: %w: kid %q", ErrAssertionKey, h.KeyID)
	}
	if h.Algorithm != string(alg) {
		return nil, fmt.Errorf("verify assertion: %w: %s for a %s key", ErrAssertionKey, h.Algorithm, alg)
	}
	payload, err := tok.Verify(pub)
	if err != nil {
		return nil, fmt.Errorf("verify assertion: %w", ErrAssertionSignature)
	}
	var c assertionClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("verify assertion: %w: claims: %v", ErrAssertion, err)
	}
	if c.Issuer == "" || c.Audience == "" || c.Nonce == "" || c.IssuedAt == nil || c.Expiry == nil {
		return nil, fmt.Errorf("verify assertion: %w: iss, aud, request_nonce, iat and exp are required", ErrAssertion)
	}
	return &Assertion{
		Issuer: c.Issuer, Audience: c.Audience, Nonce: c.Nonce, Scope: c.Scope,
		IssuedAt: c.IssuedAt.Time().UTC(), Expiry: c.Expiry.Time().UTC(),
	}, nil
}
