package protector

import (
	"crypto/ecdh"
	"crypto/hpke"
	"fmt"
)

// Scheme is how a protector is wrapped to the service: the public-key
// algorithm of the service key and the encryption built on it.
//
// The zero value is HPKEX25519, the default.
type Scheme int

const (
	// HPKEX25519 is HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256),
	// HKDF-SHA256 and AES-256-GCM. It is the default.
	HPKEX25519 Scheme = iota

	// HPKEXWing is HPKE base mode with the post-quantum hybrid KEM
	// ML-KEM-768+X25519 (X-Wing, draft-ietf-hpke-pq), HKDF-SHA256 and
	// AES-256-GCM. It stays safe if either component is broken.
	HPKEXWing

	// RSAOAEP3072 is RSA-OAEP (RFC 8017) with SHA-256 for both the hash and
	// MGF1, under an RSA-3072 key with public exponent 65537: for services
	// whose key lives in an HSM that speaks RSA only.
	RSAOAEP3072

	// HPKEP256 is HPKE base mode with DHKEM(P-256, HKDF-SHA256),
	// HKDF-SHA256 and AES-256-GCM: for services whose key lives in an HSM,
	// which computes the Diffie-Hellman (PKCS #11 CKM_ECDH1_DERIVE) where
	// X25519 is rarely offered.
	HPKEP256
)

// Scheme wire identifiers: the byte an envelope, a private key file and the
// key ID carry. They are fixed forever; the Go constants above may be
// reordered without changing any stored byte.
const (
	wireHPKEX25519  = 0x01
	wireHPKEXWing   = 0x02
	wireRSAOAEP3072 = 0x03
	wireHPKEP256    = 0x04
)

// Fixed sizes, per scheme, of what Wrap produces. ParseEnvelope requires
// exactly these, so that no byte of an envelope is left unchecked.
const (
	x25519EncSize = 32        // DHKEM(X25519) encapsulated key (RFC 9180, 7.1)
	xwingEncSize  = 1088 + 32 // ML-KEM-768 ciphertext + X25519 share
	p256EncSize   = 65        // DHKEM(P-256) encapsulated key: an uncompressed point (RFC 9180, 7.1.1)
	hpkeCtSize    = KeySize + 16
	rsaBits       = 3072
	rsaCtSize     = rsaBits / 8
	rsaExponent   = 65537

	x25519PubSize = 32
	xwingPubSize  = 1184 + 32 // ML-KEM-768 encapsulation key + X25519 key
	p256PubSize   = 65        // uncompressed SEC 1 point
)

// schemeNames are the schemes' names in key sets, indexed by Scheme; a
// function, so that no package state can change them.
func schemeNames() [4]string {
	return [...]string{
		HPKEX25519:  "hpke-x25519-sha256-aes256gcm",
		HPKEXWing:   "hpke-mlkem768x25519-sha256-aes256gcm",
		RSAOAEP3072: "rsa-oaep-sha256-3072",
		HPKEP256:    "hpke-p256-sha256-aes256gcm",
	}
}

// String returns the scheme's name as it appears in a key set, e.g.
// "hpke-x25519-sha256-aes256gcm".
func (s Scheme) String() string {
	if s.valid() {
		return schemeNames()[s]
	}
	return fmt.Sprintf("Scheme(%d)", int(s))
}

// ParseScheme is the inverse of Scheme.String.
func ParseScheme(name string) (Scheme, error) {
	for s, n := range schemeNames() {
		if n == name {
			return Scheme(s), nil
		}
	}
	return 0, fmt.Errorf("%w: scheme %.64q", ErrUnsupported, name)
}

// MarshalText implements encoding.TextMarshaler with the scheme's name.
func (s Scheme) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, s)
	}
	return []byte(schemeNames()[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseScheme.
func (s *Scheme) UnmarshalText(text []byte) error {
	v, err := ParseScheme(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

func (s Scheme) valid() bool { return s >= HPKEX25519 && s <= HPKEP256 }

func (s Scheme) wire() uint8 {
	switch s {
	case HPKEX25519:
		return wireHPKEX25519
	case HPKEXWing:
		return wireHPKEXWing
	case RSAOAEP3072:
		return wireRSAOAEP3072
	case HPKEP256:
		return wireHPKEP256
	}
	return 0
}

func schemeFromWire(b uint8) (Scheme, bool) {
	switch b {
	case wireHPKEX25519:
		return HPKEX25519, true
	case wireHPKEXWing:
		return HPKEXWing, true
	case wireRSAOAEP3072:
		return RSAOAEP3072, true
	case wireHPKEP256:
		return HPKEP256, true
	}
	return 0, false
}

// encSize and ctSize are the exact lengths of the two variable fields of an
// envelope under s.
func (s Scheme) encSize() int {
	switch s {
	case HPKEX25519:
		return x25519EncSize
	case HPKEXWing:
		return xwingEncSize
	case HPKEP256:
		return p256EncSize
	}
	return 0
}

func (s Scheme) ctSize() int {
	if s == RSAOAEP3072 {
		return rsaCtSize
	}
	return hpkeCtSize
}

// kem returns the HPKE KEM of an HPKE scheme, nil otherwise.
func (s Scheme) kem() hpke.KEM {
	switch s {
	case HPKEX25519:
		return hpke.DHKEM(ecdh.X25519())
	case HPKEXWing:
		return hpke.MLKEM768X25519()
	case HPKEP256:
		return hpke.DHKEM(ecdh.P256())
	}
	return nil
}

// schemeForKEM maps an HPKE KEM identifier (RFC 9180 7.1,
// draft-ietf-hpke-pq) to the scheme using it.
func schemeForKEM(id uint16) (Scheme, bool) {
	switch id {
	case 0x0020: // DHKEM(X25519, HKDF-SHA256)
		return HPKEX25519, true
	case 0x647a: // MLKEM768-X25519 (X-Wing)
		return HPKEXWing, true
	case 0x0010: // DHKEM(P-256, HKDF-SHA256)
		return HPKEP256, true
	}
	return 0, false
}

// The KDF and AEAD are the same for every HPKE scheme.
func hpkeSuite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.AES256GCM() }
