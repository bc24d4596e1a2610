package protector

import (
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// MaxBindingLength is the largest tenant, user or container ID, in bytes,
// that an envelope can bind. Directory object and tenant IDs are 36-byte
// GUID strings and NgcKeyIds 38; the bound leaves room for other forms.
const MaxBindingLength = 255

// Binding names whose protector an envelope holds. Wrap authenticates it
// into the envelope (HPKE info, or the RSA-OAEP label), so the service can
// trust it once Unwrap succeeds and compare it with the access token's
// tenant and user: a stolen envelope opens for nobody else.
//
// The fields are compared byte for byte: callers choose one spelling (for
// GUIDs, lower case) and keep it.
type Binding struct {
	TenantID    string // the directory tenant ID ("tid")
	UserID      string // the user's directory object ID ("oid")
	ContainerID string // the Hello container ID
}

// Validate reports whether every field is non-empty, valid UTF-8 and at most
// MaxBindingLength bytes. The error is a *BindingError.
func (b Binding) Validate() error {
	if field, reason := b.problem(); reason != "" {
		return &BindingError{Field: field, Reason: reason}
	}
	return nil
}

// problem names the first invalid field and what is wrong with it.
func (b Binding) problem() (field, reason string) {
	for _, f := range [...]struct{ name, v string }{
		{"tenant ID", b.TenantID},
		{"user ID", b.UserID},
		{"container ID", b.ContainerID},
	} {
		if reason := bindingFieldProblem(f.v); reason != "" {
			return f.name, reason
		}
	}
	return "", ""
}

func checkBindingField(name, v string) error {
	if reason := bindingFieldProblem(v); reason != "" {
		return &BindingError{Field: name, Reason: reason}
	}
	return nil
}

// bindingFieldProblem says what is wrong with a binding field, or "".
func bindingFieldProblem(v string) string {
	switch {
	case v == "":
		return "empty"
	case len(v) > MaxBindingLength:
		return "longer than 255 bytes"
	case !utf8.ValidString(v):
		return "not valid UTF-8"
	}
	return ""
}

// addBinding appends the three fields, each with a uint8 length.
func addBinding(b *cryptobyte.Builder, bd Binding) {
	for _, v := range [...]string{bd.TenantID, bd.UserID, bd.ContainerID} {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(v)) })
	}
}

// readBinding is the strict inverse of addBinding.
func readBinding(s *cryptobyte.String) (Binding, error) {
	var out [3]string
	for i, name := range [...]string{"tenant ID", "user ID", "container ID"} {
		var v cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&v) {
			return Binding{}, malformed(name, "truncated")
		}
		if reason := bindingFieldProblem(string(v)); reason != "" {
			return Binding{}, malformed(name, reason)
		}
		out[i] = string(v)
	}
	return Binding{TenantID: out[0], UserID: out[1], ContainerID: out[2]}, nil
}
