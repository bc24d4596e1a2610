package keycred

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDNBinaryFormAndCase(t *testing.T) {
	t.Parallel()
	d := DNBinary{Binary: []byte{0x00, 0xab, 0xcd}, DN: "CN=x,DC=y"}
	assert.Equal(t, "B:6:00ABCD:CN=x,DC=y", d.String())
	got, err := ParseDNBinary("B:6:00abCD:CN=x,DC=y")
	require.NoError(t, err)
	assert.Equal(t, d, got)
	got, err = ParseDNBinary("B:0::CN=x")
	require.NoError(t, err)
	assert.Empty(t, got.Binary)
	// A colon in the DN is the DN's business, not a separator.
	got, err = ParseDNBinary("B:2:01:CN=a\\:b")
	require.NoError(t, err)
	assert.Equal(t, "CN=a\\:b", got.DN)
}

func TestParseDNBinaryRefusals(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "B", "B:", "b:2:01:CN=x", "X:2:01:CN=x", "B:2:01", "B:2:01:", "B::01:CN=x",
		"B:3:012:CN=x", "B:4:01:CN=x", "B:2:0101:CN=x", "B:02:01:CN=x", "B:+2:01:CN=x",
		"B:-2:01:CN=x", "B:2:0g:CN=x", "B:2: 1:CN=x", "B:99999999:01:CN=x",
		"B:2:01:CN=x\n", "B:2:01:CN=\x00", "B:2:01:\xff",
	} {
		_, err := ParseDNBinary(s)
		assert.ErrorIs(t, err, ErrDNBinary, "%q", s)
	}
}

func TestAttributeValueRefusesEmptyOwner(t *testing.T) {
	t.Parallel()
	k, err := NewNGC(readPublicKey(t, "rsa2048.pub.pem"), KeySourceAzureAD, "", 0, time.Now())
	require.NoError(t, err)
	_, err = k.AttributeValue("")
	assert.ErrorIs(t, err, ErrDNBinary)
}
