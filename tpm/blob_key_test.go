package tpm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// keyAreas are the public areas of the keys in testdata and the templates.
func keyAreas(tb testing.TB) [][]byte {
	tb.Helper()
	var areas [][]byte
	for _, name := range []string{"RSA-2048.pub", "ECC-P256.pub"} {
		pub, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			tb.Fatal(err)
		}
		areas = append(areas, pub[2:]) // a TPM2B_PUBLIC: drop the size
	}
	return append(areas, keyTemplates[RSA2048], keyTemplates[ECCP256])
}

// sameAsGoTPM fails unless the hand decoder and go-tpm's agree on area:
// either the hand decoder declines it, or both decode it to the same
// structure, which re-encodes to area, and give the same public key.
func sameAsGoTPM(t *testing.T, area []byte) (handled bool) {
	t.Helper()
	got, err := decodeKeyPublic(area)
	if err != nil {
		if !errors.Is(err, errNotKeyShape) {
			t.Fatalf("hand decoder: unexpected error %v", err)
		}
		return false
	}
	want, err := decodePublic(area)
	if err != nil {
		t.Fatalf("hand decoder accepts what go-tpm refuses (%v): %x", err, area)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded differently:\n%+v\n%+v", got, want)
	}
	if !bytes.Equal(tpm2.Marshal(got), area) {
		t.Fatalf("hand-decoded area re-encodes differently:\n%x\n%x", tpm2.Marshal(got), area)
	}
	pk1, alg1, err1 := publicKey(got)
	pk2, alg2, err2 := publicKey(want)
	if (err1 == nil) != (err2 == nil) || alg1 != alg2 || !reflect.DeepEqual(pk1, pk2) {
		t.Fatalf("public keys differ: %v %v / %v %v", pk1, err1, pk2, err2)
	}
	return true
}

// The hand decoder of signing-key public areas gives what go-tpm's gives
// for every key shape we create, and for every single-byte change of
// them it either declines or still agrees with go-tpm.
func TestDecodeKeyPublicMatchesGoTPM(t *testing.T) {
	for _, area := range keyAreas(t) {
		if !sameAsGoTPM(t, area) {
			t.Fatalf("hand decoder declines one of our own key areas: %x", area)
		}
		for i := range area {
			for _, x := range []byte{0x01, 0x80, 0xff} {
				m := bytes.Clone(area)
				m[i] ^= x
				sameAsGoTPM(t, m)
			}
		}
		for n := range len(area) {
			sameAsGoTPM(t, area[:n])
		}
		sameAsGoTPM(t, append(bytes.Clone(area), 0))
	}
}

// FuzzDecodeKeyPublic: on any input the hand decoder either declines or
// agrees with go-tpm's decoder, and never panics.
func FuzzDecodeKeyPublic(f *testing.F) {
	for _, area := range keyAreas(f) {
		f.Add(area)
	}
	f.Fuzz(func(t *testing.T, area []byte) {
		sameAsGoTPM(t, area)
	})
}
