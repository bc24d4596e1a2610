package keycred

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewNGCIsWhatWindowsWrites(t *testing.T) {
	t.Parallel()
	pub := readPublicKey(t, "rsa2048.pub.pem")
	at := time.Date(2026, 12, 3, 14, 0, 0, 123456789, time.FixedZone("CET", 3600))
	k, err := NewNGC(pub, KeySourceAzureAD, "{0A1B2C3D-4E5F-4061-8273-8495A6B7C8D9}", KeyFlagAttestation, at)
	require.NoError(t, err)
	assert.Equal(t, KeyUsageNGC, k.Usage)
	assert.Equal(t, "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9", k.DeviceID)
	assert.Equal(t, readHex(t, "rsa1.hex"), k.KeyMaterial)
	assert.Equal(t, at.UTC().Truncate(100), k.Created)
	assert.Equal(t, k.Created, k.LastLogon)
	b, err := k.MarshalBinary()
	require.NoError(t, err)
	back, err := Parse(b)
	require.NoError(t, err)
	assert.Equal(t, k, back)

	_, err = NewNGC(pub, KeySourceAD, "not-a-guid", 0, at)
	assert.ErrorIs(t, err, ErrInvalidValue)
}

func TestMarshalRefusals(t *testing.T) {
	t.Parallel()
	rsa1 := readHex(t, "rsa1.hex")
	ok := func() KeyCredential { return KeyCredential{KeyMaterial: rsa1, Usage: KeyUsageNGC} }
	for _, tc := range []struct {
		name string
		edit func(*KeyCredential)
		want error
	}{
		{"no key material", func(k *KeyCredential) { k.KeyMaterial = nil }, ErrMissingEntry},
		{"key material over 65535 bytes", func(k *KeyCredential) { k.KeyMaterial = make([]byte, 1<<16) }, ErrEntryLength},
		{"unknown usage", func(k *KeyCredential) { k.Usage = 0x42 }, ErrInvalidValue},
		{"unknown source", func(k *KeyCredential) { k.Source = 7 }, ErrInvalidValue},
		{"bad device id", func(k *KeyCredential) { k.DeviceID = "xyz" }, ErrInvalidValue},
		{"FILETIME before 1601", func(k *KeyCredential) { k.Created = time.Date(1600, 12, 31, 0, 0, 0, 0, time.UTC) }, ErrTime},
		{"FILETIME past int64", func(k *KeyCredential) { k.Created = time.Date(30900, 1, 1, 0, 0, 0, 0, time.UTC) }, ErrTime},
		{"DateTime past 9999", func(k *KeyCredential) {
			k.Source = KeySourceAzureAD
			k.LastLogon = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		}, ErrTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := ok()
			tc.edit(&k)
			_, err := k.MarshalBinary()
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func TestTimestampsRoundTripAtTheirRangeEnds(t *testing.T) {
	t.Parallel()
	rsa1 := readHex(t, "rsa1.hex")
	for _, tc := range []struct {
		src KeySource
		at  time.Time
	}{
		{KeySourceAD, time.Date(1601, 1, 1, 0, 0, 0, 100, time.UTC)},
		{KeySourceAD, time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC)}, // past UnixNano's range
		{KeySourceAD, time.Date(30000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{KeySourceAzureAD, time.Date(1, 1, 1, 0, 0, 0, 100, time.UTC)},
		{KeySourceAzureAD, time.Date(9999, 12, 31, 23, 59, 59, 999999900, time.UTC)},
		{KeySourceAzureAD, time.Date(1969, 12, 31, 23, 59, 59, 999999900, time.UTC)},
	} {
		k := KeyCredential{KeyMaterial: rsa1, Usage: KeyUsageNGC, Source: tc.src, Created: tc.at}
		b, err := k.MarshalBinary()
		require.NoError(t, err, "%v %v", tc.src, tc.at)
		back, err := Parse(b)
		require.NoError(t, err)
		assert.True(t, tc.at.Equal(back.Created), "%v: %v != %v", tc.src, tc.at, back.Created)
	}
}

func TestDateTimeBinaryKindsDecodeToTheSameInstant(t *testing.T) {
	t.Parallel()
	// DateTime.ToBinary: Unspecified (kind 0), Utc (1) and Local (2) all
	// hold UTC ticks here; the kind bits must not shift the time.
	const ticks = 639319032000000000 // 2026-12-03T14:00:00Z
	for _, kind := range []uint64{0, 1, 2, 3} {
		b := make([]byte, 8)
		v := uint64(ticks) | kind<<62
		for i := range 8 {
			b[i] = byte(v >> (8 * i))
		}
		got, err := decodeTime(b, KeySourceAzureAD)
		require.NoError(t, err)
		assert.Equal(t, vectorCreated, got, "kind %d", kind)
	}
}
