package keycred

import (
	"bytes"
	"fmt"
)

// KeyFlags is CUSTOM_KEY_INFORMATION's Flags byte (MS-ADTS 2.2.20.4).
type KeyFlags uint8

// Flags MS-ADTS 2.2.20.4 defines. Other bits are kept as read.
const (
	// KeyFlagAttestation (CUSTOMKEYINFO_FLAGS_ATTESTATION): the key came
	// with attestation that the directory checked. MS-ADTS reserves it;
	// this module sets it when the registration carried a TPM attestation.
	KeyFlagAttestation KeyFlags = 0x01
	// KeyFlagMFANotUsed (CUSTOMKEYINFO_FLAGS_MFA_NOT_USED): the client
	// that created the key authenticated with a single credential.
	KeyFlagMFANotUsed KeyFlags = 0x02
)

func (f KeyFlags) String() string {
	if f == 0 {
		return "None"
	}
	var b []byte
	add := func(s string) {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, s...)
	}
	if f&KeyFlagAttestation != 0 {
		add("Attestation")
	}
	if f&KeyFlagMFANotUsed != 0 {
		add("MFANotUsed")
	}
	if rest := f &^ (KeyFlagAttestation | KeyFlagMFANotUsed); rest != 0 {
		add(fmt.Sprintf("%#02x", uint8(rest)))
	}
	return string(b)
}

// customKeyInfoVersion is CUSTOM_KEY_INFORMATION's Version: MUST be 1.
const customKeyInfoVersion = 1

// Sizes of CUSTOM_KEY_INFORMATION's two representations: Version and Flags
// alone, or those followed by VolType, SupportsNotification, FekKeyVersion,
// KeyStrength, 10 reserved bytes and a variable EncodedExtendedCKI.
const (
	customShortLen = 2
	customLongMin  = 2 + 4 + 10
)

// CustomKeyInformation is the CUSTOM_KEY_INFORMATION structure (MS-ADTS
// 2.2.20.4). Hello keys written by Windows, Entra and DSInternals carry the
// short form (Extended nil).
type CustomKeyInformation struct {
	Flags    KeyFlags
	Extended *CustomKeyExtended // the long representation's further fields; nil for the short one
}

// CustomKeyExtended holds the fields of CUSTOM_KEY_INFORMATION's long
// representation, kept as read so a value re-encodes unchanged.
type CustomKeyExtended struct {
	VolumeType           uint8 // 0 none, 1 OS volume, 2 fixed data, 3 removable data
	SupportsNotification uint8
	FekKeyVersion        uint8
	KeyStrength          uint8 // 0 unknown, 1 weak, 2 normal
	Reserved             [10]byte
	EncodedExtendedCKI   []byte
}

func (c *CustomKeyInformation) marshal() []byte {
	b := []byte{customKeyInfoVersion, byte(c.Flags)}
	if x := c.Extended; x != nil {
		b = append(b, x.VolumeType, x.SupportsNotification, x.FekKeyVersion, x.KeyStrength)
		b = append(b, x.Reserved[:]...)
		b = append(b, x.EncodedExtendedCKI...)
	}
	return b
}

// parseCustomKeyInformation reads the value of a CustomKeyInformation
// entry. The representation is told apart by size alone, as MS-ADTS
// requires: 2 bytes is the short form, 16 or more the long one; anything
// between is refused.
func parseCustomKeyInformation(v []byte) (*CustomKeyInformation, error) {
	switch {
	case len(v) == customShortLen:
	case len(v) >= customLongMin:
	default:
		return nil, fmt.Errorf("%w: CUSTOM_KEY_INFORMATION of %d bytes", ErrEntryLength, len(v))
	}
	if v[0] != customKeyInfoVersion {
		return nil, fmt.Errorf("%w: CUSTOM_KEY_INFORMATION version %d", ErrInvalidValue, v[0])
	}
	c := &CustomKeyInformation{Flags: KeyFlags(v[1])}
	if len(v) >= customLongMin {
		x := &CustomKeyExtended{VolumeType: v[2], SupportsNotification: v[3], FekKeyVersion: v[4], KeyStrength: v[5]}
		copy(x.Reserved[:], v[6:16])
		if len(v) > customLongMin {
			x.EncodedExtendedCKI = bytes.Clone(v[customLongMin:])
		}
		c.Extended = x
	}
	return c, nil
}
