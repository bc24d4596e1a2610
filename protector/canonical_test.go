package protector

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Go's base64 decoder skips CR and LF even in strict mode; a text with a
// line break in it is a second spelling of the same bytes and is refused.
func TestBase64TextsAreCanonical(t *testing.T) {
	env, _ := wrap(t, HPKEX25519, newKey(t), testBinding)
	text, err := env.MarshalText()
	require.NoError(t, err)
	var e Envelope
	require.NoError(t, e.UnmarshalText(text), "control")
	for _, bad := range []string{string(text[:8]) + "\n" + string(text[8:]), string(text) + "\r\n"} {
		assert.ErrorIs(t, e.UnmarshalText([]byte(bad)), ErrMalformed, "%q", bad[:12])
	}

	data, err := os.ReadFile("testdata/keyset.json")
	require.NoError(t, err)
	_, err = ParseKeySet(data)
	require.NoError(t, err, "control")
	i := strings.Index(string(data), `"pub":"`)
	require.Positive(t, i)
	i += len(`"pub":"`) + 8
	bad := string(data[:i]) + `\r\n` + string(data[i:])
	_, err = ParseKeySet([]byte(bad))
	assert.ErrorIs(t, err, ErrMalformedKeySet)
}
