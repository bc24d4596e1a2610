package tpm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// Errors that callers branch on. Wrong authorization surfaces as *AuthError
// (errors.Is(err, ErrAuthFailed)); a TPM in dictionary-attack lockout as
// *LockoutError (errors.Is(err, ErrLockedOut)).
var (
	// ErrAuthFailed is a wrong authValue (TPM_RC_AUTH_FAIL for a
	// DA-protected object, TPM_RC_BAD_AUTH for a noDA one).
	ErrAuthFailed = errors.New("tpm: authorization failed")
	// ErrLockedOut is a TPM in dictionary-attack lockout (TPM_RC_LOCKOUT).
	ErrLockedOut = errors.New("tpm: locked out (dictionary attack protection)")
	// ErrClosed is the use of a TPM or Key after Close.
	ErrClosed = errors.New("tpm: closed")
	// ErrCorruptBlob is a blob that is truncated, malformed, or of the wrong
	// kind; it is refused before or by the TPM.
	ErrCorruptBlob = errors.New("tpm: corrupt blob")
	// ErrWrongTPM is a blob the TPM refuses with TPM_RC_INTEGRITY: it was
	// created under another TPM's (or another seed's) storage root key, or
	// its private part was altered.
	ErrWrongTPM = errors.New("tpm: blob does not belong to this TPM (SRK mismatch)")
	// ErrSRKMismatch is returned by CheckSRK when the storage root key is not
	// the one whose Name was pinned.
	ErrSRKMismatch = errors.New("tpm: storage root key does not match the pinned name")
	// ErrSimulatorUnavailable is returned by OpenSimulator in builds without
	// cgo, where the embedded simulator cannot be compiled.
	ErrSimulatorUnavailable = errors.New("tpm: the embedded simulator needs cgo (build with CGO_ENABLED=1)")
	// ErrSimStateLocked is a simulator state file that another process (or
	// another open TPM of this one) is using: one process at a time.
	ErrSimStateLocked = errors.New("in use by another process (one process at a time; wait for it to finish)")
	// ErrSimStateCorrupt is a simulator state file that is truncated,
	// altered or not one at all. It is never replaced by a new TPM: the
	// file is left as it is, and opening fails until it is restored or
	// moved away.
	ErrSimStateCorrupt = errors.New("damaged")
)

// AuthError is a wrong authValue. Remaining is the number of failures the TPM
// still allows before lockout, read from TPM_PT_MAX_AUTH_FAIL and
// TPM_PT_LOCKOUT_COUNTER right after the failure; it is -1 when unknown or
// when the object is not protected by dictionary-attack logic (noDA).
type AuthError struct{ Remaining int }

func (e *AuthError) Error() string {
	if e.Remaining < 0 {
		return "tpm: authorization failed"
	}
	return fmt.Sprintf("tpm: authorization failed (%d tries remaining)", e.Remaining)
}

// Is makes errors.Is(err, ErrAuthFailed) true.
func (e *AuthError) Is(target error) bool { return target == ErrAuthFailed }

// LockoutError is a TPM in dictionary-attack lockout. RetryAfter is how long
// until the TPM forgives one failure (TPM_PT_LOCKOUT_INTERVAL; TPM 2.0 Part 1
// §19.8.6); it is an upper bound, since the TPM does not tell how much of the
// interval has elapsed. Zero means the lockout lasts until it is reset with
// lockout authorization.
type LockoutError struct{ RetryAfter time.Duration }

func (e *LockoutError) Error() string {
	if e.RetryAfter <= 0 {
		return "tpm: locked out until reset with lockout authorization"
	}
	return fmt.Sprintf("tpm: locked out (retry after %v)", e.RetryAfter)
}

// Is makes errors.Is(err, ErrLockedOut) true.
func (e *LockoutError) Is(target error) bool { return target == ErrLockedOut }

// corruptRCs are TPM response codes that mean the blob handed to the TPM is
// malformed (TPM 2.0 Part 2 §6.6): they become ErrCorruptBlob.
var corruptRCs = []tpm2.TPMRC{
	tpm2.TPMRCSize, tpm2.TPMRCValue, tpm2.TPMRCInsufficient, tpm2.TPMRCKey,
	tpm2.TPMRCKeySize, tpm2.TPMRCAttributes, tpm2.TPMRCType, tpm2.TPMRCHash,
	tpm2.TPMRCScheme, tpm2.TPMRCSymmetric, tpm2.TPMRCAsymmetric,
	tpm2.TPMRCBinding, tpm2.TPMRCSensitive, tpm2.TPMRCCurve, tpm2.TPMRCECCPoint,
	tpm2.TPMRCKDF, tpm2.TPMRCMode, tpm2.TPMRCTag, tpm2.TPMRCReservedBits, tpm2.TPMRCSelector,
}

func isCorruptRC(err error) bool {
	for _, rc := range corruptRCs {
		if errors.Is(err, rc) {
			return true
		}
	}
	return false
}

// isAuthRC reports a wrong authValue: TPM_RC_AUTH_FAIL or TPM_RC_BAD_AUTH
// (with any handle or session bits). counted is set for TPM_RC_AUTH_FAIL,
// the failure of a DA-protected entity, which the lockout counter counts.
func isAuthRC(err error) (wrong, counted bool) {
	if errors.Is(err, tpm2.TPMRCAuthFail) {
		return true, true
	}
	if errors.Is(err, tpm2.TPMRCBadAuth) {
		return true, false
	}
	return false, false
}

// retryableRC reports the warnings after which the same command may simply be
// sent again (TPM 2.0 Part 2 §6.6.3): TPM_RC_RETRY (swtpm answers it to the
// first DA-protected command after start), TPM_RC_YIELDED and TPM_RC_TESTING.
func retryableRC(err error) bool {
	return errors.Is(err, tpm2.TPMRCRetry) || errors.Is(err, tpm2.TPMRCYielded) ||
		errors.Is(err, tpm2.TPMRCTesting)
}

// sessionGoneRC reports that the shared session is no longer loaded
// (TPM_RC_REFERENCE_S0: our session is always the first one).
func sessionGoneRC(err error) bool {
	return errors.Is(err, tpm2.TPMRCReferenceS0)
}

// isCtxErr reports a context cancellation or deadline.
func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
