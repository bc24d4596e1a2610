package tpm

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// errNotKeyShape says decodeKeyPublic does not handle this public area.
var errNotKeyShape = errors.New("not a signing-key public area of our shape")

// decodeKeyPublic decodes by hand the public area of the keys this package
// creates (keyTemplates), as it is decoded on every LoadKey and every
// container parse, and go-tpm's reflection decoder walks the 256-byte RSA
// modulus one byte at a time: about three quarters of a container parse.
// It accepts only type TPM_ALG_RSA or TPM_ALG_ECC with a NULL symmetric
// algorithm and a NULL scheme (and, for ECC, a NULL KDF) — TPM 2.0 Part 2
// §12.2.3.5 (TPMS_RSA_PARMS), §12.2.3.6 (TPMS_ECC_PARMS), §12.2.4
// (TPMT_PUBLIC). Anything else is errNotKeyShape, for the general decoder.
// Every field it accepts has exactly one encoding, so what it decodes is
// canonical.
func decodeKeyPublic(b []byte) (*tpm2.TPMTPublic, error) {
	if len(b) < 8 {
		return nil, errNotKeyShape
	}
	typ := tpm2.TPMAlgID(binary.BigEndian.Uint16(b))
	if typ != tpm2.TPMAlgRSA && typ != tpm2.TPMAlgECC {
		return nil, errNotKeyShape
	}
	nameAlg := tpm2.TPMAlgID(binary.BigEndian.Uint16(b[2:]))
	attrs := binary.BigEndian.Uint32(b[4:])
	if attrs&reservedObjectAttrs != 0 {
		return nil, errNotKeyShape
	}
	policy, rest, ok := cut2B(b[8:])
	// symmetric (TPMT_SYM_DEF_OBJECT) and scheme, both TPM_ALG_NULL.
	if !ok || len(rest) < 4 ||
		tpm2.TPMAlgID(binary.BigEndian.Uint16(rest)) != tpm2.TPMAlgNull ||
		tpm2.TPMAlgID(binary.BigEndian.Uint16(rest[2:])) != tpm2.TPMAlgNull {
		return nil, errNotKeyShape
	}
	rest = rest[4:]
	p := &tpm2.TPMTPublic{
		Type:             typ,
		NameAlg:          nameAlg,
		ObjectAttributes: objectAttributes(attrs),
		AuthPolicy:       tpm2.TPM2BDigest{Buffer: policy},
	}
	switch typ {
	case tpm2.TPMAlgRSA:
		if len(rest) < 6 {
			return nil, errNotKeyShape
		}
		keyBits := tpm2.TPMKeyBits(binary.BigEndian.Uint16(rest))
		exponent := binary.BigEndian.Uint32(rest[2:])
		n, tail, ok := cut2B(rest[6:])
		if !ok || len(tail) != 0 {
			return nil, errNotKeyShape
		}
		p.Parameters = rsaNullParms(keyBits, exponent)
		p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: n})
	case tpm2.TPMAlgECC:
		if len(rest) < 4 || tpm2.TPMAlgID(binary.BigEndian.Uint16(rest[2:])) != tpm2.TPMAlgNull {
			return nil, errNotKeyShape
		}
		curve := tpm2.TPMECCCurve(binary.BigEndian.Uint16(rest))
		x, tail, ok := cut2B(rest[4:])
		if !ok {
			return nil, errNotKeyShape
		}
		y, tail, ok := cut2B(tail)
		if !ok || len(tail) != 0 {
			return nil, errNotKeyShape
		}
		p.Parameters = eccNullParms(curve)
		p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: x},
			Y: tpm2.TPM2BECCParameter{Buffer: y},
		})
	default:
		return nil, fmt.Errorf("%w: type %v", errNotKeyShape, typ)
	}
	return p, nil
}
