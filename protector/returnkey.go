package protector

import (
	"crypto/ecdh"
	"crypto/hpke"
	crand "crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
)

// returnLabel starts the HPKE info of SealToReturnKey; the SHA-256 of the
// envelope follows, so a sealed protector answers one request only.
const returnLabel = "hellosim protector v1 return"

// ReturnSealedSize is the size of what SealToReturnKey produces: the
// X25519 encapsulated key and the sealed 32-byte protector with its tag.
const ReturnSealedSize = 32 + KeySize + 16 // 80

// ReturnKey is the one-time HPKE key (DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, AES-256-GCM) that a client sends with a recover request. The
// service seals the protector to it, so the protector is never in clear on
// the wire, in a proxy or in a log. Make a new one for every request and
// Destroy it after Open.
//
// A ReturnKey never prints its private key. Copies share one secret.
type ReturnKey struct{ s *returnKeyState }

type returnKeyState struct {
	seed      [32]byte // the X25519 private key (RFC 7748 scalar, unclamped)
	pub       []byte
	destroyed bool
}

// NewReturnKey generates a one-time key from crypto/rand.
func NewReturnKey() (*ReturnKey, error) {
	k := &ReturnKey{s: new(returnKeyState)}
	if _, err := io.ReadFull(crand.Reader, k.s.seed[:]); err != nil {
		k.Destroy()
		return nil, fmt.Errorf("protector: new return key: %w", err)
	}
	priv, err := k.private()
	if err != nil {
		k.Destroy()
		return nil, fmt.Errorf("protector: new return key: %w", err)
	}
	k.s.pub = priv.PublicKey().Bytes()
	return k, nil
}

// private rebuilds the HPKE private key from the seed. crypto/hpke keeps its
// own copy, which Go gives no way to wipe; it lives only for one call.
func (k *ReturnKey) private() (hpke.PrivateKey, error) {
	if k == nil || k.s == nil || k.s.destroyed {
		return nil, ErrDestroyed
	}
	return hpke.DHKEM(ecdh.X25519()).NewPrivateKey(k.s.seed[:])
}

// PublicKey returns the 32-byte X25519 public key to send to the service.
func (k *ReturnKey) PublicKey() []byte {
	if k == nil || k.s == nil {
		return nil
	}
	return append([]byte(nil), k.s.pub...)
}

// Open opens what SealToReturnKey produced for env and returns the
// protector; the caller Destroys it. A sealed value that was altered, made
// for another envelope or for another key gives ErrDecrypt.
func (k *ReturnKey) Open(sealed []byte, env *Envelope) (*Key, error) {
	priv, err := k.private()
	if err != nil {
		return nil, fmt.Errorf("protector: open returned key: %w", err)
	}
	info, err := returnInfo(env)
	if err != nil {
		return nil, fmt.Errorf("protector: open returned key: %w", err)
	}
	if len(sealed) != ReturnSealedSize {
		return nil, ErrDecrypt
	}
	kdf, aead := hpkeSuite()
	pt, err := hpke.Open(priv, kdf, aead, info, sealed)
	if err != nil {
		return nil, ErrDecrypt
	}
	return keyFromPlaintext(pt)
}

// Destroy wipes the private key. Open fails with ErrDestroyed afterwards.
func (k *ReturnKey) Destroy() {
	if k == nil || k.s == nil {
		return
	}
	clear(k.s.seed[:])
	k.s.destroyed = true
}

// String returns "protector.ReturnKey{REDACTED}", never the key.
func (ReturnKey) String() string { return "protector.ReturnKey{REDACTED}" }

// GoString is String.
func (k ReturnKey) GoString() string { return k.String() }

// Format prints String for every verb.
func (k ReturnKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// CheckReturnKey reports whether clientPub is a public key SealToReturnKey
// accepts: 32 bytes, an X25519 point of large order (not one of the
// small-order points RFC 7748 §6.1 warns of, whose shared secret is known
// to all). The service calls it before any other work on a request. The
// error matches ErrInvalidKey.
func CheckReturnKey(clientPub []byte) error {
	if len(clientPub) != x25519PubSize || checkX25519Share(clientPub) != nil {
		return fmt.Errorf("protector: return key: %w: want a 32-byte X25519 public key of large order", ErrInvalidKey)
	}
	return nil
}

// SealToReturnKey seals r to a client's one-time public key (the 32 bytes of
// ReturnKey.PublicKey) with HPKE; the info binds the SHA-256 of the envelope
// r came from, so the result opens only for that request. A public key of
// the wrong size or of small order gives ErrInvalidKey.
func SealToReturnKey(clientPub []byte, r *Key, env *Envelope) ([]byte, error) {
	rb, err := r.bytes()
	if err != nil {
		return nil, fmt.Errorf("protector: seal to return key: %w", err)
	}
	if len(clientPub) != x25519PubSize || checkX25519Share(clientPub) != nil {
		return nil, fmt.Errorf("protector: seal to return key: %w: want a 32-byte X25519 public key of large order", ErrInvalidKey)
	}
	pk, err := hpke.DHKEM(ecdh.X25519()).NewPublicKey(clientPub)
	if err != nil {
		return nil, fmt.Errorf("protector: seal to return key: %w: %v", ErrInvalidKey, err)
	}
	info, err := returnInfo(env)
	if err != nil {
		return nil, fmt.Errorf("protector: seal to return key: %w", err)
	}
	kdf, aead := hpkeSuite()
	out, err := hpke.Seal(pk, kdf, aead, info, rb)
	if err != nil {
		return nil, fmt.Errorf("protector: seal to return key: %w", err)
	}
	return out, nil
}

func returnInfo(env *Envelope) ([]byte, error) {
	raw, err := env.MarshalBinary()
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(raw)
	return append([]byte(returnLabel), h[:]...), nil
}
