package protector

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"testing"
	"testing/cryptotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestVectors checks the stored test vectors: the stored envelope unwraps,
// under the stored service key, to the stored protector (this holds for as
// long as the format does), and Wrap with the same key, protector and
// deterministic randomness reproduces the envelope byte for byte (this may
// change with the Go release, which does not promise how its algorithms use
// randomness: then rerun with -update and review the diff).
//
// Not parallel: cryptotest.SetGlobalRandom affects the whole process.
func TestVectors(t *testing.T) {
	for i, s := range allSchemes {
		t.Run(s.String(), func(t *testing.T) {
			if *update {
				writeVector(t, s, uint64(i+1))
			}
			v := readVector(t, s)
			priv := v.privateKey(t)
			raw := v.envelopeBytes(t)

			assert.Equal(t, s.String(), v.Scheme)
			assert.Equal(t, v.KeyID, priv.Public().ID())
			env, err := ParseEnvelope(raw)
			require.NoError(t, err)
			assert.Equal(t, s, env.Scheme())
			assert.Equal(t, v.KeyID, env.KeyID())
			assert.Equal(t, v.binding(), env.Binding())
			again, err := env.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, raw, again, "MarshalBinary must round-trip exactly")

			r, err := priv.Unwrap(env)
			require.NoError(t, err)
			defer r.Destroy()
			assert.Equal(t, v.r(t), keyArray(r)[:], "the stored envelope must unwrap to the stored R")

			cryptotest.SetGlobalRandom(t, v.Seed)
			want, err := NewKey(newFixedReader(v.r(t)))
			require.NoError(t, err)
			env2, err := priv.Public().Wrap(want, v.binding(), nil)
			require.NoError(t, err)
			raw2, err := env2.MarshalBinary()
			require.NoError(t, err)
			assert.Equal(t, raw, raw2, "deterministic Wrap no longer matches the vector; if Go changed how it draws randomness, rerun with -update")
		})
	}
	t.Run("seal", testSealVector)
	t.Run("keyset", testKeySetVector)
}

func newFixedReader(b []byte) *fixedReader { return &fixedReader{b: b} }

// fixedReader returns b once, then fails: a protector source for vectors.
type fixedReader struct{ b []byte }

func (r *fixedReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, errors.New("fixedReader: exhausted")
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// writeVector (with -update) keeps the stored service key if there is one,
// so that reviewing an update shows only what changed.
func writeVector(t *testing.T, s Scheme, seed uint64) {
	var priv *ServicePrivateKey
	if _, err := os.Stat(vectorPath(s)); err == nil {
		priv = readVector(t, s).privateKey(t)
	} else {
		require.ErrorIs(t, err, fs.ErrNotExist)
		var err error
		priv, err = GenerateServiceKey(s)
		require.NoError(t, err)
	}
	r := fixedKey(t)
	cryptotest.SetGlobalRandom(t, seed)
	env, err := priv.Public().Wrap(r, testBinding, nil)
	require.NoError(t, err)
	raw, err := env.MarshalBinary()
	require.NoError(t, err)
	pk, err := priv.MarshalBinary()
	require.NoError(t, err)
	v := vector{
		Scheme:     s.String(),
		Seed:       seed,
		PrivateKey: b64url().EncodeToString(pk),
		KeyID:      priv.Public().ID(),
		R:          hex.EncodeToString(keyArray(r)[:]),
		Envelope:   b64url().EncodeToString(raw),
	}
	v.Binding.TenantID, v.Binding.UserID, v.Binding.ContainerID = testBinding.TenantID, testBinding.UserID, testBinding.ContainerID
	writeJSON(t, vectorPath(s), v)
}

func writeJSON(t *testing.T, path string, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append(data, '\n'), 0o644))
}

// sealVector is testdata/seal.json: Key.Seal of a container secret.
type sealVector struct {
	Seed        uint64 `json:"seed"`
	Key         string `json:"key"` // hex
	ContainerID string `json:"container_id"`
	Secret      string `json:"secret"` // hex
	Sealed      string `json:"sealed"` // hex
}

func testSealVector(t *testing.T) {
	const path = "testdata/seal.json"
	if *update {
		k := fixedKey(t)
		secret := make([]byte, 32)
		for i := range secret {
			secret[i] = byte(0xa0 + i)
		}
		cryptotest.SetGlobalRandom(t, 7)
		sealed, err := k.Seal(secret, testBinding.ContainerID)
		require.NoError(t, err)
		writeJSON(t, path, sealVector{Seed: 7, Key: hex.EncodeToString(keyArray(k)[:]),
			ContainerID: testBinding.ContainerID, Secret: hex.EncodeToString(secret), Sealed: hex.EncodeToString(sealed)})
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var v sealVector
	require.NoError(t, json.Unmarshal(data, &v))
	kb, _ := hex.DecodeString(v.Key)
	secret, _ := hex.DecodeString(v.Secret)
	sealed, _ := hex.DecodeString(v.Sealed)
	k, err := NewKey(newFixedReader(kb))
	require.NoError(t, err)
	got, err := k.Open(sealed, v.ContainerID)
	require.NoError(t, err)
	assert.Equal(t, secret, got)

	cryptotest.SetGlobalRandom(t, v.Seed)
	again, err := k.Seal(secret, v.ContainerID)
	require.NoError(t, err)
	assert.Equal(t, sealed, again, "deterministic Seal no longer matches; rerun with -update if Go changed")
}

func testKeySetVector(t *testing.T) {
	const path = "testdata/keyset.json"
	var set KeySet
	for _, s := range allSchemes {
		set.Keys = append(set.Keys, testKey(t, s).Public())
	}
	want, err := set.MarshalJSON()
	require.NoError(t, err)
	if *update {
		require.NoError(t, os.WriteFile(path, want, 0o644))
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(data))
	parsed, err := ParseKeySet(data)
	require.NoError(t, err)
	require.Len(t, parsed.Keys, len(allSchemes))
	for i, s := range allSchemes {
		assert.True(t, parsed.Keys[i].Equal(testKey(t, s).Public()), "key %d", i)
	}
}
