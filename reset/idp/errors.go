package idp

import (
	"errors"
	"fmt"
	"time"
)

// Errors callers branch on.
var (
	// ErrUnknownUser: no user with that UPN.
	ErrUnknownUser = errors.New("idp: unknown user")
	// ErrWrongPassword: the password does not match.
	ErrWrongPassword = errors.New("idp: wrong password")
	// ErrWrongCode: the MFA code does not match (or was already used: RFC
	// 6238 §5.2 forbids accepting a code twice).
	ErrWrongCode = errors.New("idp: wrong verification code")
	// ErrLocked: the account is locked after too many failed sign-ins; the
	// error is a *LockedError saying for how long.
	ErrLocked = errors.New("idp: account locked")
	// ErrDisabled: the account is disabled.
	ErrDisabled = errors.New("idp: account disabled")
	// ErrSignInExpired: the pending sign-in is too old, was cancelled after
	// too many wrong codes, or already completed.
	ErrSignInExpired = errors.New("idp: sign-in expired")
	// ErrMFANotCompleted: Refresh before CompleteMFA.
	ErrMFANotCompleted = errors.New("idp: multi-factor authentication not completed")
	// ErrExists: a tenant, user or key with that identifier already exists.
	ErrExists = errors.New("idp: already exists")
	// ErrInvalid: a configuration value is malformed.
	ErrInvalid = errors.New("idp: invalid value")
	// ErrTokenRefused: RegisterKey was given a token that does not verify.
	ErrTokenRefused = errors.New("idp: access token refused")
	// ErrTokenWithoutMFA: RegisterKey was given a token without MFA.
	ErrTokenWithoutMFA = errors.New("idp: access token shows no multi-factor authentication")
	// ErrKeyNotFound: no registered key, or signing key, with that ID.
	ErrKeyNotFound = errors.New("idp: no key with that ID")
	// ErrUnsupportedKey: RegisterKey was given a key type Windows Hello does
	// not use (RSA-2048 or larger and ECDSA P-256 are accepted).
	ErrUnsupportedKey = errors.New("idp: unsupported key type")
	// ErrTokenUsed: RegisterKey was given a token that already registered
	// another key. A token registers one key; the error also matches
	// ErrTokenRefused.
	ErrTokenUsed = errors.New("idp: access token already registered a key")
	// ErrDeviceNotBound: a key registration whose token names no device
	// ("deviceid"), or a device that is not in the user's tenant, or a
	// token not bound to the key of the device it names.
	ErrDeviceNotBound = errors.New("idp: token is not bound to a registered device")
)

// LockedError says how long an account stays locked. It matches ErrLocked.
type LockedError struct {
	RetryAfter time.Duration
}

// Error says how long the account stays locked.
func (e *LockedError) Error() string {
	return fmt.Sprintf("idp: account locked, retry after %s", e.RetryAfter.Round(time.Second))
}

// Is matches ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }
