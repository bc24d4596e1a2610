package container

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/tpm"

	"github.com/hellosim/hellosim/container/event"
)

// Session is an unlocked container: the container secret S in memory and the
// login key loaded in the TPM. It is what Windows holds between the user
// typing the PIN and signing in. Close wipes S and flushes the keys. A Session
// is safe for concurrent use.
type Session struct {
	t *tpm.TPM
	o options

	expired bool // the PIN was past its expiration at Unlock

	mu     sync.Mutex
	c      *Container
	secret []byte // the container secret S; nil once closed
	keys   map[string]*tpm.Key
	closed bool
}

// Unlock opens c with the PIN: the TPM unseals the container secret from the
// PIN protector and loads the login key with the authValue derived from it.
//
// A wrong PIN is a *PINError (errors.Is ErrWrongPIN) saying how many tries
// the TPM still allows; a TPM in dictionary-attack lockout a *PINLockedError
// (errors.Is ErrPINLocked) saying when the next try is possible. Every wrong
// PIN counts toward the lockout: Windows configures TPM 2.0 to lock after 32
// failures and to forgive one every 10 minutes (WHfB tpm-fundamentals).
//
// Unlock first checks that the TPM's storage root key is the one recorded at
// provisioning (tpm.ErrSRKMismatch), so an interposed TPM cannot learn the PIN.
//
// An expired PIN still unlocks. When the PIN is older than the policy's
// Expiration (PassportForWork PINComplexity/Expiration, 1 to 730 days; the
// policy given with WithPINPolicy, else the container's), Session.PINExpired
// reports it and Unlock emits event.PINExpired after event.Unlocked: as Windows
// asks the user to change an expired PIN at sign-in, the caller prompts for
// a new one and calls ChangePIN, which restarts the clock (as ResetPIN and
// Reprovision do).
func Unlock(ctx context.Context, t *tpm.TPM, c *Container, pin string, opts ...Option) (*Session, error) {
	o := newOptions(opts)
	if c == nil || t == nil {
		return nil, errors.New("container: unlock: nil container or TPM")
	}
	policy, err := o.pinPolicy(c.cfg.PINPolicy)
	if err != nil {
		return nil, err
	}
	p := o.enterPIN(pin)
	defer clear(p)
	s, err := unsealSecret(ctx, t, c, p, o)
	if err != nil {
		return nil, err
	}
	// Only now, with the tag verified, is c.pinSet known to be genuine.
	sess := &Session{t: t, o: o, c: c, secret: s, keys: map[string]*tpm.Key{}, expired: pinExpired(c.pinSet, policy, o.now())}
	if _, err := sess.load(ctx, LoginKeyName); err != nil {
		sess.Close()
		return nil, fmt.Errorf("container: unlock: %w", err)
	}
	o.emit(ctx, c, event.Event{Kind: event.Unlocked})
	if sess.expired {
		o.emit(ctx, c, event.Event{Kind: event.PINExpired})
	}
	return sess, nil
}

// pinExpired reports whether a PIN set at pinSet has expired at now under
// policy: Expiration days have passed (0 never expires).
func pinExpired(pinSet time.Time, policy PINPolicy, now time.Time) bool {
	if policy.Expiration == 0 {
		return false
	}
	return !now.Before(pinSet.AddDate(0, 0, policy.Expiration))
}

// PINExpired reports whether the PIN that unlocked the session had expired
// under the PIN policy's Expiration. The session works all the same; the
// caller should ask the user for a new PIN and call ChangePIN, as Windows
// does at sign-in.
func (s *Session) PINExpired() bool { return s.expired }

// unsealSecret checks the SRK and reads S with the PIN (from the NV index,
// or by unsealing the PIN protector), turning TPM authorization failures
// into PIN errors and events. A revoked container is ErrRevoked.
func unsealSecret(ctx context.Context, t *tpm.TPM, c *Container, pin nfcPIN, o options) ([]byte, error) {
	if err := o.checkTPM(ctx, t); err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	if err := t.CheckSRK(c.srkName); err != nil {
		return nil, fmt.Errorf("container: check storage root key: %w", err)
	}
	// No PIN this short or this long can be right; do not spend a DA try.
	if len(pin) == 0 {
		return nil, &PolicyError{Rule: RuleMinimumLength, Detail: "no PIN entered"}
	}
	if len(pin) > 4*MaxPINLength {
		return nil, &PolicyError{Rule: RuleMaximumLength, Detail: "longer than any PIN"}
	}
	auth := o.pinAuth(c.salt, pin)
	defer clear(auth)
	s, err := c.pin.read(ctx, t, auth)
	if errors.Is(err, ErrRevoked) {
		return nil, fmt.Errorf("container: unlock: %w", err)
	}
	if err != nil {
		return nil, o.pinError(ctx, c, err)
	}
	o.see(secretS, s)
	if len(s) != secretLen {
		clear(s)
		return nil, &FormatError{Field: "pinProtector", Reason: "sealed secret has the wrong length"}
	}
	if err := c.verify(s, &o); err != nil {
		clear(s)
		return nil, err
	}
	return s, nil
}

// pinError maps TPM authorization errors to the container's.
func (o *options) pinError(ctx context.Context, c *Container, err error) error {
	var ae *tpm.AuthError
	if errors.As(err, &ae) {
		o.emit(ctx, c, event.Event{Kind: event.WrongPIN, Remaining: ae.Remaining})
		return &PINError{Remaining: ae.Remaining}
	}
	var le *tpm.LockoutError
	if errors.As(err, &le) {
		o.emit(ctx, c, event.Event{Kind: event.LockedOut, RetryAfter: le.RetryAfter})
		return &PINLockedError{RetryAfter: le.RetryAfter}
	}
	if errors.Is(err, tpm.ErrAuthFailed) {
		o.emit(ctx, c, event.Event{Kind: event.WrongPIN, Remaining: -1})
		return &PINError{Remaining: -1}
	}
	if errors.Is(err, tpm.ErrLockedOut) {
		o.emit(ctx, c, event.Event{Kind: event.LockedOut})
		return &PINLockedError{}
	}
	return fmt.Errorf("container: unseal PIN protector: %w", err)
}

// load returns the named key, loading it into the TPM on first use. The
// caller holds no lock.
func (s *Session) load(ctx context.Context, name string) (*tpm.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSessionClosed
	}
	if k := s.keys[name]; k != nil {
		return k, nil
	}
	e := s.c.key(name)
	if e == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoKey, name)
	}
	auth := s.o.keyAuth(s.secret, s.c.id, name)
	defer clear(auth)
	k, err := s.t.LoadKey(ctx, e.blob, auth)
	if err != nil {
		return nil, fmt.Errorf("load key %q: %w", name, err)
	}
	s.keys[name] = k
	return k, nil
}

// Container is the container as this session last changed it (AddKey,
// AddCertificate, EnablePINRecovery), or as it was unlocked.
func (s *Session) Container() *Container {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// Signer is the login key as a crypto.Signer, for crypto/x509 (certificate
// requests), crypto/tls (client certificates) and JOSE. RSA keys sign PKCS #1
// v1.5 or PSS as opts asks; ECDSA keys return ASN.1 signatures. After Close it
// returns ErrSessionClosed.
func (s *Session) Signer() crypto.Signer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &signer{sess: s, name: LoginKeyName, pub: s.c.PublicKey()}
}

// Key returns the named key (LoginKeyName, or one added with AddKey) as a
// crypto.Signer, loading it into the TPM on first use.
func (s *Session) Key(name string) (crypto.Signer, error) {
	if _, err := s.load(context.Background(), name); err != nil {
		return nil, fmt.Errorf("container: key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pub, err := s.c.PublicKeyOf(name)
	if err != nil {
		return nil, err
	}
	return &signer{sess: s, name: name, pub: pub}, nil
}

var _ crypto.Signer = (*signer)(nil)

// signer is a session key as crypto.Signer.
type signer struct {
	sess *Session
	name string
	pub  crypto.PublicKey
}

// String names the key, nothing more.
func (k *signer) String() string { return "container.Signer(" + k.name + ")" }

// Format prints String for every verb: verbs that fmt does not route through
// String would otherwise dump the fields, and through them the session.
func (k *signer) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// Public is the key's public key.
func (k *signer) Public() crypto.PublicKey { return k.pub }

// Sign signs digest in the TPM; rand is unused (the TPM has its own).
func (k *signer) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.SignContext(context.Background(), digest, opts)
}

// SignContext signs digest in the TPM.
func (k *signer) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	key, err := k.sess.load(ctx, k.name)
	if err != nil {
		return nil, fmt.Errorf("container: sign: %w", err)
	}
	sig, err := key.SignContext(ctx, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("container: sign with %s key: %w", k.name, err)
	}
	return sig, nil
}

// AddKey creates a further TPM key in the container, authorised like the login
// key by a value derived from the container secret, and returns the new
// container (the session moves to it). Name is 1..64 printable ASCII
// characters; LoginKeyName is taken.
func (s *Session) AddKey(ctx context.Context, name string, alg tpm.KeyAlgorithm) (*Container, error) {
	if !validKeyName(name) {
		return nil, fmt.Errorf("%w: key name %q must be 1..%d printable ASCII characters", ErrInvalidConfig, name, maxKeyNameLen)
	}
	if alg != tpm.RSA2048 && alg != tpm.ECCP256 {
		return nil, fmt.Errorf("%w: key algorithm %d unknown", ErrInvalidConfig, int(alg))
	}
	n, err := s.addKey(ctx, name, alg)
	if err != nil {
		return nil, err
	}
	// Outside the lock: a handler may use the session.
	s.o.emit(ctx, n, event.Event{Kind: event.KeyAdded, KeyName: name})
	return n, nil
}

func (s *Session) addKey(ctx context.Context, name string, alg tpm.KeyAlgorithm) (*Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSessionClosed
	}
	if s.c.key(name) != nil {
		return nil, fmt.Errorf("%w: %q", ErrKeyExists, name)
	}
	if len(s.c.keys) >= maxKeys {
		return nil, fmt.Errorf("%w: a container holds at most %d keys", ErrInvalidConfig, maxKeys)
	}
	auth := s.o.keyAuth(s.secret, s.c.id, name)
	defer clear(auth)
	blob, pub, err := s.t.CreateKey(ctx, alg, auth)
	if err != nil {
		return nil, fmt.Errorf("container: add key %q: %w", name, err)
	}
	if algOf(pub) != alg {
		return nil, fmt.Errorf("container: add key %q: TPM made a key of another algorithm", name)
	}
	n := s.c.next()
	n.keys = append(n.keys, keyEntry{name: name, alg: alg, blob: blob})
	if err := n.authenticate(s.secret, &s.o); err != nil {
		return nil, fmt.Errorf("container: add key %q: %w", name, err)
	}
	s.c = n
	return n, nil
}

// AddCertificate adds (or replaces) the certificate of the named key, as
// certificate trust deployments enrol one for the login key. The
// certificate's public key must be that key's (ErrCertificateMismatch). It
// returns the new container; the session moves to it.
func (s *Session) AddCertificate(name string, cert *x509.Certificate) (*Container, error) {
	if cert == nil {
		return nil, errors.New("container: add certificate: nil certificate")
	}
	if len(cert.Raw) == 0 || len(cert.Raw) > maxCertLen {
		return nil, fmt.Errorf("%w: certificate of %d bytes (at most %d)", ErrInvalidConfig, len(cert.Raw), maxCertLen)
	}
	n, err := s.addCertificate(name, cert)
	if err != nil {
		return nil, err
	}
	s.o.emit(context.Background(), n, event.Event{Kind: event.CertificateAdded, KeyName: name})
	return n, nil
}

func (s *Session) addCertificate(name string, cert *x509.Certificate) (*Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSessionClosed
	}
	pub, err := s.c.PublicKeyOf(name)
	if err != nil {
		return nil, fmt.Errorf("container: add certificate: %w", err)
	}
	if !samePublicKey(cert.PublicKey, pub) {
		return nil, fmt.Errorf("container: add certificate for %q: %w", name, ErrCertificateMismatch)
	}
	n := s.c.next()
	entry := certEntry{keyName: name, der: append([]byte(nil), cert.Raw...)}
	replaced := false
	for i := range n.certs {
		if n.certs[i].keyName == name {
			n.certs[i], replaced = entry, true
		}
	}
	if !replaced {
		if len(n.certs) >= maxCerts {
			return nil, fmt.Errorf("%w: a container holds at most %d certificates", ErrInvalidConfig, maxCerts)
		}
		n.certs = append(n.certs, entry)
	}
	if err := n.authenticate(s.secret, &s.o); err != nil {
		return nil, fmt.Errorf("container: add certificate: %w", err)
	}
	s.c = n
	return n, nil
}

// EnablePINRecovery enrols the PIN reset protector, the non-destructive PIN
// reset of the WHfB documentation: "a 256-bit AES key is generated locally
// ... added to a user's Windows Hello for Business container and keys as the
// PIN reset protector ... encrypted using a public key retrieved from the
// Microsoft PIN reset service and then stored on the client". Here: a fresh R,
// Enc_R(S) bound to the container, and R wrapped to key with the binding
// (tenant, user, container); R is wiped. The TPM is not used.
//
// Calling it again replaces the enrolment, which is how a client re-wraps
// when the service rotates its key. It returns the new container (its
// Envelope is set, CanReset reads DestructiveAndNonDestructive); the session
// moves to it.
func (s *Session) EnablePINRecovery(ctx context.Context, key protector.ServiceKey) (*Container, error) {
	n, err := s.enablePINRecovery(key, "")
	if err != nil {
		return nil, err
	}
	s.o.emit(ctx, n, event.Event{Kind: event.RecoveryEnabled, ServiceKey: key.ID()})
	return n, nil
}

// enablePINRecovery enrols a protector bound to deviceID, or when it is ""
// to the device of the current enrolment (none if there is none).
func (s *Session) enablePINRecovery(key protector.ServiceKey, deviceID string) (*Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrSessionClosed
	}
	if deviceID == "" {
		deviceID = s.c.DeviceID()
	}
	n := s.c.next()
	if err := n.enrol(s.secret, key, deviceID, s.o); err != nil {
		return nil, fmt.Errorf("container: enable PIN recovery: %w", err)
	}
	if err := n.authenticate(s.secret, &s.o); err != nil {
		return nil, fmt.Errorf("container: enable PIN recovery: %w", err)
	}
	s.c = n
	return n, nil
}

// enrol sets a fresh protector enrolment for secret s, bound to deviceID
// ("" for none).
func (c *Container) enrol(s []byte, key protector.ServiceKey, deviceID string, o options) error {
	r, err := protector.NewKey(o.rand)
	if err != nil {
		return fmt.Errorf("new protector: %w", err)
	}
	defer r.Destroy()
	encS, err := r.Seal(s, c.id)
	if err != nil {
		return fmt.Errorf("encrypt secret under protector: %w", err)
	}
	b := c.Binding()
	b.DeviceID = deviceID
	env, err := key.Wrap(r, b, o.rand)
	if err != nil {
		return fmt.Errorf("wrap protector: %w", err)
	}
	raw, err := env.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode envelope: %w", err)
	}
	if len(encS) > 256 || len(raw) > maxEnvelope {
		return fmt.Errorf("protector enrolment too large (%d, %d bytes)", len(encS), len(raw))
	}
	c.encS, c.envelope = encS, raw
	return nil
}

// Close wipes the container secret and flushes the session's keys from the
// TPM. Further use of the session or its signers returns ErrSessionClosed. Close is
// idempotent.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	clear(s.secret)
	s.secret = nil
	var errs []error
	for name, k := range s.keys {
		if err := k.Close(); err != nil && !errors.Is(err, tpm.ErrClosed) {
			errs = append(errs, fmt.Errorf("flush key %q: %w", name, err))
		}
		delete(s.keys, name)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("container: close session: %w", err)
	}
	return nil
}

// String identifies the session without showing anything secret.
func (s *Session) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := "open"
	if s.closed {
		state = "closed"
	}
	return fmt.Sprintf("session (%s) on %s", state, s.c)
}

// GoString is String, so that %#v shows nothing secret either.
func (s *Session) GoString() string { return s.String() }

// Format prints String for every verb. Without it, verbs that fmt does not
// route through String (%d, %o, %b, …) would print the struct's fields, the
// container secret among them.
func (s *Session) Format(f fmt.State, _ rune) { io.WriteString(f, s.String()) }
