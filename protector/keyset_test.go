package protector

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testKeySet(t *testing.T) KeySet {
	var set KeySet
	for _, s := range allSchemes {
		set.Keys = append(set.Keys, testKey(t, s).Public())
	}
	return set
}

func TestKeySetRoundTrip(t *testing.T) {
	set := testKeySet(t)
	data, err := json.Marshal(set)
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(string(data), `{"keys":[{"kid":"`), string(data[:20]))

	var back KeySet
	require.NoError(t, json.Unmarshal(data, &back))
	require.Len(t, back.Keys, len(allSchemes))
	cur, err := back.Current()
	require.NoError(t, err)
	assert.True(t, cur.Equal(set.Keys[0]), "the first key is current")
	for _, k := range set.Keys {
		got, ok := back.Lookup(k.ID())
		assert.True(t, ok)
		assert.True(t, got.Equal(k))
	}
	_, ok := back.Lookup("no-such-kid")
	assert.False(t, ok)

	// A client wraps to the parsed current key; the service unwraps.
	r := newKey(t)
	env, err := cur.Wrap(r, testBinding, nil)
	require.NoError(t, err)
	got, err := testKey(t, cur.Scheme()).Unwrap(env)
	require.NoError(t, err)
	assert.True(t, got.Equal(r))
}

func TestKeySetMarshalRefusesBadSets(t *testing.T) {
	k := testKey(t, HPKEX25519).Public()
	for name, set := range map[string]KeySet{
		"empty":     {},
		"zero key":  {Keys: []ServiceKey{{}}},
		"duplicate": {Keys: []ServiceKey{k, k}},
	} {
		_, err := set.MarshalJSON()
		assert.ErrorIs(t, err, ErrMalformedKeySet, name)
	}
	_, err := KeySet{}.Current()
	assert.ErrorIs(t, err, ErrUnknownKey)
}

func TestParseKeySetRefusesHostileJSON(t *testing.T) {
	x := testKey(t, HPKEX25519).Public()
	good := func(kid, scheme, pub string) string {
		return fmt.Sprintf(`{"kid":%q,"scheme":%q,"pub":%q}`, kid, scheme, pub)
	}
	xKey := good(x.ID(), x.Scheme().String(), b64url().EncodeToString(x.Bytes()))
	set := func(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }
	require.NoError(t, func() error { _, err := ParseKeySet([]byte(set(xKey))); return err }(), "baseline")

	short := x.Bytes()[:31]
	shortKey, err := NewServiceKey(HPKEX25519, append(short, 9)) // a different, valid key
	require.NoError(t, err)

	var many []string
	for range MaxKeySetKeys + 1 {
		k, err := GenerateServiceKey(HPKEX25519)
		require.NoError(t, err)
		many = append(many, good(k.Public().ID(), k.Public().Scheme().String(), b64url().EncodeToString(k.Public().Bytes())))
	}

	tests := []struct {
		name string
		json string
		also error
	}{
		{"empty input", ``, nil},
		{"not JSON", `hello`, nil},
		{"array", `[]`, nil},
		{"string", `"keys"`, nil},
		{"empty object", `{}`, nil},
		{"null keys", `{"keys":null}`, nil},
		{"no keys", `{"keys":[]}`, nil},
		{"keys is an object", `{"keys":{}}`, nil},
		{"key is a string", `{"keys":["x"]}`, nil},
		{"Keys in another case", `{"Keys":[` + xKey + `]}`, nil},
		{"duplicate keys member", `{"keys":[` + xKey + `],"keys":[` + xKey + `]}`, nil},
		{"unknown top member", `{"keys":[` + xKey + `],"alg":"none"}`, nil},
		{"unknown key member", set(`{"kid":"` + x.ID() + `","scheme":"hpke-x25519-sha256-aes256gcm","pub":"` + b64url().EncodeToString(x.Bytes()) + `","use":"enc"}`), nil},
		{"KID in another case", set(`{"KID":"` + x.ID() + `","scheme":"hpke-x25519-sha256-aes256gcm","pub":"` + b64url().EncodeToString(x.Bytes()) + `"}`), nil},
		{"duplicate pub member", set(`{"kid":"` + x.ID() + `","scheme":"hpke-x25519-sha256-aes256gcm","pub":"AAAA","pub":"` + b64url().EncodeToString(x.Bytes()) + `"}`), nil},
		{"missing kid", set(`{"scheme":"hpke-x25519-sha256-aes256gcm","pub":"` + b64url().EncodeToString(x.Bytes()) + `"}`), nil},
		{"missing pub", set(`{"kid":"` + x.ID() + `","scheme":"hpke-x25519-sha256-aes256gcm"}`), nil},
		{"kid is a number", set(`{"kid":1,"scheme":"hpke-x25519-sha256-aes256gcm","pub":"` + b64url().EncodeToString(x.Bytes()) + `"}`), nil},
		{"pub is an object", set(`{"kid":"` + x.ID() + `","scheme":"hpke-x25519-sha256-aes256gcm","pub":{"x":"y"}}`), nil},
		{"unknown scheme", set(good(x.ID(), "hpke-p256-sha256-aes128gcm", b64url().EncodeToString(x.Bytes()))), ErrUnsupported},
		{"scheme in another case", set(good(x.ID(), "HPKE-X25519-SHA256-AES256GCM", b64url().EncodeToString(x.Bytes()))), ErrUnsupported},
		{"pub padded", set(good(x.ID(), x.Scheme().String(), b64url().EncodeToString(x.Bytes())+"=")), nil},
		{"pub standard base64", set(good(x.ID(), x.Scheme().String(), strings.NewReplacer("-", "+", "_", "/").Replace(b64url().EncodeToString(x.Bytes())))), nil},
		{"pub 31 bytes", set(good(x.ID(), x.Scheme().String(), b64url().EncodeToString(short))), ErrInvalidKey},
		{"pub zero point", set(good(x.ID(), x.Scheme().String(), b64url().EncodeToString(make([]byte, 32)))), ErrInvalidKey},
		{"X25519 key labelled X-Wing", set(good(x.ID(), HPKEXWing.String(), b64url().EncodeToString(x.Bytes()))), ErrInvalidKey},
		{"kid of another key", set(good(shortKey.ID(), x.Scheme().String(), b64url().EncodeToString(x.Bytes()))), nil},
		{"duplicate kid", set(xKey, xKey), nil},
		{"too many keys", set(many...), nil},
		{"trailing object", set(xKey) + `{}`, nil},
		{"trailing garbage", set(xKey) + `x`, nil},
		{"trailing comma", `{"keys":[` + xKey + `,]}`, nil},
		{"truncated", set(xKey)[:40], nil},
		{"deep nesting", `{"keys":[` + strings.Repeat("[", 100000) + `]}`, nil},
		{"oversize", `{"keys":[` + xKey + `]}` + strings.Repeat(" ", MaxKeySetSize), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := ParseKeySet([]byte(tt.json))
			assert.Empty(t, set.Keys)
			require.ErrorIs(t, err, ErrMalformedKeySet)
			var kse *KeySetError
			require.ErrorAs(t, err, &kse)
			assert.NotEmpty(t, kse.Reason)
			if tt.also != nil {
				assert.ErrorIs(t, err, tt.also)
			}
			assert.NotPanics(t, func() { _ = err.Error() })
		})
	}
}

func TestKeySetGoldenFileParses(t *testing.T) {
	data, err := os.ReadFile("testdata/keyset.json")
	require.NoError(t, err)
	set, err := ParseKeySet(data)
	require.NoError(t, err)
	again, err := set.MarshalJSON()
	require.NoError(t, err)
	assert.JSONEq(t, string(data), string(again))
}
