package pkcs11

import (
	"errors"
	"time"
)

// Config names the token and how to use it.
type Config struct {
	// Module is the path of the PKCS #11 module, e.g.
	// /usr/lib/softhsm/libsofthsm2.so.
	Module string
	// TokenLabel selects the token (CKA_LABEL of its token info).
	TokenLabel string
	// PIN is the user PIN. Take it from the environment or a secret store,
	// never from a command line; it is never logged.
	PIN string
	// Label is the prefix of the CKA_LABEL of the keys this package makes
	// and lists; "" means DefaultLabel. Services sharing a token use one.
	Label string
	// Sessions is how many sessions run operations in parallel; 0 means 4.
	Sessions int
	// Observe, when set, is called after every token operation with its
	// name ("decrypt", "derive", "generate", "ping"), duration and error:
	// a place to hang latency metrics.
	Observe func(op string, d time.Duration, err error)
}

// DefaultLabel starts the label of every key this package makes.
const DefaultLabel = "hellosim-pinreset"

// Sentinel errors.
var (
	// ErrNoCgo: the package was built without cgo, which the PKCS #11
	// binding needs.
	ErrNoCgo = errors.New("pkcs11: built without cgo")
	// ErrTokenNotFound: no token with the configured label.
	ErrTokenNotFound = errors.New("pkcs11: token not found")
	// ErrNoSuchKey: no key with that ID in the token.
	ErrNoSuchKey = errors.New("pkcs11: key not found")
	// ErrTokenClosed: the Token was closed.
	ErrTokenClosed = errors.New("pkcs11: token closed")
)
