package keycred

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawEntry is one KEYCREDENTIALLINK_ENTRY as a test writes it: length
// taken from value unless length is set.
type rawEntry struct {
	id     Entry
	value  []byte
	length int // -1: len(value)
}

func ent(id Entry, v []byte) rawEntry { return rawEntry{id: id, value: v, length: -1} }

// build writes entries as given, after the version; KeyID and KeyHash
// entries whose value is nil are computed correctly from the others, so a
// test breaks exactly one rule at a time.
func build(version uint32, entries ...rawEntry) []byte {
	var material []byte
	for _, e := range entries {
		if e.id == EntryKeyMaterial {
			material = e.value
		}
	}
	enc := func(e rawEntry) []byte {
		n := e.length
		if n < 0 {
			n = len(e.value)
		}
		b := binary.LittleEndian.AppendUint16(nil, uint16(n))
		return append(append(b, byte(e.id)), e.value...)
	}
	out := binary.LittleEndian.AppendUint32(nil, version)
	for i, e := range entries {
		if e.value == nil && e.id == EntryKeyID {
			sum := sha256.Sum256(material)
			e.value = sum[:]
		}
		if e.value == nil && e.id == EntryKeyHash {
			var tail []byte
			for _, f := range entries[i+1:] {
				tail = append(tail, enc(f)...)
			}
			sum := sha256.Sum256(tail)
			e.value = sum[:]
		}
		out = append(out, enc(e)...)
	}
	return out
}

// good is a valid value's entries: every identifier once, in order.
func good(t testing.TB) []rawEntry {
	rsa1 := readHex(t, "rsa1.hex")
	return []rawEntry{
		ent(EntryKeyID, nil),
		ent(EntryKeyHash, nil),
		ent(EntryKeyMaterial, rsa1),
		ent(EntryKeyUsage, []byte{1}),
		ent(EntryKeySource, []byte{0}),
		ent(EntryDeviceID, make([]byte, 16)),
		ent(EntryCustomKeyInformation, []byte{1, 0}),
		ent(EntryLastLogonTime, []byte{0, 0xb0, 0x0a, 0x96, 0x2e, 0x83, 0xdd, 0x01}),
		ent(EntryCreationTime, []byte{0, 0xb0, 0x0a, 0x96, 0x2e, 0x83, 0xdd, 0x01}),
	}
}

func with(es []rawEntry, f func([]rawEntry) []rawEntry) []rawEntry {
	return f(append([]rawEntry(nil), es...))
}

func TestBuilderMakesValidValues(t *testing.T) {
	t.Parallel()
	_, err := Parse(build(Version2, good(t)...))
	require.NoError(t, err, "the refusal tests below start from a valid value")
	assert.Equal(t, readHex(t, "link-ad.hex")[:4], build(Version2)[:4])
}

func TestParseRefusesEveryEntryOrderError(t *testing.T) {
	t.Parallel()
	g := good(t)
	for i := 0; i+1 < len(g); i++ {
		t.Run(fmt.Sprintf("swap %v %v", g[i].id, g[i+1].id), func(t *testing.T) {
			t.Parallel()
			es := with(g, func(es []rawEntry) []rawEntry { es[i], es[i+1] = es[i+1], es[i]; return es })
			_, err := Parse(build(Version2, es...))
			assert.ErrorIs(t, err, ErrEntryOrder)
		})
	}
	for i := range g {
		t.Run(fmt.Sprintf("repeat %v", g[i].id), func(t *testing.T) {
			t.Parallel()
			es := with(g, func(es []rawEntry) []rawEntry { return append(es[:i+1], es[i:]...) })
			_, err := Parse(build(Version2, es...))
			assert.ErrorIs(t, err, ErrEntryOrder)
		})
	}
}

func TestParseRefusesEveryLengthError(t *testing.T) {
	t.Parallel()
	g := good(t)
	for i, e := range g {
		var bad []int
		switch fixed := e.id.fixedLen(); {
		case fixed != 0:
			bad = []int{0, fixed - 1, fixed + 1}
		case e.id == EntryKeyMaterial:
			bad = []int{0}
		case e.id == EntryCustomKeyInformation:
			bad = []int{0, 1, 3, 15} // 2 is the short form, 16 and more the long one
		}
		for _, n := range bad {
			t.Run(fmt.Sprintf("%v of %d bytes", e.id, n), func(t *testing.T) {
				t.Parallel()
				es := with(g, func(es []rawEntry) []rawEntry {
					v := make([]byte, n)
					copy(v, e.value)
					if e.id == EntryCustomKeyInformation && n > 0 {
						v[0] = 1
					}
					es[i] = ent(e.id, v)
					if e.id == EntryKeyID || e.id == EntryKeyHash {
						es[i].value = v // not recomputed: the length is wrong anyway
					}
					return es
				})
				_, err := Parse(build(Version2, es...))
				assert.ErrorIs(t, err, ErrEntryLength)
			})
		}
	}
	t.Run("length past the end", func(t *testing.T) {
		t.Parallel()
		es := with(g, func(es []rawEntry) []rawEntry {
			last := len(es) - 1
			es[last].length = len(es[last].value) + 1
			return es
		})
		_, err := Parse(build(Version2, es...))
		assert.ErrorIs(t, err, ErrTruncated)
	})
}

func TestParseRefusesEveryPrefixAndAnyTrailingByte(t *testing.T) {
	t.Parallel()
	data := readHex(t, "link-ad.hex")
	for n := range len(data) {
		_, err := Parse(data[:n])
		require.Error(t, err, "prefix of %d bytes", n)
		var pe *ParseError
		require.True(t, errors.As(err, &pe), "%v", err)
	}
	for _, tail := range [][]byte{{0}, {0, 0}, {0, 0, 0}, {0, 0, 0x0a}, {1, 0, 0x09, 0}} {
		_, err := Parse(append(append([]byte(nil), data...), tail...))
		assert.Error(t, err, "trailing % x", tail)
	}
}

func TestParseRefusesAnySingleBitFlip(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"link-ad.hex", "link-azuread.hex", "link-ecs1.hex"} {
		data := readHex(t, file)
		for i := range data {
			for bit := range 8 {
				d := append([]byte(nil), data...)
				d[i] ^= 1 << bit
				_, err := Parse(d)
				require.Error(t, err, "%s: byte %d bit %d", file, i, bit)
			}
		}
	}
}

func TestParseRefusals(t *testing.T) {
	t.Parallel()
	g := good(t)
	drop := func(id Entry) []rawEntry {
		return with(g, func(es []rawEntry) []rawEntry {
			out := es[:0]
			for _, e := range es {
				if e.id != id {
					out = append(out, e)
				}
			}
			return out
		})
	}
	set := func(id Entry, v []byte) []rawEntry {
		return with(g, func(es []rawEntry) []rawEntry {
			for i := range es {
				if es[i].id == id {
					es[i].value = v
				}
			}
			return es
		})
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"version 1", build(0x00000100, g...), ErrVersion},
		{"version 0", build(0, g...), ErrVersion},
		{"version big-endian", build(0x00020000, g...), ErrVersion},
		{"unknown identifier 0", build(Version2, append(g, ent(0, []byte{1}))...), ErrUnknownEntry},
		{"unknown identifier 0x0a", build(Version2, append(g, ent(0x0a, []byte{1}))...), ErrUnknownEntry},
		{"no KeyID", build(Version2, drop(EntryKeyID)...), ErrMissingEntry},
		{"no KeyMaterial", build(Version2, drop(EntryKeyMaterial)...), ErrMissingEntry},
		{"no KeyUsage", build(Version2, drop(EntryKeyUsage)...), ErrMissingEntry},
		{"KeyID of other material", build(Version2, set(EntryKeyID, make([]byte, 32))...), ErrKeyID},
		{"KeyHash wrong", build(Version2, set(EntryKeyHash, make([]byte, 32))...), ErrKeyHash},
		{"usage unknown", build(Version2, set(EntryKeyUsage, []byte{0x05})...), ErrInvalidValue},
		{"source unknown", build(Version2, set(EntryKeySource, []byte{0x02})...), ErrInvalidValue},
		{"custom key info version 0", build(Version2, set(EntryCustomKeyInformation, []byte{0, 0})...), ErrInvalidValue},
		{"custom key info version 2", build(Version2, set(EntryCustomKeyInformation, []byte{2, 0})...), ErrInvalidValue},
		{"FILETIME above int64", build(Version2, set(EntryCreationTime, []byte{0, 0, 0, 0, 0, 0, 0, 0x80})...), ErrTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.data)
			require.ErrorIs(t, err, tc.want)
			var pe *ParseError
			assert.True(t, errors.As(err, &pe))
		})
	}
}

func TestParseAcceptsOptionalEntriesAbsent(t *testing.T) {
	t.Parallel()
	rsa1 := readHex(t, "rsa1.hex")
	// The smallest value MS-ADTS allows: KeyID, KeyMaterial, KeyUsage.
	k, err := Parse(build(Version2, ent(EntryKeyID, nil), ent(EntryKeyMaterial, rsa1), ent(EntryKeyUsage, []byte{1})))
	require.NoError(t, err)
	assert.Equal(t, &KeyCredential{KeyMaterial: rsa1, Usage: KeyUsageNGC}, k)
}

func TestCustomKeyInformationLongFormRoundTrips(t *testing.T) {
	t.Parallel()
	rsa1 := readHex(t, "rsa1.hex")
	long := []byte{1, 0x03, 1, 1, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xca, 0xfe}
	data := build(Version2, ent(EntryKeyID, nil), ent(EntryKeyHash, nil), ent(EntryKeyMaterial, rsa1),
		ent(EntryKeyUsage, []byte{1}), ent(EntryKeySource, []byte{1}), ent(EntryCustomKeyInformation, long))
	k, err := Parse(data)
	require.NoError(t, err)
	require.NotNil(t, k.CustomKeyInfo.Extended)
	assert.Equal(t, KeyFlagAttestation|KeyFlagMFANotUsed, k.CustomKeyInfo.Flags)
	assert.Equal(t, uint8(2), k.CustomKeyInfo.Extended.KeyStrength)
	assert.Equal(t, []byte{0xca, 0xfe}, k.CustomKeyInfo.Extended.EncodedExtendedCKI)
	enc, err := k.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, data, enc)
}

func TestParseReadsTheShapesOtherWritersUse(t *testing.T) {
	t.Parallel()
	rsa1 := readHex(t, "rsa1.hex")
	ft := []byte{0, 0xb0, 0x0a, 0x96, 0x2e, 0x83, 0xdd, 0x01}           // 2026-12-03T14:00:00Z
	der := []byte{0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00} // a DER RSAPublicKey's start: opaque here
	for _, tc := range []struct {
		name    string
		entries []rawEntry
		want    KeyCredential
	}{
		// A computer's NGC key as DSInternals writes it for a validated
		// write: DER key material, no CustomKeyInformation, no last logon.
		{"computer key", []rawEntry{
			ent(EntryKeyID, nil), ent(EntryKeyHash, nil), ent(EntryKeyMaterial, der),
			ent(EntryKeyUsage, []byte{1}), ent(EntryKeySource, []byte{0}),
			ent(EntryDeviceID, make([]byte, 16)), ent(EntryCreationTime, ft),
		}, KeyCredential{KeyMaterial: der, Usage: KeyUsageNGC, Source: KeySourceAD,
			DeviceID: "00000000-0000-0000-0000-000000000000", Created: vectorCreated}},
		// A user key without a device, as tools that add shadow credentials
		// may write it.
		{"no device", []rawEntry{
			ent(EntryKeyID, nil), ent(EntryKeyHash, nil), ent(EntryKeyMaterial, rsa1),
			ent(EntryKeyUsage, []byte{1}), ent(EntryKeySource, []byte{0}),
			ent(EntryCustomKeyInformation, []byte{1, 0}), ent(EntryLastLogonTime, ft), ent(EntryCreationTime, ft),
		}, KeyCredential{KeyMaterial: rsa1, Usage: KeyUsageNGC, Source: KeySourceAD,
			CustomKeyInfo: &CustomKeyInformation{}, LastLogon: vectorCreated, Created: vectorCreated}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := build(Version2, tc.entries...)
			k, err := Parse(data)
			require.NoError(t, err)
			assert.Equal(t, &tc.want, k)
			enc, err := k.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, data, enc, "the same bytes back")
		})
	}
}
