package idp

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/hellosim/hellosim/reset/identity"
	"strings"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/attest"
)

// ErrAttestationRequired is an unattested key offered to a tenant that
// requires TPM key attestation.
var ErrAttestationRequired = errors.New("idp: tenant requires TPM key attestation")

// attestationState is the directory's side of TPM key attestation: per
// tenant the EK roots it trusts and whether it requires attestation, and
// the challenges handed out and not yet answered. Guarded by IdP.mu; the
// zero value is ready.
type attestationState struct {
	roots    map[string]*x509.CertPool // by tenant ID
	required map[string]bool           // by tenant ID
	pending  map[string]*attest.Pending
}

// SetKeyAttestation sets a tenant's TPM key attestation: the roots EK
// certificates must chain to (the TPM vendors' CAs), and whether keys
// registered without an attestation are refused (ErrAttestationRequired).
// A key registered with a valid attestation is recorded as attested
// (RegisteredKey.Attested), the Attestation flag of a key credential.
func (p *IdP) SetKeyAttestation(tenantID string, roots *x509.CertPool, required bool) error {
	id := strings.ToLower(tenantID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.tenants[id]; !ok {
		return fmt.Errorf("set key attestation: %w", identity.ErrUnknownTenant)
	}
	a := &p.attestation
	if a.roots == nil {
		a.roots, a.required = make(map[string]*x509.CertPool), make(map[string]bool)
	}
	a.roots[id], a.required[id] = roots, required
	return nil
}

// AttestationChallenge starts the attestation of the key the client will
// register as keyID: it checks the client's EK certificate against the
// tenant's roots and returns the credential the client's TPM must
// activate and the nonce its attestation key must certify the key with.
// The token is verified as RegisterKey verifies it. A later challenge for
// the same user and key ID replaces this one.
func (p *IdP) AttestationChallenge(ctx context.Context, token, keyID string, id tpm.AttestationIdentity) (*attest.Challenge, error) {
	claims, err := p.verifier.Verify(ctx, token)
	if err != nil {
		return nil, fmt.Errorf("attestation challenge: %w: %w", ErrTokenRefused, err)
	}
	if !claims.HasMFA() {
		return nil, fmt.Errorf("attestation challenge: %w", ErrTokenWithoutMFA)
	}
	now := p.now()
	p.mu.Lock()
	u, ok := p.users[strings.ToLower(claims.UPN)]
	if !ok || u.ObjectID != strings.ToLower(claims.ObjectID) || u.TenantID != strings.ToLower(claims.TenantID) {
		p.mu.Unlock()
		return nil, fmt.Errorf("attestation challenge: %w", ErrUnknownUser)
	}
	roots := p.attestation.roots[u.TenantID]
	p.mu.Unlock()
	if roots == nil {
		return nil, fmt.Errorf("attestation challenge: %w: the tenant trusts no TPM roots", ErrInvalid)
	}
	p.randMu.Lock()
	ch, pending, err := attest.NewChallenge(p.rand, id, roots, now)
	p.randMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("attestation challenge: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.attestation.pending == nil {
		p.attestation.pending = make(map[string]*attest.Pending)
	}
	p.attestation.pending[u.ObjectID+"\x00"+keyID] = pending
	return ch, nil
}

// RegisterAttestedKey is RegisterKey with the client's answer to
// AttestationChallenge: the key is registered only when the attestation
// verifies (attest.Verify: the AK lives with an EK chaining to the
// tenant's roots, the certified Name is the registered key's, fixedTPM,
// fixedParent and sensitiveDataOrigin set), and recorded as attested.
func (p *IdP) RegisterAttestedKey(ctx context.Context, token, keyID string, pub crypto.PublicKey, c *tpm.KeyCertification) error {
	if c == nil {
		return fmt.Errorf("register key: %w", attest.ErrNotAttested)
	}
	_, err := p.registerKey(ctx, keyRequest{op: "register key", token: token, audience: identity.PINResetServiceAppID,
		deviceBound: true, inProcess: true, keyID: keyID, pub: pub, cert: c})
	return err
}

// checkAttestation decides whether u may register pub as keyID with the
// certification c (nil: none) and whether it is attested. The caller holds
// p.mu.
func (p *IdP) checkAttestation(u *user, keyID string, pub crypto.PublicKey, c *tpm.KeyCertification) (attested bool, err error) {
	a := &p.attestation
	if c == nil {
		if a.required[u.TenantID] {
			return false, ErrAttestationRequired
		}
		return false, nil
	}
	key := u.ObjectID + "\x00" + keyID
	pending := a.pending[key]
	delete(a.pending, key) // one answer per challenge
	if pending == nil {
		return false, fmt.Errorf("%w: no challenge for this key", attest.ErrNotAttested)
	}
	if _, err := attest.Verify(pending, c, pub); err != nil {
		return false, err
	}
	return true, nil
}
