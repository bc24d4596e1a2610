package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/service/state"
)

// Directory is what the service asks the directory about, at request
// time: the tenant (is it onboarded, which cloud is it in), the user (still
// enabled, sessions not revoked since the token was issued) and the device
// (registered, enabled, holding the key the token is bound to). A token
// says what was true when it was issued; the directory says what is true
// now. The simulated directory (*idp.IdP) implements it; the code that
// builds a world (resettest, the examples) connects the two.
type Directory interface {
	// Tenant returns the tenant with that ID. A tenant the directory does
	// not hold is an error matching identity.ErrUnknownTenant; the service
	// treats it as not onboarded.
	Tenant(ctx context.Context, tenantID string) (identity.Tenant, error)
	// Account returns the user's standing now; a user the directory does
	// not hold stands identity.StandingDeleted.
	Account(ctx context.Context, tenantID, objectID string) (identity.Account, error)
	// Device returns the device object's standing now; a device the
	// directory does not hold stands identity.StandingDeleted. A device of
	// another tenant is not that tenant's to answer for: *idp.IdP returns
	// an error, which the service treats as any failed lookup (it refuses).
	Device(ctx context.Context, tenantID, deviceID string) (identity.Device, error)
}

// Defaults for Config.
const (
	DefaultMaxBodyBytes = 16 << 10
	// DefaultMFAMaxAge bounds the age of the MFA a token shows (its
	// auth_time): a PIN reset is a fresh decision, so an MFA from this
	// morning, carried by refreshed tokens, is not enough.
	DefaultMFAMaxAge = 10 * time.Minute
	// DefaultProofMaxAge bounds the age of a DPoP proof (its iat); its
	// jti is remembered that long (plus the skew), so it is used once.
	DefaultProofMaxAge = time.Minute
)

// Config configures a Service.
type Config struct {
	// Verifier checks access tokens (required); JWTVerifier is the usual one.
	Verifier TokenVerifier
	// Directory answers tenant, user and device questions (required).
	Directory Directory
	// Keys are the service's private keys (at least one). Keys[0] is current:
	// it is published first and is the one clients wrap new protectors to.
	// Envelopes made under any of them are opened.
	Keys []protector.Unwrapper
	// Retired lists key IDs no longer served: envelopes under them are
	// refused with 410 key_retired, so the client knows to re-enrol.
	Retired []string
	// Audit receives one record per decision; nil discards. Use a JSON
	// handler (slog.NewJSONHandler) in production.
	Audit *slog.Logger
	// Clock; nil means time.Now. Used for MFA and proof freshness and by
	// the default State; the verifier has its own.
	Clock func() time.Time
	// State holds the replay records, rate limits and lockouts; nil means
	// an in-memory store (state.NewMemory) for a service on one instance.
	// Use state.NewRedis when several instances serve one population. Any
	// error of the store refuses the request with 503: nothing is
	// released on a decision the store did not make.
	State state.Store
	// RateLimit per user (tenant ID + object ID); zero means DefaultRateLimit.
	RateLimit RateLimit
	// AddressLimit per client address (see TrustedProxies); zero means
	// DefaultAddressLimit. It is drawn from before any signature is
	// verified, so forged tokens from one address cost that address.
	AddressLimit RateLimit
	// TenantLimit per tenant: a quota, so one tenant cannot take the
	// service from the others; zero means DefaultTenantLimit.
	TenantLimit RateLimit
	// Lockout is the per-user failure policy (envelopes bound to another
	// user or device, envelopes that do not open); zero means
	// state.DefaultLockout (10 in 24 hours, escalating).
	Lockout state.Lockout
	// TrustedProxies are the addresses whose X-Forwarded-For the service
	// believes: the client address is the right-most address in the chain
	// that is not a trusted proxy. With none, the client address is the
	// connection's peer and X-Forwarded-For is ignored (and audited).
	TrustedProxies []netip.Prefix
	// ClientAppID is the azp (or appid) tokens must carry: the client
	// application allowed to recover. "" means
	// identity.PINResetClientAppID.
	ClientAppID string
	// MFAMaxAge bounds now − auth_time; 0 means DefaultMFAMaxAge.
	MFAMaxAge time.Duration
	// ProofMaxAge bounds the age of a DPoP proof; 0 means
	// DefaultProofMaxAge.
	ProofMaxAge time.Duration
	// PublicURL is the service's base URL as clients name it
	// ("https://pinreset.example"): DPoP proofs must name
	// PublicURL+PathRecover as htu. "" means the URL of the listener the
	// request arrived on: the scheme from the connection and the local
	// address ("http://127.0.0.1:8080"), never the Host header, which a
	// proxy relaying another server's requests would set. That suits a
	// service clients reach at its listener's address (a test server, a
	// service on loopback); behind a proxy or under a DNS name, set it.
	PublicURL string
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// ReplaySkew is added to a token's expiry to decide how long its jti is
	// remembered, and the service refuses any token whose expiry plus
	// ReplaySkew has passed, whatever the verifier says: so no token is
	// accepted after its jti is forgotten. It must be at least the
	// verifier's skew: when the verifier reports one (VerifierSkew, as
	// JWTVerifier does), New refuses a smaller ReplaySkew with a
	// *ConfigError. 0 means the verifier's skew, or DefaultSkew when it
	// reports none (or a smaller one).
	ReplaySkew time.Duration
}

// VerifierSkew is implemented by a TokenVerifier that tolerates clock skew on
// a token's expiry: it accepts a token until exp + Skew(). New reads it to
// choose, or check, Config.ReplaySkew. JWTVerifier implements it.
type VerifierSkew interface {
	Skew() time.Duration
}

// ErrInvalidServiceConfig matches the *ConfigError New returns for a Config it
// cannot run with.
var ErrInvalidServiceConfig = errors.New("pin reset service: invalid configuration")

// ConfigError is a Config that New refused. Field names the Config field.
type ConfigError struct {
	Field  string
	Reason string
}

// Error names the field and the reason.
func (e *ConfigError) Error() string {
	return "new pin reset service: " + e.Field + ": " + e.Reason
}

// Is makes errors.Is(err, ErrInvalidServiceConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidServiceConfig }

// Service is the reference PIN reset service: an http.Handler serving
// GET /v1/keys and POST /v1/recover. It is safe for concurrent use.
type Service struct {
	verifier  TokenVerifier
	directory Directory
	keys      map[string]protector.Unwrapper
	retired   map[string]bool
	keySet    []byte // the published key set, marshalled once
	audit     *slog.Logger
	now       func() time.Time
	store     state.Store
	limits    limits
	lockout   state.Lockout
	proxies   []netip.Prefix
	clientApp string
	mfaMaxAge time.Duration
	proofAge  time.Duration
	htu       string // PublicURL + PathRecover; "" means from the request
	ownStore  bool   // the store is the default one, made by New
	maxBody   int64
	skew      time.Duration

	reqPrefix string
	reqSeq    atomic.Uint64
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Verifier == nil {
		return nil, &ConfigError{Field: "Verifier", Reason: "no token verifier"}
	}
	if cfg.Directory == nil {
		return nil, &ConfigError{Field: "Directory", Reason: "no tenant directory"}
	}
	if len(cfg.Keys) == 0 {
		return nil, &ConfigError{Field: "Keys", Reason: "no service keys"}
	}
	skew, err := replaySkew(cfg)
	if err != nil {
		return nil, err
	}
	s := &Service{
		verifier:  cfg.Verifier,
		directory: cfg.Directory,
		keys:      make(map[string]protector.Unwrapper, len(cfg.Keys)),
		retired:   make(map[string]bool, len(cfg.Retired)),
		audit:     cfg.Audit,
		now:       cfg.Clock,
		maxBody:   cfg.MaxBodyBytes,
		skew:      skew,
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, id := range cfg.Retired {
		s.retired[id] = true
	}
	pub := make([]protector.ServiceKey, 0, len(cfg.Keys))
	for i, k := range cfg.Keys {
		if k == nil {
			return nil, &ConfigError{Field: "Keys", Reason: fmt.Sprintf("key %d is nil", i)}
		}
		sk := k.Public()
		id := sk.ID()
		if id == "" {
			return nil, &ConfigError{Field: "Keys", Reason: fmt.Sprintf("key %d has no id", i)}
		}
		if _, dup := s.keys[id]; dup {
			return nil, &ConfigError{Field: "Keys", Reason: "duplicate key id " + id}
		}
		if s.retired[id] {
			return nil, &ConfigError{Field: "Retired", Reason: "key " + id + " is both served and retired"}
		}
		s.keys[id] = k
		pub = append(pub, sk)
	}
	ks, err := protector.KeySet{Keys: pub}.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("new pin reset service: marshal key set: %w", err)
	}
	s.keySet = ks
	if s.audit == nil {
		s.audit = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	s.limits = limits{
		user:    cfg.RateLimit.orDefault(DefaultRateLimit()),
		address: cfg.AddressLimit.orDefault(DefaultAddressLimit()),
		tenant:  cfg.TenantLimit.orDefault(DefaultTenantLimit()),
	}
	s.lockout = cfg.Lockout
	if s.lockout == (state.Lockout{}) {
		s.lockout = state.DefaultLockout()
	}
	if s.lockout.Failures <= 0 || s.lockout.Window <= 0 || s.lockout.Base <= 0 || s.lockout.Max < s.lockout.Base {
		return nil, &ConfigError{Field: "Lockout", Reason: "every field must be positive and Max at least Base"}
	}
	s.store = cfg.State
	if s.store == nil {
		s.ownStore = true
		// Tokens carry whole seconds: an epoch inside the current second
		// would refuse a token issued in it.
		s.store = state.NewMemory(state.MemoryOptions{Clock: s.now, Epoch: s.now().Truncate(time.Second)})
	}
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, &ConfigError{Field: "TrustedProxies", Reason: "invalid prefix"}
		}
		s.proxies = append(s.proxies, p.Masked())
	}
	s.clientApp = cfg.ClientAppID
	if s.clientApp == "" {
		s.clientApp = identity.PINResetClientAppID
	}
	s.mfaMaxAge, s.proofAge = cfg.MFAMaxAge, cfg.ProofMaxAge
	if s.mfaMaxAge < 0 {
		return nil, &ConfigError{Field: "MFAMaxAge", Reason: "negative"}
	}
	if s.proofAge < 0 {
		return nil, &ConfigError{Field: "ProofMaxAge", Reason: "negative"}
	}
	if s.mfaMaxAge == 0 {
		s.mfaMaxAge = DefaultMFAMaxAge
	}
	if s.proofAge == 0 {
		s.proofAge = DefaultProofMaxAge
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, &ConfigError{Field: "PublicURL", Reason: "must be an http(s) URL without query or fragment"}
		}
		s.htu = strings.TrimSuffix(u.String(), "/") + PathRecover
	}
	var p [6]byte
	if _, err := io.ReadFull(rand.Reader, p[:]); err != nil {
		return nil, fmt.Errorf("new pin reset service: request id prefix: %w", err)
	}
	s.reqPrefix = hex.EncodeToString(p[:]) + "-"
	return s, nil
}

// replaySkew chooses how long past a token's expiry its jti is remembered:
// never less than the verifier's own skew, or a token the verifier still
// accepts could be replayed once its jti is forgotten.
func replaySkew(cfg Config) (time.Duration, error) {
	var vs time.Duration
	if r, ok := cfg.Verifier.(VerifierSkew); ok {
		vs = r.Skew()
	}
	switch {
	case cfg.ReplaySkew < 0:
		return 0, &ConfigError{Field: "ReplaySkew", Reason: "negative"}
	case cfg.ReplaySkew == 0:
		return max(DefaultSkew, vs), nil
	case cfg.ReplaySkew < vs:
		return 0, &ConfigError{Field: "ReplaySkew", Reason: fmt.Sprintf("%s is less than the verifier's skew %s: a replayed token would be accepted after its jti is forgotten", cfg.ReplaySkew, vs)}
	}
	return cfg.ReplaySkew, nil
}

// Close releases the state store when the service made it (Config.State
// nil); a store the caller passed is the caller's to close.
func (s *Service) Close() error {
	if m, ok := s.store.(*state.Memory); ok && s.ownStore {
		return m.Close()
	}
	return nil
}

// KeySetJSON returns the published key set (a copy): the same bytes GET
// /v1/keys serves.
func (s *Service) KeySetJSON() []byte { return append([]byte(nil), s.keySet...) }
