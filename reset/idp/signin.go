package idp

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// SignIn checks a user's password and returns a pending sign-in that needs
// a second factor (CompleteMFA). A user's failures count toward a lockout
// (wrong passwords and wrong codes alike); a correct password and code clear
// them. Unknown users cost the same Argon2id computation as known ones.
func (p *IdP) SignIn(ctx context.Context, upn, password string) (*Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := strings.ToLower(upn)
	now := p.now()
	p.mu.Lock()
	u, known := p.users[key]
	h := p.dummy
	if known {
		if now.Before(u.lockedUntil) {
			wait := u.lockedUntil.Sub(now)
			p.mu.Unlock()
			return nil, fmt.Errorf("sign in: %w", &LockedError{RetryAfter: wait})
		}
		h = u.password
	}
	p.mu.Unlock()

	ok := h.verify(password) // outside the lock: Argon2id is slow by design

	if !known {
		return nil, fmt.Errorf("sign in: %w", ErrUnknownUser)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !ok {
		if err := p.failLocked(u, now); err != nil {
			return nil, fmt.Errorf("sign in: %w", err)
		}
		return nil, fmt.Errorf("sign in: %w", ErrWrongPassword)
	}
	if u.Disabled {
		return nil, fmt.Errorf("sign in: %w", ErrDisabled)
	}
	return &Pending{p: p, upn: key, created: now}, nil
}

// SignInFederated starts the sign-in of a user whom a federation service
// authenticated: the caller verified that service's signed assertion with
// the key it trusts for the user's tenant (package reset/idp/web does) and
// names the service by the host of its sign-in page. The user must belong
// to a federated tenant whose FederationSignInURL has that host (a managed
// user, or a federation service that is not the tenant's, is refused as an
// unknown user), and must be enabled and unlocked. What follows is the
// same as after SignIn: the pending sign-in needs the second factor
// (CompleteMFA), and its tokens name the federation service (idp).
func (p *IdP) SignInFederated(ctx context.Context, upn, federationHost string) (*Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now, key := p.now(), strings.ToLower(upn)
	u, err := p.activeUserLocked(key, now)
	if err != nil {
		return nil, fmt.Errorf("sign in federated: %w", err)
	}
	t := Tenant{Tenant: u.tenant.Tenant.Tenant}
	if !t.Federated() || federationHost == "" || !strings.EqualFold(t.SignInHost(), federationHost) {
		return nil, fmt.Errorf("sign in federated: %w: %q is not the federation service of the user's tenant", ErrUnknownUser, federationHost)
	}
	return &Pending{p: p, upn: key, created: now}, nil
}

// failLocked counts a failure and locks the account at the threshold.
func (p *IdP) failLocked(u *user, now time.Time) error {
	u.failures++
	if u.failures >= p.lockThreshold {
		u.failures = 0
		u.lockedUntil = now.Add(p.lockDuration)
		return &LockedError{RetryAfter: p.lockDuration}
	}
	return nil
}

// Pending is a sign-in whose password was accepted. CompleteMFA finishes it
// and opens a session that Refresh can mint further access tokens from (as
// an OAuth refresh token does), keeping the MFA claim. A Pending is safe for
// concurrent use.
type Pending struct {
	p       *IdP
	upn     string
	created time.Time

	mu       sync.Mutex
	attempts int
	mfaAt    time.Time // zero until MFA completes
	dead     bool
	deviceID string // set by BindDevice
	jkt      string // the bound device key's thumbprint
}

// User returns a snapshot of the user signing in.
func (s *Pending) User() (User, error) { return s.p.LookupUser(s.upn) }

// CompleteMFA checks a TOTP code and returns an access token with amr
// ["pwd","mfa"]. A code is accepted once (RFC 6238 §5.2). After
// three wrong codes (maxMFAAttempts), or five minutes after SignIn, the
// pending sign-in is dead and the user must start again.
func (s *Pending) CompleteMFA(ctx context.Context, code string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.p
	now := p.now()
	if !s.awaitsMFALocked(now) {
		s.dead = true
		return "", fmt.Errorf("complete mfa: %w", ErrSignInExpired)
	}
	p.mu.Lock()
	u, err := p.activeUserLocked(s.upn, now)
	if err != nil {
		p.mu.Unlock()
		return "", fmt.Errorf("complete mfa: %w", err)
	}
	step := checkTOTP(u.User.secret, code, now)
	if step < 0 || step <= u.lastStep {
		s.attempts++
		lockErr := p.failLocked(u, now)
		p.mu.Unlock()
		if s.attempts >= maxMFAAttempts || lockErr != nil {
			s.dead = true
		}
		if lockErr != nil {
			return "", fmt.Errorf("complete mfa: %w", lockErr)
		}
		return "", fmt.Errorf("complete mfa: %w", ErrWrongCode)
	}
	u.lastStep = step
	u.failures = 0
	snap, fed := u.snapshot(), federationHost(u.tenant)
	p.mu.Unlock()
	tok, err := p.issue(snap, fed, grant{amr: []string{"pwd", "mfa"}, authTime: now, deviceID: s.deviceID, jkt: s.jkt})
	if err != nil {
		return "", fmt.Errorf("complete mfa: %w", err)
	}
	s.mfaAt = now
	return tok, nil
}

// TokenWithoutMFA returns an access token with amr ["pwd"] only: what a
// sign-in that skipped the second factor would carry. The PIN reset service
// must refuse it; it exists for negative tests. It works only while the
// sign-in still awaits MFA.
func (s *Pending) TokenWithoutMFA(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.p.now()
	if !s.awaitsMFALocked(now) {
		return "", fmt.Errorf("token without mfa: %w", ErrSignInExpired)
	}
	tok, err := s.p.issueFor(s.upn, now, grant{amr: []string{"pwd"}, deviceID: s.deviceID, jkt: s.jkt})
	if err != nil {
		return "", fmt.Errorf("token without mfa: %w", err)
	}
	return tok, nil
}

// Refresh returns a new access token (new jti, new times, amr ["pwd","mfa"])
// for a sign-in that completed MFA, within DefaultSessionLifetime of it, as
// long as the account is still enabled and unlocked and its sessions were
// not revoked since. Its auth_time is the MFA's own time, never the
// refresh's: a relying party that wants a fresh MFA (the PIN reset service
// does) sees how old it really is.
func (s *Pending) Refresh(ctx context.Context) (string, error) {
	ss, err := s.session(ctx, "refresh")
	if err != nil {
		return "", err
	}
	tok, err := s.p.issueFor(s.upn, ss.now, grant{amr: []string{"pwd", "mfa"}, authTime: ss.mfaAt, deviceID: ss.deviceID, jkt: ss.jkt})
	if err != nil {
		return "", fmt.Errorf("refresh: %w", err)
	}
	return tok, nil
}

// awaitsMFALocked reports whether the sign-in still waits for its second
// factor at now: not dead, MFA not yet done, and younger than
// defaultPendingLifetime. s.mu is held.
func (s *Pending) awaitsMFALocked(now time.Time) bool {
	return !s.dead && s.mfaAt.IsZero() && now.Sub(s.created) <= defaultPendingLifetime
}

// session is what a sign-in that completed MFA gives the tokens minted from
// it: the IdP's time, when the MFA completed, and the device the sign-in is
// bound to with its key's thumbprint (both "" when not bound).
type session struct {
	now, mfaAt    time.Time
	deviceID, jkt string
}

// session returns the sign-in's session, or an error that starts with op
// when the sign-in has not completed MFA (ErrMFANotCompleted) or completed
// it more than DefaultSessionLifetime ago (ErrSignInExpired); ctx's error
// when ctx is done.
func (s *Pending) session(ctx context.Context, op string) (session, error) {
	if err := ctx.Err(); err != nil {
		return session{}, err
	}
	s.mu.Lock()
	ss := session{mfaAt: s.mfaAt, deviceID: s.deviceID, jkt: s.jkt}
	s.mu.Unlock()
	ss.now = s.p.now()
	switch {
	case ss.mfaAt.IsZero():
		return session{}, fmt.Errorf("%s: %w", op, ErrMFANotCompleted)
	case ss.now.Sub(ss.mfaAt) > DefaultSessionLifetime:
		return session{}, fmt.Errorf("%s: %w", op, ErrSignInExpired)
	}
	return ss, nil
}

// AuthTime is when this sign-in completed MFA (zero before): the auth_time
// its tokens carry.
func (s *Pending) AuthTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mfaAt
}

// issueFor issues a token under g to the user upn, if the account is still
// enabled and unlocked at now and its sessions were not revoked after the
// grant's authentication.
func (p *IdP) issueFor(upn string, now time.Time, g grant) (string, error) {
	p.mu.Lock()
	u, err := p.activeUserLocked(upn, now)
	if err != nil {
		p.mu.Unlock()
		return "", err
	}
	if !u.revokedAt.IsZero() && !g.authTime.IsZero() && !g.authTime.After(u.revokedAt) {
		p.mu.Unlock()
		return "", ErrSignInExpired
	}
	snap, fed := u.snapshot(), federationHost(u.tenant)
	p.mu.Unlock()
	return p.issue(snap, fed, g)
}

// activeUserLocked returns the user if it exists, is enabled and unlocked.
func (p *IdP) activeUserLocked(upn string, now time.Time) (*user, error) {
	u, ok := p.users[upn]
	switch {
	case !ok:
		return nil, ErrUnknownUser
	case u.Disabled:
		return nil, ErrDisabled
	case now.Before(u.lockedUntil):
		return nil, &LockedError{RetryAfter: u.lockedUntil.Sub(now)}
	}
	return u, nil
}
