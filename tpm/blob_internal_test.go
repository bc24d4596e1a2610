package tpm

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

// The hand decoder of TPMA_OBJECT agrees with go-tpm's on every modelled
// bit pattern.
func TestObjectAttributesMatchGoTPM(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		a := r.Uint32() &^ reservedObjectAttrs
		b := binary.BigEndian.AppendUint32(nil, a)
		want, err := tpm2.Unmarshal[tpm2.TPMAObject](b)
		if err != nil {
			t.Fatal(err)
		}
		if got := objectAttributes(a); got != *want {
			t.Fatalf("attributes %#x: got %+v, want %+v", a, got, *want)
		}
	}
}

// The hand decoder of sealed-object public areas gives what go-tpm's
// gives.
func TestDecodeSealedPublicMatchesGoTPM(t *testing.T) {
	pub, err := os.ReadFile(filepath.Join("testdata", "sealed.pub"))
	if err != nil {
		t.Fatal(err)
	}
	for _, area := range [][]byte{pub[2:], sealTemplate} {
		got, err := decodeSealedPublic(area)
		if err != nil {
			t.Fatal(err)
		}
		want, err := decodePublic(area)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tpm2.Marshal(got), tpm2.Marshal(want)) || !bytes.Equal(tpm2.Marshal(got), area) {
			t.Fatalf("decoded differently:\n%x\n%x", tpm2.Marshal(got), tpm2.Marshal(want))
		}
	}
}
