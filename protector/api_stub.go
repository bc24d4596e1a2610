// TEMPORARY API SKELETON — the protector implementer replaces this file with
// the real implementation (key.go, scheme.go, envelope.go, servicekey.go,
// keyset.go, returnkey.go ...). Exported names and signatures here are the
// agreed contract other packages code against; extend, but do not rename.

// Package protector implements the Windows Hello for Business PIN reset protector.
package protector

import (
	"errors"
	"io"
)

// Key is a 256-bit AES PIN reset protector (R).
type Key struct{ b [32]byte }

// NewKey makes a protector from rand (nil: crypto/rand).
func NewKey(rand io.Reader) (*Key, error) { return nil, errStub }

// Destroy wipes the key. Further use fails.
func (k *Key) Destroy() {}

// Seal encrypts secret (the container secret S) under k with AES-256-GCM; the
// AAD names the container.
func (k *Key) Seal(secret []byte, containerID string) ([]byte, error) { return nil, errStub }

// Open reverses Seal. The result is the caller's to wipe.
func (k *Key) Open(ciphertext []byte, containerID string) ([]byte, error) { return nil, errStub }

// Binding is authenticated into every envelope.
type Binding struct{ TenantID, UserID, ContainerID string }

// Scheme is how a protector is wrapped to the service.
type Scheme int

const (
	HPKEX25519  Scheme = iota // DHKEM(X25519)+HKDF-SHA256+AES-256-GCM (default)
	HPKEXWing                 // ML-KEM-768+X25519 hybrid
	RSAOAEP3072               // RSA-OAEP-SHA256, RSA-3072
)

// ServiceKey is the public half clients wrap to.
type ServiceKey struct{}

func (k ServiceKey) ID() string     { return "" }
func (k ServiceKey) Scheme() Scheme { return 0 }

// Wrap wraps r to the service key, binding b. rand nil: crypto/rand.
func (k ServiceKey) Wrap(r *Key, b Binding, rand io.Reader) (*Envelope, error) { return nil, errStub }

// Unwrapper is the service's private half as a KMS/HSM can implement it.
type Unwrapper interface {
	Public() ServiceKey
	Unwrap(env *Envelope) (*Key, error)
}

// ServicePrivateKey is a software service private key.
type ServicePrivateKey struct{}

func GenerateServiceKey(s Scheme) (*ServicePrivateKey, error)   { return nil, errStub }
func (k *ServicePrivateKey) Public() ServiceKey                 { return ServiceKey{} }
func (k *ServicePrivateKey) Unwrap(env *Envelope) (*Key, error) { return nil, errStub }

// KeySet is the JSON key set a service publishes.
type KeySet struct{ Keys []ServiceKey }

func (s KeySet) MarshalJSON() ([]byte, error) { return nil, errStub }
func ParseKeySet(data []byte) (KeySet, error) { return KeySet{}, errStub }

// Current is the key clients should wrap to (the first).
func (s KeySet) Current() (ServiceKey, error) { return ServiceKey{}, errStub }

// Envelope is a wrapped protector.
type Envelope struct{}

func (e *Envelope) Binding() Binding               { return Binding{} }
func (e *Envelope) KeyID() string                  { return "" }
func (e *Envelope) Scheme() Scheme                 { return 0 }
func (e *Envelope) MarshalBinary() ([]byte, error) { return nil, errStub }
func ParseEnvelope(data []byte) (*Envelope, error) { return nil, errStub }

// ReturnKey is the one-time HPKE X25519 key a client sends with a recover
// request; the service seals R to it so R never crosses the wire in clear.
type ReturnKey struct{}

func NewReturnKey() (*ReturnKey, error) { return nil, errStub }

// PublicKey is the 32-byte X25519 public key to send.
func (k *ReturnKey) PublicKey() []byte { return nil }

// Open opens what SealToReturnKey produced for env.
func (k *ReturnKey) Open(sealed []byte, env *Envelope) (*Key, error) { return nil, errStub }

// Destroy wipes the private key.
func (k *ReturnKey) Destroy() {}

// SealToReturnKey seals r to a client's one-time public key; info binds env.
func SealToReturnKey(clientPub []byte, r *Key, env *Envelope) ([]byte, error) { return nil, errStub }

var (
	ErrDestroyed   = errors.New("protector: key destroyed")
	ErrMalformed   = errors.New("protector: malformed envelope")
	ErrUnknownKey  = errors.New("protector: unknown service key")
	ErrDecrypt     = errors.New("protector: decryption failed")
	ErrUnsupported = errors.New("protector: unsupported version or scheme")
)

var errStub = errors.New("protector: not implemented yet")
