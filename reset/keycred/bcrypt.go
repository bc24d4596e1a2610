package keycred

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/big"
)

// BCRYPT blob magics (bcrypt.h). Each is four ASCII letters read as a
// little-endian uint32.
const (
	MagicRSAPublic       uint32 = 0x31415352 // "RSA1", BCRYPT_RSAPUBLIC_MAGIC
	MagicECDSAPublicP256 uint32 = 0x31534345 // "ECS1", BCRYPT_ECDSA_PUBLIC_P256_MAGIC

	magicRSAPrivate      uint32 = 0x32415352 // "RSA2", BCRYPT_RSAPRIVATE_MAGIC
	magicRSAFullPrivate  uint32 = 0x33415352 // "RSA3", BCRYPT_RSAFULLPRIVATE_MAGIC
	magicECDSAPrivP256   uint32 = 0x32534345 // "ECS2", BCRYPT_ECDSA_PRIVATE_P256_MAGIC
	magicECDHPublicP256  uint32 = 0x314B4345 // "ECK1", BCRYPT_ECDH_PUBLIC_P256_MAGIC
	magicECDHPrivateP256 uint32 = 0x324B4345 // "ECK2", BCRYPT_ECDH_PRIVATE_P256_MAGIC
)

const (
	rsaHeaderLen = 6 * 4 // BCRYPT_RSAKEY_BLOB: Magic, BitLength, cbPublicExp, cbModulus, cbPrime1, cbPrime2
	eccHeaderLen = 2 * 4 // BCRYPT_ECCKEY_BLOB: dwMagic, cbKey
	p256Len      = 32

	// Bounds on RSA keys read from a blob. Windows 10 1903 and later take
	// public exponents up to 2^64-1 (BCRYPT_RSAKEY_BLOB); crypto/rsa takes
	// them up to 2^31-1, so larger ones are refused as unsupported.
	minRSABits = 1024
	maxRSABits = 16384
	maxExpLen  = 8
)

// MarshalPublicKey encodes pub as a BCRYPT public key blob: an
// *rsa.PublicKey as BCRYPT_RSAPUBLIC_BLOB ("RSA1", the form Windows sends as
// "kngc"), an *ecdsa.PublicKey on P-256 as BCRYPT_ECCPUBLIC_BLOB with the
// ECDSA P-256 magic ("ECS1"; see the package documentation for why that one
// is an extension). The exponent and modulus are written as CNG exports
// them: big-endian, without leading zero bytes.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return marshalRSA(k)
	case *ecdsa.PublicKey:
		return marshalECDSA(k)
	default:
		return nil, fmt.Errorf("marshal public key: %w: %T", ErrKeyType, pub)
	}
}

func marshalRSA(k *rsa.PublicKey) ([]byte, error) {
	if k == nil || k.N == nil || k.N.Sign() <= 0 {
		return nil, fmt.Errorf("marshal rsa public key: %w: no modulus", ErrKeyType)
	}
	bits := k.N.BitLen()
	if bits < minRSABits || bits > maxRSABits {
		return nil, fmt.Errorf("marshal rsa public key: %w: %d bits", ErrKeyType, bits)
	}
	if k.E < 3 || k.E%2 == 0 {
		return nil, fmt.Errorf("marshal rsa public key: %w: exponent %d", ErrKeyType, k.E)
	}
	exp := big.NewInt(int64(k.E)).Bytes()
	mod := k.N.Bytes()
	b := make([]byte, 0, rsaHeaderLen+len(exp)+len(mod))
	b = binary.LittleEndian.AppendUint32(b, MagicRSAPublic)
	b = binary.LittleEndian.AppendUint32(b, uint32(bits))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(exp)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(mod)))
	b = binary.LittleEndian.AppendUint32(b, 0) // cbPrime1: public blob
	b = binary.LittleEndian.AppendUint32(b, 0) // cbPrime2
	b = append(b, exp...)
	return append(b, mod...), nil
}

func marshalECDSA(k *ecdsa.PublicKey) ([]byte, error) {
	if k == nil || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("marshal ecdsa public key: %w: not P-256", ErrKeyType)
	}
	pt, err := k.Bytes() // 0x04 || X || Y, checked on the curve
	if err != nil {
		return nil, fmt.Errorf("marshal ecdsa public key: %w: %v", ErrKeyType, err)
	}
	b := make([]byte, 0, eccHeaderLen+2*p256Len)
	b = binary.LittleEndian.AppendUint32(b, MagicECDSAPublicP256)
	b = binary.LittleEndian.AppendUint32(b, p256Len)
	return append(b, pt[1:]...), nil
}

// ParsePublicKey decodes a BCRYPT public key blob made by Windows CNG or
// any tool that writes the same layout: RSA1 gives an *rsa.PublicKey, ECS1
// an *ecdsa.PublicKey on P-256. It is strict: the header's sizes must
// account for every byte, an RSA blob's BitLength must be the modulus's
// exact size and its prime sizes zero, numbers carry no leading zero bytes,
// and an EC point must lie on the curve. Private blobs (RSA2, RSA3, ECS2,
// ECK2) and ECDH keys (ECK1) are refused with ErrKeyType.
func ParsePublicKey(blob []byte) (crypto.PublicKey, error) {
	if len(blob) < 4 {
		return nil, &ParseError{What: "BCRYPT key blob", Offset: len(blob), Err: ErrTruncated}
	}
	switch m := binary.LittleEndian.Uint32(blob); m {
	case MagicRSAPublic:
		return parseRSA(blob)
	case MagicECDSAPublicP256:
		return parseECDSA(blob)
	case magicRSAPrivate, magicRSAFullPrivate, magicECDSAPrivP256, magicECDHPrivateP256:
		return nil, &ParseError{What: "BCRYPT key blob", Err: fmt.Errorf("%w: private key blob %q", ErrKeyType, blob[:4])}
	case magicECDHPublicP256:
		return nil, &ParseError{What: "BCRYPT key blob", Err: fmt.Errorf("%w: ECDH key %q cannot sign", ErrKeyType, blob[:4])}
	default:
		return nil, &ParseError{What: "BCRYPT key blob", Err: fmt.Errorf("%w: magic %#08x", ErrKeyType, m)}
	}
}

func parseRSA(blob []byte) (*rsa.PublicKey, error) {
	const what = "RSA1 blob"
	fail := func(off int, err error) (*rsa.PublicKey, error) {
		return nil, &ParseError{What: what, Offset: off, Err: err}
	}
	if len(blob) < rsaHeaderLen {
		return fail(len(blob), ErrTruncated)
	}
	u := func(i int) uint32 { return binary.LittleEndian.Uint32(blob[4*i:]) }
	bits, expLen, modLen, p1, p2 := u(1), u(2), u(3), u(4), u(5)
	if p1 != 0 || p2 != 0 {
		return fail(16, fmt.Errorf("%w: prime sizes %d, %d in a public blob", ErrKeyBlob, p1, p2))
	}
	if bits < minRSABits || bits > maxRSABits {
		return fail(4, fmt.Errorf("%w: %d bits", ErrKeyType, bits))
	}
	if expLen == 0 || expLen > maxExpLen {
		return fail(8, fmt.Errorf("%w: exponent of %d bytes", ErrKeyBlob, expLen))
	}
	if modLen != (bits+7)/8 {
		return fail(12, fmt.Errorf("%w: %d-byte modulus for %d bits", ErrKeyBlob, modLen, bits))
	}
	want := rsaHeaderLen + int(expLen) + int(modLen) // bounded above: no overflow
	if len(blob) < want {
		return fail(len(blob), ErrTruncated)
	}
	if len(blob) > want {
		return fail(want, ErrTrailingData)
	}
	exp := blob[rsaHeaderLen : rsaHeaderLen+int(expLen)]
	mod := blob[rsaHeaderLen+int(expLen):]
	if exp[0] == 0 {
		return fail(rsaHeaderLen, fmt.Errorf("%w: exponent has a leading zero", ErrKeyBlob))
	}
	n := new(big.Int).SetBytes(mod)
	if uint32(n.BitLen()) != bits {
		return fail(rsaHeaderLen+int(expLen), fmt.Errorf("%w: modulus of %d bits, header says %d", ErrKeyBlob, n.BitLen(), bits))
	}
	if n.Bit(0) == 0 {
		return fail(rsaHeaderLen+int(expLen), fmt.Errorf("%w: even modulus", ErrKeyBlob))
	}
	e := new(big.Int).SetBytes(exp)
	if !e.IsInt64() || e.Int64() > 1<<31-1 {
		return fail(rsaHeaderLen, fmt.Errorf("%w: exponent above 2^31-1", ErrKeyType))
	}
	if e.Int64() < 3 || e.Bit(0) == 0 {
		return fail(rsaHeaderLen, fmt.Errorf("%w: exponent %d", ErrKeyBlob, e.Int64()))
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func parseECDSA(blob []byte) (*ecdsa.PublicKey, error) {
	const what = "ECS1 blob"
	if len(blob) < eccHeaderLen {
		return nil, &ParseError{What: what, Offset: len(blob), Err: ErrTruncated}
	}
	if n := binary.LittleEndian.Uint32(blob[4:]); n != p256Len {
		return nil, &ParseError{What: what, Offset: 4, Err: fmt.Errorf("%w: cbKey %d for P-256", ErrKeyBlob, n)}
	}
	want := eccHeaderLen + 2*p256Len
	if len(blob) < want {
		return nil, &ParseError{What: what, Offset: len(blob), Err: ErrTruncated}
	}
	if len(blob) > want {
		return nil, &ParseError{What: what, Offset: want, Err: ErrTrailingData}
	}
	pt := append([]byte{4}, blob[eccHeaderLen:]...)
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	if err != nil {
		return nil, &ParseError{What: what, Offset: eccHeaderLen, Err: fmt.Errorf("%w: point not on P-256", ErrKeyBlob)}
	}
	return k, nil
}

// Identifier is the directory's name for a key: base64 (standard alphabet,
// padded) of SHA-256 of its key material — for a Hello key, of its BCRYPT
// blob. It is the KeyID entry's value in the form DSInternals shows, the
// "kid" the registration service returns, and the "kid" of the sign-in
// assertion.
func Identifier(keyMaterial []byte) string {
	sum := sha256.Sum256(keyMaterial)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// PublicKeyIdentifier is Identifier of pub's BCRYPT blob.
func PublicKeyIdentifier(pub crypto.PublicKey) (string, error) {
	b, err := MarshalPublicKey(pub)
	if err != nil {
		return "", err
	}
	return Identifier(b), nil
}
