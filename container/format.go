package container

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
)

// The binary format, written out in code once by Container.fields, the walk
// that MarshalBinary, Parse and clone share. Every field is length-prefixed
// and bounded; the whole encoding is canonical, so Parse(MarshalBinary(c))
// gives back c and MarshalBinary(Parse(b)) gives back b exactly. Parse is
// strict: no trailing bytes, no unknown versions, no field out of range.
//
//	magic            "HSNGC" (5 bytes)
//	version          uint8 = 1 or 2
//	generation       uint64
//	id               uint8-prefixed, 36-byte lowercase GUID
//	keyID            uint8-prefixed, 38-byte "{GUID}" uppercase
//	user, userID, tenantID            uint16-prefixed, ≤ 1024, 255, 255 bytes
//	policy           min uint8, max uint8, digits, lower, upper, special uint8 (1..3),
//	                 history uint8, expiration uint16
//	workplaceJoined  uint8 (0 or 1)
//	wam authority, id, guid           uint16-prefixed, ≤ 1024 bytes each
//	created, pinSet  uint64 (Unix seconds, ≥ 0)
//	srkName          uint8-prefixed, 2..66 bytes
//	salt             uint8-prefixed, 32 bytes
//	pin protector    public, private: uint16-prefixed, 1..4096 bytes
//	                 (version 2: 0..4096, empty iff the secret is in NV)
//	version 2 only:  nv handle uint32 (0: none), nv name uint8-prefixed
//	                 (0 or 34 bytes), retired handle uint32, retired name
//	                 uint8-prefixed, why rollback protection is off
//	                 uint8-prefixed text (empty when the secret is in NV)
//	keys             uint8 count 1..32, each: name uint8-prefixed, alg uint8,
//	                 public, private uint16-prefixed; the first is "login" and
//	                 its algorithm is Config.Algorithm
//	certificates     uint8 count 0..32, each: key name uint8-prefixed, DER uint16-prefixed ≤ 16 KiB
//	history          uint16-prefixed: empty, or nonce ‖ AES-256-GCM(MACs)
//	encS             uint16-prefixed: empty, or Enc_R(S)
//	envelope         uint16-prefixed: empty (iff encS empty), or protector.Envelope
//	tag              uint8-prefixed, 32 bytes: HMAC-SHA256 under a key derived
//	                 from the container secret, over every byte above
//	checksum         SHA-256 of every byte above (32 bytes)
//
// The checksum lets Parse refuse a damaged file outright. The tag is what
// stops a deliberate change: it can only be checked, and made, with the
// container secret, so Unlock, ChangePIN and ResetPIN verify it and refuse a
// container whose policy, certificates or enrolment were altered.
//
// Version 1 is a container whose secret is sealed in a blob, made before
// rollback protection; such a container is still written as version 1, so
// its bytes do not change. Every other container is version 2.
const (
	formatMagic   = "HSNGC"
	formatVersion = 2
	tagLen        = sha256.Size
	checksumLen   = sha256.Size
)

// MarshalBinary encodes the container (encoding.BinaryMarshaler).
func (c *Container) MarshalBinary() ([]byte, error) {
	body, err := c.marshalBody()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body)+1+tagLen+checksumLen)
	out = append(out, body...)
	out = append(out, byte(len(c.tag)))
	out = append(out, c.tag...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// marshalBody encodes everything before the tag.
func (c *Container) marshalBody() ([]byte, error) { return c.encodeBody(false) }

// taggedBody is what the tag authenticates: the body, except that in
// version 2 the generation and the retired index are left out (written as
// zero). Those two are what Retire changes, and Retire does not hold the
// container secret; neither is a secret nor a thing an attacker gains by
// changing (a file's generation only orders saves, and an index named as
// retired is one the owner, who can undefine any index, could undefine
// anyway).
func (c *Container) taggedBody() ([]byte, error) { return c.encodeBody(c.version() == 2) }

func (c *Container) encodeBody(forTag bool) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddBytes([]byte(formatMagic))
	b.AddUint8(c.version())
	c.fields(&codec{b: &b}, c.version(), forTag)
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("container: marshal: %w", err)
	}
	return out, nil
}

// fields is the format: every field of the body after the version, in
// order, with its bounds. MarshalBinary writes them, Parse reads them and
// clone copies them through this one walk, so a new field is one line here
// (and one in the comment at the top of this file). It returns the PIN
// protector's fields, which validate turns into the protector.
//
// forTag writes the generation and the retired index as zero (taggedBody).
func (c *Container) fields(k *codec, v uint8, forTag bool) protectorFields {
	generation, retired := &c.generation, &c.retired
	if forTag {
		generation, retired = new(uint64), new(tpm.NVSecret)
	}
	k.u64("generation", generation)
	k.str8("id", &c.id, 36, 36)
	k.str8("keyID", &c.keyID, 38, 38)
	k.str16("user", &c.cfg.User, 1, maxTextLen)
	k.str16("userID", &c.cfg.UserID, 1, protector.MaxBindingLength)
	k.str16("tenantID", &c.cfg.TenantID, 1, protector.MaxBindingLength)
	p := &c.cfg.PINPolicy
	codecU8(k, "policy.minimumLength", &p.MinimumLength)
	codecU8(k, "policy.maximumLength", &p.MaximumLength)
	k.charRule("policy.digits", &p.Digits)
	k.charRule("policy.lowercaseLetters", &p.LowercaseLetters)
	k.charRule("policy.uppercaseLetters", &p.UppercaseLetters)
	k.charRule("policy.specialCharacters", &p.SpecialCharacters)
	codecU8(k, "policy.history", &p.History)
	k.u16("policy.expiration", &p.Expiration)
	k.boolean("workplaceJoined", &c.cfg.WorkplaceJoined)
	w := c.cfg.WAMDefault
	if w == nil {
		w = new(WAMAccount)
		if k.r != nil {
			c.cfg.WAMDefault = w
		}
	}
	k.str16("wam.authority", &w.Authority, 0, maxTextLen)
	k.str16("wam.id", &w.ID, 0, maxTextLen)
	k.str16("wam.guid", &w.GUID, 0, maxTextLen)
	k.unix("created", &c.created)
	k.unix("pinSet", &c.pinSet)
	k.bytes8("srkName", &c.srkName, 2, maxSRKName)
	k.bytes8("salt", &c.salt, saltLen, saltLen)
	var pin protectorFields
	if k.r == nil {
		pin = c.protectorFields()
	}
	minBlob := 1
	if v == 2 {
		minBlob = 0
	}
	k.bytes16("pinProtector.public", &pin.blob.Public, minBlob, maxBlobLen)
	k.bytes16("pinProtector.private", &pin.blob.Private, minBlob, maxBlobLen)
	if v == 2 {
		k.nv("nv", &pin.nv)
		k.nv("retired", retired)
		k.str8("rollbackOff", &pin.why, 0, maxReasonLen)
	}
	n := k.count("keys.count", len(c.keys), 1, maxKeys)
	list(k, &c.keys, n)
	for i := 0; i < n && k.ok(); i++ {
		f, e := fmt.Sprintf("keys[%d]", i), &c.keys[i]
		k.str8(f+".name", &e.name, 1, maxKeyNameLen)
		codecU8(k, f+".alg", &e.alg)
		k.bytes16(f+".public", &e.blob.Public, 1, maxBlobLen)
		k.bytes16(f+".private", &e.blob.Private, 1, maxBlobLen)
	}
	n = k.count("certificates.count", len(c.certs), 0, maxCerts)
	list(k, &c.certs, n)
	for i := 0; i < n && k.ok(); i++ {
		f, e := fmt.Sprintf("certificates[%d]", i), &c.certs[i]
		k.str8(f+".key", &e.keyName, 1, maxKeyNameLen)
		k.bytes16(f+".der", &e.der, 1, maxCertLen)
	}
	k.bytes16("history", &c.history, 0, historyMaxLen)
	k.bytes16("protector.encS", &c.encS, 0, 256)
	k.bytes16("protector.envelope", &c.envelope, 0, maxEnvelope)
	return pin
}

func addU8(b *cryptobyte.Builder, v []byte) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func addU16(b *cryptobyte.Builder, v []byte) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func boolByte(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

// reader reads fields and remembers the first one that failed.
type reader struct {
	s   cryptobyte.String
	err *FormatError
}

func (r *reader) fail(field, reason string) {
	if r.err == nil {
		r.err = &FormatError{Field: field, Reason: reason}
	}
}

func (r *reader) u8(field string) uint8 {
	var v uint8
	if r.err == nil && !r.s.ReadUint8(&v) {
		r.fail(field, "truncated")
	}
	return v
}

func (r *reader) u16(field string) uint16 {
	var v uint16
	if r.err == nil && !r.s.ReadUint16(&v) {
		r.fail(field, "truncated")
	}
	return v
}

func (r *reader) u64(field string) uint64 {
	var v uint64
	if r.err == nil && !r.s.ReadUint64(&v) {
		r.fail(field, "truncated")
	}
	return v
}

// bytes8 and bytes16 read a length-prefixed field of min..max bytes; the
// result is a copy.
func (r *reader) bytes8(field string, minLen, maxLen int) []byte {
	var v cryptobyte.String
	if r.err == nil && !r.s.ReadUint8LengthPrefixed(&v) {
		r.fail(field, "truncated")
	}
	return r.check(field, v, minLen, maxLen)
}

func (r *reader) bytes16(field string, minLen, maxLen int) []byte {
	var v cryptobyte.String
	if r.err == nil && !r.s.ReadUint16LengthPrefixed(&v) {
		r.fail(field, "truncated")
	}
	return r.check(field, v, minLen, maxLen)
}

func (r *reader) check(field string, v []byte, minLen, maxLen int) []byte {
	if r.err != nil {
		return nil
	}
	if len(v) < minLen || len(v) > maxLen {
		r.fail(field, fmt.Sprintf("length %d outside %d..%d", len(v), minLen, maxLen))
		return nil
	}
	if len(v) == 0 {
		return nil
	}
	return bytes.Clone(v)
}

func (r *reader) boolean(field string) bool {
	v := r.u8(field)
	if v > 1 {
		r.fail(field, "not 0 or 1")
	}
	return v == 1
}

func (r *reader) charRule(field string) CharRule {
	v := CharRule(r.u8(field))
	if r.err == nil && (v < CharAllow || v > CharDisallow) {
		r.fail(field, fmt.Sprintf("rule %d unknown", v))
	}
	return v
}

// maxUnixTime bounds the times of the format, in Unix seconds.
const maxUnixTime = 1 << 62

func (r *reader) unix(field string) time.Time {
	v := r.u64(field)
	if v > maxUnixTime {
		r.fail(field, "out of range")
	}
	return time.Unix(int64(v), 0).UTC()
}

// Parse decodes a container encoded by MarshalBinary. Errors match ErrCorrupt
// (a *FormatError naming the field), and ErrUnsupportedVersion for a version
// this package does not know. Parse never panics.
func Parse(data []byte) (*Container, error) {
	r := &reader{s: cryptobyte.String(data)}
	var magic []byte
	if !r.s.ReadBytes(&magic, len(formatMagic)) || string(magic) != formatMagic {
		return nil, &FormatError{Field: "magic", Reason: "not a hello container"}
	}
	v := r.u8("version")
	if r.err == nil && v != 1 && v != formatVersion {
		return nil, &FormatError{Field: "version", Reason: fmt.Sprintf("version %d unsupported (want 1 or %d)", v, formatVersion), Unsupported: true, Version: int(v)}
	}
	c := &Container{}
	pin := c.fields(&codec{r: r}, v, false)
	c.tag = r.bytes8("tag", tagLen, tagLen)
	var sum []byte
	if r.err == nil && !r.s.ReadBytes(&sum, checksumLen) {
		r.fail("checksum", "truncated")
	}
	if r.err == nil && !r.s.Empty() {
		r.fail("end", fmt.Sprintf("%d trailing bytes", len(r.s)))
	}
	if r.err != nil {
		return nil, r.err
	}
	if want := sha256.Sum256(data[:len(data)-checksumLen]); !bytes.Equal(sum, want[:]) {
		return nil, &FormatError{Field: "checksum", Reason: "does not match: the data is damaged"}
	}
	if err := c.validate(pin); err != nil {
		return nil, err
	}
	if c.version() != v {
		// A version 2 encoding of what version 1 holds, or the reverse:
		// not canonical.
		return nil, &FormatError{Field: "version", Reason: "not the version this container is written in"}
	}
	return c, nil
}

// version is the format version c is written in: 1 for a sealed secret
// made before rollback protection (nothing of version 2 to record), else 2.
func (c *Container) version() uint8 {
	if pin := c.protectorFields(); pin.nv.IsZero() && pin.why == "" && c.retired.IsZero() {
		return 1
	}
	return formatVersion
}

// maxReasonLen bounds the text saying why rollback protection is off.
const maxReasonLen = 200

// nvSecret reads an NV handle and its Name: both absent, or a handle of
// the library's range and a SHA-256 Name.
func (r *reader) nvSecret(field string) tpm.NVSecret {
	var s tpm.NVSecret
	var h uint32
	if r.err == nil && !r.s.ReadUint32(&h) {
		r.fail(field+".handle", "truncated")
	}
	s.Handle = h
	s.Name = r.bytes8(field+".name", 0, 2+sha256.Size)
	if r.err != nil {
		return s
	}
	if h == 0 && len(s.Name) == 0 {
		return s
	}
	if h < tpm.NVFirst || h > tpm.NVLast || len(s.Name) != 2+sha256.Size {
		r.fail(field, "not an NV index of the library's range with a SHA-256 name")
	}
	return s
}

// validate checks what the field bounds alone do not, and chooses the PIN
// protector the fields describe.
func (c *Container) validate(pin protectorFields) error {
	bad := func(field, reason string) error { return &FormatError{Field: field, Reason: reason} }
	if !isGUID(c.id, false) {
		return bad("id", "not a lowercase GUID")
	}
	if !isKeyID(c.keyID) {
		return bad("keyID", "not a {GUID} NgcKeyId")
	}
	p := c.cfg.PINPolicy
	if p.MinimumLength < MinPINLength || p.MaximumLength < MinPINLength {
		return bad("policy", "length below the minimum")
	}
	if err := p.Validate(); err != nil {
		return bad("policy", err.Error())
	}
	if c.generation == 0 {
		return bad("generation", "zero")
	}
	names := map[string]bool{}
	for i, k := range c.keys {
		f := fmt.Sprintf("keys[%d]", i)
		if i == 0 && k.name != LoginKeyName {
			return bad(f+".name", "the first key is not the login key")
		}
		if !validKeyName(k.name) || names[k.name] {
			return bad(f+".name", "invalid or repeated key name")
		}
		names[k.name] = true
		if k.alg != tpm.RSA2048 && k.alg != tpm.ECCP256 {
			return bad(f+".alg", "unknown algorithm")
		}
		pub, err := tpm.PublicKey(k.blob)
		if err != nil {
			return bad(f+".public", "not a TPM public area: "+err.Error())
		}
		if algOf(pub) != k.alg {
			return bad(f+".alg", "does not match the key")
		}
	}
	c.cfg.Algorithm = c.keys[0].alg // the login key's algorithm is the configured one
	certFor := map[string]bool{}
	for i, ce := range c.certs {
		f := fmt.Sprintf("certificates[%d]", i)
		k := c.key(ce.keyName)
		if k == nil || certFor[ce.keyName] {
			return bad(f+".key", "names no key, or a key with another certificate")
		}
		certFor[ce.keyName] = true
		cert, err := x509.ParseCertificate(ce.der)
		if err != nil {
			return bad(f+".der", "not a certificate: "+err.Error())
		}
		pub, _ := tpm.PublicKey(k.blob)
		if !samePublicKey(cert.PublicKey, pub) {
			return bad(f+".der", "certificate is for another key")
		}
	}
	if h := len(c.history); h != 0 && (h < historyOverhead+historyEntryLen || (h-historyOverhead)%historyEntryLen != 0) {
		return bad("history", "length is not a whole number of entries")
	}
	pp, err := pinProtectorFromFormat(pin, c.retired)
	if err != nil {
		return err
	}
	c.pin = pp
	if (len(c.encS) == 0) != (len(c.envelope) == 0) {
		return bad("protector", "encrypted secret and envelope must both be present or both absent")
	}
	if len(c.envelope) > 0 {
		env, err := protector.ParseEnvelope(c.envelope)
		if err != nil {
			return bad("protector.envelope", err.Error())
		}
		if b := env.Binding(); b.TenantID != c.cfg.TenantID || b.UserID != c.cfg.UserID || b.ContainerID != c.id {
			return bad("protector.envelope", "bound to another tenant, user or container")
		}
	}
	return nil
}
