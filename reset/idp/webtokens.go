package idp

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/hellosim/hellosim/reset/identity"
)

// What the directory's sign-in pages and OAuth endpoints (package
// reset/idp/web) ask of a sign-in beyond the in-process calls: tokens for
// any resource and client, an OpenID Connect ID token, and the device a
// DPoP key belongs to.

// TokenFor returns an access token for audience, issued to the client
// application clientID (azp), from a sign-in that completed MFA: amr
// ["pwd","mfa"], with "ngcmfa" while the MFA is within NGCMFAWindow,
// auth_time the MFA's time, and, for a sign-in bound to a device
// (BindDevice), deviceid and cnf.jkt. Like Refresh it works within
// DefaultSessionLifetime of the MFA, while the account is enabled and
// unlocked and its sessions were not revoked since.
func (s *Pending) TokenFor(ctx context.Context, audience, clientID string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if audience == "" || clientID == "" || len(audience) > 256 || len(clientID) > 256 {
		return "", fmt.Errorf("token: %w: audience or client", ErrInvalid)
	}
	s.mu.Lock()
	mfaAt, deviceID, jkt := s.mfaAt, s.deviceID, s.jkt
	s.mu.Unlock()
	p := s.p
	now := p.now()
	switch {
	case mfaAt.IsZero():
		return "", fmt.Errorf("token: %w", ErrMFANotCompleted)
	case now.Sub(mfaAt) > DefaultSessionLifetime:
		return "", fmt.Errorf("token: %w", ErrSignInExpired)
	}
	p.mu.Lock()
	u, err := p.activeUserLocked(s.upn, now)
	if err == nil && !u.revokedAt.IsZero() && !mfaAt.After(u.revokedAt) {
		err = ErrSignInExpired
	}
	if err != nil {
		p.mu.Unlock()
		return "", fmt.Errorf("token: %w", err)
	}
	snap, fed := u.snapshot(), federationHost(u.tenant)
	p.mu.Unlock()
	amr := []string{"pwd", "mfa"}
	if now.Sub(mfaAt) <= NGCMFAWindow {
		amr = append(amr, "ngcmfa")
	}
	tok, err := p.issueEntra(tokenRequest{user: snap, federation: fed, audience: audience, azp: clientID,
		amr: amr, deviceID: deviceID, authTime: mfaAt, jkt: jkt})
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return tok, nil
}

// idTokenClaims is an OpenID Connect ID token (OIDC Core §2) with Entra's
// v2 claims.
type idTokenClaims struct {
	jwt.Claims
	Nonce             string   `json:"nonce,omitempty"`
	AuthTime          int64    `json:"auth_time,omitempty"`
	TenantID          string   `json:"tid"`
	ObjectID          string   `json:"oid"`
	PreferredUsername string   `json:"preferred_username"`
	AMR               []string `json:"amr,omitempty"`
	Ver               string   `json:"ver"`
}

// IDToken signs an OpenID Connect ID token for the sign-in's user, for the
// client clientID (its aud), echoing nonce, with the sign-in's auth_time.
// It is the token a client reads to learn who signed in, never one to call
// an API with. It needs a completed MFA, as TokenFor does.
func (s *Pending) IDToken(ctx context.Context, clientID, nonce string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if clientID == "" || len(clientID) > 256 || len(nonce) > 512 {
		return "", fmt.Errorf("id token: %w: client or nonce", ErrInvalid)
	}
	s.mu.Lock()
	mfaAt := s.mfaAt
	s.mu.Unlock()
	if mfaAt.IsZero() {
		return "", fmt.Errorf("id token: %w", ErrMFANotCompleted)
	}
	p := s.p
	u, err := p.LookupUser(s.upn)
	if err != nil {
		return "", fmt.Errorf("id token: %w", err)
	}
	var jti [16]byte
	if err := p.readRand(jti[:]); err != nil {
		return "", fmt.Errorf("id token: %w", err)
	}
	now := p.now()
	c := idTokenClaims{
		Claims: jwt.Claims{
			Issuer: p.Issuer(u.TenantID), Subject: u.ObjectID, Audience: jwt.Audience{clientID},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			Expiry: jwt.NewNumericDate(now.Add(p.tokenTTL)), ID: base64.RawURLEncoding.EncodeToString(jti[:]),
		},
		Nonce: nonce, AuthTime: mfaAt.Unix(), TenantID: u.TenantID, ObjectID: u.ObjectID,
		PreferredUsername: u.UPN, AMR: []string{"pwd", "mfa"}, Ver: "2.0",
	}
	p.mu.Lock()
	if len(p.signers) == 0 {
		p.mu.Unlock()
		return "", fmt.Errorf("id token: %w", errNoSigner)
	}
	signer := p.signers[0].signer
	p.mu.Unlock()
	tok, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("id token: %w", err)
	}
	return tok, nil
}

// DeviceForKey returns the ID of the enabled device of tenantID whose key
// has the RFC 7638 thumbprint jkt: the device a DPoP proof at the token
// endpoint speaks for.
func (p *IdP) DeviceForKey(tenantID, jkt string) (string, error) {
	tid := strings.ToLower(tenantID)
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, d := range p.devices {
		if d.TenantID == tid && d.jkt == jkt && jkt != "" && d.standing == identity.StandingEnabled {
			return id, nil
		}
	}
	return "", fmt.Errorf("device for key: %w", ErrDeviceNotFound)
}
