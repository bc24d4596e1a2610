// Package dpop signs and verifies DPoP proofs (RFC 9449): a JWS, typ
// "dpop+jwt", signed with ES256 by the key whose public JWK is in its
// header, over the request's method and URL, a unique jti, the time it was
// made and, when a token goes with it, the token's hash (ath). The PIN reset
// client signs with the device's TPM-bound key; the identity provider
// (binding a sign-in to the device) and the PIN reset service (releasing a
// protector) verify, so both read proofs with this one parser.
package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"
)

// Type is the JOSE typ of a proof (RFC 9449 §4.2).
const Type = "dpop+jwt"

// MaxProofBytes bounds the compact serialization Parse reads.
const MaxProofBytes = 4 << 10

// Claims are a proof's claims. ATH and RKH are empty when the request has no
// token or no return key.
type Claims struct {
	HTM string `json:"htm"`           // HTTP method
	HTU string `json:"htu"`           // target URI, no query or fragment
	IAT int64  `json:"iat"`           // seconds since the epoch
	JTI string `json:"jti"`           // unique per proof
	ATH string `json:"ath,omitempty"` // base64url SHA-256 of the access token
	// RKH is base64url SHA-256 of the one-time return key the protector is
	// to be sealed to: it ties the return key to the device's signature, so
	// a proxy cannot swap it.
	RKH string `json:"rkh,omitempty"`
}

// Proof is a parsed proof whose signature verified under its own header key.
// Nothing else is checked yet: the caller compares it with the request
// (Check).
type Proof struct {
	Claims
	// JKT is the RFC 7638 SHA-256 thumbprint of the header key, base64url:
	// what a bound token's cnf.jkt must equal.
	JKT string
}

// ProofError is a proof Parse or Check refused; Reason says why.
type ProofError struct{ Reason string }

func (e *ProofError) Error() string { return "dpop proof refused: " + e.Reason }

func refuse(r string) error { return &ProofError{Reason: r} }

// Hash is base64url(SHA-256(b)): the form of ath and rkh.
func Hash(b []byte) string {
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a P-256 public key,
// base64url: the value of cnf.jkt (RFC 9449 §6.1).
func Thumbprint(pub crypto.PublicKey) (string, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return "", errors.New("dpop: key is not a P-256 public key")
	}
	tp, err := (&jose.JSONWebKey{Key: k}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// Sign makes a proof with signer, a P-256 key (a TPM key through its
// crypto.Signer, whose ASN.1 signatures go-jose's cryptosigner turns into
// JWS form).
func Sign(signer crypto.Signer, c Claims) (string, error) {
	if _, err := Thumbprint(signer.Public()); err != nil {
		return "", err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cryptosigner.Opaque(signer)},
		(&jose.SignerOptions{EmbedJWK: true}).WithType(Type))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// Parse verifies proof's signature with the public key in its header and
// returns its claims: only ES256, typ dpop+jwt, a public P-256 JWK, one
// signature, no other key reference, and htm, htu, iat and jti present.
func Parse(proof string) (*Proof, error) {
	if proof == "" {
		return nil, refuse("empty")
	}
	if len(proof) > MaxProofBytes {
		return nil, refuse("too large")
	}
	if strings.Count(proof, ".") != 2 {
		return nil, refuse("not a compact JWS")
	}
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, refuse("malformed or algorithm not allowed")
	}
	if len(jws.Signatures) != 1 {
		return nil, refuse("not a single signature")
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != Type {
		return nil, refuse("typ is not " + Type)
	}
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() || !h.JSONWebKey.Valid() {
		return nil, refuse("no public jwk in the header")
	}
	if h.KeyID != "" {
		return nil, refuse("key reference other than jwk")
	}
	pub, ok := h.JSONWebKey.Key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, refuse("jwk is not a P-256 key")
	}
	payload, err := jws.Verify(pub)
	switch {
	case errors.Is(err, jose.ErrUnsupportedCriticalHeader):
		// Refused for the header it marks critical, before its signature
		// is checked: say so, not "bad signature".
		return nil, refuse("unsupported critical header")
	case err != nil:
		return nil, refuse("bad signature")
	}
	// From here the proof is validly signed: what is wrong is its claims.
	var c Claims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	if err := dec.Decode(&c); err != nil || dec.More() {
		return nil, refuse("malformed claims")
	}
	if c.HTM == "" || c.HTU == "" || c.IAT == 0 || c.JTI == "" {
		return nil, refuse("missing htm, htu, iat or jti")
	}
	if len(c.JTI) > 256 {
		return nil, refuse("jti too long")
	}
	jkt, err := Thumbprint(pub)
	if err != nil {
		return nil, refuse("jwk thumbprint")
	}
	return &Proof{Claims: c, JKT: jkt}, nil
}

// Expect is what a request's proof must say.
type Expect struct {
	HTM, HTU string
	ATH      string // "" when no token goes with the request
	RKH      string // "" when the request carries no return key
	JKT      string // the bound token's cnf.jkt; "" checks no key
	Now      time.Time
	// MaxAge bounds how old iat may be, and Skew how far in the future.
	MaxAge, Skew time.Duration
}

// Check compares p with e and returns a *ProofError naming the first
// difference.
func (p *Proof) Check(e Expect) error {
	iat := time.Unix(p.IAT, 0)
	switch {
	case p.HTM != e.HTM:
		return refuse("htm does not match the request")
	case p.HTU != e.HTU:
		return refuse("htu does not match the request")
	case e.Now.Add(e.Skew).Before(iat):
		return refuse("issued in the future")
	case iat.Add(e.MaxAge).Before(e.Now):
		return refuse("too old")
	case p.ATH != e.ATH:
		return refuse("ath does not match the access token")
	case p.RKH != e.RKH:
		return refuse("rkh does not match the return key")
	case e.JKT != "" && p.JKT != e.JKT:
		return refuse("key is not the one the token is bound to")
	}
	return nil
}
