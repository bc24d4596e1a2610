package container

import (
	"bytes"
	"crypto"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"
)

// LoginKeyName names the login key among a container's keys (Session.Key,
// AddCertificate).
const LoginKeyName = "login"

// Config is who a container belongs to and how it is made.
type Config struct {
	User     string // UPN, e.g. "alice@contoso.com"
	UserID   string // the user's directory object ID
	TenantID string // the tenant ID

	// Algorithm of the login key: RSA-2048 (zero value, as WHfB) or ECC P-256.
	Algorithm tpm.KeyAlgorithm

	// PINPolicy is the PassportForWork PINComplexity policy; the zero value
	// is the Windows default.
	PINPolicy PINPolicy

	// WorkplaceJoined is dsregcmd's WorkplaceJoined (the device is registered
	// with this user's work account). Default NO, as in the dsregcmd sample.
	WorkplaceJoined bool

	// WAMDefault is the default Web Account Manager account dsregcmd reports.
	// nil gives the dsregcmd sample's Microsoft Entra account
	// (authority "organizations"); a zero WAMAccount means none (WamDefaultSet NO).
	WAMDefault *WAMAccount
}

// WAMAccount is the default Web Account Manager account of the user.
type WAMAccount struct {
	Authority string // WamDefaultAuthority, e.g. "organizations"
	ID        string // WamDefaultId, e.g. "https://login.microsoft.com"
	GUID      string // WamDefaultGUID as dsregcmd prints it, e.g. "{ B16898C6-… } (AzureAd)"
}

// sampleWAM is the account of the dsregcmd /status sample in the WHfB PIN
// reset documentation.
func sampleWAM() WAMAccount {
	return WAMAccount{
		Authority: "organizations",
		ID:        "https://login.microsoft.com",
		GUID:      "{ B16898C6-A148-4967-9171-64D755DA8520 } (AzureAd)",
	}
}

// Bounds on text fields, so that a container stays small and parsing is bounded.
const (
	maxTextLen    = 1024
	maxKeyNameLen = 64
	maxKeys       = 32
	maxCerts      = 32
	maxCertLen    = 16 << 10
	maxBlobLen    = 4096
	maxEnvelope   = protector.MaxEnvelopeSize
	maxSRKName    = 2 + 64
)

// normalized checks cfg and fills its defaults.
func (cfg Config) normalized() (Config, error) {
	if cfg.User == "" || cfg.UserID == "" || cfg.TenantID == "" {
		return cfg, fmt.Errorf("%w: User, UserID and TenantID are required", ErrInvalidConfig)
	}
	if len(cfg.User) > maxTextLen {
		return cfg, fmt.Errorf("%w: User longer than %d bytes", ErrInvalidConfig, maxTextLen)
	}
	// The IDs are bound into the PIN reset protector envelope.
	for _, f := range []struct{ name, v string }{{"UserID", cfg.UserID}, {"TenantID", cfg.TenantID}} {
		if len(f.v) > protector.MaxBindingLength {
			return cfg, fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidConfig, f.name, protector.MaxBindingLength)
		}
	}
	if cfg.Algorithm != tpm.RSA2048 && cfg.Algorithm != tpm.ECCP256 {
		return cfg, fmt.Errorf("%w: key algorithm %d unknown", ErrInvalidConfig, int(cfg.Algorithm))
	}
	if err := cfg.PINPolicy.Validate(); err != nil {
		return cfg, err
	}
	cfg.PINPolicy = cfg.PINPolicy.withDefaults()
	w := sampleWAM()
	if cfg.WAMDefault != nil {
		w = *cfg.WAMDefault
	}
	for _, f := range []string{w.Authority, w.ID, w.GUID} {
		if len(f) > maxTextLen {
			return cfg, fmt.Errorf("%w: WAMDefault field longer than %d bytes", ErrInvalidConfig, maxTextLen)
		}
	}
	cfg.WAMDefault = &w
	return cfg, nil
}

// keyEntry is one TPM key of the container.
type keyEntry struct {
	name string
	alg  tpm.KeyAlgorithm
	blob tpm.Blob
}

// certEntry is a certificate for one key.
type certEntry struct {
	keyName string
	der     []byte
}

// Container is a Windows Hello for Business container: a login key (and any
// further keys) in TPM blobs, the PIN protector holding the container secret,
// certificates, and optionally the PIN reset protector enrolment.
//
// A Container is a value: every operation returns a new one and never changes
// its input, so any number of goroutines may read one. Nothing in it is secret
// in the clear; the blobs are only usable on the TPM that made them.
type Container struct {
	generation uint64
	id         string // container ID, lowercase GUID
	keyID      string // NgcKeyId, "{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}"
	cfg        Config // normalized; WAMDefault non-nil
	created    time.Time
	pinSet     time.Time
	srkName    []byte
	salt       []byte // container salt for the PIN authValue, 32 bytes
	// pin holds S under HMAC(salt, NFC(PIN)): an NV index (rollback
	// protection, see rollback.go) or a sealed blob (pinprotector.go).
	pin pinProtector
	// retired is the index of the container this one replaced (by a
	// reset), undefined by Retire once this container is saved.
	retired  tpm.NVSecret
	keys     []keyEntry
	certs    []certEntry
	history  []byte // AES-256-GCM(nonce ‖ ciphertext) of the PIN history MACs; empty: none
	encS     []byte // Enc_R(S); empty: no protector
	envelope []byte // Wrap_servicePub(R) as protector.Envelope.MarshalBinary
	tag      []byte // HMAC under an S-derived key over the encoding (see format.go)
}

// clone returns a deep copy sharing no memory with c: what an operation
// changes (next). Callers have no use for one, since a Container is never
// changed and every operation returns a fresh one.
func (c *Container) clone() *Container {
	if c == nil {
		return nil
	}
	n := *c
	n.cfg = c.Config()
	if c.pin != nil {
		n.pin = c.pin.clone()
	}
	n.fields(&codec{}, n.version(), false) // copies every field of the format
	n.tag = bytes.Clone(c.tag)
	return &n
}

// next is the copy an operation changes: one generation on.
func (c *Container) next() *Container {
	n := c.clone()
	n.generation++
	return n
}

func cloneBlob(b tpm.Blob) tpm.Blob {
	return tpm.Blob{Public: bytes.Clone(b.Public), Private: bytes.Clone(b.Private)}
}

// ID is the container ID, a lowercase GUID. It names the container's file in
// a Store and is bound into the PIN reset protector envelope.
func (c *Container) ID() string { return c.id }

// KeyID is the NgcKeyId of the login key as dsregcmd prints it:
// "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}".
func (c *Container) KeyID() string { return c.keyID }

// Generation rises by one with every change to the container; the store
// (container/store) refuses to replace a generation with an older or
// equal one.
func (c *Container) Generation() uint64 { return c.generation }

// Config returns the container's configuration with defaults filled in.
func (c *Container) Config() Config {
	cfg := c.cfg
	var w WAMAccount
	if c.cfg.WAMDefault != nil {
		w = *c.cfg.WAMDefault
	}
	cfg.WAMDefault = &w
	return cfg
}

// Created is when the container was provisioned.
func (c *Container) Created() time.Time { return c.created }

// PINExpires is when the PIN expires under the policy's Expiration, or the
// zero time when it never does. Before Unlock it is what the file says;
// Session.PINExpired is the authenticated answer.
func (c *Container) PINExpires() time.Time { return c.PINExpiresUnder(c.cfg.PINPolicy) }

// PINExpiresUnder is when the PIN expires under policy p — the managed
// policy that applies in place of the recorded one (WithPINPolicy) — or the
// zero time when p never expires. It is the date Session.PINExpired checks
// under that policy.
func (c *Container) PINExpiresUnder(p PINPolicy) time.Time {
	if p.Expiration == 0 {
		return time.Time{}
	}
	return c.pinSet.AddDate(0, 0, p.Expiration)
}

// PublicKey is the login key's public key (*rsa.PublicKey or *ecdsa.PublicKey),
// a fresh copy on each call.
func (c *Container) PublicKey() crypto.PublicKey {
	if len(c.keys) == 0 {
		return nil // not a provisioned or parsed container
	}
	pub, err := tpm.PublicKey(c.keys[0].blob)
	if err != nil {
		return nil
	}
	return pub
}

// KeyNames lists the container's keys, the login key first.
func (c *Container) KeyNames() []string {
	names := make([]string, len(c.keys))
	for i, k := range c.keys {
		names[i] = k.name
	}
	return names
}

// PublicKeyOf is the public key of the named key.
func (c *Container) PublicKeyOf(name string) (crypto.PublicKey, error) {
	k := c.key(name)
	if k == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoKey, name)
	}
	return tpm.PublicKey(k.blob)
}

func (c *Container) key(name string) *keyEntry {
	for i := range c.keys {
		if c.keys[i].name == name {
			return &c.keys[i]
		}
	}
	return nil
}

// Certificates returns the container's certificates (fresh copies), in the
// order they were added.
func (c *Container) Certificates() []*x509.Certificate {
	out := make([]*x509.Certificate, 0, len(c.certs))
	for _, ce := range c.certs {
		cert, err := x509.ParseCertificate(ce.der)
		if err == nil {
			out = append(out, cert)
		}
	}
	return out
}

// Certificate returns the certificate for the named key, if any.
func (c *Container) Certificate(keyName string) (*x509.Certificate, bool) {
	for _, ce := range c.certs {
		if ce.keyName == keyName {
			cert, err := x509.ParseCertificate(ce.der)
			return cert, err == nil
		}
	}
	return nil, false
}

// Binding is what the PIN reset protector envelope authenticates: the tenant,
// the user's object ID and this container. The device an enrolment is bound
// to is the enrolment's own (DeviceID), and not part of this value.
func (c *Container) Binding() protector.Binding {
	return protector.Binding{TenantID: c.cfg.TenantID, UserID: c.cfg.UserID, ContainerID: c.id}
}

// Envelope is the wrapped PIN reset protector to send to the PIN reset
// service, or nil when PIN recovery is not enabled. Each call returns a new
// Envelope.
func (c *Container) Envelope() *protector.Envelope {
	if len(c.envelope) == 0 {
		return nil
	}
	env, err := protector.ParseEnvelope(c.envelope)
	if err != nil {
		return nil
	}
	return env
}

// HasProtector reports whether the PIN reset protector is enrolled.
func (c *Container) HasProtector() bool { return len(c.encS) > 0 }

// String identifies the container; it holds nothing secret.
func (c *Container) String() string {
	if c == nil {
		return "container(nil)"
	}
	return fmt.Sprintf("container %s (NgcKeyId %s, user %s, generation %d)", c.id, c.keyID, c.cfg.User, c.generation)
}

// Key derivation from the container secret S (RFC 5869 HKDF-SHA256). The info
// strings name what the key is for, so no two uses share a key.
const (
	infoKeyAuth     = "hellosim container v1 key auth: "
	infoHistoryMAC  = "hellosim container v1 pin history mac"
	infoHistoryEnc  = "hellosim container v1 pin history enc"
	infoTag         = "hellosim container v1 tag"
	secretLen       = 32
	saltLen         = 32
	historyEntryLen = 16 // HMAC-SHA256 truncated to 128 bits: ample to tell PINs apart
)

// keyAuth is the authValue of the named key: HKDF(S, salt = container ID, info
// names the key). It is high-entropy, so the keys are noDA. The caller
// wipes it.
func (o *options) keyAuth(s []byte, containerID, name string) []byte {
	k, err := hkdf.Key(sha256.New, s, []byte(containerID), infoKeyAuth+name, 32)
	if err != nil {
		panic("container: hkdf: " + err.Error()) // only for lengths beyond 255*32
	}
	o.see(secretKeyAuth, k)
	return k
}

// deriveKey is HKDF(S, salt = container ID, info); the caller wipes it.
func (o *options) deriveKey(s []byte, containerID, info string) []byte {
	k, err := hkdf.Key(sha256.New, s, []byte(containerID), info, 32)
	if err != nil {
		panic("container: hkdf: " + err.Error())
	}
	o.see(secretDerivedKey, k)
	return k
}

// pinAuth is the PIN protector's authValue: HMAC-SHA256(salt, NFC(PIN)). The
// caller wipes it.
func (o *options) pinAuth(salt []byte, pin nfcPIN) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write(pin)
	a := m.Sum(nil)
	o.see(secretPINAuth, a)
	return a
}

// newGUID reads a random (version 4) GUID.
func newGUID(r io.Reader) ([16]byte, error) {
	var g [16]byte
	if _, err := io.ReadFull(r, g[:]); err != nil {
		return g, fmt.Errorf("read random: %w", err)
	}
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g, nil
}

func formatGUID(g [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", g[0:4], g[4:6], g[6:8], g[8:10], g[10:16])
}

// isGUID checks the 36-character lowercase form (upper when upper is set).
func isGUID(s string, upper bool) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if ch != '-' {
				return false
			}
		case ch >= '0' && ch <= '9':
		case !upper && ch >= 'a' && ch <= 'f':
		case upper && ch >= 'A' && ch <= 'F':
		default:
			return false
		}
	}
	return true
}

// ValidID reports whether id has the form of a container ID.
func ValidID(id string) bool { return isGUID(id, false) }

func isKeyID(s string) bool {
	return len(s) == 38 && s[0] == '{' && s[37] == '}' && isGUID(s[1:37], true)
}

func validKeyName(name string) bool {
	if name == "" || len(name) > maxKeyNameLen {
		return false
	}
	return !slices.ContainsFunc([]byte(name), func(b byte) bool { return b <= ' ' || b > '~' })
}

// authenticate sets the tag: HMAC-SHA256 over the encoding under a key
// derived from S. Every operation that makes a new container holds S and
// calls it last.
func (c *Container) authenticate(s []byte, o *options) error {
	t, err := c.computeTag(s, o)
	if err != nil {
		return err
	}
	c.tag = t
	return nil
}

// verify checks the tag with S: a container whose file was changed by
// anything but this package, holding S, fails.
func (c *Container) verify(s []byte, o *options) error {
	t, err := c.computeTag(s, o)
	if err != nil {
		return err
	}
	if !hmac.Equal(t, c.tag) {
		return &FormatError{Field: "tag", Reason: "does not verify under the container secret: the container was altered"}
	}
	return nil
}

func (c *Container) computeTag(s []byte, o *options) ([]byte, error) {
	body, err := c.taggedBody()
	if err != nil {
		return nil, err
	}
	k := o.deriveKey(s, c.id, infoTag)
	defer clear(k)
	m := hmac.New(sha256.New, k)
	m.Write(body)
	return m.Sum(nil), nil
}
