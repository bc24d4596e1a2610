package keycred

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The vectors in testdata were built by make-vectors.sh from the
// specifications with openssl and sha256sum, not by this package.

func readHex(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	var digits strings.Builder
	for line := range strings.Lines(string(raw)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		digits.WriteString(strings.TrimSpace(line))
	}
	b, err := hex.DecodeString(digits.String())
	require.NoError(t, err)
	return b
}

func readPublicKey(t testing.TB, name string) crypto.PublicKey {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	blk, _ := pem.Decode(raw)
	require.NotNil(t, blk)
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	require.NoError(t, err)
	return pub
}

func TestRSA1VectorMatchesSpecificationLayout(t *testing.T) {
	t.Parallel()
	blob := readHex(t, "rsa1.hex")
	want := readPublicKey(t, "rsa2048.pub.pem").(*rsa.PublicKey)

	// The header, field by field, as bcrypt.h lays it out.
	require.Len(t, blob, 24+3+256)
	assert.Equal(t, "RSA1", string(blob[0:4]))
	assert.Equal(t, []byte{0x00, 0x08, 0, 0}, blob[4:8], "BitLength 2048 LE")
	assert.Equal(t, []byte{3, 0, 0, 0}, blob[8:12], "cbPublicExp")
	assert.Equal(t, []byte{0, 1, 0, 0}, blob[12:16], "cbModulus 256")
	assert.Equal(t, make([]byte, 8), blob[16:24], "cbPrime1, cbPrime2")
	assert.Equal(t, []byte{1, 0, 1}, blob[24:27], "65537 big-endian")

	requireRoundTrip(t, blob, want)

	sum, err := os.ReadFile(filepath.Join("testdata", "rsa1.sha256"))
	require.NoError(t, err)
	raw, err := hex.DecodeString(strings.TrimSpace(string(sum)))
	require.NoError(t, err)
	assert.Equal(t, base64.StdEncoding.EncodeToString(raw), Identifier(blob))
	id, err := PublicKeyIdentifier(want)
	require.NoError(t, err)
	assert.Equal(t, Identifier(blob), id)
}

// requireRoundTrip requires blob to parse to want and want to marshal to
// blob, byte for byte.
func requireRoundTrip(t *testing.T, blob []byte, want interface{ Equal(crypto.PublicKey) bool }) {
	t.Helper()
	got, err := ParsePublicKey(blob)
	require.NoError(t, err)
	assert.True(t, want.Equal(got))
	enc, err := MarshalPublicKey(want)
	require.NoError(t, err)
	assert.Equal(t, blob, enc)
}

func TestECS1VectorMatchesSpecificationLayout(t *testing.T) {
	t.Parallel()
	blob := readHex(t, "ecs1.hex")
	want := readPublicKey(t, "p256.pub.pem").(*ecdsa.PublicKey)
	require.Len(t, blob, 8+64)
	assert.Equal(t, "ECS1", string(blob[0:4]))
	assert.Equal(t, []byte{32, 0, 0, 0}, blob[4:8])

	requireRoundTrip(t, blob, want)
}

var (
	vectorCreated = time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	vectorLogon   = time.Date(2026, 12, 3, 14, 5, 30, 123456700, time.UTC)
)

func TestLinkVectorsDecodeAndEncodeByteForByte(t *testing.T) {
	t.Parallel()
	rsa1 := readHex(t, "rsa1.hex")
	ecs1 := readHex(t, "ecs1.hex")
	for _, tc := range []struct {
		file string
		want KeyCredential
	}{
		{"link-ad.hex", KeyCredential{
			KeyMaterial: rsa1, Usage: KeyUsageNGC, Source: KeySourceAD,
			DeviceID:      "cfe9a872-13ff-4751-a777-aec88c30a762",
			CustomKeyInfo: &CustomKeyInformation{Flags: 0},
			LastLogon:     vectorLogon, Created: vectorCreated,
		}},
		{"link-azuread.hex", KeyCredential{
			KeyMaterial: rsa1, Usage: KeyUsageNGC, Source: KeySourceAzureAD,
			DeviceID:      "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9",
			CustomKeyInfo: &CustomKeyInformation{Flags: KeyFlagAttestation},
			LastLogon:     vectorLogon, Created: vectorCreated,
		}},
		{"link-ecs1.hex", KeyCredential{
			KeyMaterial: ecs1, Usage: KeyUsageNGC, Source: KeySourceAzureAD,
			DeviceID:      "0a1b2c3d-4e5f-4061-8273-8495a6b7c8d9",
			CustomKeyInfo: &CustomKeyInformation{Flags: KeyFlagMFANotUsed},
			LastLogon:     vectorCreated, Created: vectorCreated,
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			data := readHex(t, tc.file)
			got, err := Parse(data)
			require.NoError(t, err)
			assert.Equal(t, &tc.want, got)
			enc, err := tc.want.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, hex.EncodeToString(data), hex.EncodeToString(enc))
			assert.Equal(t, Identifier(tc.want.KeyMaterial), got.ID())
		})
	}
}

func TestTimestampEncodingFollowsKeySource(t *testing.T) {
	t.Parallel()
	// The last 8 bytes of each vector are KeyCreationTime.
	ad := readHex(t, "link-ad.hex")
	aad := readHex(t, "link-azuread.hex")
	// 2026-12-03T14:00:00Z is FILETIME 134407800000000000 (100 ns since
	// 1601) and .NET ticks 639319032000000000 (since 0001), which
	// DateTime.ToBinary marks with the UTC kind bit, 1<<62.
	assert.Equal(t, "00b00a962e83dd01", hex.EncodeToString(ad[len(ad)-8:]))
	assert.Equal(t, "00b081b84551df48", hex.EncodeToString(aad[len(aad)-8:]))
}

func TestDNBinaryVector(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("testdata", "link-ad.dnbinary.txt"))
	require.NoError(t, err)
	s := strings.TrimSpace(string(raw))
	k, owner, err := ParseAttributeValue(s)
	require.NoError(t, err)
	assert.Equal(t, "CN=Jane Doe,OU=Users,DC=contoso,DC=com", owner)
	assert.Equal(t, KeySourceAD, k.Source)
	again, err := k.AttributeValue(owner)
	require.NoError(t, err)
	assert.Equal(t, s, again)
	assert.True(t, strings.HasPrefix(s, "B:828:00020000"))
}
