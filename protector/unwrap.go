package protector

import (
	"crypto"
	"crypto/hpke"
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
	_ Unwrapper = (*unwrapper)(nil)
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
	return &unwrapper{kind: "hpkeUnwrapper", pub: pub, id: hpkeIdentity{priv: priv}}, nil
}

// NewRSAUnwrapper returns an Unwrapper for an RSA-3072 key behind a
// crypto.Decrypter, such as an HSM or a cloud KMS. The Decrypter must accept
// *rsa.OAEPOptions (Hash SHA-256, with a label), as *rsa.PrivateKey does.
func NewRSAUnwrapper(d crypto.Decrypter) (Unwrapper, error) {
	id := rsaIdentity{d: d}
	pub, err := id.public()
	if err != nil {
		return nil, err
	}
	return &unwrapper{kind: "rsaUnwrapper", pub: pub, id: id}, nil
}

// unwrapper is a service key held elsewhere (a KMS, an HSM): an identity
// that need not export its key.
type unwrapper struct {
	kind string // for String
	pub  ServiceKey
	id   identity
}

func (u *unwrapper) Public() ServiceKey                 { return u.pub }
func (u *unwrapper) Unwrap(env *Envelope) (*Key, error) { return unwrap(u.pub, u.id, env) }
func (u *unwrapper) String() string                     { return redacted(u.kind, u.pub) }
func (u *unwrapper) GoString() string                   { return u.String() }
func (u *unwrapper) Format(f fmt.State, _ rune)         { io.WriteString(f, u.String()) }

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

// unwrap opens env, made for pub, with id.
func unwrap(pub ServiceKey, id identity, env *Envelope) (*Key, error) {
	if err := matchEnvelope(pub, env); err != nil {
		return nil, err
	}
	pt, err := id.open(env)
	if err != nil {
		return nil, err
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
