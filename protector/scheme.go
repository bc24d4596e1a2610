package protector

import (
	"fmt"
	"io"
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

// schemeInfo is everything that differs between schemes. Each scheme's
// file (scheme_hpke.go, scheme_rsa.go) makes its own; ServiceKey holds a
// recipient and ServicePrivateKey an identity of it, so no other code asks
// which scheme it has. Adding a scheme is a file with its schemeInfo and
// one line in schemeInfos.
type schemeInfo struct {
	name    string // in key sets (Scheme.String)
	wire    uint8  // in envelopes, private key files and key IDs
	encSize int    // the envelope's exact enc length
	ctSize  int    // the envelope's exact ciphertext length
	impl    schemeImpl
}

// schemeImpl is a scheme's keys.
type schemeImpl interface {
	// recipient checks a public key in NewServiceKey's form and returns
	// what Wrap seals with: an ErrInvalidKey for a key that is not one.
	recipient(pub []byte) (recipient, error)
	// identity takes existing private key material (an hpke.PrivateKey,
	// an *rsa.PrivateKey); false when priv is not of this scheme.
	identity(priv any) (identity, bool, error)
	// generate makes a new private key from crypto/rand.
	generate() (identity, error)
	// parse reads the key bytes of a private key file, canonical only.
	parse(raw []byte) (identity, error)
}

// recipient is a service public key of one scheme: it encrypts a
// protector's bytes, authenticating ad.
type recipient interface {
	seal(r, ad []byte, rand io.Reader) (enc, ct []byte, err error)
}

// identity is a service private key of one scheme, in software or held by
// a KMS or an HSM.
type identity interface {
	// public is its service key.
	public() (ServiceKey, error)
	// open decrypts an envelope already matched to the key and returns
	// the plaintext, which the caller wipes: ErrDecrypt when it does not
	// open, ErrKeyUnavailable when the key's holder failed.
	open(env *Envelope) ([]byte, error)
	// marshal returns the key bytes of a private key file (secret: the
	// caller wipes them); an error for a key that cannot be exported.
	marshal() ([]byte, error)
}

// schemeCount is how many schemes exist: Scheme values 0 to schemeCount-1.
const schemeCount = 4

// schemeInfos are the schemes, indexed by Scheme; a function, so that no
// package state can change them (and cheap: the values are constants).
func schemeInfos() [schemeCount]schemeInfo {
	return [...]schemeInfo{
		HPKEX25519:  hpkeX25519Info(),
		HPKEXWing:   hpkeXWingInfo(),
		RSAOAEP3072: rsaOAEP3072Info(),
		HPKEP256:    hpkeP256Info(),
	}
}

// info returns s's schemeInfo; false for a scheme that does not exist.
func (s Scheme) info() (schemeInfo, bool) {
	if !s.valid() {
		return schemeInfo{}, false
	}
	return schemeInfos()[s], true
}

// String returns the scheme's name as it appears in a key set, e.g.
// "hpke-x25519-sha256-aes256gcm".
func (s Scheme) String() string {
	if i, ok := s.info(); ok {
		return i.name
	}
	return fmt.Sprintf("Scheme(%d)", int(s))
}

// ParseScheme is the inverse of Scheme.String.
func ParseScheme(name string) (Scheme, error) {
	for s, i := range schemeInfos() {
		if i.name == name {
			return Scheme(s), nil
		}
	}
	return 0, fmt.Errorf("%w: scheme %.64q", ErrUnsupported, name)
}

// MarshalText implements encoding.TextMarshaler with the scheme's name.
func (s Scheme) MarshalText() ([]byte, error) {
	i, ok := s.info()
	if !ok {
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, s)
	}
	return []byte(i.name), nil
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

func (s Scheme) valid() bool { return s >= 0 && s < schemeCount }

func (s Scheme) wire() uint8 {
	if i, ok := s.info(); ok {
		return i.wire
	}
	return 0
}

func schemeFromWire(b uint8) (Scheme, bool) {
	for s, i := range schemeInfos() {
		if i.wire == b {
			return Scheme(s), true
		}
	}
	return 0, false
}

// encSize and ctSize are the exact lengths of the two variable fields of an
// envelope under s.
func (s Scheme) encSize() int {
	if i, ok := s.info(); ok {
		return i.encSize
	}
	return 0
}

func (s Scheme) ctSize() int {
	if i, ok := s.info(); ok {
		return i.ctSize
	}
	return 0
}
