package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"github.com/google/go-tpm/tpm2"

	"github.com/hellosim/hellosim/internal/wipe"
)

// KeyAlgorithm selects the algorithm of a signing key.
type KeyAlgorithm int

const (
	// RSA2048 is an RSA-2048 key, the default, as Windows Hello for Business
	// creates.
	RSA2048 KeyAlgorithm = iota
	// ECCP256 is an ECDSA key on NIST P-256.
	ECCP256
)

// String names the algorithm.
func (a KeyAlgorithm) String() string {
	switch a {
	case RSA2048:
		return "RSA-2048"
	case ECCP256:
		return "ECC-P256"
	}
	return fmt.Sprintf("KeyAlgorithm(%d)", int(a))
}

// signAttrs are the attributes of every signing key: bound to this TPM and
// parent, generated inside the TPM, usable with its authValue, a signing key,
// and noDA since its authValue is high-entropy (Part 1 §19.8.2: a wrong
// authValue then does not count toward lockout). Unrestricted, so it signs
// digests the caller computed (with a NULL ticket).
var signAttrs = tpm2.TPMAObject{
	FixedTPM:            true,
	FixedParent:         true,
	SensitiveDataOrigin: true,
	UserWithAuth:        true,
	NoDA:                true,
	SignEncrypt:         true,
}

// keyTemplates are marshalled once. The scheme is NULL so each signature
// names its own (RSASSA or RSAPSS, and the hash).
var keyTemplates = map[KeyAlgorithm][]byte{
	RSA2048: tpm2.Marshal(tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgRSA,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: signAttrs,
		Parameters:       rsaNullParms(2048, 0),
		Unique:           tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{}),
	}),
	ECCP256: tpm2.Marshal(tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: signAttrs,
		Parameters:       eccNullParms(tpm2.TPMECCNistP256),
		Unique:           tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
	}),
}

// rsaNullParms are the parameters of an RSA key with no symmetric algorithm
// and no scheme of its own (TPM_ALG_NULL: each signature names its scheme);
// exponent 0 is the default, 65537.
func rsaNullParms(bits tpm2.TPMKeyBits, exponent uint32) tpm2.TPMUPublicParms {
	return tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme:    tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull},
		KeyBits:   bits,
		Exponent:  exponent,
	})
}

// eccNullParms are the parameters of an ECC key on curve with no symmetric
// algorithm, no scheme of its own and no KDF (TPM_ALG_NULL).
func eccNullParms(curve tpm2.TPMECCCurve) tpm2.TPMUPublicParms {
	return tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme:    tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull},
		CurveID:   curve,
		KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	})
}

// CreateKey creates a signing key (fixedTPM, fixedParent,
// sensitiveDataOrigin, userWithAuth, noDA, sign) under the SRK with the
// given auth (at most MaxAuthSize bytes), which travels encrypted. It
// returns the key blob and its public key.
func (t *TPM) CreateKey(ctx context.Context, alg KeyAlgorithm, auth []byte) (Blob, crypto.PublicKey, error) {
	template, ok := keyTemplates[alg]
	if !ok {
		return Blob{}, nil, fmt.Errorf("tpm: create key: unsupported algorithm %v", alg)
	}
	if len(auth) > MaxAuthSize {
		return Blob{}, nil, fmt.Errorf("tpm: create key: auth must be at most %d bytes, not %d", MaxAuthSize, len(auth))
	}
	if err := t.lock(); err != nil {
		return Blob{}, nil, err
	}
	pub, priv, err := t.create(ctx, template, nil, auth)
	t.mu.Unlock()
	if err != nil {
		return Blob{}, nil, fmt.Errorf("tpm: create key: %w", err)
	}
	b := Blob{Public: pub, Private: priv}
	pk, err := PublicKey(b)
	if err != nil {
		return Blob{}, nil, fmt.Errorf("tpm: create key: %w", err)
	}
	return b, pk, nil
}

// LoadKey loads a key blob and returns a handle usable as crypto.Signer. The
// key stays loaded until Key.Close or TPM.Close, except that when the TPM
// needs its slot for another object it is flushed and reloads itself on its
// next signature. LoadKey copies auth.
func (t *TPM) LoadKey(ctx context.Context, b Blob, auth []byte) (*Key, error) {
	o, err := parseBlob(b)
	if err != nil {
		return nil, fmt.Errorf("tpm: load key: %w", err)
	}
	pk, alg, err := o.checkSigner()
	if err != nil {
		return nil, fmt.Errorf("tpm: load key: %w", err)
	}
	if len(auth) > MaxAuthSize {
		return nil, fmt.Errorf("tpm: load key: auth must be at most %d bytes, not %d", MaxAuthSize, len(auth))
	}
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	k := &Key{t: t, obj: o, pub: pk, alg: alg, secret: &keySecret{auth: bytes.Clone(trimAuth(auth))}}
	h, err := t.load(ctx, o, k)
	if err != nil {
		k.wipe()
		return nil, fmt.Errorf("tpm: load key: %w", err)
	}
	k.handle = h
	t.tick++
	k.lastUse = t.tick
	t.keys[k] = struct{}{}
	return k, nil
}

// Key is a signing key of a TPM. It implements crypto.Signer (ECDSA
// signatures in ASN.1 form; RSA PKCS #1 v1.5, or PSS when opts is
// *rsa.PSSOptions), so it works with crypto/x509 and crypto/tls. Safe for
// concurrent use.
type Key struct {
	t   *TPM
	obj *object
	pub crypto.PublicKey
	alg KeyAlgorithm
	// secret is behind a pointer so that formatting a Key (even a copy,
	// with %v or %#v) prints an address, never the authValue.
	secret *keySecret

	// Guarded by t.mu.
	handle  tpm2.TPMHandle // 0 when not loaded
	lastUse uint64
	closed  bool
}

var _ crypto.Signer = (*Key)(nil)

// Public returns the *rsa.PublicKey or *ecdsa.PublicKey.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Algorithm is the key's algorithm.
func (k *Key) Algorithm() KeyAlgorithm { return k.alg }

// Sign signs digest (the hash of the message, computed by the caller) with
// the hash opts.HashFunc(). rand is ignored: the TPM makes its own
// randomness.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.SignContext(context.Background(), digest, opts)
}

// SignContext is Sign with a context: TPM2_Sign with a NULL ticket (Part 3
// §20.2), authorized by the key's authValue in the shared session. On a
// loaded key it is one command.
func (k *Key) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	scheme, hash, err := k.scheme(digest, opts)
	if err != nil {
		return nil, fmt.Errorf("tpm: sign: %w", err)
	}
	t := k.t
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	if k.closed {
		return nil, ErrClosed
	}
	if k.handle == 0 {
		h, err := t.load(ctx, k.obj, k)
		if err != nil {
			return nil, fmt.Errorf("tpm: sign: reload key: %w", err)
		}
		k.handle = h
	}
	var (
		rsp      *response
		reloaded bool
		lerr     error
	)
	err = t.withSession(ctx, k.secret.auth, encryptNone, func() (err error) {
		t.tick++
		k.lastUse = t.tick
		rsp, err = t.send(&command{
			cc:      tpm2.TPMCCSign,
			handles: []tpm2.TPMHandle{k.handle},
			names:   []tpm2.TPM2BName{k.obj.name},
			auth:    sessionAuth,
			params:  signParams(digest, scheme, hash),
		})
		return err
	}, func(err error) bool {
		if reloaded || !(errors.Is(err, tpm2.TPMRCReferenceH0) || errors.Is(err, tpm2.TPMRCHandle)) {
			return false
		}
		// The key was flushed behind our back; load it again. Flush the
		// old handle all the same (it is then reported gone): error
		// responses are not authenticated, and a forged one must not
		// leave the key loaded twice.
		reloaded = true
		_ = t.flush(k.handle)
		k.handle = 0
		h, err := t.load(ctx, k.obj, k)
		if err != nil {
			lerr = err
			return false
		}
		k.handle = h
		return true
	})
	if lerr != nil {
		return nil, fmt.Errorf("tpm: sign: reload key: %w", lerr)
	}
	if err != nil {
		if aerr := t.authErr(ctx, err); aerr != nil {
			err = aerr
		}
		return nil, fmt.Errorf("tpm: sign: %w", err)
	}
	return encodeSignature(rsp.params)
}

// hashAlgs maps the hashes the TPM signs with.
var hashAlgs = map[crypto.Hash]tpm2.TPMAlgID{
	crypto.SHA1:   tpm2.TPMAlgSHA1,
	crypto.SHA256: tpm2.TPMAlgSHA256,
	crypto.SHA384: tpm2.TPMAlgSHA384,
	crypto.SHA512: tpm2.TPMAlgSHA512,
}

// scheme picks the TPM signature scheme and hash for opts.
func (k *Key) scheme(digest []byte, opts crypto.SignerOpts) (scheme, hash tpm2.TPMAlgID, err error) {
	h := opts.HashFunc()
	alg, ok := hashAlgs[h]
	if !ok {
		return 0, 0, fmt.Errorf("unsupported hash %v", h)
	}
	if len(digest) != h.Size() {
		return 0, 0, fmt.Errorf("digest is %d bytes, %v needs %d", len(digest), h, h.Size())
	}
	switch k.alg {
	case ECCP256:
		return tpm2.TPMAlgECDSA, alg, nil
	default:
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			// The TPM's PSS salt is as long as the digest (TPM 2.0 Part 1
			// §B.7; FIPS 186-4 §5.5), so only that length can be honoured.
			switch pss.SaltLength {
			case rsa.PSSSaltLengthAuto, rsa.PSSSaltLengthEqualsHash, h.Size():
			default:
				return 0, 0, fmt.Errorf("PSS salt length %d not supported (the TPM uses %d)", pss.SaltLength, h.Size())
			}
			return tpm2.TPMAlgRSAPSS, alg, nil
		}
		return tpm2.TPMAlgRSASSA, alg, nil
	}
}

// encodeSignature converts TPM2_Sign's TPMT_SIGNATURE to the form
// crypto.Signer callers expect: ASN.1 (r, s) for ECDSA, the bare signature
// for RSA.
func encodeSignature(params []byte) ([]byte, error) {
	alg, a, b, err := parseSignature(params)
	if err != nil {
		return nil, fmt.Errorf("tpm: sign: %w", err)
	}
	if alg == tpm2.TPMAlgECDSA {
		return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(a), new(big.Int).SetBytes(b)})
	}
	return bytes.Clone(a), nil
}

// Close flushes the key and wipes its auth. Closing a closed key does
// nothing.
func (k *Key) Close() error {
	t := k.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	delete(t.keys, k)
	var err error
	if k.handle != 0 && !t.closed {
		err = t.flush(k.handle)
	}
	k.handle = 0
	k.wipe()
	if err != nil {
		return fmt.Errorf("tpm: close key: %w", err)
	}
	return nil
}

func (k *Key) wipe() {
	wipe.Bytes(k.secret.auth)
	k.secret.auth = nil
}

// keySecret holds a Key's authValue.
type keySecret struct{ auth []byte }

// String describes the key without its secrets.
func (k *Key) String() string { return "tpm.Key(" + k.alg.String() + ")" }

// GoString is String, so %#v does not print the key's authValue either.
func (k *Key) GoString() string { return k.String() }

// Format prints String for every verb, on a Key value as well as a pointer:
// verbs that fmt does not route through String (%d, %x of a struct, …)
// would otherwise print the fields.
func (k Key) Format(f fmt.State, _ rune) { io.WriteString(f, (&k).String()) }
