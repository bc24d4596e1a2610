package tpm_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/tpm"
	"github.com/hellosim/hellosim/tpm/tpmtest"
)

// A damaged blob is refused with ErrCorruptBlob (framing, public area) or
// ErrWrongTPM (the TPM's integrity check of the private part), never a
// panic, and nothing stays loaded.
func TestCorruptBlobsRefused(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	good, err := tp.Seal(ctx, []byte("secret"), []byte("auth"))
	require.NoError(t, err)

	cases := map[string]tpm.Blob{
		"empty":             {},
		"no private":        {Public: good.Public},
		"no public":         {Private: good.Private},
		"public truncated":  {Public: good.Public[:len(good.Public)-1], Private: good.Private},
		"private truncated": {Public: good.Public, Private: good.Private[:len(good.Private)-1]},
		"public trailing":   {Public: append(bytes.Clone(good.Public), 0), Private: good.Private},
		"private trailing":  {Public: good.Public, Private: append(bytes.Clone(good.Private), 0)},
		"size only":         {Public: []byte{0, 0}, Private: []byte{0, 0}},
		"one byte":          {Public: []byte{0}, Private: []byte{0}},
		"swapped":           {Public: good.Private, Private: good.Public},
	}
	for name, b := range cases {
		_, err := tp.Unseal(ctx, b, []byte("auth"))
		assert.ErrorIs(t, err, tpm.ErrCorruptBlob, name)
	}
	requireOnlyBaseline(t, tp, 0)

	// Flip every byte of both parts in turn.
	for part := range 2 {
		src := good.Public
		if part == 1 {
			src = good.Private
		}
		for i := 2; i < len(src); i++ {
			b := tpm.Blob{Public: bytes.Clone(good.Public), Private: bytes.Clone(good.Private)}
			dst := b.Public
			if part == 1 {
				dst = b.Private
			}
			dst[i] ^= 0x5a
			out, err := tp.Unseal(ctx, b, []byte("auth"))
			require.Error(t, err, "part %d byte %d", part, i)
			assert.Nil(t, out)
			assert.True(t, errors.Is(err, tpm.ErrCorruptBlob) || errors.Is(err, tpm.ErrWrongTPM),
				"part %d byte %d: %v", part, i, err)
		}
	}
	requireOnlyBaseline(t, tp, 0)
	st, err := tp.LockoutStatus(ctx)
	require.NoError(t, err)
	assert.Zero(t, st.Failures, "corrupt blobs never reached an authorization")

	// The good blob still works.
	got, err := tp.Unseal(ctx, good, []byte("auth"))
	require.NoError(t, err)
	assert.Equal(t, []byte("secret"), got)
}

func TestCorruptKeyBlobsRefused(t *testing.T) {
	tp := tpmtest.Open(t)
	ctx := context.Background()
	good, _, err := tp.CreateKey(ctx, tpm.ECCP256, nil)
	require.NoError(t, err)
	for i := 2; i < len(good.Public); i++ {
		b := tpm.Blob{Public: bytes.Clone(good.Public), Private: good.Private}
		b.Public[i] ^= 0xff
		k, err := tp.LoadKey(ctx, b, nil)
		require.Error(t, err, "byte %d", i)
		assert.Nil(t, k)
	}
	requireOnlyBaseline(t, tp, 0)
}

var update = flag.Bool("update", false, "rewrite testdata/ blobs (the fuzz seeds)")

// TestTestdataBlobs checks the fuzz seeds decode, and rewrites them with
// -update.
func TestTestdataBlobs(t *testing.T) {
	if *update {
		tp := tpmtest.Open(t)
		ctx := context.Background()
		write := func(name string, b tpm.Blob) {
			require.NoError(t, os.MkdirAll("testdata", 0o755))
			require.NoError(t, os.WriteFile(filepath.Join("testdata", name+".pub"), b.Public, 0o644))
			require.NoError(t, os.WriteFile(filepath.Join("testdata", name+".priv"), b.Private, 0o644))
		}
		sealed, err := tp.Seal(ctx, []byte("fuzz seed secret"), []byte("fuzz"))
		require.NoError(t, err)
		write("sealed", sealed)
		for _, alg := range algorithms {
			b, _, err := tp.CreateKey(ctx, alg, nil)
			require.NoError(t, err)
			write(alg.String(), b)
		}
	}
	for _, name := range []string{"RSA-2048", "ECC-P256"} {
		pub, err := os.ReadFile(filepath.Join("testdata", name+".pub"))
		require.NoError(t, err)
		priv, err := os.ReadFile(filepath.Join("testdata", name+".priv"))
		require.NoError(t, err)
		_, err = tpm.PublicKey(tpm.Blob{Public: pub, Private: priv})
		assert.NoError(t, err, name)
	}
}

// FuzzPublicKey feeds hostile blobs to the decoder that runs before any
// byte reaches the TPM.
func FuzzPublicKey(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.pub"))
	for _, s := range seeds {
		pub, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		priv, _ := os.ReadFile(s[:len(s)-len(".pub")] + ".priv")
		f.Add(pub, priv)
	}
	f.Add([]byte{0, 1, 0}, []byte{0, 1, 0})
	f.Fuzz(func(t *testing.T, pub, priv []byte) {
		k, err := tpm.PublicKey(tpm.Blob{Public: pub, Private: priv})
		if err == nil && k == nil {
			t.Fatal("nil key without error")
		}
		if err != nil && !errors.Is(err, tpm.ErrCorruptBlob) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}
