package protector

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"errors"
	"fmt"
	"io"
)

// The HPKE schemes: HPKE (RFC 9180) base mode with the scheme's KEM,
// HKDF-SHA256 and AES-256-GCM. The header and binding are the HPKE info.

// Fixed sizes of the HPKE schemes.
const (
	x25519EncSize = 32        // DHKEM(X25519) encapsulated key (RFC 9180, 7.1)
	xwingEncSize  = 1088 + 32 // ML-KEM-768 ciphertext + X25519 share
	p256EncSize   = 65        // DHKEM(P-256) encapsulated key: an uncompressed point (RFC 9180, 7.1.1)
	hpkeCtSize    = KeySize + 16

	x25519PubSize = 32
	xwingPubSize  = 1184 + 32 // ML-KEM-768 encapsulation key + X25519 key
	p256PubSize   = 65        // uncompressed SEC 1 point
)

func hpkeX25519Info() schemeInfo {
	return schemeInfo{name: "hpke-x25519-sha256-aes256gcm", wire: wireHPKEX25519,
		encSize: x25519EncSize, ctSize: hpkeCtSize, impl: hpkeScheme(HPKEX25519)}
}

func hpkeXWingInfo() schemeInfo {
	return schemeInfo{name: "hpke-mlkem768x25519-sha256-aes256gcm", wire: wireHPKEXWing,
		encSize: xwingEncSize, ctSize: hpkeCtSize, impl: hpkeScheme(HPKEXWing)}
}

func hpkeP256Info() schemeInfo {
	return schemeInfo{name: "hpke-p256-sha256-aes256gcm", wire: wireHPKEP256,
		encSize: p256EncSize, ctSize: hpkeCtSize, impl: hpkeScheme(HPKEP256)}
}

// hpkeParams is what one HPKE scheme is made of, beyond its schemeInfo.
type hpkeParams struct {
	kemID   uint16 // RFC 9180 7.1, draft-ietf-hpke-pq
	kem     func() hpke.KEM
	pubSize int
	// x25519Share: the public key ends in an X25519 share, refused when
	// of small order.
	x25519Share bool
}

// hpkeScheme is the schemeImpl of the HPKE scheme it names.
type hpkeScheme Scheme

func (h hpkeScheme) params() hpkeParams {
	switch Scheme(h) {
	case HPKEX25519:
		return hpkeParams{kemID: 0x0020, kem: func() hpke.KEM { return hpke.DHKEM(ecdh.X25519()) }, pubSize: x25519PubSize, x25519Share: true}
	case HPKEXWing:
		return hpkeParams{kemID: 0x647a, kem: hpke.MLKEM768X25519, pubSize: xwingPubSize, x25519Share: true}
	case HPKEP256:
		// crypto/ecdh takes only uncompressed points on the curve, so the
		// encoding is canonical and the point valid.
		return hpkeParams{kemID: 0x0010, kem: func() hpke.KEM { return hpke.DHKEM(ecdh.P256()) }, pubSize: p256PubSize}
	}
	return hpkeParams{kem: func() hpke.KEM { return nil }}
}

// The KDF and AEAD are the same for every HPKE scheme.
func hpkeSuite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.AES256GCM() }

func (h hpkeScheme) recipient(pub []byte) (recipient, error) {
	s, p := Scheme(h), h.params()
	if len(pub) != p.pubSize {
		return nil, invalidKey(s, "%d bytes, want %d", len(pub), p.pubSize)
	}
	// An X25519 share of small order would make every encapsulation fail
	// (RFC 7748, 6.1); refuse it here, where the cause is clear.
	if p.x25519Share && checkX25519Share(pub[len(pub)-x25519PubSize:]) != nil {
		return nil, invalidKey(s, "X25519 share of small order")
	}
	pk, err := p.kem().NewPublicKey(pub)
	if err != nil {
		return nil, invalidKey(s, "%v", err)
	}
	return hpkeRecipient{pub: pk, encSize: s.encSize()}, nil
}

func (h hpkeScheme) identity(priv any) (identity, bool, error) {
	k, ok := priv.(hpke.PrivateKey)
	if !ok || k == nil || k.KEM().ID() != h.params().kemID {
		return nil, false, nil
	}
	return hpkeIdentity{priv: k}, true, nil
}

func (h hpkeScheme) generate() (identity, error) {
	k, err := h.params().kem().GenerateKey()
	if err != nil {
		return nil, err
	}
	return hpkeIdentity{priv: k}, nil
}

func (h hpkeScheme) parse(raw []byte) (identity, error) {
	k, err := h.params().kem().NewPrivateKey(raw)
	if err != nil {
		return nil, badKeyFile(err.Error())
	}
	canonical, err := hpkePrivateBytes(k)
	defer clear(canonical)
	if err != nil || !bytes.Equal(canonical, raw) {
		return nil, badKeyFile("non-canonical private key")
	}
	return hpkeIdentity{priv: k}, nil
}

// kem returns the HPKE KEM of an HPKE scheme, nil otherwise.
func (s Scheme) kem() hpke.KEM {
	if i, ok := s.info(); ok {
		if h, ok := i.impl.(hpkeScheme); ok {
			return h.params().kem()
		}
	}
	return nil
}

// hpkeRecipient is the public key of an HPKE scheme.
type hpkeRecipient struct {
	pub     hpke.PublicKey
	encSize int
}

func (h hpkeRecipient) seal(r, ad []byte, _ io.Reader) (enc, ct []byte, err error) {
	// Go's crypto/hpke draws its ephemeral key from crypto/rand and takes
	// no reader.
	kdf, aead := hpkeSuite()
	out, err := hpke.Seal(h.pub, kdf, aead, ad, r)
	if err != nil {
		return nil, nil, fmt.Errorf("hpke: %w", err)
	}
	n := h.encSize
	return out[:n:n], out[n:], nil
}

// hpkeIdentity is the private key of an HPKE scheme: in software, or in
// hardware through hpke.NewDHKEMPrivateKey or hpke.NewHybridPrivateKey.
type hpkeIdentity struct{ priv hpke.PrivateKey }

func (h hpkeIdentity) public() (ServiceKey, error) { return hpkePublic(h.priv) }

func (h hpkeIdentity) open(env *Envelope) ([]byte, error) {
	kdf, aead := hpkeSuite()
	ct := make([]byte, 0, len(env.enc)+len(env.ct))
	ct = append(append(ct, env.enc...), env.ct...)
	pt, err := hpke.Open(h.priv, kdf, aead, env.authenticatedData(), ct)
	if err != nil {
		if errors.Is(err, ErrKeyUnavailable) { // the key's holder failed, not the envelope
			return nil, fmt.Errorf("protector: unwrap: %w", err)
		}
		return nil, ErrDecrypt
	}
	return pt, nil
}

func (h hpkeIdentity) marshal() ([]byte, error) { return hpkePrivateBytes(h.priv) }

// hpkePublic is the service key of an HPKE private key, whose KEM names
// the scheme.
func hpkePublic(priv hpke.PrivateKey) (ServiceKey, error) {
	if priv == nil {
		return ServiceKey{}, fmt.Errorf("%w: nil HPKE private key", ErrInvalidKey)
	}
	for s, i := range schemeInfos() {
		if _, ok, _ := i.impl.identity(priv); ok {
			return NewServiceKey(Scheme(s), priv.PublicKey().Bytes())
		}
	}
	return ServiceKey{}, fmt.Errorf("%w: HPKE KEM 0x%04x", ErrUnsupported, priv.KEM().ID())
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

// hpkePrivateBytes returns a copy of the serialized private key, which the
// caller may wipe. crypto/hpke's hybrid keys return their own seed slice
// from Bytes (Go 1.26), so wiping that would corrupt the key.
func hpkePrivateBytes(k hpke.PrivateKey) ([]byte, error) {
	b, err := k.Bytes()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(b), nil
}
