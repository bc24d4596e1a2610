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

	// ErrConflict is a Store.Save that would overwrite a container of the same
	// or a newer generation. The error is a *ConflictError.
	ErrConflict = errors.New("container: store holds the same or a newer generation")

	// ErrUserHasContainer is a Store.Save of a new container for a user who
	// already has one in the store (one container per user, as on Windows);
	// Store.Replace replaces it. The error is a *UserHasContainerError.
	ErrUserHasContainer = errors.New("container: the user already has a container in the store")

	// ErrNotFound is a Store.Load or Store.Delete of a container that is not
	// in the store.
	ErrNotFound = errors.New("container: not found")

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

// FileError is a store file that could not be read, parsed or written. Path
// names the file; Err says why (errors.Is(err, ErrCorrupt) for a corrupt file,
// which the store leaves in place).
type FileError struct {
	Path string
	Err  error
}

// Error names the file and the cause.
func (e *FileError) Error() string { return fmt.Sprintf("container store: %s: %v", e.Path, e.Err) }

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// ConflictError is a Save refused because the store already holds generation
// Stored of the container and the caller saves generation Saving (not newer),
// or, with Replace set, a Store.Replace refused because the stored
// generation is no longer Saving, the one the caller read and meant to
// replace: another writer changed the container in between.
type ConflictError struct {
	ID             string
	Stored, Saving uint64
	Replace        bool
}

// Error names the container and both generations.
func (e *ConflictError) Error() string {
	if e.Replace && e.Stored == 0 {
		return fmt.Sprintf("container store: container %s: generation %d being replaced is no longer in the store (deleted or replaced meanwhile)",
			e.ID, e.Saving)
	}
	if e.Replace {
		return fmt.Sprintf("container store: container %s: stored generation %d is not generation %d being replaced (changed meanwhile)",
			e.ID, e.Stored, e.Saving)
	}
	return fmt.Sprintf("container store: container %s: stored generation %d is not older than generation %d being saved",
		e.ID, e.Stored, e.Saving)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// UserHasContainerError is a new container refused because its user
// already has container ID (of generation Generation) in the store.
type UserHasContainerError struct {
	User, TenantID, UserID string
	ID                     string
	Generation             uint64
}

// Error names the user and the container they have.
func (e *UserHasContainerError) Error() string {
	return fmt.Sprintf("container store: user %s (object %s in tenant %s) already has container %s",
		e.User, e.UserID, e.TenantID, e.ID)
}

// Is makes errors.Is(err, ErrUserHasContainer) true.
func (e *UserHasContainerError) Is(target error) bool { return target == ErrUserHasContainer }
