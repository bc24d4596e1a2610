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
// DeviceID names the device the protector may be released to: the
// directory's device object, whose TPM-bound key must prove possession
// (DPoP) when the envelope is sent. It is optional in the format: an
// envelope without one is version 1, with one version 2. The reference
// service releases only envelopes that name a device (see reset/service).
//
// The fields are compared byte for byte: callers choose one spelling (for
// GUIDs, lower case) and keep it.
type Binding struct {
	TenantID    string // the directory tenant ID ("tid")
	UserID      string // the user's directory object ID ("oid")
	ContainerID string // the Hello container ID
	DeviceID    string // the device object ID ("deviceid"); "" in version 1 envelopes
}

// Validate reports whether every field but DeviceID is non-empty, and every
// field valid UTF-8 and at most MaxBindingLength bytes. The error is a
// *BindingError.
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
	if b.DeviceID != "" {
		if reason := bindingFieldProblem(b.DeviceID); reason != "" {
			return "device ID", reason
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

// addBinding appends the three fields, each with a uint8 length, and the
// device ID after them when there is one (version 2).
func addBinding(b *cryptobyte.Builder, bd Binding) {
	fields := []string{bd.TenantID, bd.UserID, bd.ContainerID}
	if bd.DeviceID != "" {
		fields = append(fields, bd.DeviceID)
	}
	for _, v := range fields {
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(v)) })
	}
}

// readBinding is the strict inverse of addBinding for an envelope of
// version v: version 2 carries a non-empty device ID, version 1 none.
func readBinding(s *cryptobyte.String, v uint8) (Binding, error) {
	var out [4]string
	names := []string{"tenant ID", "user ID", "container ID", "device ID"}
	if v < envelopeVersionDevice {
		names = names[:3]
	}
	for i, name := range names {
		var v cryptobyte.String
		if !s.ReadUint8LengthPrefixed(&v) {
			return Binding{}, malformed(name, "truncated")
		}
		if reason := bindingFieldProblem(string(v)); reason != "" {
			return Binding{}, malformed(name, reason)
		}
		out[i] = string(v)
	}
	return Binding{TenantID: out[0], UserID: out[1], ContainerID: out[2], DeviceID: out[3]}, nil
}
