package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
)

var update = flag.Bool("update", false, "rewrite testdata/ seeds")

// seeds returns the testdata files whose names start with prefix.
func seeds(t testing.TB, prefix string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", prefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		t.Fatalf("no testdata seeds %s*", prefix)
	}
	return out
}

// TestSeedsUpToDate writes (with -update) and checks the valid seeds: a
// recover request and its response, made with real keys.
func TestSeedsUpToDate(t *testing.T) {
	reqPath := filepath.Join("testdata", "request-valid.json")
	respPath := filepath.Join("testdata", "response-valid.json")
	if *update {
		sk, err := protector.GenerateServiceKey(protector.HPKEX25519)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := protector.NewKey(nil)
		env, err := sk.Public().Wrap(r, protector.Binding{TenantID: "2f6b1e8a-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
			UserID: "7d3c2b1a-0f9e-4d8c-b7a6-5f4e3d2c1b0a", ContainerID: "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		rk, _ := protector.NewReturnKey()
		body, err := encodeRecoverRequest(env, rk.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := protector.SealToReturnKey(rk.PublicKey(), r, env)
		if err != nil {
			t.Fatal(err)
		}
		resp := []byte(`{"sealed_key":"` + b64().EncodeToString(sealed) + `"}`)
		if err := os.WriteFile(reqPath, body, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(respPath, resp, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	req, err := os.ReadFile(reqPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeRecoverRequest(req); err != nil {
		t.Fatalf("valid request seed no longer decodes (run with -update?): %v", err)
	}
	resp, err := os.ReadFile(respPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeRecoverResponse(resp); err != nil {
		t.Fatalf("valid response seed no longer decodes: %v", err)
	}
}

func FuzzDecodeRecoverRequest(f *testing.F) {
	for _, s := range seeds(f, "request-") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeRecoverRequest(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedRequest) {
				t.Fatalf("error does not match ErrMalformedRequest: %v", err)
			}
			return
		}
		if len(r.ReturnKey) != ReturnKeySize || r.Envelope == nil {
			t.Fatalf("accepted a request without a 32-byte return key or envelope")
		}
		// What was accepted re-encodes to something that decodes the same.
		again, err := encodeRecoverRequest(r.Envelope, r.ReturnKey)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := decodeRecoverRequest(again)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if !r2.Envelope.Equal(r.Envelope) || !bytes.Equal(r2.ReturnKey, r.ReturnKey) {
			t.Fatal("round trip changed the request")
		}
	})
}

func FuzzDecodeRecoverResponse(f *testing.F) {
	for _, s := range seeds(f, "response-") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sealed, err := DecodeRecoverResponse(body)
		if err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("error does not match ErrBadResponse: %v", err)
			}
		} else if len(sealed) == 0 {
			t.Fatal("accepted an empty sealed key")
		}
		code, msg, ok := decodeErrorBody(body)
		if ok && code == "" {
			t.Fatal("error body accepted without a code")
		}
		if s := sanitize(msg, 200); len(s) > 200 || strings.ContainsAny(s, "\x00\r\n") {
			t.Fatalf("sanitize let through %q", s)
		}
	})
}

// FuzzSimpleObjectAgrees checks the fast path against encoding/json: what
// the fast path accepts, the general decoder accepts with the same values.
func FuzzSimpleObjectAgrees(f *testing.F) {
	for _, s := range seeds(f, "request-") {
		f.Add(s)
	}
	f.Add([]byte(` { "return_key" : "b" ,"envelope":"a"} `))
	f.Fuzz(func(t *testing.T, body []byte) {
		names := []string{fieldEnvelope, fieldReturnKey}
		fast, ok := simpleObject(body, names)
		if !ok {
			return
		}
		slow, err := strictObject(append([]byte(nil), body...), true, names...) // lenient skips the fast path
		if err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses: %v", err)
		}
		if _, err := strictObject(body, false, "x"); err == nil {
			t.Fatal("accepted with other names")
		}
		for i := range names {
			if fast[i] != slow[i] {
				t.Fatalf("member %s: fast %q, slow %q", names[i], fast[i], slow[i])
			}
		}
	})
}

func TestSimpleObjectDefersToGeneralDecoder(t *testing.T) {
	names := []string{"a", "b"}
	for _, in := range []string{`{"a":"1","b":"2"}`, " {\n\t\"b\" : \"2\" , \"a\":\"1\"}\r\n"} {
		v, ok := simpleObject([]byte(in), names)
		if !ok || v[0] != "1" || v[1] != "2" {
			t.Errorf("simpleObject(%q) = %q, %v", in, v, ok)
		}
	}
	for _, in := range []string{`{"a":"\u0031","b":"2"}`, `{"a":"1","b":"2","a":"1"}`, `{"a":"1"}`, `{"a":"1","b":"2"}x`,
		`{"a":"1","b":"2",}`, `{"a":1,"b":"2"}`, `{"a":"é","b":"2"}`, `{}`, ``, `{"a":"1" "b":"2"}`} {
		if _, ok := simpleObject([]byte(in), names); ok {
			t.Errorf("simpleObject(%q) decided; it should defer", in)
		}
	}
	// An escaped value is still accepted, by the general decoder.
	v, err := strictObject([]byte(`{"a":"\u0031","b":"2"}`), false, names...)
	if err != nil || v[0] != "1" {
		t.Errorf("escaped value: %q, %v", v, err)
	}
}

func TestStrictObject(t *testing.T) {
	good := `{"b":"2", "a":"1"}`
	v, err := strictObject([]byte(good), false, "a", "b")
	if err != nil || v[0] != "1" || v[1] != "2" {
		t.Fatalf("strictObject(%s) = %q, %v", good, v, err)
	}
	for _, bad := range []string{`{"a":"1"}`, `{"a":"1","b":"2","c":"3"}`, `{"a":"1","a":"1","b":"2"}`,
		`{"a":"1","b":2}`, `{"a":"1","b":"2"} {}`, `{"a":"1","b":"2"`, ` `, `{"a":"1","b":null}`} {
		if _, err := strictObject([]byte(bad), false, "a", "b"); !errors.Is(err, errMalformedJSON) {
			t.Errorf("strictObject(%s) accepted or wrong error: %v", bad, err)
		}
	}
	v, err = strictObject([]byte(`{"x":{"deep":[1,2]},"a":"1"}`), true, "a", "b")
	if err != nil || v[0] != "1" || v[1] != "" {
		t.Fatalf("lenient: %q %v", v, err)
	}
}

// Each binary value has one wire form: base64url with set unused final bits,
// or with CR/LF inside (which Go's decoder skips), is refused.
func TestWireRefusesNonCanonicalBase64(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	body := seeds(t, "request-valid")[0]
	var m map[string]string
	require.NoError(t, json.Unmarshal(body, &m))
	_, _, err := DecodeRecoverRequest(body)
	require.NoError(t, err, "control: the seed decodes")

	encode := func(m map[string]string) []byte {
		out, err := json.Marshal(m)
		require.NoError(t, err)
		return out
	}
	rk := m[fieldReturnKey] // 32 bytes: the last character has two unused bits
	i := strings.IndexByte(alphabet, rk[len(rk)-1])
	require.GreaterOrEqual(t, i, 0)
	for name, mutate := range map[string]func(map[string]string){
		"unused bits set": func(m map[string]string) { m[fieldReturnKey] = rk[:len(rk)-1] + string(alphabet[i^1]) },
		"line break":      func(m map[string]string) { m[fieldEnvelope] = m[fieldEnvelope][:10] + "\r\n" + m[fieldEnvelope][10:] },
	} {
		c := map[string]string{fieldEnvelope: m[fieldEnvelope], fieldReturnKey: rk}
		mutate(c)
		_, _, err := DecodeRecoverRequest(encode(c))
		assert.ErrorIs(t, err, ErrMalformedRequest, name)
	}

	sealed := b64().EncodeToString(make([]byte, 80))
	_, err = DecodeRecoverResponse(encode(map[string]string{fieldSealedKey: sealed}))
	require.NoError(t, err, "control: a canonical response decodes")
	_, err = DecodeRecoverResponse(encode(map[string]string{fieldSealedKey: sealed[:8] + "\n" + sealed[8:]}))
	assert.ErrorIs(t, err, ErrBadResponse)
}
