//go:build cgo

package pkcs11

import (
	"crypto"
	"crypto/rsa"
	"fmt"
	"io"
	"math/big"
	"sync/atomic"

	p11 "github.com/miekg/pkcs11"

	"github.com/hellosim/hellosim/protector"
)

// rsaDecrypter is an RSA private key in the token as a crypto.Decrypter
// that does RSA-OAEP with SHA-256, the label given, in the token.
type rsaDecrypter struct {
	t    *Token
	priv *object
	pub  *rsa.PublicKey
	// raw: the token refused CKM_RSA_PKCS_OAEP with SHA-256 and a label
	// (SoftHSM2 2.6 takes SHA-1 only), so the token does CKM_RSA_X_509
	// and oaepDecode the padding.
	raw atomic.Bool
}

var _ crypto.Decrypter = (*rsaDecrypter)(nil)

func (t *Token) rsaDecrypter(priv *object, pub p11.ObjectHandle) (*rsaDecrypter, error) {
	var attrs []*p11.Attribute
	err := t.do("find", func(sh p11.SessionHandle) error {
		var err error
		attrs, err = t.ctx.GetAttributeValue(sh, pub, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_MODULUS, nil), p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, nil),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	e := new(big.Int).SetBytes(attrs[1].Value)
	if !e.IsInt64() || e.Int64() > 1<<31 {
		return nil, fmt.Errorf("RSA public exponent out of range")
	}
	return &rsaDecrypter{t: t, priv: priv, pub: &rsa.PublicKey{N: new(big.Int).SetBytes(attrs[0].Value), E: int(e.Int64())}}, nil
}

func (d *rsaDecrypter) Public() crypto.PublicKey { return d.pub }

// Decrypt takes *rsa.OAEPOptions with SHA-256 (and MGF1-SHA-256): the only
// use protector makes of it. The RSA private-key operation always runs in
// the token: the whole of RSA-OAEP when the token supports it with SHA-256
// and a label, else the raw operation (CKM_RSA_X_509) with the padding
// checked here. A ciphertext that does not decrypt gives rsa.ErrDecryption,
// so that protector reports it as ErrDecrypt.
func (d *rsaDecrypter) Decrypt(_ io.Reader, ct []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	o, ok := opts.(*rsa.OAEPOptions)
	if !ok || o.Hash != crypto.SHA256 || (o.MGFHash != 0 && o.MGFHash != crypto.SHA256) {
		return nil, fmt.Errorf("pkcs11: decrypt: only RSA-OAEP with SHA-256")
	}
	k := (d.pub.N.BitLen() + 7) / 8
	if len(ct) != k {
		return nil, rsa.ErrDecryption
	}
	if !d.raw.Load() {
		mech := p11.NewMechanism(p11.CKM_RSA_PKCS_OAEP,
			p11.NewOAEPParams(p11.CKM_SHA256, p11.CKG_MGF1_SHA256, p11.CKZ_DATA_SPECIFIED, o.Label))
		pt, err := d.decrypt(mech, ct)
		if !isCode(err, p11.CKR_ARGUMENTS_BAD) && !isCode(err, p11.CKR_MECHANISM_PARAM_INVALID) && !isCode(err, p11.CKR_MECHANISM_INVALID) {
			return pt, err
		}
		d.raw.Store(true)
	}
	em, err := d.decrypt(p11.NewMechanism(p11.CKM_RSA_X_509, nil), ct)
	if err != nil {
		return nil, err
	}
	return oaepDecode(em, k, o.Label)
}

func (d *rsaDecrypter) decrypt(mech *p11.Mechanism, ct []byte) ([]byte, error) {
	var pt []byte
	initFailed := false
	err := d.t.use("decrypt", d.priv, func(sh p11.SessionHandle, h p11.ObjectHandle) error {
		if err := d.t.ctx.DecryptInit(sh, []*p11.Mechanism{mech}, h); err != nil {
			initFailed = true
			return err
		}
		var err error
		pt, err = d.t.ctx.Decrypt(sh, ct)
		return err
	})
	switch {
	case err == nil:
		return pt, nil
	case !initFailed && (isCode(err, p11.CKR_ENCRYPTED_DATA_INVALID) || isCode(err, p11.CKR_ENCRYPTED_DATA_LEN_RANGE)):
		return nil, rsa.ErrDecryption
	case initFailed || unavailable(err):
		// Nothing here depends on the ciphertext (C_DecryptInit has not
		// seen it), so telling these apart offers no oracle.
		return nil, fmt.Errorf("%w: pkcs11: decrypt: %w", protector.ErrKeyUnavailable, err)
	}
	// Any other answer of C_Decrypt may depend on the padding: it is a
	// decryption failure like any other.
	return nil, fmt.Errorf("pkcs11: decrypt: %w", err)
}
