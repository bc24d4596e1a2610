package protector

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
)

// ServiceKey is the public half of a PIN reset service key: what a client
// wraps its protector to (WHfB: "encrypted using a public key retrieved from
// the Microsoft PIN reset service"). It carries its scheme and a key ID so
// that the service can tell which of its keys an envelope needs, across key
// rotation.
//
// The zero ServiceKey is not a key; Wrap refuses it. ServiceKey values are
// immutable and safe for concurrent use.
type ServiceKey struct {
	scheme Scheme
	id     [keyIDSize]byte
	pub    []byte
	rcpt   recipient // the scheme's; nil in the zero ServiceKey
}

// NewServiceKey makes a service key from its public key bytes:
//
//   - HPKEX25519: the 32-byte X25519 public key (RFC 7748);
//   - HPKEXWing: the 1216-byte ML-KEM-768+X25519 encapsulation key
//     (draft-ietf-hpke-pq SerializePublicKey);
//   - HPKEP256: the 65-byte uncompressed P-256 point (SEC 1, 2.3.3);
//   - RSAOAEP3072: a DER SubjectPublicKeyInfo (RFC 5280) of an RSA-3072 key
//     with exponent 65537, in the canonical encoding Go produces.
//
// Anything else gives ErrInvalidKey (ErrUnsupported for an unknown scheme).
func NewServiceKey(s Scheme, pub []byte) (ServiceKey, error) {
	i, ok := s.info()
	if !ok {
		return ServiceKey{}, fmt.Errorf("%w: %v", ErrUnsupported, s)
	}
	pub = bytes.Clone(pub)
	rcpt, err := i.impl.recipient(pub)
	if err != nil {
		return ServiceKey{}, err
	}
	return ServiceKey{scheme: s, id: keyID(s, pub), pub: pub, rcpt: rcpt}, nil
}

func invalidKey(s Scheme, format string, args ...any) error {
	return fmt.Errorf("%w: %v: %s", ErrInvalidKey, s, fmt.Sprintf(format, args...))
}

// keyID is the first 16 bytes of SHA-256(scheme wire byte || public key).
func keyID(s Scheme, pub []byte) [keyIDSize]byte {
	h := sha256.New()
	h.Write([]byte{s.wire()})
	h.Write(pub)
	var id [keyIDSize]byte
	copy(id[:], h.Sum(nil))
	return id
}

func encodeKeyID(id [keyIDSize]byte) string { return b64url().EncodeToString(id[:]) }

// ID returns the key ID: unpadded base64url (22 characters) of the first 16
// bytes of SHA-256 over the scheme's wire byte and the public key bytes. It
// is the "kid" of a key set and the key ID in every envelope made with Wrap.
func (k ServiceKey) ID() string {
	if k.isZero() {
		return ""
	}
	return encodeKeyID(k.id)
}

// Scheme returns the key's wrapping scheme.
func (k ServiceKey) Scheme() Scheme { return k.scheme }

// Bytes returns a copy of the public key bytes, in the form NewServiceKey
// takes.
func (k ServiceKey) Bytes() []byte { return bytes.Clone(k.pub) }

// Equal reports whether k and o are the same key.
func (k ServiceKey) Equal(o ServiceKey) bool {
	return k.scheme == o.scheme && bytes.Equal(k.pub, o.pub) && !k.isZero()
}

// String returns the scheme and key ID, e.g.
// "hpke-x25519-sha256-aes256gcm:Qm9wXy1rZXktaWQtZXhhbQ".
func (k ServiceKey) String() string {
	if k.isZero() {
		return "protector.ServiceKey{}"
	}
	return k.scheme.String() + ":" + k.ID()
}

func (k ServiceKey) isZero() bool { return k.rcpt == nil }

// Wrap encrypts r to the service key, binding b, and returns the envelope.
// The header (version, scheme, key ID) and the binding are authenticated:
// they are the HPKE info, or the RSA-OAEP label.
//
// rand (nil: crypto/rand) is the source of the RSA-OAEP seed. The HPKE
// schemes draw their ephemeral key from crypto/rand, because Go's crypto/hpke
// takes no reader; tests that need fixed output use
// testing/cryptotest.SetGlobalRandom, which governs both.
func (k ServiceKey) Wrap(r *Key, b Binding, rand io.Reader) (*Envelope, error) {
	if k.isZero() {
		return nil, fmt.Errorf("protector: wrap: %w: zero service key", ErrInvalidKey)
	}
	rb, err := r.bytes()
	if err != nil {
		return nil, fmt.Errorf("protector: wrap: %w", err)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("protector: wrap: %w", err)
	}
	env := &Envelope{version: versionFor(b), scheme: k.scheme, keyID: k.id, binding: b}
	env.enc, env.ct, err = k.rcpt.seal(rb, env.authenticatedData(), rand)
	if err != nil {
		return nil, fmt.Errorf("protector: wrap: %w", err)
	}
	if err := env.check(); err != nil { // sizes are the scheme's, by construction
		return nil, fmt.Errorf("protector: wrap: %w", err)
	}
	return env, nil
}
