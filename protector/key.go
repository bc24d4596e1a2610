package protector

import (
	"crypto/aes"
	"crypto/cipher"
	crand "crypto/rand"
	"crypto/subtle"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
)

// KeySize is the size in bytes of a PIN reset protector: a 256-bit AES key,
// as the WHfB PIN reset documentation describes.
const KeySize = 32

// sealLabel starts the AES-GCM additional data of Key.Seal, so that a
// ciphertext made here cannot be taken for any other use of the key.
const sealLabel = "hellosim protector v1 seal"

// Key is the PIN reset protector R: a 256-bit AES key generated on the client
// (WHfB: "a 256-bit AES key is generated locally"). It encrypts the container
// secret and is wrapped to the PIN reset service.
//
// A Key never prints its bytes: every fmt verb renders it as
// "protector.Key{REDACTED}". Copies of a Key value share one secret, so
// Destroy on any of them wipes it for all. A Key is not safe for concurrent
// use with Destroy.
type Key struct{ s *keyState }

type keyState struct {
	b         [KeySize]byte
	destroyed bool
}

// NewKey makes a protector from rand (nil: crypto/rand).
func NewKey(rand io.Reader) (*Key, error) {
	if rand == nil {
		rand = crand.Reader
	}
	k := &Key{s: new(keyState)}
	if _, err := io.ReadFull(rand, k.s.b[:]); err != nil {
		k.Destroy()
		return nil, fmt.Errorf("protector: new key: %w", err)
	}
	return k, nil
}

// newKeyFrom copies b into a new Key; the caller wipes b.
func newKeyFrom(b []byte) *Key {
	k := &Key{s: new(keyState)}
	copy(k.s.b[:], b)
	return k
}

// Destroy wipes the key. Every later use fails with ErrDestroyed.
func (k *Key) Destroy() {
	if k == nil || k.s == nil {
		return
	}
	clear(k.s.b[:])
	k.s.destroyed = true
}

// bytes returns the key's bytes (not a copy), or ErrDestroyed.
func (k *Key) bytes() ([]byte, error) {
	if k == nil || k.s == nil || k.s.destroyed {
		return nil, ErrDestroyed
	}
	return k.s.b[:], nil
}

// Equal reports, in constant time, whether k and o hold the same key. A
// destroyed key equals nothing.
func (k *Key) Equal(o *Key) bool {
	a, err1 := k.bytes()
	b, err2 := o.bytes()
	return err1 == nil && err2 == nil && subtle.ConstantTimeCompare(a, b) == 1
}

// Seal encrypts secret (the container secret S) under k with AES-256-GCM.
// The result is a random 96-bit nonce followed by the ciphertext and tag;
// the additional data names the container, so the result opens only for the
// same containerID.
func (k *Key) Seal(secret []byte, containerID string) ([]byte, error) {
	aead, ad, err := k.gcm(containerID)
	if err != nil {
		return nil, fmt.Errorf("protector: seal: %w", err)
	}
	return aead.Seal(nil, nil, secret, ad), nil
}

// Open reverses Seal. It fails with ErrDecrypt when ciphertext was altered,
// was sealed under another key, or for another container. The result is the
// caller's to wipe.
func (k *Key) Open(ciphertext []byte, containerID string) ([]byte, error) {
	aead, ad, err := k.gcm(containerID)
	if err != nil {
		return nil, fmt.Errorf("protector: open: %w", err)
	}
	secret, err := aead.Open(nil, nil, ciphertext, ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return secret, nil
}

// gcm returns AES-256-GCM with random nonces under k, and the additional
// data for containerID: sealLabel || uint8 length || containerID.
func (k *Key) gcm(containerID string) (cipher.AEAD, []byte, error) {
	if err := checkBindingField("container ID", containerID); err != nil {
		return nil, nil, err
	}
	kb, err := k.bytes()
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(kb)
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, nil, err
	}
	var b cryptobyte.Builder
	b.AddBytes([]byte(sealLabel))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(containerID)) })
	return aead, b.BytesOrPanic(), nil
}

// String returns "protector.Key{REDACTED}", never the key.
func (Key) String() string { return "protector.Key{REDACTED}" }

// GoString is String, so that %#v does not print the key either.
func (k Key) GoString() string { return k.String() }

// Format prints String for every verb, so that no verb prints the key.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }
