package service

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hellosim/hellosim/protector"
)

// Sentinel errors. A client error from Recover or ServiceKey is a *Error; it
// matches, with errors.Is, the sentinel of its code (and a few match more than
// one: a replayed token is also unauthorized, a retired key is also an unknown
// key). An envelope under a key the service does not hold matches
// protector.ErrUnknownKey, the one name of that failure. The reset package
// wraps them with %w, so callers branch on these values without knowing
// about HTTP.
var (
	// ErrUnauthorized: the access token is missing, malformed, badly signed,
	// expired, not yet valid, or meant for another issuer or audience (401).
	ErrUnauthorized = errors.New("pin reset service: unauthorized")
	// ErrMFARequired: the token does not show multi-factor authentication; the
	// WHfB documentation requires MFA to Azure AD before a reset (403).
	ErrMFARequired = errors.New("pin reset service: multi-factor authentication required")
	// ErrBindingMismatch: the envelope was made for another tenant or user than
	// the token names (403).
	ErrBindingMismatch = errors.New("pin reset service: envelope bound to another user")
	// ErrNotOnboarded: the tenant has not consented to both the PIN Reset
	// Service and the PIN Reset Client applications (403).
	ErrNotOnboarded = errors.New("pin reset service: tenant not onboarded")
	// ErrUnavailableInCloud: the tenant is in a cloud where the service is not
	// offered; the WHfB documentation: "not currently available in Azure
	// Government" (403).
	ErrUnavailableInCloud = errors.New("pin reset service: not available in this cloud")
	// ErrReplay: the token's jti was already used for a recovery (401).
	ErrReplay = errors.New("pin reset service: token replayed")
	// ErrRateLimited: too many recoveries for this user; Error.RetryAfter says
	// when to try again (429).
	ErrRateLimited = errors.New("pin reset service: rate limited")
	// ErrKeyRetired: the envelope names a retired service key (410). It also
	// matches protector.ErrUnknownKey, which an envelope naming a key the
	// service does not hold (400) matches alone: re-enrol the protector.
	ErrKeyRetired = errors.New("pin reset service: service key retired")
	// ErrMalformedRequest: the request was refused as malformed: wrong path,
	// method or content type, a body too large, bad JSON, or an envelope the
	// service key cannot open (400, 404, 405, 413, 415).
	ErrMalformedRequest = errors.New("pin reset service: malformed request")
	// ErrBadEnvelope: the envelope failed to decrypt or authenticate (400).
	// It also matches ErrMalformedRequest.
	ErrBadEnvelope = errors.New("pin reset service: envelope does not open")
	// ErrInvalidProof: the DPoP proof (RFC 9449) is missing, badly signed,
	// stale, replayed or does not match the request, its token or its
	// return key (401). It also matches ErrUnauthorized.
	ErrInvalidProof = errors.New("pin reset service: device proof refused")
	// ErrNoDevice: the client has no device key to prove possession with
	// (Client.WithDevice); nothing was sent.
	ErrNoDevice = errors.New("pin reset service: no device key")
	// ErrClientNotAllowed: the token was issued to another client
	// application than the PIN Reset Client (403).
	ErrClientNotAllowed = errors.New("pin reset service: token issued to another client application")
	// ErrAccountInactive: the user is disabled or deleted in the directory
	// now, whatever the token says (403).
	ErrAccountInactive = errors.New("pin reset service: account disabled or deleted")
	// ErrDeviceNotAllowed: the token is not bound to a device, or its
	// device is unknown, disabled, or holds another key now (403).
	ErrDeviceNotAllowed = errors.New("pin reset service: device not allowed")
	// ErrEnvelopeNotDeviceBound: the envelope names no device (format
	// version 1): re-enrol the protector on the device (400). It also
	// matches ErrMalformedRequest.
	ErrEnvelopeNotDeviceBound = errors.New("pin reset service: envelope not bound to a device")
	// ErrUserLockedOut: too many failed recoveries for this user (bindings or
	// devices that do not match, envelopes that do not open); Error.RetryAfter
	// says when the lockout ends (429). It also matches ErrRateLimited.
	ErrUserLockedOut = errors.New("pin reset service: user locked out")
	// ErrUnavailable: the service could not be reached or failed (5xx,
	// network errors, timeouts).
	ErrUnavailable = errors.New("pin reset service: unavailable")
	// ErrBadResponse: the service answered with something the client cannot
	// accept: truncated, oversize, malformed, or sealed to the wrong key.
	ErrBadResponse = errors.New("pin reset service: bad response")
)

// Error codes, as sent in the "error" member of a JSON error body.
const (
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeBodyTooLarge         = "body_too_large"
	CodeMalformedRequest     = "malformed_request"
	CodeInvalidToken         = "invalid_token"
	CodeMFARequired          = "mfa_required"
	CodeNotOnboarded         = "tenant_not_onboarded"
	CodeUnavailableInCloud   = "unavailable_in_cloud"
	CodeBindingMismatch      = "binding_mismatch"
	CodeTokenReplayed        = "token_replayed"
	CodeRateLimited          = "rate_limited"
	CodeUnknownKey           = "unknown_key"
	CodeKeyRetired           = "key_retired"
	CodeBadEnvelope          = "bad_envelope"
	CodeUnavailable          = "unavailable"
	CodeInvalidProof         = "invalid_dpop_proof" // RFC 9449 §7.1
	CodeClientNotAllowed     = "client_not_allowed"
	CodeAccountInactive      = "account_inactive"
	CodeDeviceNotAllowed     = "device_not_allowed"
	CodeEnvelopeNotBound     = "envelope_not_device_bound"
	CodeLockedOut            = "locked_out"
	CodeInternal             = "internal_error"
	// CodeBadResponse is never sent by the service; the client uses it for
	// responses it refuses.
	CodeBadResponse = "bad_response"
)

// Error is what the client returns when the service refuses a request, fails,
// or cannot be reached. Status is the HTTP status (0 when none arrived).
type Error struct {
	Status     int           // HTTP status; 0 for network errors and refused responses
	Code       string        // one of the Code constants
	Message    string        // the service's explanation, sanitized; never secret
	RetryAfter time.Duration // from Retry-After on 429 and 503; 0 when absent
	Err        error         // underlying cause (network error, decode error), if any
}

// Error describes the refusal: status, code, message, retry delay, cause.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("pin reset service: ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d ", e.Status)
	}
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a sentinel this error stands for.
func (e *Error) Is(target error) bool {
	for _, s := range e.sentinels() {
		if s == target {
			return true
		}
	}
	return false
}

func (e *Error) sentinels() []error {
	switch e.Code {
	case CodeInvalidToken:
		return []error{ErrUnauthorized}
	case CodeInvalidProof:
		return []error{ErrInvalidProof, ErrUnauthorized}
	case CodeClientNotAllowed:
		return []error{ErrClientNotAllowed}
	case CodeAccountInactive:
		return []error{ErrAccountInactive}
	case CodeDeviceNotAllowed:
		return []error{ErrDeviceNotAllowed}
	case CodeEnvelopeNotBound:
		return []error{ErrEnvelopeNotDeviceBound, ErrMalformedRequest}
	case CodeLockedOut:
		return []error{ErrUserLockedOut, ErrRateLimited}
	case CodeTokenReplayed:
		return []error{ErrReplay, ErrUnauthorized}
	case CodeMFARequired:
		return []error{ErrMFARequired}
	case CodeNotOnboarded:
		return []error{ErrNotOnboarded}
	case CodeUnavailableInCloud:
		return []error{ErrUnavailableInCloud}
	case CodeBindingMismatch:
		return []error{ErrBindingMismatch}
	case CodeRateLimited:
		return []error{ErrRateLimited}
	case CodeUnknownKey:
		return []error{protector.ErrUnknownKey}
	case CodeKeyRetired:
		return []error{ErrKeyRetired, protector.ErrUnknownKey}
	case CodeBadEnvelope:
		return []error{ErrBadEnvelope, ErrMalformedRequest}
	case CodeNotFound, CodeMethodNotAllowed, CodeUnsupportedMediaType,
		CodeBodyTooLarge, CodeMalformedRequest:
		return []error{ErrMalformedRequest}
	case CodeUnavailable, CodeInternal:
		return []error{ErrUnavailable}
	case CodeBadResponse:
		return []error{ErrBadResponse}
	}
	// A code this client does not know: fall back on the status class.
	switch {
	case e.Status == http.StatusUnauthorized:
		return []error{ErrUnauthorized}
	case e.Status == http.StatusTooManyRequests:
		return []error{ErrRateLimited}
	case e.Status >= 500 || e.Status == 0:
		return []error{ErrUnavailable}
	case e.Status >= 400 && e.Status != http.StatusForbidden:
		return []error{ErrMalformedRequest}
	}
	return nil
}
