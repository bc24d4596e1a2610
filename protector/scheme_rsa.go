package protector

import (
	"bytes"
	"crypto"
	crand "crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
)

// The RSA-OAEP scheme: RSA-OAEP (RFC 8017) with SHA-256 for the hash and
// MGF1 under an RSA-3072 key with exponent 65537. The header and binding
// are the OAEP label; the envelope's enc field is empty.

const (
	rsaBits     = 3072
	rsaCtSize   = rsaBits / 8
	rsaExponent = 65537
)

func rsaOAEP3072Info() schemeInfo {
	return schemeInfo{name: "rsa-oaep-sha256-3072", wire: wireRSAOAEP3072, encSize: 0, ctSize: rsaCtSize, impl: rsaScheme{}}
}

// rsaScheme is the schemeImpl of RSAOAEP3072.
type rsaScheme struct{}

func (rsaScheme) recipient(pub []byte) (recipient, error) {
	parsed, err := x509.ParsePKIXPublicKey(pub)
	if err != nil {
		return nil, invalidKey(RSAOAEP3072, "not a DER SubjectPublicKeyInfo")
	}
	rk, ok := parsed.(*rsa.PublicKey)
	if !ok {
		return nil, invalidKey(RSAOAEP3072, "%T, not RSA", parsed)
	}
	if err := checkRSAPublic(rk); err != nil {
		return nil, err
	}
	canonical, err := x509.MarshalPKIXPublicKey(rk)
	if err != nil || !bytes.Equal(canonical, pub) {
		return nil, invalidKey(RSAOAEP3072, "non-canonical DER")
	}
	return rsaRecipient{pub: rk}, nil
}

func (rsaScheme) identity(priv any) (identity, bool, error) {
	k, ok := priv.(*rsa.PrivateKey)
	if !ok {
		return nil, false, nil
	}
	if err := k.Validate(); err != nil {
		return nil, true, invalidKey(RSAOAEP3072, "%v", err)
	}
	return rsaIdentity{d: k}, true, nil
}

func (rsaScheme) generate() (identity, error) {
	k, err := rsa.GenerateKey(crand.Reader, rsaBits)
	if err != nil {
		return nil, err
	}
	return rsaIdentity{d: k}, nil
}

func (rsaScheme) parse(raw []byte) (identity, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(raw)
	if err != nil {
		return nil, badKeyFile("not PKCS #8 DER")
	}
	k, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, badKeyFile(fmt.Sprintf("%T, not RSA", parsed))
	}
	canonical, err := x509.MarshalPKCS8PrivateKey(k)
	defer clear(canonical)
	if err != nil || !bytes.Equal(canonical, raw) {
		return nil, badKeyFile("non-canonical PKCS #8 DER")
	}
	if err := k.Validate(); err != nil {
		return nil, invalidKey(RSAOAEP3072, "%v", err)
	}
	return rsaIdentity{d: k}, nil
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

// rsaRecipient is an RSA-3072 public key.
type rsaRecipient struct{ pub *rsa.PublicKey }

func (r rsaRecipient) seal(pt, ad []byte, rand io.Reader) (enc, ct []byte, err error) {
	if rand == nil {
		rand = crand.Reader
	}
	ct, err = rsa.EncryptOAEP(sha256.New(), rand, r.pub, pt, ad)
	if err != nil {
		return nil, nil, fmt.Errorf("rsa-oaep: %w", err)
	}
	return []byte{}, ct, nil
}

// rsaIdentity is an RSA-3072 private key: an *rsa.PrivateKey, or any
// crypto.Decrypter (an HSM, a cloud KMS) that takes *rsa.OAEPOptions.
type rsaIdentity struct{ d crypto.Decrypter }

func (r rsaIdentity) public() (ServiceKey, error) { return rsaPublic(r.d.Public()) }

func (r rsaIdentity) open(env *Envelope) ([]byte, error) {
	opts := &rsa.OAEPOptions{Hash: crypto.SHA256, Label: env.authenticatedData()}
	pt, err := r.d.Decrypt(nil, env.ct, opts)
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
	return pt, nil
}

func (r rsaIdentity) marshal() ([]byte, error) {
	k, ok := r.d.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: the RSA key is not held in software", ErrUnsupported)
	}
	return x509.MarshalPKCS8PrivateKey(k)
}

// rsaPublic is the service key of an RSA public key.
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
