package protector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Bounds on a key set, so that a hostile or broken service cannot make a
// client spend without limit. A service publishes its current key and a few
// it still accepts during rotation.
const (
	MaxKeySetSize = 64 << 10 // bytes of JSON
	MaxKeySetKeys = 16
)

// KeySet is the set of service keys a PIN reset service publishes, in the
// spirit of a JWKS (RFC 7517):
//
//	{"keys":[{"kid":"…","scheme":"hpke-x25519-sha256-aes256gcm","pub":"…"}]}
//
// kid is ServiceKey.ID, scheme is Scheme.String and pub is the unpadded
// base64url of ServiceKey.Bytes. The first key is the current one, which
// clients wrap new protectors to; the others are keys the service still
// unwraps with.
type KeySet struct{ Keys []ServiceKey }

type keySetJSON struct {
	Keys []keyJSON `json:"keys"`
}

type keyJSON struct {
	Kid    string `json:"kid"`
	Scheme string `json:"scheme"`
	Pub    string `json:"pub"`
}

// Current returns the key clients should wrap to: the first. An empty set
// gives ErrUnknownKey.
func (s KeySet) Current() (ServiceKey, error) {
	if len(s.Keys) == 0 || s.Keys[0].isZero() {
		return ServiceKey{}, fmt.Errorf("%w: empty key set", ErrUnknownKey)
	}
	return s.Keys[0], nil
}

// Lookup returns the key with ID kid.
func (s KeySet) Lookup(kid string) (ServiceKey, bool) {
	for _, k := range s.Keys {
		if !k.isZero() && k.ID() == kid {
			return k, true
		}
	}
	return ServiceKey{}, false
}

// check applies the rules ParseKeySet enforces to a set built in Go.
func (s KeySet) check() error {
	if len(s.Keys) == 0 {
		return &KeySetError{Index: -1, Field: "keys", Reason: "no keys"}
	}
	if len(s.Keys) > MaxKeySetKeys {
		return &KeySetError{Index: -1, Field: "keys", Reason: fmt.Sprintf("%d keys, more than %d", len(s.Keys), MaxKeySetKeys)}
	}
	seen := make(map[[keyIDSize]byte]bool, len(s.Keys))
	for i, k := range s.Keys {
		if k.isZero() {
			return &KeySetError{Index: i, Reason: "zero key", Err: ErrInvalidKey}
		}
		if seen[k.id] {
			return &KeySetError{Index: i, Field: "kid", Reason: "duplicate key ID " + k.ID()}
		}
		seen[k.id] = true
	}
	return nil
}

// MarshalJSON encodes the set in the form ParseKeySet reads. An empty set,
// a zero key or a duplicate key ID fail.
func (s KeySet) MarshalJSON() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	out := keySetJSON{Keys: make([]keyJSON, len(s.Keys))}
	for i, k := range s.Keys {
		out.Keys[i] = keyJSON{Kid: k.ID(), Scheme: k.scheme.String(), Pub: b64url().EncodeToString(k.pub)}
	}
	return json.Marshal(out)
}

// UnmarshalJSON parses with ParseKeySet, so a KeySet can sit inside other
// JSON documents.
func (s *KeySet) UnmarshalJSON(data []byte) error {
	v, err := ParseKeySet(data)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseKeySet parses a key set strictly. It refuses, with a *KeySetError
// matching ErrMalformedKeySet: input over MaxKeySetSize, anything but one
// JSON object, members other than "keys" (and, in a key, other than "kid",
// "scheme" and "pub"), members named twice or in another case, a missing
// member, a value of the wrong type, no keys or more than MaxKeySetKeys, a
// pub that is not unpadded base64url or not a valid key of its scheme, a
// kid that is not the key's ID, and a kid used twice. An unknown scheme
// also matches ErrUnsupported.
func ParseKeySet(data []byte) (KeySet, error) {
	if len(data) > MaxKeySetSize {
		return KeySet{}, &KeySetError{Index: -1, Reason: fmt.Sprintf("%d bytes, more than %d", len(data), MaxKeySetSize)}
	}
	p := keySetParser{dec: json.NewDecoder(bytes.NewReader(data))}
	set, err := p.parse()
	if err != nil {
		return KeySet{}, err
	}
	if err := set.check(); err != nil {
		return KeySet{}, err
	}
	return set, nil
}

// keySetParser walks the JSON tokens itself: encoding/json would accept
// duplicate members (last wins) and match member names regardless of case.
type keySetParser struct{ dec *json.Decoder }

func syntaxErr(index int, field string, err error) error {
	reason := "not valid JSON"
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		reason = "truncated JSON"
	}
	return &KeySetError{Index: index, Field: field, Reason: reason}
}

func (p *keySetParser) delim(want json.Delim, index int, field, what string) error {
	t, err := p.dec.Token()
	if err != nil {
		return syntaxErr(index, field, err)
	}
	if d, ok := t.(json.Delim); !ok || d != want {
		return &KeySetError{Index: index, Field: field, Reason: "not " + what}
	}
	return nil
}

// name reads an object member name.
func (p *keySetParser) name(index int) (string, error) {
	t, err := p.dec.Token()
	if err != nil {
		return "", syntaxErr(index, "", err)
	}
	s, ok := t.(string)
	if !ok {
		return "", syntaxErr(index, "", nil)
	}
	return s, nil
}

func (p *keySetParser) parse() (KeySet, error) {
	if err := p.delim('{', -1, "", "a JSON object"); err != nil {
		return KeySet{}, err
	}
	var set KeySet
	seenKeys := false
	for p.dec.More() {
		name, err := p.name(-1)
		if err != nil {
			return KeySet{}, err
		}
		if name != "keys" {
			return KeySet{}, &KeySetError{Index: -1, Field: name, Reason: "unknown member"}
		}
		if seenKeys {
			return KeySet{}, &KeySetError{Index: -1, Field: name, Reason: "duplicate member"}
		}
		seenKeys = true
		if set.Keys, err = p.keys(); err != nil {
			return KeySet{}, err
		}
	}
	if err := p.delim('}', -1, "", "a JSON object"); err != nil {
		return KeySet{}, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return KeySet{}, &KeySetError{Index: -1, Reason: "data after the key set"}
	}
	if !seenKeys {
		return KeySet{}, &KeySetError{Index: -1, Field: "keys", Reason: "missing"}
	}
	return set, nil
}

func (p *keySetParser) keys() ([]ServiceKey, error) {
	if err := p.delim('[', -1, "keys", "an array"); err != nil {
		return nil, err
	}
	var keys []ServiceKey
	for i := 0; p.dec.More(); i++ {
		if i >= MaxKeySetKeys {
			return nil, &KeySetError{Index: -1, Field: "keys", Reason: fmt.Sprintf("more than %d keys", MaxKeySetKeys)}
		}
		k, err := p.key(i)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := p.delim(']', -1, "keys", "an array"); err != nil {
		return nil, err
	}
	return keys, nil
}

func (p *keySetParser) key(i int) (ServiceKey, error) {
	if err := p.delim('{', i, "", "a JSON object"); err != nil {
		return ServiceKey{}, err
	}
	var v keyJSON
	fields := map[string]*string{"kid": &v.Kid, "scheme": &v.Scheme, "pub": &v.Pub}
	seen := map[string]bool{}
	for p.dec.More() {
		name, err := p.name(i)
		if err != nil {
			return ServiceKey{}, err
		}
		dst, ok := fields[name]
		if !ok {
			return ServiceKey{}, &KeySetError{Index: i, Field: name, Reason: "unknown member"}
		}
		if seen[name] {
			return ServiceKey{}, &KeySetError{Index: i, Field: name, Reason: "duplicate member"}
		}
		seen[name] = true
		t, err := p.dec.Token()
		if err != nil {
			return ServiceKey{}, syntaxErr(i, name, err)
		}
		s, ok := t.(string)
		if !ok {
			return ServiceKey{}, &KeySetError{Index: i, Field: name, Reason: "not a string"}
		}
		*dst = s
	}
	if err := p.delim('}', i, "", "a JSON object"); err != nil {
		return ServiceKey{}, err
	}
	for _, name := range [...]string{"kid", "scheme", "pub"} {
		if !seen[name] {
			return ServiceKey{}, &KeySetError{Index: i, Field: name, Reason: "missing"}
		}
	}
	scheme, err := ParseScheme(v.Scheme)
	if err != nil {
		return ServiceKey{}, &KeySetError{Index: i, Field: "scheme", Reason: fmt.Sprintf("unknown scheme %q", v.Scheme), Err: ErrUnsupported}
	}
	pub, ok := decodeB64url([]byte(v.Pub))
	if !ok {
		return ServiceKey{}, &KeySetError{Index: i, Field: "pub", Reason: "not unpadded base64url"}
	}
	k, err := NewServiceKey(scheme, pub)
	if err != nil {
		return ServiceKey{}, &KeySetError{Index: i, Field: "pub", Reason: err.Error(), Err: ErrInvalidKey}
	}
	if k.ID() != v.Kid {
		return ServiceKey{}, &KeySetError{Index: i, Field: "kid", Reason: fmt.Sprintf("%q is not the key's ID %q", v.Kid, k.ID())}
	}
	return k, nil
}
