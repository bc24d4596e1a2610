package protector

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var allSchemes = []Scheme{HPKEX25519, HPKEXWing, RSAOAEP3072, HPKEP256}

// testBinding is the binding of the test vectors: GUID-form tenant and user
// object IDs and a container ID, as a Hello client would bind them.
var testBinding = Binding{
	TenantID:    "8f6ba4d2-5bd9-4e0a-9c43-0d1c6f2b7a11",
	UserID:      "3b1e0c9a-7d44-4f2e-a8b5-6c2d9e1f0a37",
	ContainerID: "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}",
}

// vector is one test vector file, testdata/<scheme>.json.
type vector struct {
	Scheme     string `json:"scheme"`
	Seed       uint64 `json:"seed"`        // testing/cryptotest seed used for Wrap
	PrivateKey string `json:"private_key"` // base64url of ServicePrivateKey.MarshalBinary
	KeyID      string `json:"key_id"`
	R          string `json:"r"` // hex
	Binding    struct {
		TenantID    string `json:"tenant_id"`
		UserID      string `json:"user_id"`
		ContainerID string `json:"container_id"`
	} `json:"binding"`
	Envelope string `json:"envelope"` // base64url of Envelope.MarshalBinary
}

func vectorPath(s Scheme) string { return filepath.Join("testdata", s.String()+".json") }

func readVector(t testing.TB, s Scheme) vector {
	t.Helper()
	data, err := os.ReadFile(vectorPath(s))
	require.NoError(t, err, "run go test -run TestVectors -update to create the vectors")
	var v vector
	require.NoError(t, json.Unmarshal(data, &v))
	return v
}

func (v vector) binding() Binding {
	return Binding{TenantID: v.Binding.TenantID, UserID: v.Binding.UserID, ContainerID: v.Binding.ContainerID}
}

func (v vector) r(t testing.TB) []byte {
	t.Helper()
	b, err := hex.DecodeString(v.R)
	require.NoError(t, err)
	return b
}

func (v vector) envelopeBytes(t testing.TB) []byte {
	t.Helper()
	b, err := b64url().DecodeString(v.Envelope)
	require.NoError(t, err)
	return b
}

func (v vector) privateKey(t testing.TB) *ServicePrivateKey {
	t.Helper()
	raw, err := b64url().DecodeString(v.PrivateKey)
	require.NoError(t, err)
	k, err := ParsePrivateKey(raw)
	require.NoError(t, err)
	return k
}

// testKeys are the vector keys, parsed once: generating RSA-3072 keys in
// every test would cost seconds.
var testKeys = sync.OnceValues(func() (map[Scheme]*ServicePrivateKey, error) {
	keys := map[Scheme]*ServicePrivateKey{}
	for _, s := range allSchemes {
		data, err := os.ReadFile(vectorPath(s))
		if err != nil {
			return nil, err
		}
		var v vector
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, err
		}
		raw, err := b64url().DecodeString(v.PrivateKey)
		if err != nil {
			return nil, err
		}
		if keys[s], err = ParsePrivateKey(raw); err != nil {
			return nil, err
		}
	}
	return keys, nil
})

func testKey(t testing.TB, s Scheme) *ServicePrivateKey {
	t.Helper()
	keys, err := testKeys()
	require.NoError(t, err, "run go test -run TestVectors -update to create the vectors")
	return keys[s]
}

// fixedKey is a protector with known bytes 0x00..0x1f.
func fixedKey(t testing.TB) *Key {
	t.Helper()
	b := make([]byte, KeySize)
	for i := range b {
		b[i] = byte(i)
	}
	k, err := NewKey(bytes.NewReader(b))
	require.NoError(t, err)
	return k
}

func newKey(t testing.TB) *Key {
	t.Helper()
	k, err := NewKey(nil)
	require.NoError(t, err)
	t.Cleanup(k.Destroy)
	return k
}

func wrap(t testing.TB, s Scheme, r *Key, b Binding) (*Envelope, []byte) {
	t.Helper()
	env, err := testKey(t, s).Public().Wrap(r, b, nil)
	require.NoError(t, err)
	raw, err := env.MarshalBinary()
	require.NoError(t, err)
	return env, raw
}
