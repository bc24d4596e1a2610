package idp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hellosim/hellosim/internal/accesstoken"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/keycred"
)

// Sign-in with the Hello key: after the PIN unlocks the login key, Windows
// asks the directory for a nonce (Entra's srv_challenge) and sends an
// assertion signed by the key over it (keycred.SignAssertion: kid = the
// key's identifier, use = ngc; iss the UPN, aud the tenant). The directory
// verifies it against the registered key and issues a token whose amr says
// how the user signed in: "rsa" (a key proved possession), "mfa" and
// "ngcmfa" (the key is a second factor unlocked by the PIN). This is what
// "the PIN unlocks the key that signs you in" means.

// helloNonceLifetime is how long a sign-in nonce can be used, once.
const helloNonceLifetime = 5 * time.Minute

// maxAssertionBytes bounds the assertion SignInWithHelloKey parses.
const maxAssertionBytes = 16 << 10

// maxOutstandingNonces bounds the nonces handed out and not yet used or
// expired, so that asking for nonces cannot fill the directory's memory.
const maxOutstandingNonces = 1 << 16

var (
	// ErrAssertionRefused: a Hello sign-in assertion that is malformed,
	// names no registered key, is not signed by it, or whose iss, aud or
	// times do not fit.
	ErrAssertionRefused = errors.New("idp: hello sign-in assertion refused")
	// ErrNonceExpired: the assertion's nonce is older than five minutes.
	ErrNonceExpired = errors.New("idp: sign-in nonce expired")
	// ErrNonceUnknown: the assertion's nonce was not issued by this
	// directory, or was already used (a replayed assertion).
	ErrNonceUnknown = errors.New("idp: sign-in nonce unknown or already used")
	// ErrTooManyNonces: 65536 nonces are outstanding; try later.
	ErrTooManyNonces = errors.New("idp: too many sign-in nonces outstanding")
)

// HelloNonce returns a fresh nonce for one Hello sign-in.
func (p *IdP) HelloNonce() (string, error) {
	var b [32]byte
	if err := p.readRand(b[:]); err != nil {
		return "", fmt.Errorf("hello nonce: %w", err)
	}
	n := base64.RawURLEncoding.EncodeToString(b[:])
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.objects.init()
	if o := &p.objects; len(o.nonces) >= o.nextSweep || len(o.nonces) >= maxOutstandingNonces {
		// Amortised: a sweep each time the map doubles, and at the cap.
		for k, at := range o.nonces {
			if now.Sub(at) > helloNonceLifetime {
				delete(o.nonces, k)
			}
		}
		o.nextSweep = max(minUseGC, 2*len(o.nonces))
	}
	if len(p.objects.nonces) >= maxOutstandingNonces {
		return "", fmt.Errorf("hello nonce: %w", ErrTooManyNonces)
	}
	p.objects.nonces[n] = now
	return n, nil
}

// SignInWithHelloKey verifies a Hello sign-in assertion and returns an
// access token for resource (DRSResource or the PIN reset service's
// application ID) with amr ["rsa","mfa","ngcmfa"], the key's device as
// deviceid, and auth_time now. It refuses, in order: an assertion that does
// not parse or names no registered key, or is not signed by that key, or
// whose iss is not the key's user or aud not the user's tenant, or that is
// expired, issued in the future or valid too long (ErrAssertionRefused);
// a disabled or locked user; a nonce that is unknown or already used
// (ErrNonceUnknown: replays end here) or expired (ErrNonceExpired). The
// nonce is spent only by an assertion that verified. The key's last
// sign-in (its KeyApproximateLastLogonTimeStamp) is set to now.
func (p *IdP) SignInWithHelloKey(ctx context.Context, assertion, resource string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	tok, err := p.signInWithHelloKey(assertion, resource)
	if err != nil {
		return "", fmt.Errorf("hello sign-in: %w", err)
	}
	return tok, nil
}

func (p *IdP) signInWithHelloKey(assertion, resource string) (string, error) {
	if resource != DRSResource && resource != identity.PINResetServiceAppID {
		return "", fmt.Errorf("%w: resource %q", ErrInvalid, resource)
	}
	refuse := func(why string, a ...any) (string, error) {
		return "", fmt.Errorf("%w: "+why, append([]any{ErrAssertionRefused}, a...)...)
	}
	if len(assertion) > maxAssertionBytes {
		return refuse("too large")
	}
	kid, err := keycred.AssertionKeyID(assertion)
	if err != nil {
		return refuse("%v", err)
	}
	p.mu.Lock()
	key := p.keyByKIDLocked(kid)
	p.mu.Unlock()
	if key == nil {
		return refuse("kid names no registered key (%w)", ErrKeyNotFound)
	}
	a, err := keycred.VerifyAssertion(assertion, key.Public)
	if err != nil {
		return refuse("%v", err)
	}
	now := p.now()
	skew := accesstoken.DefaultSkew
	switch {
	case !now.Before(a.Expiry.Add(skew)):
		return refuse("expired")
	case a.IssuedAt.After(now.Add(skew)):
		return refuse("issued in the future")
	case a.Expiry.Sub(a.IssuedAt) > accesstoken.DefaultMaxLifetime || a.Expiry.Before(a.IssuedAt):
		return refuse("lifetime out of bounds")
	}

	p.mu.Lock()
	u, err := p.activeUserLocked(strings.ToLower(a.Issuer), now)
	if err != nil {
		p.mu.Unlock()
		if errors.Is(err, ErrUnknownUser) {
			return refuse("iss is not the key's user")
		}
		return "", err
	}
	k := p.keyByKIDLocked(kid) // again: it may have been replaced meanwhile
	switch {
	case k == nil || k.ObjectID != u.ObjectID || k.TenantID != u.TenantID:
		p.mu.Unlock()
		return refuse("iss is not the key's user")
	case !strings.EqualFold(a.Audience, u.TenantID):
		p.mu.Unlock()
		return refuse("aud is not the user's tenant")
	}
	issued, known := p.objects.nonces[a.Nonce]
	switch {
	case !known:
		p.mu.Unlock()
		return "", ErrNonceUnknown
	case now.Sub(issued) > helloNonceLifetime:
		delete(p.objects.nonces, a.Nonce)
		p.mu.Unlock()
		return "", ErrNonceExpired
	}
	delete(p.objects.nonces, a.Nonce)
	k.LastSignIn = now
	snap, fed, dev := u.snapshot(), federationHost(u.tenant), k.DeviceID
	p.mu.Unlock()

	return p.issueEntra(tokenRequest{
		user: snap, federation: fed, audience: resource, azp: windowsSignInAppID,
		amr: []string{"rsa", "mfa", "ngcmfa"}, deviceID: dev, authTime: now,
	})
}

// keyByKIDLocked finds the registered key whose identifier is kid; the
// caller holds p.mu.
func (p *IdP) keyByKIDLocked(kid string) *RegisteredKey {
	if k, ok := p.regKeys[kid]; ok && k.KID == kid {
		return k
	}
	for _, k := range p.regKeys {
		if k.KID == kid {
			return k
		}
	}
	return nil
}
