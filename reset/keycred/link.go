package keycred

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// Version2 is KEY_CREDENTIAL_LINK_VERSION_2, the only KEYCREDENTIALLINK_BLOB
// version MS-ADTS 2.2.20.2 allows and the one every current writer uses.
// Older values (versions 0 and 1, from Windows Server 2016 previews) are
// refused with ErrVersion.
const Version2 uint32 = 0x00000200

const (
	versionLen     = 4
	entryHeaderLen = 3 // Length uint16 LE, Identifier uint8
)

// KeyCredential is one value of msDS-KeyCredentialLink: a
// KEYCREDENTIALLINK_BLOB (MS-ADTS 2.2.20) decoded. KeyID and KeyHash are not
// fields: they are computed from the rest when the value is encoded, and
// checked when it is parsed.
type KeyCredential struct {
	// KeyMaterial is the public key: for an NGC key, a BCRYPT public key
	// blob (ParsePublicKey reads it). Kept as bytes, since other usages
	// hold other forms (DER for computer keys, JSON for FIDO).
	KeyMaterial []byte
	Usage       KeyUsage
	Source      KeySource
	// DeviceID is the device object's ID in lower-case GUID string form;
	// "" when the entry is absent.
	DeviceID string
	// CustomKeyInfo is nil when the entry is absent.
	CustomKeyInfo *CustomKeyInformation
	// LastLogon (KeyApproximateLastLogonTimeStamp) and Created
	// (KeyCreationTime), in UTC at 100 ns precision; the zero Time when
	// the entry is absent.
	LastLogon time.Time
	Created   time.Time
}

// NewNGC returns the value a directory writes for a newly registered
// Windows Hello for Business key: usage NGC, the given source and device,
// CustomKeyInformation in its short form with flags, and both timestamps
// set to created (a key is "last used" when it is registered, as Windows
// and DSInternals write it). pub must be a key MarshalPublicKey encodes.
func NewNGC(pub crypto.PublicKey, src KeySource, deviceID string, flags KeyFlags, created time.Time) (*KeyCredential, error) {
	material, err := MarshalPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("new key credential: %w", err)
	}
	if deviceID != "" {
		if _, err := encodeGUID(deviceID); err != nil {
			return nil, fmt.Errorf("new key credential: device id: %w", err)
		}
	}
	created = created.UTC().Truncate(100 * time.Nanosecond)
	return &KeyCredential{
		KeyMaterial:   material,
		Usage:         KeyUsageNGC,
		Source:        src,
		DeviceID:      normaliseGUID(deviceID),
		CustomKeyInfo: &CustomKeyInformation{Flags: flags},
		LastLogon:     created,
		Created:       created,
	}, nil
}

// ID is the key's identifier: base64 of SHA-256 of KeyMaterial, the KeyID
// entry as DSInternals shows it and the "kid" of registration and sign-in.
func (k *KeyCredential) ID() string { return Identifier(k.KeyMaterial) }

// PublicKey decodes KeyMaterial as a BCRYPT public key blob.
func (k *KeyCredential) PublicKey() (crypto.PublicKey, error) { return ParsePublicKey(k.KeyMaterial) }

// MarshalBinary encodes k as a KEYCREDENTIALLINK_BLOB: Version2, then KeyID,
// KeyHash, KeyMaterial, KeyUsage, KeySource and the optional entries that
// are set, in ascending identifier order, each length little-endian.
func (k *KeyCredential) MarshalBinary() ([]byte, error) {
	if len(k.KeyMaterial) == 0 {
		return nil, fmt.Errorf("marshal key credential: %w: no key material", ErrMissingEntry)
	}
	if !knownUsage(k.Usage) {
		return nil, fmt.Errorf("marshal key credential: %w: %v", ErrInvalidValue, k.Usage)
	}
	if !knownSource(k.Source) {
		return nil, fmt.Errorf("marshal key credential: %w: %v", ErrInvalidValue, k.Source)
	}
	var tail []byte // the entries KeyHash covers: all after it
	var err error
	add := func(id Entry, v []byte) {
		if err == nil && len(v) > math.MaxUint16 {
			err = fmt.Errorf("%w: %v value of %d bytes", ErrEntryLength, id, len(v))
		}
		tail = appendEntry(tail, id, v)
	}
	add(EntryKeyMaterial, k.KeyMaterial)
	add(EntryKeyUsage, []byte{byte(k.Usage)})
	add(EntryKeySource, []byte{byte(k.Source)})
	if k.DeviceID != "" {
		g, gerr := encodeGUID(k.DeviceID)
		if gerr != nil {
			return nil, fmt.Errorf("marshal key credential: device id: %w", gerr)
		}
		add(EntryDeviceID, g)
	}
	if k.CustomKeyInfo != nil {
		add(EntryCustomKeyInformation, k.CustomKeyInfo.marshal())
	}
	for _, ts := range []struct {
		id Entry
		t  time.Time
	}{{EntryLastLogonTime, k.LastLogon}, {EntryCreationTime, k.Created}} {
		if ts.t.IsZero() {
			continue
		}
		v, terr := encodeTime(ts.t, k.Source)
		if terr != nil {
			return nil, fmt.Errorf("marshal key credential: %v: %w", ts.id, terr)
		}
		add(ts.id, v)
	}
	if err != nil {
		return nil, fmt.Errorf("marshal key credential: %w", err)
	}
	keyID := sha256.Sum256(k.KeyMaterial)
	keyHash := sha256.Sum256(tail)
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, versionLen+2*(entryHeaderLen+32)+len(tail)), Version2)
	b = appendEntry(b, EntryKeyID, keyID[:])
	b = appendEntry(b, EntryKeyHash, keyHash[:])
	return append(b, tail...), nil
}

func appendEntry(b []byte, id Entry, v []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
	b = append(b, byte(id))
	return append(b, v...)
}

func knownUsage(u KeyUsage) bool {
	switch u {
	case KeyUsageAdminKey, KeyUsageNGC, KeyUsageSTK, KeyUsageBitLockerRecovery, KeyUsageOther, KeyUsageFIDO, KeyUsageFEK:
		return true
	}
	return false
}

func knownSource(s KeySource) bool { return s == KeySourceAD || s == KeySourceAzureAD }

// Parse decodes a KEYCREDENTIALLINK_BLOB as Active Directory, Entra ID or
// another tool wrote it. It refuses, with a *ParseError matching one of the
// package's sentinels: a version other than Version2; an entry whose
// identifier is unknown or not greater than the one before; a value whose
// length is wrong for its identifier or runs past the end; missing KeyID,
// KeyMaterial or KeyUsage; a KeyID that is not SHA-256 of KeyMaterial; a
// KeyHash (optional, as in MS-ADTS) that is not SHA-256 of the bytes after
// it; and values a field does not allow. Nothing in data is retained.
func Parse(data []byte) (*KeyCredential, error) {
	const what = "KEYCREDENTIALLINK_BLOB"
	fail := func(off int, id Entry, err error) (*KeyCredential, error) {
		return nil, &ParseError{What: what, Offset: off, Entry: id, Err: err}
	}
	if len(data) < versionLen {
		return fail(len(data), 0, ErrTruncated)
	}
	if v := binary.LittleEndian.Uint32(data); v != Version2 {
		return fail(0, 0, fmt.Errorf("%w: %#08x", ErrVersion, v))
	}
	var (
		values  [EntryCreationTime + 1][]byte
		offsets [EntryCreationTime + 1]int
		hashEnd int // offset of the first byte KeyHash covers
		prev    Entry
	)
	for off := versionLen; off < len(data); {
		if len(data)-off < entryHeaderLen {
			return fail(off, 0, fmt.Errorf("%w: entry header", ErrTruncated))
		}
		n := int(binary.LittleEndian.Uint16(data[off:]))
		id := Entry(data[off+2])
		if id == 0 || id > EntryCreationTime {
			return fail(off, id, ErrUnknownEntry)
		}
		if id <= prev {
			return fail(off, id, fmt.Errorf("%w: %v after %v", ErrEntryOrder, id, prev))
		}
		start := off + entryHeaderLen
		if len(data)-start < n {
			return fail(off, id, fmt.Errorf("%w: %d-byte value, %d left", ErrTruncated, n, len(data)-start))
		}
		if want := id.fixedLen(); want != 0 && n != want || n == 0 {
			return fail(off, id, fmt.Errorf("%w: %d bytes", ErrEntryLength, n))
		}
		values[id], offsets[id] = data[start:start+n], off
		if id == EntryKeyHash {
			hashEnd = start + n
		}
		prev, off = id, start+n
	}
	for _, id := range []Entry{EntryKeyID, EntryKeyMaterial, EntryKeyUsage} {
		if values[id] == nil {
			return fail(len(data), id, ErrMissingEntry)
		}
	}
	if sum := sha256.Sum256(values[EntryKeyMaterial]); !bytes.Equal(sum[:], values[EntryKeyID]) {
		return fail(offsets[EntryKeyID], EntryKeyID, ErrKeyID)
	}
	if h := values[EntryKeyHash]; h != nil {
		if sum := sha256.Sum256(data[hashEnd:]); !bytes.Equal(sum[:], h) {
			return fail(offsets[EntryKeyHash], EntryKeyHash, ErrKeyHash)
		}
	}
	k := &KeyCredential{KeyMaterial: bytes.Clone(values[EntryKeyMaterial])}
	if k.Usage = KeyUsage(values[EntryKeyUsage][0]); !knownUsage(k.Usage) {
		return fail(offsets[EntryKeyUsage], EntryKeyUsage, fmt.Errorf("%w: %v", ErrInvalidValue, k.Usage))
	}
	if v := values[EntryKeySource]; v != nil {
		if k.Source = KeySource(v[0]); !knownSource(k.Source) {
			return fail(offsets[EntryKeySource], EntryKeySource, fmt.Errorf("%w: %v", ErrInvalidValue, k.Source))
		}
	}
	if v := values[EntryDeviceID]; v != nil {
		k.DeviceID = decodeGUID(v)
	}
	if v := values[EntryCustomKeyInformation]; v != nil {
		c, err := parseCustomKeyInformation(v)
		if err != nil {
			return fail(offsets[EntryCustomKeyInformation], EntryCustomKeyInformation, err)
		}
		k.CustomKeyInfo = c
	}
	for _, ts := range []struct {
		id Entry
		t  *time.Time
	}{{EntryLastLogonTime, &k.LastLogon}, {EntryCreationTime, &k.Created}} {
		v := values[ts.id]
		if v == nil {
			continue
		}
		t, err := decodeTime(v, k.Source)
		if err != nil {
			return fail(offsets[ts.id], ts.id, err)
		}
		if t.IsZero() {
			// time.Time's zero means "absent" here; 0001-01-01 exactly
			// cannot be told from it, and no key was made then.
			return fail(offsets[ts.id], ts.id, fmt.Errorf("%w: %v", ErrTime, t))
		}
		*ts.t = t
	}
	return k, nil
}
