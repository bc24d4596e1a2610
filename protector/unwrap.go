package protector

import (
	"crypto"
	"crypto/hpke"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
)

// Unwrapper is the service's private half of a service key, as a KMS or HSM
// can implement it: Unwrap opens envelopes made with Public().Wrap.
//
// Unwrap must check that the envelope names its key (else ErrUnknownKey) and
// authenticate the envelope's header and binding; it fails with ErrDecrypt,
// whatever the cause, for envelopes that do not open, and with
// ErrKeyUnavailable when the key itself could not be used (an HSM that does
// not answer). Implementations must be safe for concurrent use.
type Unwrapper interface {
	Public() ServiceKey
	Unwrap(env *Envelope) (*Key, error)
}

var (
	_ Unwrapper = (*ServicePrivateKey)(nil)
	_ Unwrapper = (*hpkeUnwrapper)(nil)
	_ Unwrapper = (*rsaUnwrapper)(nil)
)

// NewHPKEUnwrapper returns an Unwrapper for an HPKE private key of
// DHKEM(X25519, HKDF-SHA256) (HPKEX25519), MLKEM768-X25519 (HPKEXWing) or
// DHKEM(P-256, HKDF-SHA256) (HPKEP256).
// Keys held in hardware come in through hpke.NewDHKEMPrivateKey or
// hpke.NewHybridPrivateKey, which take an ecdh.KeyExchanger and a
// crypto.Decapsulator.
func NewHPKEUnwrapper(priv hpke.PrivateKey) (Unwrapper, error) {
	pub, err := hpkePublic(priv)
	if err != nil {
		return nil, err
	}
	return &hpkeUnwrapper{pub: pub, priv: priv}, nil
}

// NewRSAUnwrapper returns an Unwrapper for an RSA-3072 key behind a
// crypto.Decrypter, such as an HSM or a cloud KMS. The Decrypter must accept
// *rsa.OAEPOptions (Hash SHA-256, with a label), as *rsa.PrivateKey does.
func NewRSAUnwrapper(d crypto.Decrypter) (Unwrapper, error) {
	pub, err := rsaPublic(d.Public())
	if err != nil {
		return nil, err
	}
	return &rsaUnwrapper{pub: pub, d: d}, nil
}

func hpkePublic(priv hpke.PrivateKey) (ServiceKey, error) {
	if priv == nil {
		return ServiceKey{}, fmt.Errorf("%w: nil HPKE private key", ErrInvalidKey)
	}
	s, ok := schemeForKEM(priv.KEM().ID())
	if !ok {
		return ServiceKey{}, fmt.Errorf("%w: HPKE KEM 0x%04x", ErrUnsupported, priv.KEM().ID())
	}
	return NewServiceKey(s, priv.PublicKey().Bytes())
}

func rsaPublic(pub crypto.PublicKey) (ServiceKey, error) {
	rk, ok := pub.(*rsa.PublicKey)
	if !ok {
		return ServiceKey{}, invalidKey(RSAOAEP3072, "%T, not RSA", pub)
	}
	if err := checkRSAPublic(rk); err != nil {
		return ServiceKey{}, err
	}
	der, err := x509.MarshalPKIXPublicKey(rk)
	if err != nil {
		return ServiceKey{}, invalidKey(RSAOAEP3072, "%v", err)
	}
	return NewServiceKey(RSAOAEP3072, der)
}

type hpkeUnwrapper struct {
	pub  ServiceKey
	priv hpke.PrivateKey
}

func (u *hpkeUnwrapper) Public() ServiceKey                 { return u.pub }
func (u *hpkeUnwrapper) Unwrap(env *Envelope) (*Key, error) { return unwrapHPKE(u.pub, u.priv, env) }
func (u *hpkeUnwrapper) String() string                     { return redacted("hpkeUnwrapper", u.pub) }
func (u *hpkeUnwrapper) GoString() string                   { return u.String() }
func (u *hpkeUnwrapper) Format(f fmt.State, _ rune)         { io.WriteString(f, u.String()) }

type rsaUnwrapper struct {
	pub ServiceKey
	d   crypto.Decrypter
}

func (u *rsaUnwrapper) Public() ServiceKey                 { return u.pub }
func (u *rsaUnwrapper) Unwrap(env *Envelope) (*Key, error) { return unwrapRSA(u.pub, u.d, env) }
func (u *rsaUnwrapper) String() string                     { return redacted("rsaUnwrapper", u.pub) }
func (u *rsaUnwrapper) GoString() string                   { return u.String() }
func (u *rsaUnwrapper) Format(f fmt.State, _ rune)         { io.WriteString(f, u.String()) }

func redacted(typ string, pub ServiceKey) string {
	return "protector." + typ + "{" + pub.String() + " REDACTED}"
}

// matchEnvelope checks that env is well formed and made for pub.
func matchEnvelope(pub ServiceKey, env *Envelope) error {
	if err := env.check(); err != nil {
		return fmt.Errorf("protector: unwrap: %w", err)
	}
	if env.scheme != pub.scheme || env.keyID != pub.id {
		return fmt.Errorf("protector: unwrap: %w: envelope is for %v:%s, this is %v",
			ErrUnknownKey, env.scheme, env.KeyID(), pub)
	}
	return nil
}

func unwrapHPKE(pub ServiceKey, priv hpke.PrivateKey, env *Envelope) (*Key, error) {
	if err := matchEnvelope(pub, env); err != nil {
		return nil, err
	}
	kdf, aead := hpkeSuite()
	ct := make([]byte, 0, len(env.enc)+len(env.ct))
	ct = append(append(ct, env.enc...), env.ct...)
	pt, err := hpke.Open(priv, kdf, aead, env.authenticatedData(), ct)
	if err != nil {
		if errors.Is(err, ErrKeyUnavailable) { // the key's holder failed, not the envelope
			return nil, fmt.Errorf("protector: unwrap: %w", err)
		}
		return nil, ErrDecrypt
	}
	return keyFromPlaintext(pt)
}

func unwrapRSA(pub ServiceKey, d crypto.Decrypter, env *Envelope) (*Key, error) {
	if err := matchEnvelope(pub, env); err != nil {
		return nil, err
	}
	opts := &rsa.OAEPOptions{Hash: crypto.SHA256, Label: env.authenticatedData()}
	pt, err := d.Decrypt(nil, env.ct, opts)
	if err != nil {
		clear(pt)
		if errors.Is(err, rsa.ErrDecryption) {
			return nil, ErrDecrypt
		}
		if errors.Is(err, ErrKeyUnavailable) { // the key's holder failed, not the envelope
			return nil, fmt.Errorf("protector: unwrap: %w", err)
		}
		// An external Decrypter failed for its own reasons (an HSM offline):
		// keep the cause for the service's logs, but the sentinel is the
		// same, so that a caller who only reports ErrDecrypt offers no
		// padding oracle (Manger, CRYPTO 2001).
		return nil, fmt.Errorf("%w: decrypter: %w", ErrDecrypt, err)
	}
	return keyFromPlaintext(pt)
}

// keyFromPlaintext takes and wipes an unwrapped plaintext.
func keyFromPlaintext(pt []byte) (*Key, error) {
	defer clear(pt)
	if len(pt) != KeySize {
		return nil, ErrDecrypt
	}
	return newKeyFrom(pt), nil
}
