package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hellosim/hellosim/protector"
)

// Application IDs from the WHfB documentation ("Enable the Microsoft PIN
// Reset Service in your Azure AD tenant"): the two applications a tenant
// must consent to before PIN recovery works. Access tokens for the service
// carry ServiceAppID as their audience.
const (
	ServiceAppID = "b8456c59-1230-44c7-a4a2-99b085333e84" // Microsoft PIN Reset Service Production
	ClientAppID  = "9115dd05-fad5-4f9c-acc7-305d08b1b04e" // Microsoft PIN Reset Client Production
)

// Cloud is the national cloud a tenant lives in.
type Cloud int

// The clouds.
const (
	CloudPublic          Cloud = iota // Azure AD, worldwide
	CloudAzureGovernment              // Azure Government: the PIN reset service is "not currently available" there
)

// String names the cloud.
func (c Cloud) String() string {
	switch c {
	case CloudPublic:
		return "AzurePublic"
	case CloudAzureGovernment:
		return "AzureGovernment"
	}
	return fmt.Sprintf("Cloud(%d)", int(c))
}

// TenantInfo is what the service needs to know about a tenant.
type TenantInfo struct {
	// Onboarded: the tenant consented to both ServiceAppID and ClientAppID.
	Onboarded bool
	Cloud     Cloud
}

// ErrUnknownTenant is returned by a Tenants implementation for a tenant it
// does not know. The service treats such a tenant as not onboarded.
var ErrUnknownTenant = errors.New("unknown tenant")

// Tenants looks tenants up in the directory.
type Tenants interface {
	Tenant(ctx context.Context, tenantID string) (TenantInfo, error)
}

// Defaults for Config.
const (
	DefaultMaxBodyBytes = 16 << 10
	// DefaultMaxReplayEntries bounds the replay cache; when it is full of
	// unexpired jtis the service answers 503 rather than forget one.
	DefaultMaxReplayEntries = 1 << 20
)

// Config configures a Service.
type Config struct {
	// Verifier checks access tokens (required); JWTVerifier is the usual one.
	Verifier TokenVerifier
	// Tenants answers onboarding and cloud questions (required).
	Tenants Tenants
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
	// Clock; nil means time.Now. Used by the rate limiter and replay cache;
	// the verifier has its own.
	Clock func() time.Time
	// RateLimit per user (tenant ID + object ID); zero means DefaultRateLimit.
	RateLimit RateLimit
	// MaxBodyBytes bounds a request body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxReplayEntries bounds the replay cache; 0 means DefaultMaxReplayEntries.
	MaxReplayEntries int
	// ReplaySkew is added to a token's expiry to decide how long its jti is
	// remembered; 0 means DefaultSkew. It must be at least the verifier's skew.
	ReplaySkew time.Duration
}

// Service is the reference PIN reset service: an http.Handler serving
// GET /v1/keys and POST /v1/recover. It is safe for concurrent use.
type Service struct {
	verifier TokenVerifier
	tenants  Tenants
	keys     map[string]protector.Unwrapper
	retired  map[string]bool
	keySet   []byte // the published key set, marshalled once
	audit    *slog.Logger
	now      func() time.Time
	guard    *guard
	maxBody  int64
	skew     time.Duration

	reqPrefix string
	reqSeq    atomic.Uint64
}

// New returns a Service for cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("new pin reset service: no token verifier")
	}
	if cfg.Tenants == nil {
		return nil, errors.New("new pin reset service: no tenant directory")
	}
	if len(cfg.Keys) == 0 {
		return nil, errors.New("new pin reset service: no service keys")
	}
	s := &Service{
		verifier: cfg.Verifier,
		tenants:  cfg.Tenants,
		keys:     make(map[string]protector.Unwrapper, len(cfg.Keys)),
		retired:  make(map[string]bool, len(cfg.Retired)),
		audit:    cfg.Audit,
		now:      cfg.Clock,
		maxBody:  cfg.MaxBodyBytes,
		skew:     cfg.ReplaySkew,
	}
	for _, id := range cfg.Retired {
		s.retired[id] = true
	}
	pub := make([]protector.ServiceKey, 0, len(cfg.Keys))
	for i, k := range cfg.Keys {
		if k == nil {
			return nil, fmt.Errorf("new pin reset service: key %d is nil", i)
		}
		sk := k.Public()
		id := sk.ID()
		if id == "" {
			return nil, fmt.Errorf("new pin reset service: key %d has no id", i)
		}
		if _, dup := s.keys[id]; dup {
			return nil, fmt.Errorf("new pin reset service: duplicate key id %s", id)
		}
		if s.retired[id] {
			return nil, fmt.Errorf("new pin reset service: key %s is both served and retired", id)
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
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.skew <= 0 {
		s.skew = DefaultSkew
	}
	rl := cfg.RateLimit
	if !rl.Unlimited {
		if rl.Requests <= 0 {
			rl.Requests = DefaultRateLimit().Requests
		}
		if rl.Per <= 0 {
			rl.Per = DefaultRateLimit().Per
		}
	}
	maxSeen := cfg.MaxReplayEntries
	if maxSeen <= 0 {
		maxSeen = DefaultMaxReplayEntries
	}
	s.guard = newGuard(rl, maxSeen)
	var p [6]byte
	if _, err := io.ReadFull(rand.Reader, p[:]); err != nil {
		return nil, fmt.Errorf("new pin reset service: request id prefix: %w", err)
	}
	s.reqPrefix = hex.EncodeToString(p[:]) + "-"
	return s, nil
}

// KeySetJSON returns the published key set (a copy): the same bytes GET
// /v1/keys serves.
func (s *Service) KeySetJSON() []byte { return append([]byte(nil), s.keySet...) }
