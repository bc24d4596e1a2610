package container

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Callers branch on them with errors.Is; the typed errors
// below carry the details (errors.As).
var (
	// ErrWrongPIN is a PIN the TPM refused. The error is a *PINError saying how
	// many tries remain before the TPM locks.
	ErrWrongPIN = errors.New("container: wrong PIN")

	// ErrPINLocked is a TPM in dictionary-attack lockout. The error is a
	// *PINLockedError saying when the next try is possible.
	ErrPINLocked = errors.New("container: PIN locked (TPM dictionary-attack lockout)")

	// ErrPINMayHaveChanged is a ChangePIN with rollback protection whose
	// outcome is not known: the TPM's answer to the change was lost and the
	// TPM could not be asked afterwards, so it holds the old PIN or the new
	// one. The container from before the change opens with the one it
	// holds; try the new PIN first.
	ErrPINMayHaveChanged = errors.New("container: the PIN may have changed: try the new PIN")

	// ErrPINPolicy is a PIN the PIN policy refuses. The error is a *PolicyError
	// naming the rule.
	ErrPINPolicy = errors.New("container: PIN does not meet the PIN policy")

	// ErrInvalidConfig is a Config (or PINPolicy) outside the ranges the
	// PassportForWork CSP allows, or missing a required field.
	ErrInvalidConfig = errors.New("container: invalid configuration")

	// ErrNoProtector is an operation that needs the PIN reset protector on a
	// container that has none (PIN recovery not enabled).
	ErrNoProtector = errors.New("container: no PIN reset protector enrolled")

	// ErrCorrupt is a container encoding that does not parse: truncated,
	// altered, or not a container at all.
	ErrCorrupt = errors.New("container: corrupt container data")

	// ErrUnsupportedVersion is a container encoding of a format version this
	// package does not know. It also matches ErrCorrupt.
	ErrUnsupportedVersion = errors.New("container: unsupported format version")

	// ErrSessionClosed is the use of a Session after Close.
	ErrSessionClosed = errors.New("container: session closed")

	// ErrNoKey is a Session.Key or AddCertificate naming a key the container
	// does not hold.
	ErrNoKey = errors.New("container: no such key")

	// ErrKeyExists is a Session.AddKey with a name already in use.
	ErrKeyExists = errors.New("container: key name already in use")

	// ErrCertificateMismatch is a certificate whose public key is not the key
	// it is added for.
	ErrCertificateMismatch = errors.New("container: certificate public key does not match the key")
)

// PINError is a wrong PIN. Remaining is the number of wrong PINs the TPM still
// accepts before it locks (its dictionary-attack counter; TPM 2.0 Part 1,
// "Dictionary Attack Protection"), or -1 when the TPM did not say.
type PINError struct {
	Remaining int
}

// Error says how many tries remain; it never contains the PIN.
func (e *PINError) Error() string {
	switch {
	case e.Remaining < 0:
		return "container: wrong PIN"
	case e.Remaining == 0:
		return "container: wrong PIN; no tries remain, the TPM is now locked"
	case e.Remaining == 1:
		return "container: wrong PIN; 1 try remains before the TPM locks"
	default:
		return fmt.Sprintf("container: wrong PIN; %d tries remain before the TPM locks", e.Remaining)
	}
}

// Is makes errors.Is(err, ErrWrongPIN) true.
func (e *PINError) Is(target error) bool { return target == ErrWrongPIN }

// PINLockedError is a TPM in dictionary-attack lockout. RetryAfter is how long
// until the TPM forgives a failure and accepts the next try (Windows configures
// one forgiven failure every 10 minutes), 0 when unknown.
type PINLockedError struct {
	RetryAfter time.Duration
}

// Error says when the next try is possible.
func (e *PINLockedError) Error() string {
	if e.RetryAfter <= 0 {
		return "container: PIN locked by the TPM's dictionary-attack protection; try again later"
	}
	return fmt.Sprintf("container: PIN locked by the TPM's dictionary-attack protection; next try possible in %s",
		e.RetryAfter.Round(time.Second))
}

// Is makes errors.Is(err, ErrPINLocked) true.
func (e *PINLockedError) Is(target error) bool { return target == ErrPINLocked }

// PolicyError is a PIN the PIN policy refuses. Rule is the rule that failed;
// the message never contains the PIN.
type PolicyError struct {
	Rule   Rule
	Detail string // what the rule asks for, e.g. "at least 6 characters"
}

// Error names the rule and what it asks for; it never contains the PIN.
func (e *PolicyError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("container: PIN refused by policy rule %s", e.Rule)
	}
	return fmt.Sprintf("container: PIN refused by policy rule %s: %s", e.Rule, e.Detail)
}

// Is makes errors.Is(err, ErrPINPolicy) true.
func (e *PolicyError) Is(target error) bool { return target == ErrPINPolicy }

// FormatError is container data that does not parse. Field names the part of
// the encoding that failed.
type FormatError struct {
	Field  string
	Reason string
	// Unsupported is set when the data is of a format version this package
	// does not know; Version is that version.
	Unsupported bool
	Version     int
}

// Error names the field that failed to parse.
func (e *FormatError) Error() string {
	return fmt.Sprintf("container: corrupt container data: %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true, and ErrUnsupportedVersion for an
// unknown version.
func (e *FormatError) Is(target error) bool {
	return target == ErrCorrupt || (target == ErrUnsupportedVersion && e.Unsupported)
}
