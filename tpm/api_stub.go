// TEMPORARY API SKELETON — the tpm implementer replaces this file with the real
// implementation (split into open.go, seal.go, key.go, session.go, lockout.go,
// errors.go, stats.go ...). Exported names and signatures here are the agreed
// contract other packages code against; extend, but do not rename.

// Package tpm gives Hello-style access to a TPM 2.0.
package tpm

import (
	"context"
	"crypto"
	"errors"
	"io"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// KeyAlgorithm selects the algorithm of a signing key.
type KeyAlgorithm int

const (
	RSA2048 KeyAlgorithm = iota // default, as WHfB
	ECCP256
)

// Blob is a TPM object created under the SRK: TPM2B_PUBLIC and TPM2B_PRIVATE
// as the TPM marshals them (size prefix included).
type Blob struct{ Public, Private []byte }

// TPM is an open TPM connection. Safe for concurrent use.
type TPM struct{}

// SimulatorOption configures OpenSimulator.
type SimulatorOption func(*simConfig)

type simConfig struct {
	seed   int64
	seeded bool
}

// WithSeed makes the simulator reproducible (INSECURE).
func WithSeed(seed int64) SimulatorOption {
	return func(c *simConfig) { c.seed, c.seeded = seed, true }
}

var errStub = errors.New("tpm: not implemented yet")

func OpenSimulator(opts ...SimulatorOption) (*TPM, error) { return nil, errStub }
func OpenDevice(path string) (*TPM, error)                { return nil, errStub }
func Open(spec string) (*TPM, error)                      { return nil, errStub }
func New(tr transport.TPM) (*TPM, error)                  { return nil, errStub }
func (t *TPM) Close() error                               { return errStub }

// SRKName is the TPM2B_NAME (nameAlg || digest) of the storage root key. Callers
// record it and pass it back via CheckSRK to pin the SRK.
func (t *TPM) SRKName() []byte { return nil }

// IsSimulator reports whether this TPM is the embedded simulator.
func (t *TPM) IsSimulator() bool { return false }

// Seal creates a DA-protected sealed-data object under the SRK holding secret,
// authorised by auth (at most 32 bytes; any bytes, zeros included).
func (t *TPM) Seal(ctx context.Context, secret, auth []byte) (Blob, error) { return Blob{}, errStub }

// Unseal loads b, unseals it with auth, and flushes it.
func (t *TPM) Unseal(ctx context.Context, b Blob, auth []byte) ([]byte, error) { return nil, errStub }

// CreateKey creates a signing key (fixedTPM, fixedParent, sensitiveDataOrigin,
// userWithAuth, noDA, sign) under the SRK with the given auth.
func (t *TPM) CreateKey(ctx context.Context, alg KeyAlgorithm, auth []byte) (Blob, crypto.PublicKey, error) {
	return Blob{}, nil, errStub
}

// LoadKey loads a key blob and returns a handle usable as crypto.Signer. The
// key stays loaded until Close (or is evicted and reloaded when the TPM needs
// the slot). LoadKey copies auth.
func (t *TPM) LoadKey(ctx context.Context, b Blob, auth []byte) (*Key, error) { return nil, errStub }

// PublicKey decodes the public key of a key blob without the TPM.
func PublicKey(b Blob) (crypto.PublicKey, error) { return nil, errStub }

// Key is a loaded signing key. It implements crypto.Signer.
type Key struct{}

func (k *Key) Public() crypto.PublicKey { return nil }
func (k *Key) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return nil, errStub
}

// SignContext is Sign with a context.
func (k *Key) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return nil, errStub
}

// Close flushes the key and wipes its auth.
func (k *Key) Close() error { return errStub }

// LockoutStatus is the TPM's dictionary-attack state (TPM2_GetCapability, TPM_PT_*).
type LockoutStatus struct {
	Failures        uint32        // TPM_PT_LOCKOUT_COUNTER
	MaxTries        uint32        // TPM_PT_MAX_AUTH_FAIL
	Recovery        time.Duration // TPM_PT_LOCKOUT_INTERVAL
	LockoutRecovery time.Duration // TPM_PT_LOCKOUT_RECOVERY
	Locked          bool          // TPMA_PERMANENT inLockout
}

// Remaining is the number of failures still allowed before lockout.
func (s LockoutStatus) Remaining() int { return int(s.MaxTries) - int(s.Failures) }

func (t *TPM) LockoutStatus(ctx context.Context) (LockoutStatus, error) {
	return LockoutStatus{}, errStub
}

// SetLockoutParameters is TPM2_DictionaryAttackParameters (lockout hierarchy).
func (t *TPM) SetLockoutParameters(ctx context.Context, maxTries uint32, recovery, lockoutRecovery time.Duration, lockoutAuth []byte) error {
	return errStub
}

// ResetLockout is TPM2_DictionaryAttackLockReset (lockout hierarchy).
func (t *TPM) ResetLockout(ctx context.Context, lockoutAuth []byte) error { return errStub }

// Stats counts TPM commands sent, by command code.
type Stats struct {
	Commands map[tpm2.TPMCC]uint64
}

// Total is the number of commands sent.
func (s Stats) Total() uint64 {
	var n uint64
	for _, v := range s.Commands {
		n += v
	}
	return n
}

// Stats returns a snapshot of the command counters.
func (t *TPM) Stats() Stats { return Stats{} }

// ResetStats zeroes the command counters.
func (t *TPM) ResetStats() {}

// Errors. Wrong auth surfaces as *AuthError (errors.Is ErrAuthFailed); a locked
// TPM as *LockoutError (errors.Is ErrLockedOut).
var (
	ErrAuthFailed  = errors.New("tpm: authorization failed")
	ErrLockedOut   = errors.New("tpm: locked out (dictionary attack protection)")
	ErrClosed      = errors.New("tpm: closed")
	ErrCorruptBlob = errors.New("tpm: corrupt blob")
	ErrWrongTPM    = errors.New("tpm: blob does not belong to this TPM (SRK mismatch)")
	ErrSRKMismatch = errors.New("tpm: storage root key does not match the pinned name")
)

// AuthError is a wrong authValue. Remaining is the tries left before lockout
// (-1 when unknown).
type AuthError struct{ Remaining int }

func (e *AuthError) Error() string        { return "tpm: authorization failed" }
func (e *AuthError) Is(target error) bool { return target == ErrAuthFailed }

// LockoutError is a TPM in dictionary-attack lockout.
type LockoutError struct{ RetryAfter time.Duration }

func (e *LockoutError) Error() string        { return "tpm: locked out" }
func (e *LockoutError) Is(target error) bool { return target == ErrLockedOut }

// CheckSRK returns ErrSRKMismatch when name is not this TPM's SRK name.
func (t *TPM) CheckSRK(name []byte) error { return errStub }
