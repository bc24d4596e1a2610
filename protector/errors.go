package protector

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is; the errors this
// package returns wrap them with the detail of what went wrong.
var (
	// ErrDestroyed reports use of a Key or ReturnKey after Destroy.
	ErrDestroyed = errors.New("protector: key destroyed")

	// ErrMalformed reports an envelope that does not follow the binary
	// format: truncated, trailing bytes, a field out of bounds, a binding
	// that is empty or not valid UTF-8.
	ErrMalformed = errors.New("protector: malformed envelope")

	// ErrUnknownKey reports an envelope made for another service key, or a
	// key set with no key to wrap to. The PIN reset service's refusal of an
	// envelope under a key it does not hold (or has retired) matches it too.
	ErrUnknownKey = errors.New("protector: unknown service key")

	// ErrDecrypt reports a failed decryption: tampered data, a binding or
	// container that differs from the one sealed, or the wrong key. It never
	// says which, so that it cannot serve as an oracle.
	ErrDecrypt = errors.New("protector: decryption failed")

	// ErrKeyUnavailable reports that the service private key could not be
	// used: the KMS or HSM holding it failed or does not answer. It is not
	// the envelope's fault: a service answers "unavailable" (503) and
	// counts no failure against the user. Unwrapper implementations, and
	// the ecdh.KeyExchanger or crypto.Decrypter behind NewHPKEUnwrapper and
	// NewRSAUnwrapper, wrap their device errors with it, and only errors
	// that do not depend on the ciphertext, so that it is no oracle; Unwrap
	// passes them on instead of ErrDecrypt.
	ErrKeyUnavailable = errors.New("protector: service key unavailable")

	// ErrUnsupported reports an envelope version or a scheme this package
	// does not implement.
	ErrUnsupported = errors.New("protector: unsupported version or scheme")

	// ErrInvalidBinding reports a binding field that is empty, longer than
	// MaxBindingLength bytes, or not valid UTF-8.
	ErrInvalidBinding = errors.New("protector: invalid binding")

	// ErrInvalidKey reports public or private key material of the wrong
	// kind, size or encoding, including a private key file that
	// ParsePrivateKey refuses.
	ErrInvalidKey = errors.New("protector: invalid key")

	// ErrMalformedKeySet reports a key set that ParseKeySet refuses.
	ErrMalformedKeySet = errors.New("protector: malformed key set")
)

// EnvelopeError describes why ParseEnvelope refused its input, or why an
// Envelope cannot be encoded. Err is ErrMalformed or ErrUnsupported.
type EnvelopeError struct {
	Field  string // the field being read, e.g. "version", "tenant ID"
	Reason string // what was wrong with it
	Err    error  // ErrMalformed or ErrUnsupported
}

// Error names the sentinel, the field and the reason.
func (e *EnvelopeError) Error() string {
	return fmt.Sprintf("%v: %s: %s", e.Err, e.Field, e.Reason)
}

// Unwrap returns ErrMalformed or ErrUnsupported.
func (e *EnvelopeError) Unwrap() error { return e.Err }

func malformed(field, reason string) error {
	return &EnvelopeError{Field: field, Reason: reason, Err: ErrMalformed}
}

func unsupported(field, reason string) error {
	return &EnvelopeError{Field: field, Reason: reason, Err: ErrUnsupported}
}

// BindingError describes a binding field that Wrap refuses.
type BindingError struct {
	Field  string // "tenant ID", "user ID" or "container ID"
	Reason string
}

// Error names the field and what is wrong with it.
func (e *BindingError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrInvalidBinding, e.Field, e.Reason)
}

// Unwrap returns ErrInvalidBinding.
func (e *BindingError) Unwrap() error { return ErrInvalidBinding }

// KeySetError describes why ParseKeySet or KeySet.MarshalJSON refused a key
// set. It matches ErrMalformedKeySet, and Err when that is set (ErrUnsupported
// for a scheme this package does not know, ErrInvalidKey for bad key bytes).
type KeySetError struct {
	Index  int    // index of the key in "keys"; -1 for the set as a whole
	Field  string // JSON member, e.g. "kid"; empty for the set or a whole key
	Reason string
	Err    error // optional underlying sentinel
}

// Error names the key and member that were refused, and why.
func (e *KeySetError) Error() string {
	where := "key set"
	if e.Index >= 0 {
		where = fmt.Sprintf("keys[%d]", e.Index)
	}
	if e.Field != "" {
		where += "." + e.Field
	}
	return fmt.Sprintf("%v: %s: %s", ErrMalformedKeySet, where, e.Reason)
}

// Unwrap returns ErrMalformedKeySet and, when set, Err.
func (e *KeySetError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrMalformedKeySet, e.Err}
	}
	return []error{ErrMalformedKeySet}
}
