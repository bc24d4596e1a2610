package keycred

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedHex adds every hex vector in testdata to f's corpus.
func seedHex(f *testing.F, names ...string) {
	for _, n := range names {
		f.Add(readHex(f, n))
	}
}

func FuzzParse(f *testing.F) {
	seedHex(f, "link-ad.hex", "link-azuread.hex", "link-ecs1.hex")
	f.Add([]byte{0, 2, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := Parse(data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			return
		}
		// What parses encodes, and what it encodes parses to the same
		// value; a canonical input comes back byte for byte.
		enc, err := k.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed value does not encode: %v", err)
		}
		back, err := Parse(enc)
		if err != nil {
			t.Fatalf("encoded value does not parse: %v", err)
		}
		enc2, err := back.MarshalBinary()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %v", err)
		}
		if k.ID() != back.ID() || !k.Created.Equal(back.Created) || !k.LastLogon.Equal(back.LastLogon) {
			t.Fatal("round trip changed the value")
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	seedHex(f, "rsa1.hex", "ecs1.hex")
	f.Fuzz(func(t *testing.T, blob []byte) {
		pub, err := ParsePublicKey(blob)
		if err != nil {
			return
		}
		enc, err := MarshalPublicKey(pub)
		if err != nil {
			t.Fatalf("parsed key does not encode: %v", err)
		}
		if !bytes.Equal(enc, blob) {
			t.Fatal("a parsed blob is not the canonical encoding of its key")
		}
	})
}

func FuzzParseDNBinary(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join("testdata", "link-ad.dnbinary.txt"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(strings.TrimSpace(string(raw)))
	f.Add("B:2:0A:CN=x")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDNBinary(s)
		if err != nil {
			return
		}
		back, err := ParseDNBinary(d.String())
		if err != nil || !bytes.Equal(back.Binary, d.Binary) || back.DN != d.DN {
			t.Fatalf("DN-Binary round trip: %v", err)
		}
		_, _, _ = ParseAttributeValue(s)
	})
}

func FuzzAssertionKeyID(f *testing.F) {
	f.Add("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsiLCJ1c2UiOiJuZ2MifQ.e30.AA")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		kid, err := AssertionKeyID(tok)
		if err == nil && kid == "" {
			t.Fatal("empty kid accepted")
		}
		if err != nil && !errors.Is(err, ErrAssertion) {
			t.Fatalf("error %v is not ErrAssertion", err)
		}
	})
}
