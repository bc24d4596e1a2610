// Package idp is the simulated directory: the tenants, users, devices and
// Hello keys an Azure Active Directory holds, and the tokens it signs for
// them — enough for the PIN reset flows of Windows Hello for Business to
// run end to end, with real cryptography throughout. The protocol edges
// live beside it: the device registration endpoint in package drs, the
// sign-in pages and OAuth endpoints in package web.
//
// # What it models
//
// A tenant has a GUID, a verified domain, the national cloud it lives in
// (public or Azure Government, where the WHfB documentation says the PIN
// reset service is "not currently available"), an optional federation
// service (AD FS or a third-party identity provider, whose sign-in pages a
// device must be allowed to reach: ConfigureWebSignInAllowedUrls), whether
// it is hybrid (synchronised with an on-premises Active Directory) and with
// which trust type, and its consents. Non-destructive PIN reset needs the
// tenant's consent to two applications the documentation names — the PIN
// Reset Service and the PIN Reset Client (identity.PINResetServiceAppID and
// identity.PINResetClientAppID);
// Tenant.Onboarded is true only when both are granted.
//
// A user has an object ID, a UPN in the tenant's domain, a password stored
// only as an Argon2id hash (RFC 9106), and a TOTP authenticator (RFC 6238).
// Signing in is two steps, as the documentation requires for a reset
// ("completes authentication and multi-factor authentication to Azure AD"):
// SignIn checks the password and returns a Pending sign-in; CompleteMFA
// checks the six-digit code and returns an access token. The token is a JWT
// signed with ES256, carrying iss, aud (the PIN reset service's application
// ID), tid, oid, upn, amr ["pwd","mfa"], iat, nbf, exp and a random jti.
// TokenWithoutMFA issues the same token with amr ["pwd"] only, which the
// service must refuse. Failed sign-ins lock the account for a while, as
// Azure AD smart lockout does.
//
// # Verification
//
// The identity provider publishes its signing keys as a JSON Web Key Set
// (JWKS, with IssuerTemplate and Now: what service.TokenIssuer asks), and
// answers the PIN reset service's tenant lookups (Tenant, the
// service.Directory method) with identity.Tenant values. This package does
// not import reset/service, nor the service this one: both speak the
// vocabulary of reset/identity, and the code that builds a world
// (resettest, the examples) connects them with service.VerifierFor(idp)
// and service.Config{Directory: idp}.
//
// # Key registration
//
// A destructive PIN reset provisions a new login key and registers its
// public key with the directory (RegisterKey, the reset.Directory method),
// authorised by an access token with MFA from a sign-in bound to the
// device (BindDevice); a token registers one key, never a second, and a
// device holds one key per user. In a hybrid tenant with key trust the key reaches on-premises Active Directory only at the next directory
// synchronisation, so it cannot be used for on-premises sign-in until the
// tenant's SyncDelay has passed (KeyUsableOnPremises). That delay is why the
// documentation says hybrid key trust "doesn't support [destructive reset]
// from above the lock screen".
//
// # Entra's and AD's own formats
//
// The directory also speaks the wire formats of Entra and AD (package
// reset/keycred holds them), so that tools written for those directories
// work against it. A device joins (AddDevice); the signed-in session asks
// for a device-bound token for the device registration service
// (Pending.DeviceToken: aud urn:ms-drs:enterpriseregistration.windows.net,
// deviceid, amr with ngcmfa while the MFA is fresh, auth_time, uti); the
// login key is registered as Windows registers it, POST
// /EnrollmentServer/key/?api-version=1.0 with {"kngc": base64 of the BCRYPT
// blob} answered with {"kid", "upn"} (RegisterHelloKey; package drs serves
// the endpoint and holds the client, which implements reset.Directory). For
// a device whose key the directory holds, the token is bound to that key
// and each registration carries a DPoP proof of it: our extension, in
// place of the PRT that binds Windows' requests. Every registered key is an
// msDS-KeyCredentialLink value (MS-ADTS 2.2.20, KeySource Azure AD; written
// back to AD for hybrid key trust after the sync delay: DirectoryUser).
// Signing in with the key is a nonce (HelloNonce) and an assertion the key
// signs (SignInWithHelloKey), which yields a token with amr ngcmfa. The
// signing keys are published as a JWKS behind /.well-known/openid-configuration
// (OIDCHandler).
//
// Everything is held in memory and guarded by one mutex; an IdP is safe for
// concurrent use. The clock and the randomness are injectable, so tests can
// move time (token expiry, TOTP steps, lockout, sync delay) without sleeping.
package idp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/hellosim/hellosim/internal/accesstoken"
	"github.com/hellosim/hellosim/reset/identity"
)

// Defaults.
const (
	// defaultIssuer is the issuer template: "{tid}" is replaced by the tenant
	// ID, as in Azure AD's v2.0 issuer "https://login.microsoftonline.com/{tid}/v2.0".
	defaultIssuer = "https://login.hellosim.test/{tid}/v2.0"
	// DefaultTokenLifetime: access tokens are short-lived; a reset takes
	// seconds.
	DefaultTokenLifetime = 10 * time.Minute
	// defaultPendingLifetime bounds the time between SignIn and CompleteMFA.
	defaultPendingLifetime = 5 * time.Minute
	// DefaultSessionLifetime bounds Refresh after MFA.
	DefaultSessionLifetime = 24 * time.Hour
	// DefaultLockoutThreshold and DefaultLockoutDuration are Azure AD smart
	// lockout's defaults: ten failed sign-ins lock the account for a minute.
	DefaultLockoutThreshold = 10
	DefaultLockoutDuration  = time.Minute
	// maxMFAAttempts is how many wrong codes a pending sign-in survives.
	maxMFAAttempts = 3
	// DefaultSyncDelay is how long after registration a key becomes usable
	// on premises in a hybrid key-trust tenant: Azure AD Connect's default
	// synchronisation cycle is 30 minutes.
	DefaultSyncDelay = 30 * time.Minute
)

// Argon2Params are the Argon2id parameters for password hashes (RFC 9106).
type Argon2Params struct {
	Time      uint32 // passes
	MemoryKiB uint32 // memory in KiB
	Threads   uint8  // lanes
}

// DefaultArgon2Params is RFC 9106 §4's second recommended option, for
// memory-constrained environments: t=3, m=64 MiB, p=4.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Time: 3, MemoryKiB: 64 << 10, Threads: 4}
}

// LightArgon2Params is the OWASP Password Storage Cheat Sheet's minimum for
// argon2id: t=2, m=19 MiB, p=1. It suits a demo or a small program that
// hashes a few passwords at start-up: a third of the memory of
// DefaultArgon2Params, still far beyond what password-cracking hardware
// likes.
func LightArgon2Params() Argon2Params {
	return Argon2Params{Time: 2, MemoryKiB: 19 << 10, Threads: 1}
}

// Option configures an IdP.
type Option func(*IdP) error

// WithClock sets the clock (default time.Now).
func WithClock(now func() time.Time) Option {
	return func(p *IdP) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrInvalid)
		}
		p.now = now
		return nil
	}
}

// WithRand sets the source of randomness for IDs, salts, TOTP secrets and
// token IDs (default crypto/rand). ECDSA signing keys come from crypto/rand
// regardless: the standard library no longer honours a custom reader there.
func WithRand(r io.Reader) Option {
	return func(p *IdP) error {
		if r == nil {
			return fmt.Errorf("%w: nil rand", ErrInvalid)
		}
		p.rand = r
		return nil
	}
}

// WithIssuer sets the issuer template; "{tid}" is replaced by the tenant ID
// (default "https://login.hellosim.test/{tid}/v2.0").
func WithIssuer(template string) Option {
	return func(p *IdP) error {
		if !strings.HasPrefix(template, "https://") {
			return fmt.Errorf("%w: issuer must be an https URL", ErrInvalid)
		}
		p.issuer = template
		return nil
	}
}

// WithArgon2 sets the password hashing parameters (default
// DefaultArgon2Params; tests use resettest.CheapArgon2).
func WithArgon2(a Argon2Params) Option {
	return func(p *IdP) error {
		if a.Time == 0 || a.Threads == 0 || a.MemoryKiB < 8*uint32(a.Threads) {
			return fmt.Errorf("%w: argon2 parameters", ErrInvalid)
		}
		p.argon = a
		return nil
	}
}

// WithTokenLifetime sets the access token lifetime (default 10 minutes).
func WithTokenLifetime(d time.Duration) Option {
	return func(p *IdP) error {
		if d <= 0 || d > accesstoken.DefaultMaxLifetime {
			return fmt.Errorf("%w: token lifetime %s", ErrInvalid, d)
		}
		p.tokenTTL = d
		return nil
	}
}

// WithLockout sets how many consecutive failures lock an account, and for
// how long.
func WithLockout(threshold int, d time.Duration) Option {
	return func(p *IdP) error {
		if threshold <= 0 || d <= 0 {
			return fmt.Errorf("%w: lockout", ErrInvalid)
		}
		p.lockThreshold, p.lockDuration = threshold, d
		return nil
	}
}

// IdP is the simulated directory and identity provider.
type IdP struct {
	now           func() time.Time
	rand          io.Reader
	issuer        string
	argon         Argon2Params
	tokenTTL      time.Duration
	lockThreshold int
	lockDuration  time.Duration

	randMu sync.Mutex // guards rand, which need not be safe for concurrent use

	mu      sync.Mutex
	tenants map[string]*tenant // by lower-case ID
	users   map[string]*user   // by lower-case UPN
	// byObject: the same users by tenant ID and object ID (objectKey).
	byObject map[string]*user
	devices  map[string]*device // by lower-case device ID
	regKeys  map[string]*RegisteredKey
	// tokenUses: issuer+jti of each token that registered a key; a token
	// registers one key.
	tokenUses map[string]tokenUse
	nextUseGC int
	signers   []*signingKey    // [0] is current
	dummy     *passwordHash    // hashed for unknown users, so timing does not tell
	objects   directoryObjects // devices and sign-in nonces (device.go, hellosignin.go)

	attestation attestationState // TPM key attestation (attestation.go)

	jwks     atomic.Pointer[jose.JSONWebKeySet]
	verifier accesstoken.Config // verifies its own tokens for RegisterKey
}

// New returns an empty IdP with one fresh signing key.
func New(opts ...Option) (*IdP, error) {
	p := &IdP{
		now:           time.Now,
		rand:          rand.Reader,
		issuer:        defaultIssuer,
		argon:         DefaultArgon2Params(),
		tokenTTL:      DefaultTokenLifetime,
		lockThreshold: DefaultLockoutThreshold,
		lockDuration:  DefaultLockoutDuration,
		tenants:       make(map[string]*tenant),
		users:         make(map[string]*user),
		byObject:      make(map[string]*user),
		devices:       make(map[string]*device),
		regKeys:       make(map[string]*RegisteredKey),
		tokenUses:     make(map[string]tokenUse),
		nextUseGC:     minUseGC,
	}
	for _, o := range opts {
		if err := o(p); err != nil {
			return nil, fmt.Errorf("new idp: %w", err)
		}
	}
	if _, err := p.rotate(); err != nil {
		return nil, fmt.Errorf("new idp: %w", err)
	}
	dummy, err := p.hashPassword("unknown user")
	if err != nil {
		return nil, fmt.Errorf("new idp: %w", err)
	}
	p.dummy = dummy
	p.verifier = accesstoken.Config{
		Keys:     p.jwks.Load,
		Issuer:   p.issuer,
		Audience: identity.PINResetServiceAppID,
		Clock:    p.now,
	}.WithDefaults()
	return p, nil
}

// Now returns the IdP's clock reading.
func (p *IdP) Now() time.Time { return p.now() }

// IssuerTemplate returns the issuer template, with "{tid}".
func (p *IdP) IssuerTemplate() string { return p.issuer }

// Issuer returns the issuer (iss) of tokens for tenantID.
func (p *IdP) Issuer(tenantID string) string {
	return strings.ReplaceAll(p.issuer, "{tid}", strings.ToLower(tenantID))
}

// JWKS returns the public signing keys, current first. It is a fresh copy,
// keys included: the verifier trusts the IdP's own set, which no caller can
// reach, so changing the result cannot make a forged token verify.
func (p *IdP) JWKS() *jose.JSONWebKeySet {
	set := p.jwks.Load()
	out := &jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(set.Keys))}
	for _, k := range set.Keys {
		if pub, ok := k.Key.(*ecdsa.PublicKey); ok {
			// Every published key is a valid P-256 key; the round trip
			// through its encoding cannot fail.
			if b, err := pub.Bytes(); err == nil {
				if cp, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b); err == nil {
					k.Key = cp
				}
			}
		}
		out.Keys = append(out.Keys, k)
	}
	return out
}

// readRand fills b from the IdP's randomness.
func (p *IdP) readRand(b []byte) error {
	p.randMu.Lock()
	defer p.randMu.Unlock()
	if _, err := io.ReadFull(p.rand, b); err != nil {
		return fmt.Errorf("read randomness: %w", err)
	}
	return nil
}

// newGUID returns a random (version 4) GUID in lower case.
func (p *IdP) newGUID() (string, error) {
	p.randMu.Lock()
	defer p.randMu.Unlock()
	g, err := identity.NewGUID(p.rand)
	if err != nil {
		return "", err
	}
	return g.String(), nil
}

// guidOrNew is s as checkGUID takes it, or a new GUID when s is "".
func (p *IdP) guidOrNew(what, s string) (string, error) {
	if s == "" {
		g, err := p.newGUID()
		if err != nil {
			return "", err
		}
		s = g
	}
	return checkGUID(what, s)
}

// checkGUID normalises a GUID to lower case, or refuses it.
func checkGUID(what, s string) (string, error) {
	g, err := identity.CanonicalGUID(s)
	if err != nil {
		return "", fmt.Errorf("%w: %s %q is not a GUID", ErrInvalid, what, s)
	}
	return g, nil
}

var errNoSigner = errors.New("no signing key")
