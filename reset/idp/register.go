package idp

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/keycred"
	"github.com/hellosim/hellosim/tpm"
)

// RegisteredKey is a Windows Hello public key recorded in the directory.
type RegisteredKey struct {
	KeyID        string // the container's NgcKeyId; the kid for keys registered through the DRS endpoint
	TenantID     string
	ObjectID     string
	UPN          string // the user's UPN when the key was registered
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
//
// The registration is device-bound, as RegisterHelloKey's is: the token
// must name an enabled device of the user's tenant (deviceid, from a
// sign-in bound with Pending.BindDevice) and, for a device whose key the
// directory holds, be bound to that key (cnf.jkt); otherwise
// ErrDeviceNotBound. The key is recorded as the device's, and replaces the
// keys the user had registered from that device. The call carries no DPoP
// proof: possession of the device key is proven over the wire, where
// drs.Client.WithDevice signs one for every registration.
func (p *IdP) RegisterKey(ctx context.Context, token, keyID string, pub crypto.PublicKey) error {
	_, err := p.registerKey(ctx, keyRequest{op: "register key", token: token, audience: identity.PINResetServiceAppID,
		deviceBound: true, inProcess: true, keyID: keyID, pub: pub})
	return err
}

// RegisterHelloKey registers a user's Windows Hello login key the way
// Entra's device registration service does (package drs serves it over
// HTTP): kngc is the key's BCRYPT public key blob — RSA1, as Windows sends
// it, or ECS1 for this module's P-256 login keys, an extension — and proof
// the DPoP proof that goes with a device-bound token (the zero Proof with
// a bearer token). In order it refuses: a token that does not verify for
// DRSResource (ErrTokenRefused); one without "ngcmfa" in amr
// (ErrTokenWithoutMFA); one without a "deviceid" (ErrDeviceNotBound); a
// bound token without a fresh, unused DPoP proof of its key, or a proof
// with a token that is not bound (ErrTokenRefused); a kngc that is not a BCRYPT public key blob
// of an RSA-2048-or-larger or P-256 key (ErrUnsupportedKey); an unknown or
// disabled user; a device that is not in the user's tenant, or, for a
// device whose key the directory holds, a token not bound to that key
// (ErrDeviceNotBound), so that a token caught in flight registers nothing
// without the device's TPM; a key a tenant that requires attestation has
// not seen attested (ErrAttestationRequired); a token that already
// registered another key (ErrTokenUsed); a key that is another user's
// (ErrExists). Registering the same key again is a no-op that answers the
// same. A new key from a device replaces the keys the user had registered
// from that device: one Hello container per user per device, so a
// destructive reset's new key takes the old one's place.
//
// The key's ID in the directory (RegisteredKey.KeyID and KID) is
// keycred.Identifier of the blob.
func (p *IdP) RegisterHelloKey(ctx context.Context, token string, kngc []byte, proof Proof) (RegisteredKey, error) {
	if kngc == nil {
		kngc = []byte{}
	}
	return p.registerKey(ctx, keyRequest{op: "register hello key", token: token, audience: DRSResource, ngcmfa: true,
		deviceBound: true, kngc: kngc, proof: proof})
}

// Proof is a DPoP proof (RFC 9449) presented with a device-bound token
// (cnf.jkt): signed by the device key over POST, URL and the token's hash.
type Proof struct {
	JWT string // the proof; "" with a bearer token
	URL string // what the proof must name as its htu: scheme, host and path, no query
}

// keyRequest is one key registration, whichever way it came in.
type keyRequest struct {
	op          string // the error context
	token       string
	audience    string           // the token's audience
	ngcmfa      bool             // amr must hold ngcmfa (a Hello sign-in or fresh MFA), not only mfa
	deviceBound bool             // the token must name an enabled device of the user's tenant
	inProcess   bool             // a bound token needs no DPoP proof: the caller is in this process
	keyID       string           // "": the key is named by its kid
	pub         crypto.PublicKey // or, when kngc is not nil, its BCRYPT blob
	kngc        []byte
	cert        *tpm.KeyCertification // the key's attestation; nil: none
	proof       Proof
}

// registerKey is the one registration: RegisterKey, RegisterAttestedKey
// and RegisterHelloKey differ only in the request.
func (p *IdP) registerKey(ctx context.Context, r keyRequest) (RegisteredKey, error) {
	k, err := p.register(ctx, r)
	if err != nil {
		if r.keyID != "" {
			return RegisteredKey{}, fmt.Errorf("%s %s: %w", r.op, r.keyID, err)
		}
		return RegisteredKey{}, fmt.Errorf("%s: %w", r.op, err)
	}
	return k, nil
}

func (p *IdP) register(ctx context.Context, r keyRequest) (RegisteredKey, error) {
	v := p.verifier
	v.Audience = r.audience
	claims, err := v.Verify(ctx, r.token)
	if err != nil {
		if ctx.Err() != nil {
			return RegisteredKey{}, ctx.Err()
		}
		return RegisteredKey{}, fmt.Errorf("%w: %w", ErrTokenRefused, err)
	}
	switch {
	case r.ngcmfa && !hasAMR(claims.AMR, "ngcmfa"):
		return RegisteredKey{}, fmt.Errorf("%w: amr has no ngcmfa", ErrTokenWithoutMFA)
	case !r.ngcmfa && !claims.HasMFA():
		return RegisteredKey{}, ErrTokenWithoutMFA
	}
	if r.deviceBound && claims.DeviceID == "" {
		return RegisteredKey{}, fmt.Errorf("%w: no deviceid claim", ErrDeviceNotBound)
	}
	var proofUse string
	if !r.inProcess {
		if proofUse, err = p.checkProof(r.token, r.proof, claims.JKT); err != nil {
			return RegisteredKey{}, err
		}
	}
	pub := r.pub
	if r.kngc != nil {
		if pub, err = keycred.ParsePublicKey(r.kngc); err != nil {
			return RegisteredKey{}, fmt.Errorf("%w: kngc: %w", ErrUnsupportedKey, err)
		}
	}
	if r.kngc == nil && (r.keyID == "" || len(r.keyID) > 128 || strings.ContainsFunc(r.keyID, func(c rune) bool { return c < 0x21 || c > 0x7e })) {
		return RegisteredKey{}, fmt.Errorf("%w: key id", ErrInvalid)
	}
	if err := checkHelloKey(pub); err != nil {
		return RegisteredKey{}, err
	}
	var kid string
	if r.kngc != nil {
		kid = keycred.Identifier(r.kngc) // the blob as sent names the key
	} else if kid, err = keycred.PublicKeyIdentifier(pub); err != nil {
		return RegisteredKey{}, fmt.Errorf("%w: %w", ErrUnsupportedKey, err)
	}
	keyID := cmp.Or(r.keyID, kid) // a key sent as kngc is named by its kid
	now := p.now()

	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[strings.ToLower(claims.UPN)]
	if !ok || u.ObjectID != strings.ToLower(claims.ObjectID) || u.TenantID != strings.ToLower(claims.TenantID) {
		return RegisteredKey{}, ErrUnknownUser
	}
	if u.Disabled {
		return RegisteredKey{}, ErrDisabled
	}
	deviceID, err := p.checkBinding(u, claims.DeviceID, claims.JKT, r.deviceBound)
	if err != nil {
		return RegisteredKey{}, err
	}
	if proofUse != "" {
		if prev, used := p.tokenUses[proofUse]; used && now.Before(prev.until) {
			return RegisteredKey{}, fmt.Errorf("%w: DPoP proof already used", ErrTokenRefused)
		}
	}
	attested, err := p.checkAttestation(u, keyID, pub, r.cert)
	if err != nil {
		return RegisteredKey{}, err
	}
	use := claims.Issuer + "\x00" + claims.JTI
	if prev, used := p.tokenUses[use]; used && now.Before(prev.until) && prev.keyID != keyID {
		return RegisteredKey{}, fmt.Errorf("%w (%w)", ErrTokenUsed, ErrTokenRefused)
	}
	if proofUse != "" {
		p.recordTokenUse(proofUse, "", now.Add(DeviceProofMaxAge+p.verifier.Skew), now)
	}
	if old, taken := p.regKeys[keyID]; taken {
		if old.ObjectID == u.ObjectID && old.TenantID == u.TenantID && samePublicKey(old.Public, pub) {
			p.recordTokenUse(use, keyID, claims.Expiry, now)
			k := *old
			k.UPN = u.UPN
			return k, nil
		}
		return RegisteredKey{}, fmt.Errorf("key %s: %w", keyID, ErrExists)
	}
	if deviceID != "" {
		for id, k := range p.regKeys {
			if k.ObjectID == u.ObjectID && k.TenantID == u.TenantID && k.DeviceID == deviceID {
				delete(p.regKeys, id)
			}
		}
	}
	k := &RegisteredKey{KeyID: keyID, KID: kid, TenantID: u.TenantID, ObjectID: u.ObjectID, UPN: u.UPN, Public: pub,
		RegisteredAt: now, DeviceID: deviceID, Attested: attested}
	p.regKeys[keyID] = k
	p.recordTokenUse(use, keyID, claims.Expiry, now)
	return *k, nil
}

// checkBinding checks the device a token names (deviceID, "" for none) and
// the key it is bound to (jkt) against the directory, and returns the
// device's ID. A device-bound registration needs a device of the user's
// tenant; a device whose key the directory holds registers only through a
// token bound to that key, and a bound token names the key of its device.
// The caller holds p.mu.
func (p *IdP) checkBinding(u *user, deviceID, jkt string, required bool) (string, error) {
	if !required {
		return "", nil
	}
	id := strings.ToLower(deviceID)
	d, ok := p.devices[id]
	switch {
	case !ok || d.TenantID != u.TenantID:
		return "", fmt.Errorf("%w: device %s", ErrDeviceNotBound, deviceID)
	case d.standing != identity.StandingEnabled:
		return "", fmt.Errorf("%w: device %s is %s", ErrDeviceNotBound, d.DeviceID, d.standing)
	}
	if d.jkt != jkt {
		return "", fmt.Errorf("%w: the token is not bound to device %s's key", ErrDeviceNotBound, deviceID)
	}
	return d.DeviceID, nil
}

// checkProof checks the DPoP proof a bound token (jkt) must come with, and
// returns the key under which its jti is remembered ("" for a bearer
// token, which must come with no proof).
func (p *IdP) checkProof(token string, proof Proof, jkt string) (string, error) {
	switch {
	case jkt == "" && proof.JWT == "":
		return "", nil
	case jkt == "":
		return "", fmt.Errorf("%w: a DPoP proof with a token that is not DPoP-bound", ErrTokenRefused)
	case proof.JWT == "":
		return "", fmt.Errorf("%w: a DPoP-bound token needs a DPoP proof", ErrTokenRefused)
	case proof.URL == "":
		return "", fmt.Errorf("%w: no URL to check the DPoP proof's htu against", ErrInvalid)
	}
	pr, err := dpop.Parse(proof.JWT)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrTokenRefused, err)
	}
	if err := pr.Check(dpop.Expect{HTM: http.MethodPost, HTU: proof.URL, ATH: dpop.Hash([]byte(token)), JKT: jkt,
		Now: p.now(), MaxAge: DeviceProofMaxAge, Skew: p.verifier.Skew}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrTokenRefused, err)
	}
	return "dpop\x00" + pr.JKT + "\x00" + pr.JTI, nil
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
	u, err := p.userLocked(upn, "registered keys")
	if err != nil {
		return nil, err
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
