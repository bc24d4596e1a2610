package idp

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/keycred"
	"github.com/hellosim/hellosim/tpm"
)

// RegisteredKey is a Windows Hello public key recorded in the directory.
type RegisteredKey struct {
	KeyID        string // the container's NgcKeyId; the kid for keys registered through the DRS endpoint
	TenantID     string
	ObjectID     string
	Public       crypto.PublicKey
	RegisteredAt time.Time

	// KID is the directory's name for the key: base64 of SHA-256 of its
	// BCRYPT blob (keycred.Identifier), the "kid" of registration and of
	// the Hello sign-in assertion.
	KID string
	// DeviceID is the device object the key was registered from; "" when
	// the registration was not device-bound.
	DeviceID string
	// Attested: the registration came with a key attestation the directory
	// checked. It sets the Attestation flag of the key's
	// msDS-KeyCredentialLink value.
	Attested bool
	// WithoutMFA: the registration was authorised by a single credential;
	// it sets the MFANotUsed flag.
	WithoutMFA bool
	// LastSignIn is the last Hello sign-in with the key (zero: none yet);
	// the value's KeyApproximateLastLogonTimeStamp.
	LastSignIn time.Time
}

// RegisterKey records a user's new Windows Hello public key, authorised by
// an access token with MFA for that user (it implements reset.Directory, the
// step of a destructive reset that enrols the new login key). The token is
// verified as the PIN reset service verifies it. RSA keys of 2048 bits or
// more and ECDSA P-256 keys are accepted. Registering the same key again
// under the same ID is a no-op; a different key under a taken ID is refused.
//
// A token registers at most one key: its jti is remembered until the
// verifier would refuse the token anyway (its expiry plus the verifier's
// skew), and the token is refused for any other key ID (ErrTokenUsed), so a
// token caught in flight cannot enrol an attacker's key beside the user's.
// Repeating the same registration with the same token (a retry after a lost
// answer) stays a no-op.
func (p *IdP) RegisterKey(ctx context.Context, token, keyID string, pub crypto.PublicKey) error {
	return p.registerKey(ctx, token, keyID, pub, nil)
}

// registerKey is RegisterKey, with the key's attestation when c is not nil.
func (p *IdP) registerKey(ctx context.Context, token, keyID string, pub crypto.PublicKey, c *tpm.KeyCertification) error {
	claims, err := p.verifier.Verify(ctx, token)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("register key: %w", ctx.Err())
		}
		return fmt.Errorf("register key: %w: %w", ErrTokenRefused, err)
	}
	if !claims.HasMFA() {
		return fmt.Errorf("register key: %w", ErrTokenWithoutMFA)
	}
	if keyID == "" || len(keyID) > 128 || strings.ContainsFunc(keyID, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return fmt.Errorf("register key: %w: key id", ErrInvalid)
	}
	if err := checkHelloKey(pub); err != nil {
		return fmt.Errorf("register key: %w", err)
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[strings.ToLower(claims.UPN)]
	if !ok || u.ObjectID != strings.ToLower(claims.ObjectID) || u.TenantID != strings.ToLower(claims.TenantID) {
		return fmt.Errorf("register key: %w", ErrUnknownUser)
	}
	if u.Disabled {
		return fmt.Errorf("register key: %w", ErrDisabled)
	}
	attested, err := p.checkAttestation(u, keyID, pub, c)
	if err != nil {
		return fmt.Errorf("register key %s: %w", keyID, err)
	}
	use := claims.Issuer + "\x00" + claims.JTI
	if prev, used := p.tokenUses[use]; used && now.Before(prev.until) && prev.keyID != keyID {
		return fmt.Errorf("register key %s: %w (%w)", keyID, ErrTokenUsed, ErrTokenRefused)
	}
	if old, taken := p.regKeys[keyID]; taken {
		if old.ObjectID == u.ObjectID && old.TenantID == u.TenantID && samePublicKey(old.Public, pub) {
			p.recordTokenUse(use, keyID, claims.Expiry, now)
			return nil
		}
		return fmt.Errorf("register key %s: %w", keyID, ErrExists)
	}
	kid, err := keycred.PublicKeyIdentifier(pub)
	if err != nil {
		return fmt.Errorf("register key: %w: %w", ErrUnsupportedKey, err)
	}
	p.regKeys[keyID] = &RegisteredKey{KeyID: keyID, TenantID: u.TenantID, ObjectID: u.ObjectID, Public: pub, RegisteredAt: now, KID: kid, Attested: attested}
	p.recordTokenUse(use, keyID, claims.Expiry, now)
	return nil
}

// tokenUse is a token's registration: the key it registered, and until when
// the token could still verify.
type tokenUse struct {
	keyID string
	until time.Time
}

// recordTokenUse remembers that the token use registered keyID (or, for a
// device proof, that it bound a sign-in), until the verifier would refuse
// it (exp plus its skew), and forgets the uses that have expired. The
// caller holds p.mu.
func (p *IdP) recordTokenUse(use, keyID string, exp, now time.Time) {
	if len(p.tokenUses) >= p.nextUseGC {
		for k, u := range p.tokenUses {
			if !now.Before(u.until) {
				delete(p.tokenUses, k)
			}
		}
		p.nextUseGC = max(minUseGC, 2*len(p.tokenUses))
	}
	p.tokenUses[use] = tokenUse{keyID: keyID, until: exp.Add(p.verifier.Skew)}
}

// minUseGC is the number of remembered token uses below which expired ones
// are not swept.
const minUseGC = 1024

// checkHelloKey accepts the key types Windows Hello for Business uses.
func checkHelloKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < 2048 {
			return fmt.Errorf("%w: rsa key under 2048 bits", ErrUnsupportedKey)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("%w: ecdsa key not on P-256", ErrUnsupportedKey)
		}
		if _, err := k.ECDH(); err != nil {
			return fmt.Errorf("%w: ecdsa point invalid", ErrUnsupportedKey)
		}
	default:
		return fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
	}
	return nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	x, err1 := x509.MarshalPKIXPublicKey(a)
	y, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// LookupKey returns the registered key with that ID.
func (p *IdP) LookupKey(keyID string) (RegisteredKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.regKeys[keyID]
	if !ok {
		return RegisteredKey{}, fmt.Errorf("lookup key: %w", ErrKeyNotFound)
	}
	return *k, nil
}

// RegisteredKeys returns the keys registered for a user, oldest first.
func (p *IdP) RegisteredKeys(upn string) ([]RegisteredKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[strings.ToLower(upn)]
	if !ok {
		return nil, fmt.Errorf("registered keys: %w", ErrUnknownUser)
	}
	var out []RegisteredKey
	for _, k := range p.regKeys {
		if k.ObjectID == u.ObjectID && k.TenantID == u.TenantID {
			out = append(out, *k)
		}
	}
	slices.SortFunc(out, func(a, b RegisteredKey) int {
		if c := a.RegisteredAt.Compare(b.RegisteredAt); c != 0 {
			return c
		}
		return strings.Compare(a.KeyID, b.KeyID)
	})
	return out, nil
}

// ErrNotHybrid is KeyUsableOnPremises's answer for a cloud-only tenant: there
// is no on-premises directory to sign in to.
var ErrNotHybrid = errors.New("idp: tenant is not hybrid")

// KeyUsableOnPremises reports whether a registered key can be used to sign
// in to on-premises Active Directory at now. In a hybrid key-trust tenant
// the public key must first be synchronised to AD (Azure AD Connect writes
// msDS-KeyCredentialLink), so the answer is false until the tenant's
// SyncDelay has passed: the WHfB documentation's reason why hybrid key trust
// cannot reset destructively above the lock screen. Certificate trust and
// cloud Kerberos trust do not wait for that synchronisation.
func (p *IdP) KeyUsableOnPremises(keyID string, now time.Time) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.regKeys[keyID]
	if !ok {
		return false, fmt.Errorf("key usable on premises: %w", ErrKeyNotFound)
	}
	t, ok := p.tenants[k.TenantID]
	if !ok {
		return false, fmt.Errorf("key usable on premises: %w", identity.ErrUnknownTenant)
	}
	if !t.Hybrid {
		return false, fmt.Errorf("key usable on premises: %w", ErrNotHybrid)
	}
	if t.TrustType != identity.KeyTrust {
		return true, nil
	}
	return !now.Before(k.RegisteredAt.Add(t.SyncDelay)), nil
}
