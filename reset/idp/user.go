package idp

import (
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/argon2"
)

// TOTP parameters: RFC 6238's defaults, which every authenticator app uses.
const (
	TOTPPeriod = 30 * time.Second
	totpDigits = 6
	// totpSkew: codes one step either side of now are accepted (RFC 6238 §5.2
	// recommends at most one step of network delay).
	totpSkew = 1
	// totpSecretSize is 160 bits, RFC 4226 §4's recommended secret length.
	totpSecretSize = 20
)

// totpOpts are the RFC 6238 parameters above, for pquerna/otp.
func totpOpts() totp.ValidateOpts {
	return totp.ValidateOpts{Period: uint(TOTPPeriod / time.Second), Skew: 0, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
}

// b32 is the TOTP secret encoding authenticator apps read.
func b32() *base32.Encoding { return base32.StdEncoding.WithPadding(base32.NoPadding) }

// UserConfig describes a user to create.
type UserConfig struct {
	// TenantID of an existing tenant.
	TenantID string
	// UPN, in the tenant's domain: "alice@contoso.test".
	UPN string
	// Password, stored only as an Argon2id hash; 8 to 256 characters.
	Password string
	// ObjectID; "" makes a random GUID.
	ObjectID string
	// TOTPSecret, base32 without padding; "" makes a random 160-bit secret.
	TOTPSecret string
	// Disabled accounts cannot sign in.
	Disabled bool
	// GlobalAdmin gives the user the Global Administrator role: the role
	// that grants admin consent to an application for the whole tenant.
	GlobalAdmin bool
}

// User is a snapshot of a user. Its TOTP secret is reachable only through
// TOTPSecret and never printed.
type User struct {
	TenantID string
	ObjectID string
	UPN      string
	Disabled bool
	// GlobalAdmin: the user holds the Global Administrator role.
	GlobalAdmin bool
	secret      string
}

// TOTPSecret returns the base32 TOTP secret, to enrol an authenticator.
func (u User) TOTPSecret() string { return u.secret }

// TOTPURI returns the otpauth:// URI an authenticator app scans.
func (u User) TOTPURI() string {
	v := url.Values{}
	v.Set("secret", u.secret)
	v.Set("issuer", "hellosim")
	v.Set("algorithm", "SHA1")
	v.Set("digits", "6")
	v.Set("period", "30")
	return "otpauth://totp/" + url.PathEscape("hellosim:"+u.UPN) + "?" + v.Encode()
}

// String omits the TOTP secret.
func (u User) String() string {
	return fmt.Sprintf("User{UPN:%s ObjectID:%s TenantID:%s Disabled:%t}", u.UPN, u.ObjectID, u.TenantID, u.Disabled)
}

// GoString omits the TOTP secret.
func (u User) GoString() string { return u.String() }

// Format prints String for every verb: verbs that fmt does not route through
// String (%d, %o, …) would otherwise print the fields, the secret among them.
func (u User) Format(f fmt.State, _ rune) { io.WriteString(f, u.String()) }

type user struct {
	User
	tenant   *tenant
	password *passwordHash

	failures    int
	lockedUntil time.Time
	lastStep    int64     // last accepted TOTP time step (RFC 6238 §5.2: no reuse)
	revokedAt   time.Time // RevokeSessions; zero: never
}

func (u *user) snapshot() User { return u.User }

// passwordHash is an Argon2id hash with its parameters.
type passwordHash struct {
	params Argon2Params
	salt   []byte
	hash   []byte
}

func (p *IdP) hashPassword(pw string) (*passwordHash, error) {
	salt := make([]byte, 16) // RFC 9106 §3.1: 128-bit salt
	if err := p.readRand(salt); err != nil {
		return nil, err
	}
	a := p.argon
	b := []byte(pw)
	defer clear(b)
	return &passwordHash{params: a, salt: salt, hash: argon2.IDKey(b, salt, a.Time, a.MemoryKiB, a.Threads, 32)}, nil
}

func (h *passwordHash) verify(pw string) bool {
	a := h.params
	b := []byte(pw)
	defer clear(b)
	got := argon2.IDKey(b, h.salt, a.Time, a.MemoryKiB, a.Threads, uint32(len(h.hash)))
	ok := subtle.ConstantTimeCompare(got, h.hash) == 1
	clear(got)
	return ok
}

func checkPassword(pw string) error {
	if n := utf8.RuneCountInString(pw); n < 8 || n > 256 || !utf8.ValidString(pw) {
		return fmt.Errorf("%w: password must be 8 to 256 characters", ErrInvalid)
	}
	return nil
}

// AddUser creates a user in an existing tenant.
func (p *IdP) AddUser(cfg UserConfig) (User, error) {
	upn := strings.ToLower(cfg.UPN)
	local, domain, ok := strings.Cut(upn, "@")
	if !ok || local == "" || strings.ContainsAny(local, " \t\r\n@/\\\"") || len(upn) > 113 {
		return User{}, fmt.Errorf("add user: %w: upn %q", ErrInvalid, cfg.UPN)
	}
	if err := checkPassword(cfg.Password); err != nil {
		return User{}, fmt.Errorf("add user: %w", err)
	}
	oid := cfg.ObjectID
	if oid == "" {
		g, err := p.newGUID()
		if err != nil {
			return User{}, fmt.Errorf("add user: %w", err)
		}
		oid = g
	}
	oid, err := checkGUID("object id", oid)
	if err != nil {
		return User{}, fmt.Errorf("add user: %w", err)
	}
	var secret []byte
	if cfg.TOTPSecret == "" {
		secret = make([]byte, totpSecretSize)
		if err := p.readRand(secret); err != nil {
			return User{}, fmt.Errorf("add user: %w", err)
		}
	} else {
		secret, err = b32().DecodeString(strings.ToUpper(strings.TrimRight(cfg.TOTPSecret, "=")))
		if err != nil || len(secret) < 10 {
			return User{}, fmt.Errorf("add user: %w: totp secret must be base32, at least 80 bits", ErrInvalid)
		}
	}
	hash, err := p.hashPassword(cfg.Password)
	if err != nil {
		return User{}, fmt.Errorf("add user: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.tenants[strings.ToLower(cfg.TenantID)]
	if !ok {
		return User{}, fmt.Errorf("add user: %w", identity.ErrUnknownTenant)
	}
	if domain != t.Domain {
		return User{}, fmt.Errorf("add user: %w: upn %q is not in the tenant's domain %s", ErrInvalid, cfg.UPN, t.Domain)
	}
	if _, dup := p.users[upn]; dup {
		return User{}, fmt.Errorf("add user %s: %w", upn, ErrExists)
	}
	if _, dup := p.byObject[objectKey(t.ID, oid)]; dup {
		return User{}, fmt.Errorf("add user: object id %s: %w", oid, ErrExists)
	}
	u := &user{
		User:     User{TenantID: t.ID, ObjectID: oid, UPN: upn, Disabled: cfg.Disabled, GlobalAdmin: cfg.GlobalAdmin, secret: b32().EncodeToString(secret)},
		tenant:   t,
		password: hash,
		lastStep: -1,
	}
	p.users[upn] = u
	p.byObject[objectKey(t.ID, oid)] = u
	return u.snapshot(), nil
}

// LookupUser returns a snapshot of the user.
func (p *IdP) LookupUser(upn string) (User, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, err := p.userLocked(upn, "lookup user")
	if err != nil {
		return User{}, err
	}
	return u.snapshot(), nil
}

// SetPassword replaces a user's password (an administrator's reset).
func (p *IdP) SetPassword(upn, password string) error {
	if err := checkPassword(password); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	h, err := p.hashPassword(password)
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	return p.updateUser(upn, "set password", func(u *user) { u.password = h })
}

// SetDisabled disables or enables an account.
func (p *IdP) SetDisabled(upn string, disabled bool) error {
	return p.updateUser(upn, "set disabled", func(u *user) { u.Disabled = disabled })
}

// Unlock clears a user's failed sign-ins and lockout.
func (p *IdP) Unlock(upn string) error {
	return p.updateUser(upn, "unlock", func(u *user) { u.failures, u.lockedUntil = 0, time.Time{} })
}

// updateUser applies change to the user upn under p.mu; an unknown user is
// ErrUnknownUser, after op.
func (p *IdP) updateUser(upn, op string, change func(u *user)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, err := p.userLocked(upn, op)
	if err != nil {
		return err
	}
	change(u)
	return nil
}

// userLocked returns the user upn (any case); an unknown user is
// ErrUnknownUser, after op. p.mu is held.
func (p *IdP) userLocked(upn, op string) (*user, error) {
	u, ok := p.users[strings.ToLower(upn)]
	if !ok {
		return nil, fmt.Errorf("%s: %w", op, ErrUnknownUser)
	}
	return u, nil
}

// TOTPCode returns the user's current TOTP code at the IdP's clock: what the
// user's authenticator app would show. For tests and demos.
func (p *IdP) TOTPCode(upn string) (string, error) {
	p.mu.Lock()
	u, ok := p.users[strings.ToLower(upn)]
	var secret string
	if ok {
		secret = u.User.secret
	}
	p.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("totp code: %w", ErrUnknownUser)
	}
	return TOTPCodeAt(secret, p.now())
}

// TOTPCodeAt computes the RFC 6238 code of a base32 secret at t (SHA-1, six
// digits, 30-second steps).
func TOTPCodeAt(secret string, t time.Time) (string, error) {
	c, err := totp.GenerateCodeCustom(secret, t, totpOpts())
	if err != nil {
		return "", fmt.Errorf("totp code: %w", ErrInvalid)
	}
	return c, nil
}

// checkTOTP finds the step, within the skew, whose code matches; -1 if none.
// Every candidate is compared in constant time.
func checkTOTP(secret string, code string, now time.Time) int64 {
	step := now.Unix() / int64(TOTPPeriod/time.Second)
	found := int64(-1)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		s := step + d
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*int64(TOTPPeriod/time.Second), 0), totpOpts())
		if err != nil {
			continue
		}
		if len(code) == len(want) && subtle.ConstantTimeCompare([]byte(code), []byte(want)) == 1 {
			found = s
		}
	}
	return found
}
