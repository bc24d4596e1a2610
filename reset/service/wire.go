package service

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hellosim/hellosim/protector"
)

// The wire format. Both directions are JSON objects whose members are all
// strings; binary values are unpadded base64url (RFC 4648 §5).
//
//	POST /v1/recover  {"envelope": "<protector envelope>", "return_key": "<32-byte X25519 public key>"}
//	200               {"sealed_key": "<protector.SealToReturnKey output>"}
//	4xx/5xx           {"error": "<code>", "message": "<text>"}
//	GET /v1/keys      the protector.KeySet JSON, current key first

// Field names on the wire.
const (
	fieldEnvelope  = "envelope"
	fieldReturnKey = "return_key"
	fieldSealedKey = "sealed_key"
	fieldError     = "error"
	fieldMessage   = "message"
)

// ReturnKeySize is the length of the client's one-time X25519 public key.
const ReturnKeySize = 32

// errMalformedJSON is what the strict decoder's errors match.
var errMalformedJSON = errors.New("malformed json")

// b64 is the binary encoding on the wire: base64url without padding.
func b64() *base64.Encoding { return base64.RawURLEncoding }

// decodeB64 decodes a wire value strictly: only the one encoding b64 makes
// of the bytes is accepted. Go's decoder alone would also take set unused
// final bits and skip CR and LF, so one value could travel in many forms.
func decodeB64(s string) ([]byte, error) {
	raw, err := b64().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if b64().EncodeToString(raw) != s {
		return nil, errNonCanonicalB64
	}
	return raw, nil
}

// errNonCanonicalB64 is decodeB64's refusal of a non-canonical encoding.
var errNonCanonicalB64 = errors.New("non-canonical base64url")

// strictObject decodes data as one JSON object whose members are the given
// names, each exactly once, each a string; anything else (unknown or
// duplicate members, other types, trailing data) is refused. When lenient is
// set, unknown members are skipped (whatever their type) and missing ones are
// left empty: the client reads error bodies that way.
func strictObject(data []byte, lenient bool, names ...string) ([]string, error) {
	if !lenient {
		if vals, ok := simpleObject(data, names); ok {
			return vals, nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	vals := make([]string, len(names))
	got := make([]bool, len(names))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %.128v", errMalformedJSON, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("%w: not an object", errMalformedJSON)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %.128v", errMalformedJSON, err)
		}
		name, _ := tok.(string)
		i := -1
		for j, n := range names {
			if n == name {
				i = j
				break
			}
		}
		if i < 0 {
			if !lenient {
				return nil, fmt.Errorf("%w: unknown member %.32q", errMalformedJSON, name)
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("%w: %.128v", errMalformedJSON, err)
			}
			continue
		}
		if got[i] {
			return nil, fmt.Errorf("%w: duplicate member %q", errMalformedJSON, name)
		}
		got[i] = true
		tok, err = dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %.128v", errMalformedJSON, err)
		}
		s, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("%w: member %q is not a string", errMalformedJSON, name)
		}
		vals[i] = s
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fmt.Errorf("%w: %.128v", errMalformedJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", errMalformedJSON)
	}
	if !lenient {
		for i, ok := range got {
			if !ok {
				return nil, fmt.Errorf("%w: missing member %q", errMalformedJSON, names[i])
			}
		}
	}
	return vals, nil
}

// simpleObject is strictObject's fast path for the canonical case: an
// object whose members are exactly names, once each, with values that are
// plain strings — printable ASCII, no escapes. It decides only on success;
// for anything else (escapes, non-ASCII, other shapes, errors) it says
// !ok and the general decoder, which agrees with it on every input it
// accepts (FuzzSimpleObjectAgrees), decides.
func simpleObject(data []byte, names []string) ([]string, bool) {
	if len(names) > 4 {
		return nil, false
	}
	var got [4]bool
	vals := make([]string, len(names))
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	i++
	for n := 0; ; n++ {
		i = skipWS(data, i)
		name, j, ok := simpleString(data, i)
		if !ok {
			return nil, false
		}
		i = skipWS(data, j)
		if i >= len(data) || data[i] != ':' {
			return nil, false
		}
		val, j, ok := simpleString(data, skipWS(data, i+1))
		if !ok {
			return nil, false
		}
		k := -1
		for x, want := range names {
			if string(name) == want {
				k = x
				break
			}
		}
		if k < 0 || got[k] {
			return nil, false
		}
		got[k] = true
		vals[k] = string(val)
		i = skipWS(data, j)
		if i >= len(data) {
			return nil, false
		}
		if data[i] == '}' {
			break
		}
		if data[i] != ',' {
			return nil, false
		}
		i++
	}
	if skipWS(data, i+1) != len(data) {
		return nil, false
	}
	for k := range names {
		if !got[k] {
			return nil, false
		}
	}
	return vals, true
}

// skipWS skips JSON whitespace (RFC 8259 §2).
func skipWS(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// simpleString reads a string of printable ASCII without escapes starting
// at data[i] == '"'; it returns the contents and the index after the quote.
func simpleString(data []byte, i int) ([]byte, int, bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c > 0x7e:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// recoverRequest is a decoded POST /v1/recover body.
type recoverRequest struct {
	Envelope  *protector.Envelope
	ReturnKey []byte // ReturnKeySize bytes
}

// DecodeRecoverRequest strictly decodes a recover request body: exactly the
// members "envelope" and "return_key", both base64url strings; the envelope
// must parse (protector.ParseEnvelope) and the return key must be 32 bytes.
// Errors match ErrMalformedRequest.
func DecodeRecoverRequest(body []byte) (*protector.Envelope, []byte, error) {
	r, err := decodeRecoverRequest(body)
	if err != nil {
		return nil, nil, err
	}
	return r.Envelope, r.ReturnKey, nil
}

func decodeRecoverRequest(body []byte) (recoverRequest, error) {
	vals, err := strictObject(body, false, fieldEnvelope, fieldReturnKey)
	if err != nil {
		return recoverRequest{}, fmt.Errorf("%w: %w", ErrMalformedRequest, err)
	}
	raw, err := decodeB64(vals[0])
	if err != nil {
		return recoverRequest{}, fmt.Errorf("%w: envelope is not base64url", ErrMalformedRequest)
	}
	env, err := protector.ParseEnvelope(raw)
	if err != nil {
		return recoverRequest{}, fmt.Errorf("%w: envelope: %w", ErrMalformedRequest, err)
	}
	rk, err := decodeB64(vals[1])
	if err != nil || len(rk) != ReturnKeySize {
		return recoverRequest{}, fmt.Errorf("%w: return_key is not a base64url X25519 public key", ErrMalformedRequest)
	}
	return recoverRequest{Envelope: env, ReturnKey: rk}, nil
}

// encodeRecoverRequest is the client's half of the above.
func encodeRecoverRequest(env *protector.Envelope, returnKey []byte) ([]byte, error) {
	raw, err := env.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal envelope: %w", err)
	}
	return json.Marshal(map[string]string{
		fieldEnvelope:  b64().EncodeToString(raw),
		fieldReturnKey: b64().EncodeToString(returnKey),
	})
}

// DecodeRecoverResponse strictly decodes a 200 response to /v1/recover and
// returns the sealed protector. Errors match ErrBadResponse.
func DecodeRecoverResponse(body []byte) ([]byte, error) {
	vals, err := strictObject(body, false, fieldSealedKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	sealed, err := decodeB64(vals[0])
	if err != nil || len(sealed) == 0 {
		return nil, fmt.Errorf("%w: sealed_key is not base64url", ErrBadResponse)
	}
	return sealed, nil
}

// decodeErrorBody reads {"error": code, "message": text}, leniently.
func decodeErrorBody(body []byte) (code, message string, ok bool) {
	vals, err := strictObject(body, true, fieldError, fieldMessage)
	if err != nil || vals[0] == "" {
		return "", "", false
	}
	return vals[0], vals[1], true
}
