package protector

import (
	"crypto/hpke"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
)

// ServicePrivateKey is a service key held in software: a private key of one
// of the schemes, which the reference service generates, persists with
// MarshalBinary and loads with ParsePrivateKey. Services that keep their key
// in a KMS or HSM use NewHPKEUnwrapper or NewRSAUnwrapper instead.
//
// A ServicePrivateKey never prints its private key. It is safe for
// concurrent use.
type ServicePrivateKey struct {
	pub ServiceKey
	id  identity // the scheme's
}

// GenerateServiceKey generates a new service key of scheme s from
// crypto/rand.
func GenerateServiceKey(s Scheme) (*ServicePrivateKey, error) {
	i, ok := s.info()
	if !ok {
		return nil, fmt.Errorf("protector: generate: %w: %v", ErrUnsupported, s)
	}
	id, err := i.impl.generate()
	if err != nil {
		return nil, fmt.Errorf("protector: generate %v: %w", s, err)
	}
	return newServicePrivateKey(id)
}

// NewServicePrivateKey makes a service key from existing key material: an
// hpke.PrivateKey of DHKEM(X25519), MLKEM768-X25519 or DHKEM(P-256), or an *rsa.PrivateKey
// of 3072 bits with exponent 65537.
func NewServicePrivateKey(priv any) (*ServicePrivateKey, error) {
	for _, i := range schemeInfos() {
		id, ok, err := i.impl.identity(priv)
		switch {
		case err != nil:
			return nil, err
		case ok:
			return newServicePrivateKey(id)
		}
	}
	if p, ok := priv.(hpke.PrivateKey); ok && p != nil {
		return nil, fmt.Errorf("%w: HPKE KEM 0x%04x", ErrUnsupported, p.KEM().ID())
	}
	return nil, fmt.Errorf("%w: private key of type %T", ErrUnsupported, priv)
}

func newServicePrivateKey(id identity) (*ServicePrivateKey, error) {
	pub, err := id.public()
	if err != nil {
		return nil, err
	}
	return &ServicePrivateKey{pub: pub, id: id}, nil
}

// Public returns the service key clients wrap to.
func (k *ServicePrivateKey) Public() ServiceKey { return k.pub }

// Unwrap opens an envelope made for k.Public(). It returns ErrUnknownKey
// when the envelope names another key or scheme, and ErrDecrypt when the
// envelope does not open: any change to its bytes, binding included, or a
// key that does not match. After Unwrap succeeds, env.Binding() is
// authenticated. The Key is the caller's to Destroy.
func (k *ServicePrivateKey) Unwrap(env *Envelope) (*Key, error) { return unwrap(k.pub, k.id, env) }

// String returns the scheme and key ID, never the private key.
func (k *ServicePrivateKey) String() string { return redacted("ServicePrivateKey", k.pub) }

// GoString is String.
func (k *ServicePrivateKey) GoString() string { return k.String() }

// Format prints String for every verb.
func (k *ServicePrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// Private key file format, version 1:
//
//	magic    4 bytes  "HSPK"
//	version  uint8    0x01
//	scheme   uint8    as in an envelope
//	key      uint16 length || bytes: the HPKE SerializePrivateKey output
//	         (32 bytes for every HPKE scheme), or PKCS #8 DER for RSA
const (
	privateKeyMagic   = "HSPK"
	privateKeyVersion = 1
)

// MarshalBinary encodes the private key so that ParsePrivateKey restores it.
// The result is secret: the caller stores it with care and wipes it. Keys
// that cannot be exported (a hardware-backed hpke.PrivateKey) fail.
func (k *ServicePrivateKey) MarshalBinary() ([]byte, error) {
	raw, err := k.id.marshal()
	if err != nil {
		return nil, fmt.Errorf("protector: marshal private key: %w", err)
	}
	defer clear(raw)
	var b cryptobyte.Builder
	b.AddBytes([]byte(privateKeyMagic))
	b.AddUint8(privateKeyVersion)
	b.AddUint8(k.pub.scheme.wire())
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(raw) })
	return b.Bytes()
}

func badKeyFile(reason string) error {
	return fmt.Errorf("protector: parse private key: %w: %s", ErrInvalidKey, reason)
}

// ParsePrivateKey decodes what ServicePrivateKey.MarshalBinary produced,
// strictly: truncation, trailing bytes or a key that is not in canonical
// form give ErrInvalidKey; an unknown version or scheme gives ErrUnsupported.
func ParsePrivateKey(data []byte) (*ServicePrivateKey, error) {
	s := cryptobyte.String(data)
	var magic []byte
	var version, wire uint8
	var raw cryptobyte.String
	if !s.ReadBytes(&magic, len(privateKeyMagic)) || string(magic) != privateKeyMagic {
		return nil, badKeyFile("not a protector private key")
	}
	if !s.ReadUint8(&version) || !s.ReadUint8(&wire) {
		return nil, badKeyFile("truncated")
	}
	if version != privateKeyVersion {
		return nil, fmt.Errorf("protector: parse private key: %w: version %d", ErrUnsupported, version)
	}
	scheme, ok := schemeFromWire(wire)
	if !ok {
		return nil, fmt.Errorf("protector: parse private key: %w: scheme 0x%02x", ErrUnsupported, wire)
	}
	if !s.ReadUint16LengthPrefixed(&raw) {
		return nil, badKeyFile("truncated")
	}
	if !s.Empty() {
		return nil, badKeyFile("trailing bytes")
	}
	i, _ := scheme.info() // schemeFromWire named it
	id, err := i.impl.parse(raw)
	if err != nil {
		return nil, err
	}
	return newServicePrivateKey(id)
}
