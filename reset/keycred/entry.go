package keycred

import "fmt"

// Entry is a KEYCREDENTIALLINK_ENTRY identifier (MS-ADTS 2.2.20.6).
type Entry uint8

// The identifiers MS-ADTS 2.2.20.6 defines, in the order a blob holds them.
const (
	EntryKeyID                Entry = 0x01 // SHA-256 of the KeyMaterial value, 32 bytes
	EntryKeyHash              Entry = 0x02 // SHA-256 of all entries after this one, 32 bytes
	EntryKeyMaterial          Entry = 0x03 // the public key, variable
	EntryKeyUsage             Entry = 0x04 // KeyUsage, 1 byte
	EntryKeySource            Entry = 0x05 // KeySource, 1 byte
	EntryDeviceID             Entry = 0x06 // device object GUID, 16 bytes
	EntryCustomKeyInformation Entry = 0x07 // CUSTOM_KEY_INFORMATION, 2 bytes or the long form
	EntryLastLogonTime        Entry = 0x08 // KeyApproximateLastLogonTimeStamp, 8 bytes
	EntryCreationTime         Entry = 0x09 // KeyCreationTime, 8 bytes
)

var entryNames = [...]string{
	EntryKeyID:                "KeyID",
	EntryKeyHash:              "KeyHash",
	EntryKeyMaterial:          "KeyMaterial",
	EntryKeyUsage:             "KeyUsage",
	EntryKeySource:            "KeySource",
	EntryDeviceID:             "DeviceId",
	EntryCustomKeyInformation: "CustomKeyInformation",
	EntryLastLogonTime:        "KeyApproximateLastLogonTimeStamp",
	EntryCreationTime:         "KeyCreationTime",
}

func (e Entry) String() string {
	if int(e) < len(entryNames) && entryNames[e] != "" {
		return entryNames[e]
	}
	return fmt.Sprintf("Entry(%#02x)", uint8(e))
}

// fixedLen is the length MS-ADTS 2.2.20.6 gives an entry's value; 0 for
// the variable ones (KeyMaterial, CustomKeyInformation).
func (e Entry) fixedLen() int {
	switch e {
	case EntryKeyID, EntryKeyHash:
		return 32
	case EntryKeyUsage, EntryKeySource:
		return 1
	case EntryDeviceID:
		return 16
	case EntryLastLogonTime, EntryCreationTime:
		return 8
	}
	return 0
}

// KeyUsage is the KeyUsage entry (MS-ADTS 2.2.20).
type KeyUsage uint8

// Key usages. MS-ADTS names NGC, FIDO and FEK; the others are the values
// DSInternals reports in directories (device transport keys, BitLocker
// recovery, the admin key) and are kept, not interpreted.
const (
	KeyUsageAdminKey          KeyUsage = 0x00
	KeyUsageNGC               KeyUsage = 0x01 // KEY_USAGE_NGC: a Windows Hello for Business key
	KeyUsageSTK               KeyUsage = 0x02 // a device's session transport key
	KeyUsageBitLockerRecovery KeyUsage = 0x03
	KeyUsageOther             KeyUsage = 0x04
	KeyUsageFIDO              KeyUsage = 0x07 // KEY_USAGE_FIDO
	KeyUsageFEK               KeyUsage = 0x08 // KEY_USAGE_FEK: file encryption key
)

func (u KeyUsage) String() string {
	switch u {
	case KeyUsageAdminKey:
		return "AdminKey"
	case KeyUsageNGC:
		return "NGC"
	case KeyUsageSTK:
		return "STK"
	case KeyUsageBitLockerRecovery:
		return "BitlockerRecovery"
	case KeyUsageOther:
		return "Other"
	case KeyUsageFIDO:
		return "FIDO"
	case KeyUsageFEK:
		return "FEK"
	}
	return fmt.Sprintf("KeyUsage(%#02x)", uint8(u))
}

// KeySource is the KeySource entry (MS-ADTS 2.2.20): who wrote the
// key. It also decides how the two timestamps are encoded (see the package
// documentation).
type KeySource uint8

// Key sources.
const (
	// KeySourceAD (KEY_SOURCE_AD): written in Active Directory, by the DC
	// on a key-trust registration or by a tool; timestamps are FILETIME.
	KeySourceAD KeySource = 0x00
	// KeySourceAzureAD: held by Entra ID, and written back to AD by Entra
	// Connect for hybrid key trust; timestamps are .NET DateTime binary.
	KeySourceAzureAD KeySource = 0x01
)

func (s KeySource) String() string {
	switch s {
	case KeySourceAD:
		return "AD"
	case KeySourceAzureAD:
		return "AzureAD"
	}
	return fmt.Sprintf("KeySource(%#02x)", uint8(s))
}
