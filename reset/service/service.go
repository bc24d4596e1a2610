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
	"github.com/hellosim/hellosim/reset/identity"
)

// Directory is what the service asks the directory about, at request
// time: today the tenant (is it onboarded, which cloud is it in). It is the
// one place the service learns about the parties to a recovery, so a lookup
// of the user's current standing (disabled, deleted, sessions revoked)
// belongs here too. The simulated directory (*idp.IdP) implements it; the
// code that builds a world (resettest, the examples) connects the two.
type Directory interface {
	// Tenant returns the tenant with that ID. A tenant the directory does
	// not hold is an error matching identity.ErrUnknownTenant; the service
	// treats it as not onboarded.
	Tenant(ctx context.Context, tenantID string) (identity.Tenant, error)
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
	// Directory answers onboarding and cloud questions (required).
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
	guard     *guard
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
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
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

// KeySetJSON returns the published key set (a copy): the same bytes GET
// /v1/keys serves.
func (s *Service) KeySetJSON() []byte { return append([]byte(nil), s.keySet...) }
