package protector

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// seedVectors adds every envelope and private key of testdata/.
func seedVectors(f *testing.F, pick func(v vector) string) {
	for _, s := range allSchemes {
		v := readVector(f, s)
		raw, err := b64url().DecodeString(pick(v))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
		f.Add(append(bytes.Clone(raw), 0))
	}
}

func FuzzParseEnvelope(f *testing.F) {
	seedVectors(f, func(v vector) string { return v.Envelope })
	f.Add([]byte("HSPR"))
	f.Add([]byte("HSPR\x02\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := ParseEnvelope(data)
		if err != nil {
			var ee *EnvelopeError
			if !errors.As(err, &ee) || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupported)) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := env.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed envelope does not marshal: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("round trip changed the bytes")
		}
		text, err := env.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Envelope
		if err := back.UnmarshalText(text); err != nil || !back.Equal(env) {
			t.Fatalf("text round trip: %v", err)
		}
		// Unwrapping arbitrary envelopes must fail cleanly, never panic.
		if env.Scheme() != RSAOAEP3072 { // RSA decryption is too slow to fuzz
			if r, err := testKey(t, env.Scheme()).Unwrap(env); err == nil {
				r.Destroy()
				if !bytes.Equal(data, readEnvelopeVector(t, env.Scheme())) {
					t.Fatalf("a fuzzed envelope unwrapped")
				}
			}
		}
	})
}

func readEnvelopeVector(t *testing.T, s Scheme) []byte {
	return readVector(t, s).envelopeBytes(t)
}

func FuzzParseKeySet(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "keyset.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kid":"a","scheme":"b","pub":"c"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseKeySet(data)
		if err != nil {
			var kse *KeySetError
			if !errors.As(err, &kse) || !errors.Is(err, ErrMalformedKeySet) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := set.MarshalJSON()
		if err != nil {
			t.Fatalf("parsed set does not marshal: %v", err)
		}
		back, err := ParseKeySet(out)
		if err != nil || len(back.Keys) != len(set.Keys) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range set.Keys {
			if !back.Keys[i].Equal(set.Keys[i]) {
				t.Fatalf("key %d changed", i)
			}
		}
	})
}

func FuzzParsePrivateKey(f *testing.F) {
	seedVectors(f, func(v vector) string { return v.PrivateKey })
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePrivateKey(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := k.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("round trip changed the bytes: %v", err)
		}
	})
}
