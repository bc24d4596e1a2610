package protector

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Envelope format, versions 1 and 2. All integers are big-endian.
//
//	magic        4 bytes   "HSPR"
//	version      uint8     0x01 (no device), 0x02 (bound to a device)
//	scheme       uint8     0x01 HPKEX25519, 0x02 HPKEXWing, 0x03 RSAOAEP3072,
//	                       0x04 HPKEP256
//	key ID       16 bytes  SHA-256(scheme || service public key)[:16]
//	tenant ID    uint8 length (1..255) || UTF-8
//	user ID      uint8 length (1..255) || UTF-8
//	container ID uint8 length (1..255) || UTF-8
//	device ID    uint8 length (1..255) || UTF-8: version 2 only
//	enc          uint16 length || bytes: the HPKE encapsulated key
//	             (32 for X25519, 1120 for X-Wing, 65 for P-256; empty
//	             for RSA-OAEP)
//	ciphertext   uint16 length || bytes: the sealed protector
//	             (48 for HPKE, 384 for RSA-OAEP-3072)
//
// Everything before enc (the header and the binding, exactly as encoded) is
// authenticated: prefixed with wrapLabel it is the HPKE info or the OAEP
// label. enc and the ciphertext are authenticated by the KEM and the AEAD,
// and every length is checked against the scheme, so no byte goes
// unchecked. The version follows from the binding (a device ID makes it
// 2), so each binding has exactly one encoding, and the version is itself
// authenticated: a version 2 envelope cannot be passed off as version 1
// with its device dropped.
const (
	envelopeMagic         = "HSPR"
	envelopeVersion       = 1
	envelopeVersionDevice = 2
	keyIDSize             = 16

	// wrapLabel separates the wrapping of a protector from every other use
	// of a service key.
	wrapLabel = "hellosim protector v1 wrap"
)

// MaxEnvelopeSize bounds an encoded envelope (2554 bytes): the largest
// binding under the largest scheme fits. ParseEnvelope refuses more.
const MaxEnvelopeSize = 4 + 1 + 1 + 16 + 4*(1+MaxBindingLength) + 2 + 1120 + 2 + 384

// Envelope is a wrapped PIN reset protector as the client stores it and
// sends it to the service: version, scheme, service key ID, binding, and the
// encrypted protector. An Envelope is immutable.
type Envelope struct {
	version uint8
	scheme  Scheme
	keyID   [keyIDSize]byte
	binding Binding
	enc     []byte
	ct      []byte
}

// Binding returns the tenant, user and container the envelope is bound to.
// Before Unwrap succeeds it is only a claim; after, it is authenticated.
func (e *Envelope) Binding() Binding { return e.binding }

// KeyID returns the ID of the service key the envelope was wrapped to, in
// the form ServiceKey.ID and key sets use.
func (e *Envelope) KeyID() string { return encodeKeyID(e.keyID) }

// Scheme returns the wrapping scheme.
func (e *Envelope) Scheme() Scheme { return e.scheme }

// Version returns the format version: 2 when the binding names a device,
// else 1.
func (e *Envelope) Version() int { return int(e.version) }

// Equal reports whether e and o encode to the same bytes.
func (e *Envelope) Equal(o *Envelope) bool {
	a, err1 := e.MarshalBinary()
	b, err2 := o.MarshalBinary()
	return err1 == nil && err2 == nil && bytes.Equal(a, b)
}

// String summarises the envelope for logs; it holds nothing secret.
func (e *Envelope) String() string {
	return fmt.Sprintf("protector.Envelope{v%d %v kid=%s tenant=%q user=%q container=%q device=%q}",
		e.version, e.scheme, e.KeyID(), e.binding.TenantID, e.binding.UserID, e.binding.ContainerID, e.binding.DeviceID)
}

// check reports whether e can be encoded: it catches a zero Envelope or one
// not made by Wrap or ParseEnvelope.
func (e *Envelope) check() error {
	switch {
	case e == nil:
		return malformed("envelope", "nil")
	case e.version != versionFor(e.binding):
		return unsupported("version", fmt.Sprint(e.version))
	case !e.scheme.valid():
		return unsupported("scheme", e.scheme.String())
	case len(e.enc) != e.scheme.encSize():
		return malformed("enc", "wrong length for the scheme")
	case len(e.ct) != e.scheme.ctSize():
		return malformed("ciphertext", "wrong length for the scheme")
	}
	if field, reason := e.binding.problem(); reason != "" {
		return malformed(field, reason)
	}
	return nil
}

// addHeader appends everything before enc: the authenticated prefix.
func (e *Envelope) addHeader(b *cryptobyte.Builder) {
	b.AddBytes([]byte(envelopeMagic))
	b.AddUint8(e.version)
	b.AddUint8(e.scheme.wire())
	b.AddBytes(e.keyID[:])
	addBinding(b, e.binding)
}

// authenticatedData is wrapLabel || header: the HPKE info and OAEP label.
func (e *Envelope) authenticatedData() []byte {
	var b cryptobyte.Builder
	b.AddBytes([]byte(wrapLabel))
	e.addHeader(&b)
	return b.BytesOrPanic() // cannot fail: e.check bounds every field
}

// MarshalBinary encodes the envelope. ParseEnvelope of the result gives an
// equal envelope, and the encoding of a parsed envelope is its input.
func (e *Envelope) MarshalBinary() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	e.addHeader(&b)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.enc) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.ct) })
	return b.Bytes()
}

// ParseEnvelope decodes an envelope strictly: the wrong magic, truncation,
// trailing bytes, a field of the wrong size for its scheme or a binding
// field that is empty, too long or not UTF-8 give ErrMalformed; a version or
// scheme it does not know gives ErrUnsupported. The error is an
// *EnvelopeError. The envelope does not alias data.
func ParseEnvelope(data []byte) (*Envelope, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, malformed("envelope", fmt.Sprintf("%d bytes, more than %d", len(data), MaxEnvelopeSize))
	}
	s := cryptobyte.String(data)
	var magic []byte
	if !s.ReadBytes(&magic, len(envelopeMagic)) {
		return nil, malformed("magic", "truncated")
	}
	if string(magic) != envelopeMagic {
		return nil, malformed("magic", "not a protector envelope")
	}
	e := new(Envelope)
	if !s.ReadUint8(&e.version) {
		return nil, malformed("version", "truncated")
	}
	if e.version != envelopeVersion && e.version != envelopeVersionDevice {
		return nil, unsupported("version", fmt.Sprint(e.version))
	}
	var wire uint8
	if !s.ReadUint8(&wire) {
		return nil, malformed("scheme", "truncated")
	}
	var ok bool
	if e.scheme, ok = schemeFromWire(wire); !ok {
		return nil, unsupported("scheme", fmt.Sprintf("0x%02x", wire))
	}
	if !s.CopyBytes(e.keyID[:]) {
		return nil, malformed("key ID", "truncated")
	}
	var err error
	if e.binding, err = readBinding(&s, e.version); err != nil {
		return nil, err
	}
	var enc, ct cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&enc) {
		return nil, malformed("enc", "truncated")
	}
	if len(enc) != e.scheme.encSize() {
		return nil, malformed("enc", fmt.Sprintf("%d bytes, %v needs %d", len(enc), e.scheme, e.scheme.encSize()))
	}
	if !s.ReadUint16LengthPrefixed(&ct) {
		return nil, malformed("ciphertext", "truncated")
	}
	if len(ct) != e.scheme.ctSize() {
		return nil, malformed("ciphertext", fmt.Sprintf("%d bytes, %v needs %d", len(ct), e.scheme, e.scheme.ctSize()))
	}
	if !s.Empty() {
		return nil, malformed("envelope", fmt.Sprintf("%d trailing bytes", len(s)))
	}
	e.enc = bytes.Clone(enc)
	e.ct = bytes.Clone(ct)
	return e, nil
}

// versionFor is the one version that encodes b.
func versionFor(b Binding) uint8 {
	if b.DeviceID != "" {
		return envelopeVersionDevice
	}
	return envelopeVersion
}

// b64url is unpadded base64url, strict about the unused final bits so that
// every text has one decoding and one encoding.
func b64url() *base64.Encoding { return base64.RawURLEncoding.Strict() }

// decodeB64url decodes text that must be exactly what b64url encodes: even
// in strict mode Go's decoder skips CR and LF, which would give one value
// many texts.
func decodeB64url(text []byte) ([]byte, bool) {
	enc := b64url()
	raw := make([]byte, enc.DecodedLen(len(text)))
	n, err := enc.Decode(raw, text)
	if err != nil || enc.EncodedLen(n) != len(text) {
		return nil, false
	}
	return raw[:n], true
}

// MarshalText encodes the envelope as unpadded base64url of MarshalBinary,
// for JSON and other text carriers.
func (e *Envelope) MarshalText() ([]byte, error) {
	raw, err := e.MarshalBinary()
	if err != nil {
		return nil, err
	}
	enc := b64url()
	out := make([]byte, enc.EncodedLen(len(raw)))
	enc.Encode(out, raw)
	return out, nil
}

// UnmarshalText decodes what MarshalText produced, as strictly as
// ParseEnvelope.
func (e *Envelope) UnmarshalText(text []byte) error {
	enc := b64url()
	if len(text) > enc.EncodedLen(MaxEnvelopeSize) {
		return malformed("envelope", "text too long")
	}
	raw, ok := decodeB64url(text)
	if !ok {
		return malformed("envelope", "not unpadded base64url")
	}
	parsed, err := ParseEnvelope(raw)
	if err != nil {
		return err
	}
	*e = *parsed
	return nil
}
