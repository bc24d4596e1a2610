package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// Blob is a TPM object created under the SRK: TPM2B_PUBLIC and TPM2B_PRIVATE
// as the TPM marshals them (size prefix included; TPM 2.0 Part 2 §12.2.5 and
// §12.3.7). Such a blob is an ordinary TPM object: other TPM software (for
// example tpm2-tools) loads it under the same SRK.
type Blob struct{ Public, Private []byte }

// Limits from TPM 2.0 Part 2: MAX_SYM_DATA (§10.4.6, 128 bytes) bounds a
// sealed secret; an object's authValue is at most the digest size of its
// nameAlg (Part 1 §19.6.4; SHA-256 here).
const (
	MaxSecretSize = 128
	MaxAuthSize   = sha256.Size
	// maxBlobPart bounds each part of a blob (TPM2B sizes are 16-bit, and
	// no public or private area for our objects comes close).
	maxBlobPart = 4096
)

// object is a parsed blob.
type object struct {
	pub    tpm2.TPMTPublic
	public []byte // TPM2B_PUBLIC contents (without the size)
	priv   []byte // TPM2B_PRIVATE contents (without the size)
	name   tpm2.TPM2BName
}

// parseBlob checks a blob's framing and decodes its public area. Nothing is
// sent to the TPM; the TPM checks the rest (integrity of the private part).
func parseBlob(b Blob) (*object, error) {
	pub, err := sized(b.Public, "public")
	if err != nil {
		return nil, err
	}
	priv, err := sized(b.Private, "private")
	if err != nil {
		return nil, err
	}
	p, err := decodeSealedPublic(pub)
	if errors.Is(err, errNotSealed) {
		p, err = decodeKeyPublic(pub)
	}
	if errors.Is(err, errNotKeyShape) {
		p, err = decodePublic(pub)
	}
	if err != nil {
		return nil, err
	}
	if p.NameAlg != tpm2.TPMAlgSHA256 {
		return nil, fmt.Errorf("%w: name algorithm %v is not SHA-256", ErrCorruptBlob, p.NameAlg)
	}
	return &object{pub: *p, public: pub, priv: priv, name: objectName(pub)}, nil
}

// sized returns the contents of a TPM2B after checking that its size field
// matches the data exactly.
func sized(b []byte, what string) ([]byte, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %s part is truncated", ErrCorruptBlob, what)
	}
	n := int(binary.BigEndian.Uint16(b))
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: %s part is empty", ErrCorruptBlob, what)
	case n > len(b)-2:
		return nil, fmt.Errorf("%w: %s part is truncated (%d of %d bytes)", ErrCorruptBlob, what, len(b)-2, n)
	case n < len(b)-2:
		return nil, fmt.Errorf("%w: %s part has %d trailing bytes", ErrCorruptBlob, what, len(b)-2-n)
	case n > maxBlobPart:
		return nil, fmt.Errorf("%w: %s part too large", ErrCorruptBlob, what)
	}
	return b[2:], nil
}

// decodePublic decodes a TPMT_PUBLIC strictly: it must re-encode to exactly
// the same bytes, so nothing is ignored.
func decodePublic(b []byte) (p *tpm2.TPMTPublic, err error) {
	defer func() {
		// go-tpm's reflection decoder is not hardened against every hostile
		// input; a panic there is a corrupt blob, not a crash.
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("%w: undecodable public area", ErrCorruptBlob)
		}
	}()
	p, err = tpm2.Unmarshal[tpm2.TPMTPublic](b)
	if err != nil {
		return nil, fmt.Errorf("%w: public area: %v", ErrCorruptBlob, err)
	}
	if !bytes.Equal(tpm2.Marshal(p), b) {
		return nil, fmt.Errorf("%w: public area is not canonical", ErrCorruptBlob)
	}
	return p, nil
}

// errNotSealed says decodeSealedPublic does not handle this public area.
var errNotSealed = errors.New("not a sealed-data public area")

// decodeSealedPublic decodes the public area of a sealed-data object by
// hand, as it is decoded on every Unseal and go-tpm's reflection decoder is
// slow: type TPM_ALG_KEYEDHASH, nameAlg, objectAttributes, authPolicy
// (TPM2B), a NULL keyedHash scheme, unique (TPM2B) — TPM 2.0 Part 2
// §12.2.4. Anything else is errNotSealed, for the general decoder.
func decodeSealedPublic(b []byte) (*tpm2.TPMTPublic, error) {
	if len(b) < 8 || tpm2.TPMAlgID(binary.BigEndian.Uint16(b)) != tpm2.TPMAlgKeyedHash {
		return nil, errNotSealed
	}
	nameAlg := tpm2.TPMAlgID(binary.BigEndian.Uint16(b[2:]))
	attrs := binary.BigEndian.Uint32(b[4:])
	policy, rest, ok := cut2B(b[8:])
	if !ok || len(rest) < 2 || tpm2.TPMAlgID(binary.BigEndian.Uint16(rest)) != tpm2.TPMAlgNull {
		return nil, errNotSealed
	}
	unique, rest, ok := cut2B(rest[2:])
	if !ok {
		return nil, fmt.Errorf("%w: public area truncated", ErrCorruptBlob)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: public area has trailing bytes", ErrCorruptBlob)
	}
	if attrs&reservedObjectAttrs != 0 {
		return nil, fmt.Errorf("%w: object attributes", ErrCorruptBlob)
	}
	return &tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgKeyedHash,
		NameAlg:          nameAlg,
		ObjectAttributes: objectAttributes(attrs),
		AuthPolicy:       tpm2.TPM2BDigest{Buffer: policy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
			Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgKeyedHash, &tpm2.TPM2BDigest{Buffer: unique}),
	}, nil
}

// objectAttributes decodes TPMA_OBJECT (Part 2 §8.3).
func objectAttributes(a uint32) tpm2.TPMAObject {
	bit := func(n uint) bool { return a&(1<<n) != 0 }
	return tpm2.TPMAObject{
		FixedTPM:             bit(1),
		STClear:              bit(2),
		FixedParent:          bit(4),
		SensitiveDataOrigin:  bit(5),
		UserWithAuth:         bit(6),
		AdminWithPolicy:      bit(7),
		FirmwareLimited:      bit(8),
		NoDA:                 bit(10),
		EncryptedDuplication: bit(11),
		Restricted:           bit(16),
		Decrypt:              bit(17),
		SignEncrypt:          bit(18),
		X509Sign:             bit(19),
	}
}

// reservedObjectAttrs are the bits of TPMA_OBJECT (Part 2 §8.3) that
// go-tpm does not model: reserved bits 0, 3, 12-15 and 20-31, and bit 9
// (SVNLimited, added in later revisions). A public area with any of them is
// refused, as the general decoder refuses it.
const reservedObjectAttrs = 1<<0 | 1<<3 | 1<<9 | 0xF000 | 0xFFF00000

// objectName is the Name of an object with nameAlg SHA-256: 0x000B ||
// SHA-256(TPMT_PUBLIC) (TPM 2.0 Part 1 §16), computed from the bytes the TPM
// produced, so there is no re-encoding.
func objectName(public []byte) tpm2.TPM2BName {
	sum := sha256.Sum256(public)
	n := make([]byte, 2, 2+sha256.Size)
	binary.BigEndian.PutUint16(n, uint16(tpm2.TPMAlgSHA256))
	return tpm2.TPM2BName{Buffer: append(n, sum[:]...)}
}

// checkSealed checks that o is a sealed-data object (TPM_ALG_KEYEDHASH with
// no sign or decrypt attribute; Part 1 §27.7.1) authorized by its authValue.
func (o *object) checkSealed() error {
	a := o.pub.ObjectAttributes
	if o.pub.Type != tpm2.TPMAlgKeyedHash || a.SignEncrypt || a.Decrypt || a.Restricted {
		return fmt.Errorf("%w: not a sealed-data object", ErrCorruptBlob)
	}
	if !a.UserWithAuth || !a.FixedTPM || !a.FixedParent {
		return fmt.Errorf("%w: sealed object attributes are not ours", ErrCorruptBlob)
	}
	return nil
}

// checkSigner checks that o is an unrestricted signing key and returns its
// public key.
func (o *object) checkSigner() (crypto.PublicKey, KeyAlgorithm, error) {
	a := o.pub.ObjectAttributes
	if !a.SignEncrypt || a.Decrypt || a.Restricted || !a.UserWithAuth {
		return nil, 0, fmt.Errorf("%w: not an unrestricted signing key", ErrCorruptBlob)
	}
	return publicKey(&o.pub)
}

// publicKey converts the public area of an RSA-2048 or ECC P-256 key.
func publicKey(p *tpm2.TPMTPublic) (crypto.PublicKey, KeyAlgorithm, error) {
	switch p.Type {
	case tpm2.TPMAlgRSA:
		parms, err := p.Parameters.RSADetail()
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrCorruptBlob, err)
		}
		n, err := p.Unique.RSA()
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrCorruptBlob, err)
		}
		if parms.KeyBits != 2048 || len(n.Buffer) != 256 || n.Buffer[0]&0x80 == 0 {
			return nil, 0, fmt.Errorf("%w: not an RSA-2048 key", ErrCorruptBlob)
		}
		if parms.Exponent != 0 && parms.Exponent != 65537 {
			return nil, 0, fmt.Errorf("%w: unsupported RSA exponent", ErrCorruptBlob)
		}
		pk, err := tpm2.RSAPub(parms, n)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrCorruptBlob, err)
		}
		return pk, RSA2048, nil
	case tpm2.TPMAlgECC:
		parms, err := p.Parameters.ECCDetail()
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrCorruptBlob, err)
		}
		pt, err := p.Unique.ECC()
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrCorruptBlob, err)
		}
		if parms.CurveID != tpm2.TPMECCNistP256 || len(pt.X.Buffer) != 32 || len(pt.Y.Buffer) != 32 {
			return nil, 0, fmt.Errorf("%w: not a P-256 key", ErrCorruptBlob)
		}
		// Refuse points that are not on the curve before anyone uses them.
		enc := append(append([]byte{4}, pt.X.Buffer...), pt.Y.Buffer...)
		if _, err := ecdh.P256().NewPublicKey(enc); err != nil {
			return nil, 0, fmt.Errorf("%w: invalid P-256 point", ErrCorruptBlob)
		}
		pk, err := tpm2.ECDSAPub(parms, pt)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %v", ErrCorruptBlob, err)
		}
		return pk, ECCP256, nil
	default:
		return nil, 0, fmt.Errorf("%w: unsupported key type %v", ErrCorruptBlob, p.Type)
	}
}

// PublicKey decodes the public key of a key blob without the TPM: an
// *rsa.PublicKey or an *ecdsa.PublicKey.
func PublicKey(b Blob) (crypto.PublicKey, error) {
	o, err := parseBlob(b)
	if err != nil {
		return nil, err
	}
	pk, _, err := o.checkSigner()
	return pk, err
}
