package protector

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
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
	scheme  Scheme
	id      [keyIDSize]byte
	pub     []byte
	hpkePub hpke.PublicKey // HPKE schemes
	rsaPub  *rsa.PublicKey // RSAOAEP3072
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
	k := ServiceKey{scheme: s, pub: bytes.Clone(pub)}
	switch s {
	case HPKEX25519, HPKEXWing:
		want := x25519PubSize
		if s == HPKEXWing {
			want = xwingPubSize
		}
		if len(pub) != want {
			return ServiceKey{}, invalidKey(s, "%d bytes, want %d", len(pub), want)
		}
		// An X25519 share of small order would make every encapsulation
		// fail (RFC 7748, 6.1); refuse it here, where the cause is clear.
		if err := checkX25519Share(pub[len(pub)-x25519PubSize:]); err != nil {
			return ServiceKey{}, invalidKey(s, "X25519 share of small order")
		}
		pk, err := s.kem().NewPublicKey(pub)
		if err != nil {
			return ServiceKey{}, invalidKey(s, "%v", err)
		}
		k.hpkePub = pk
	case HPKEP256:
		if len(pub) != p256PubSize {
			return ServiceKey{}, invalidKey(s, "%d bytes, want %d", len(pub), p256PubSize)
		}
		// crypto/ecdh takes only uncompressed points on the curve, so the
		// encoding is canonical and the point valid.
		pk, err := s.kem().NewPublicKey(pub)
		if err != nil {
			return ServiceKey{}, invalidKey(s, "%v", err)
		}
		k.hpkePub = pk
	case RSAOAEP3072:
		parsed, err := x509.ParsePKIXPublicKey(pub)
		if err != nil {
			return ServiceKey{}, invalidKey(s, "not a DER SubjectPublicKeyInfo")
		}
		rk, ok := parsed.(*rsa.PublicKey)
		if !ok {
			return ServiceKey{}, invalidKey(s, "%T, not RSA", parsed)
		}
		if err := checkRSAPublic(rk); err != nil {
			return ServiceKey{}, err
		}
		canonical, err := x509.MarshalPKIXPublicKey(rk)
		if err != nil || !bytes.Equal(canonical, pub) {
			return ServiceKey{}, invalidKey(s, "non-canonical DER")
		}
		k.rsaPub = rk
	default:
		return ServiceKey{}, fmt.Errorf("%w: %v", ErrUnsupported, s)
	}
	k.id = keyID(s, pub)
	return k, nil
}

func invalidKey(s Scheme, format string, args ...any) error {
	return fmt.Errorf("%w: %v: %s", ErrInvalidKey, s, fmt.Sprintf(format, args...))
}

func checkRSAPublic(k *rsa.PublicKey) error {
	if k.N == nil || k.N.BitLen() != rsaBits {
		return invalidKey(RSAOAEP3072, "modulus is not %d bits", rsaBits)
	}
	if k.E != rsaExponent {
		return invalidKey(RSAOAEP3072, "public exponent %d, want %d", k.E, rsaExponent)
	}
	return nil
}

// checkX25519Share fails for a small-order X25519 public key: its product
// with any clamped scalar is zero, which crypto/ecdh reports as an error.
func checkX25519Share(pub []byte) error {
	var scalar [32]byte
	scalar[0] = 0x09
	priv, err := ecdh.X25519().NewPrivateKey(scalar[:])
	if err != nil {
		return err
	}
	pk, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return err
	}
	_, err = priv.ECDH(pk)
	return err
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

func (k ServiceKey) isZero() bool { return k.hpkePub == nil && k.rsaPub == nil }

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
	ad := env.authenticatedData()
	switch k.scheme {
	case HPKEX25519, HPKEXWing, HPKEP256:
		kdf, aead := hpkeSuite()
		out, err := hpke.Seal(k.hpkePub, kdf, aead, ad, rb)
		if err != nil {
			return nil, fmt.Errorf("protector: wrap: hpke: %w", err)
		}
		n := k.scheme.encSize()
		env.enc, env.ct = out[:n:n], out[n:]
	case RSAOAEP3072:
		if rand == nil {
			rand = crand.Reader
		}
		ct, err := rsa.EncryptOAEP(sha256.New(), rand, k.rsaPub, rb, ad)
		if err != nil {
			return nil, fmt.Errorf("protector: wrap: rsa-oaep: %w", err)
		}
		env.enc, env.ct = []byte{}, ct
	}
	if err := env.check(); err != nil { // sizes are the scheme's, by construction
		return nil, fmt.Errorf("protector: wrap: %w", err)
	}
	return env, nil
}
