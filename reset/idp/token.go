package idp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/hellosim/hellosim/reset/identity"
)

// signingKey is one of the IdP's ES256 token-signing keys.
type signingKey struct {
	kid    string
	pub    *ecdsa.PublicKey
	signer jose.Signer
}

// tokenClaims is the JSON shape of an access token.
type tokenClaims struct {
	jwt.Claims
	TenantID string   `json:"tid"`
	ObjectID string   `json:"oid"`
	UPN      string   `json:"upn"`
	AMR      []string `json:"amr"`
	AZP      string   `json:"azp"`           // the client application that asked for the token
	IDP      string   `json:"idp,omitempty"` // the federation service, for federated tenants
	Ver      string   `json:"ver"`
	// AuthTime is when the user completed the sign-in's MFA (OIDC Core
	// §2): a refreshed token carries the original time, never a newer one.
	AuthTime int64 `json:"auth_time,omitempty"`
	// DeviceID and CNF are set when the sign-in was bound to a registered
	// device (Pending.BindDevice): the device object, and cnf.jkt, the
	// thumbprint of its key (RFC 9449 §6.1), which makes the token usable
	// only with a DPoP proof signed by that key.
	DeviceID string    `json:"deviceid,omitempty"`
	CNF      *tokenCNF `json:"cnf,omitempty"`
}

// tokenCNF is the confirmation claim of a DPoP-bound token.
type tokenCNF struct {
	JKT string `json:"jkt"`
}

// grant is what a token says about the sign-in it comes from.
type grant struct {
	amr      []string
	authTime time.Time // zero: no auth_time
	deviceID string    // "" unless bound to a device
	jkt      string
}

// rotate makes a new current signing key; earlier keys stay published.
func (p *IdP) rotate() (string, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	pubJWK := jose.JSONWebKey{Key: &priv.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := pubJWK.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signing key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp) // RFC 7638 thumbprint
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("new signer: %w", err)
	}
	k := &signingKey{kid: kid, pub: &priv.PublicKey, signer: signer}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signers = append([]*signingKey{k}, p.signers...)
	p.publishLocked()
	return kid, nil
}

// publishLocked rebuilds the JWKS from the signing keys.
func (p *IdP) publishLocked() {
	set := &jose.JSONWebKeySet{}
	for _, k := range p.signers {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	p.jwks.Store(set)
}

// RotateSigningKey makes a new current token-signing key and returns its
// kid. Earlier keys stay in the JWKS, so tokens they signed still verify,
// until RetireSigningKey.
func (p *IdP) RotateSigningKey() (string, error) {
	kid, err := p.rotate()
	if err != nil {
		return "", fmt.Errorf("rotate signing key: %w", err)
	}
	return kid, nil
}

// RetireSigningKey removes a non-current signing key from the JWKS: tokens
// it signed stop verifying.
func (p *IdP) RetireSigningKey(kid string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, k := range p.signers {
		if k.kid != kid {
			continue
		}
		if i == 0 {
			return fmt.Errorf("retire signing key: %w: %s is current", ErrInvalid, kid)
		}
		p.signers = append(p.signers[:i:i], p.signers[i+1:]...)
		p.publishLocked()
		return nil
	}
	return fmt.Errorf("retire signing key %s: %w", kid, ErrKeyNotFound)
}

// SigningKeyID returns the current signing key's kid.
func (p *IdP) SigningKeyID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.signers[0].kid
}

// issue signs an access token for u to the PIN reset service, with
// Entra's claims (issueEntra), as the grant says: auth_time when the MFA is
// known, and deviceid with cnf.jkt when the sign-in was bound to a device.
func (p *IdP) issue(u User, federation string, g grant) (string, error) {
	return p.issueEntra(tokenRequest{
		user: u, federation: federation, audience: identity.PINResetServiceAppID,
		azp: identity.PINResetClientAppID, amr: g.amr,
		deviceID: g.deviceID, authTime: g.authTime, jkt: g.jkt,
	})
}

// federationHost names a federated tenant's sign-in service for the idp
// claim.
func federationHost(t *tenant) string {
	if t.FederationSignInURL == "" {
		return ""
	}
	return strings.TrimSuffix(t.FederationSignInURL, "/")
}
