//go:build cgo

package pkcs11

import (
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/asn1"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/hellosim/hellosim/protector"
)

// p256Params is CKA_EC_PARAMS for P-256: the DER of the named curve's OID,
// prime256v1 (1.2.840.10045.3.1.7; RFC 5480, 2.1.1.1).
var p256Params = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}

// ecdhKey is a P-256 private key in the token as an ecdh.KeyExchanger:
// ECDH is CKM_ECDH1_DERIVE there.
type ecdhKey struct {
	t    *Token
	priv *object
	pub  *ecdh.PublicKey
}

var _ ecdh.KeyExchanger = (*ecdhKey)(nil)

func (t *Token) ecdhKey(priv *object, pub p11.ObjectHandle) (*ecdhKey, error) {
	var attrs []*p11.Attribute
	err := t.do("find", func(sh p11.SessionHandle) error {
		var err error
		attrs, err = t.ctx.GetAttributeValue(sh, pub, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_EC_PARAMS, nil), p11.NewAttribute(p11.CKA_EC_POINT, nil),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if string(attrs[0].Value) != string(p256Params) {
		return nil, fmt.Errorf("%w: EC key not on P-256", protector.ErrUnsupported)
	}
	// CKA_EC_POINT is the DER OCTET STRING of the point (PKCS #11 2.40,
	// 2.3.3); some tokens give the raw point.
	point := attrs[1].Value
	var inner []byte
	if rest, err := asn1.Unmarshal(point, &inner); err == nil && len(rest) == 0 {
		point = inner
	}
	pk, err := ecdh.P256().NewPublicKey(point)
	if err != nil {
		return nil, fmt.Errorf("%w: CKA_EC_POINT: %v", protector.ErrInvalidKey, err)
	}
	return &ecdhKey{t: t, priv: priv, pub: pk}, nil
}

func (k *ecdhKey) PublicKey() *ecdh.PublicKey { return k.pub }
func (k *ecdhKey) Curve() ecdh.Curve          { return ecdh.P256() }

// ECDH derives the shared secret in the token, as a session object that
// is read and destroyed at once: the x-coordinate of the product, which is
// what crypto/ecdh returns and RFC 9180's DHKEM uses.
func (k *ecdhKey) ECDH(peer *ecdh.PublicKey) ([]byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, errors.New("pkcs11: ecdh: peer key is not on P-256")
	}
	mech := []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDH1_DERIVE,
		p11.NewECDH1DeriveParams(p11.CKD_NULL, nil, peer.Bytes()))}
	tmpl := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_SECRET_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_GENERIC_SECRET),
		p11.NewAttribute(p11.CKA_TOKEN, false),
		p11.NewAttribute(p11.CKA_SENSITIVE, false),
		p11.NewAttribute(p11.CKA_EXTRACTABLE, true),
		p11.NewAttribute(p11.CKA_VALUE_LEN, 32),
	}
	var z []byte
	err := k.t.use("derive", k.priv, func(sh p11.SessionHandle, priv p11.ObjectHandle) error {
		h, err := k.t.ctx.DeriveKey(sh, mech, priv, tmpl)
		if err != nil {
			return err
		}
		defer k.t.ctx.DestroyObject(sh, h)
		attrs, err := k.t.ctx.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
		if err != nil {
			return err
		}
		z = attrs[0].Value
		return nil
	})
	// crypto/hpke has checked the peer's point before asking, so no answer
	// here depends on the envelope: every failure is the token's.
	if err != nil {
		return nil, fmt.Errorf("%w: pkcs11: ecdh: %w", protector.ErrKeyUnavailable, err)
	}
	if len(z) != 32 {
		clear(z)
		return nil, fmt.Errorf("%w: pkcs11: ecdh: token derived %d bytes, want 32", protector.ErrKeyUnavailable, len(z))
	}
	return z, nil
}

func newP256Unwrapper(k *ecdhKey) (protector.Unwrapper, error) {
	priv, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return protector.NewHPKEUnwrapper(priv)
}
