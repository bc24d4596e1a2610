package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/hellosim/hellosim/internal/httpclient"
)

// Defaults.
const (
	// DefaultMinRefetch is the least time between two fetches of the keys:
	// the bound on what tokens with unknown key IDs can make the service do.
	DefaultMinRefetch = 10 * time.Second
	// DefaultTimeout bounds one fetch when no *http.Client is given.
	DefaultTimeout = 5 * time.Second
	// DiscoveryPath is appended to the issuer to find its metadata (OpenID
	// Connect Discovery 1.0 §4).
	DiscoveryPath    = "/.well-known/openid-configuration"
	maxDocumentBytes = 256 << 10
)

// Errors.
var (
	// ErrKeysUnavailable: no cached key can verify the token and the
	// directory's keys cannot be fetched now. The service answers 503.
	ErrKeysUnavailable = errors.New("directory signing keys unavailable")
	// ErrIssuerMismatch: the discovery document names another issuer than
	// the one configured (OpenID Connect Discovery 1.0 §4.3): its keys
	// are not used.
	ErrIssuerMismatch = errors.New("discovery document names another issuer")
)

// Config configures Keys.
type Config struct {
	// Issuer is the directory's issuer: a tenant's
	// ("https://login.example/{tenant-id}/v2.0") for a single-tenant
	// service, or the common endpoint ("https://login.example/common/v2.0",
	// also "organizations"), whose metadata names the issuer
	// "https://login.example/{tenantid}/v2.0", for any tenant. https, or
	// http to a loopback host.
	Issuer string
	// HTTPClient fetches the metadata and keys; nil means one with
	// DefaultTimeout. Redirects are never followed.
	HTTPClient *http.Client
	// MinRefetch is the least time between two fetches; 0 means
	// DefaultMinRefetch.
	MinRefetch time.Duration
	// Clock; nil means time.Now.
	Clock func() time.Time
}

// Keys is a directory's signing keys, found by discovery and cached. It is
// safe for concurrent use.
type Keys struct {
	issuer     string // as configured
	template   string // the iss of tokens, "{tid}" for the tenant
	discovery  string
	hc         *http.Client
	minRefetch time.Duration
	now        func() time.Time

	set     atomic.Pointer[jose.JSONWebKeySet]
	fetches atomic.Int64

	mu      sync.Mutex // held during a fetch: one at a time
	jwksURL string
	lastTry time.Time
	lastErr error
	tried   bool
}

// NewKeys returns Keys for cfg. It fetches nothing yet: Refresh, or the
// first token, does.
func NewKeys(cfg Config) (*Keys, error) {
	u, err := checkURL(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	k := &Keys{issuer: strings.TrimSuffix(u.String(), "/"), hc: cfg.HTTPClient, minRefetch: cfg.MinRefetch, now: cfg.Clock}
	k.discovery = k.issuer + DiscoveryPath
	k.template = k.issuer
	segs := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(segs) > 0 && (segs[0] == "common" || segs[0] == "organizations") {
		segs[0] = "{tid}"
		k.template = u.Scheme + "://" + u.Host + "/" + strings.Join(segs, "/")
		k.template = strings.TrimSuffix(k.template, "/")
	}
	k.hc = httpclient.New(k.hc, DefaultTimeout)
	if k.minRefetch <= 0 {
		k.minRefetch = DefaultMinRefetch
	}
	if k.now == nil {
		k.now = time.Now
	}
	return k, nil
}

// checkURL applies the module's loopback rule (internal/httpclient).
func checkURL(raw string) (*url.URL, error) {
	u, ref := httpclient.ParseBaseURL(raw)
	if ref != nil {
		return nil, errors.New(ref.Reason)
	}
	return u, nil
}

// IssuerTemplate is the iss of the tokens accepted, with "{tid}" for the
// tenant ID.
func (k *Keys) IssuerTemplate() string { return k.template }

// JWKS returns the cached key set (nil before the first fetch).
func (k *Keys) JWKS() *jose.JSONWebKeySet { return k.set.Load() }

// Fetches counts the key-set fetches made, successful or not.
func (k *Keys) Fetches() int64 { return k.fetches.Load() }

func (k *Keys) has(kid string) bool {
	set := k.set.Load()
	return set != nil && len(set.Key(kid)) > 0
}

// Ensure makes kid's key available if it can: it returns nil at once when
// kid is cached, and otherwise fetches the keys, unless a fetch was tried
// less than MinRefetch ago. It returns an error matching
// ErrKeysUnavailable only when kid is not cached and the last fetch
// failed; a kid the directory does not publish returns nil (the verifier
// then refuses the token).
func (k *Keys) Ensure(ctx context.Context, kid string) error {
	if kid == "" || k.has(kid) {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.has(kid) {
		return nil
	}
	if k.tried && k.now().Sub(k.lastTry) < k.minRefetch {
		return k.unavailable()
	}
	k.refreshLocked(ctx)
	if k.has(kid) {
		return nil
	}
	return k.unavailable()
}

func (k *Keys) unavailable() error {
	if k.lastErr == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrKeysUnavailable, k.lastErr)
}

// Refresh fetches the keys now (subject to MinRefetch) and reports whether
// the last fetch succeeded: the readiness of a service that depends on
// them.
func (k *Keys) Refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.tried || k.now().Sub(k.lastTry) >= k.minRefetch {
		k.refreshLocked(ctx)
	}
	if k.lastErr != nil {
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, k.lastErr)
	}
	return nil
}

// refreshLocked fetches the metadata (when the key set's URL is not known
// yet, or the last fetch failed) and the key set.
func (k *Keys) refreshLocked(ctx context.Context) {
	k.tried, k.lastTry = true, k.now()
	k.fetches.Add(1)
	// The caller's request may be cancelled; the fetch serves everyone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultTimeout)
	defer cancel()
	if k.jwksURL == "" || k.lastErr != nil {
		u, err := k.discover(ctx)
		if err != nil {
			k.lastErr = err
			return
		}
		k.jwksURL = u
	}
	var set jose.JSONWebKeySet
	if err := k.getJSON(ctx, k.jwksURL, &set); err != nil {
		k.lastErr = fmt.Errorf("fetch keys: %w", err)
		return
	}
	k.set.Store(&set)
	k.lastErr = nil
}

// discover reads the issuer's metadata and returns its jwks_uri.
func (k *Keys) discover(ctx context.Context) (string, error) {
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := k.getJSON(ctx, k.discovery, &doc); err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	want := strings.ReplaceAll(k.template, "{tid}", "{tenantid}")
	if doc.Issuer != k.issuer && doc.Issuer != want {
		return "", fmt.Errorf("%w: %q, not %q", ErrIssuerMismatch, doc.Issuer, k.issuer)
	}
	if _, err := checkURL(doc.JWKSURI); err != nil {
		return "", fmt.Errorf("discovery: jwks_uri %w", err)
	}
	return doc.JWKSURI, nil
}

func (k *Keys) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("directory unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("directory answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if len(body) > maxDocumentBytes {
		return errors.New("answer too large")
	}
	if err := json.Unmarshal(body, out); err != nil {
		return errors.New("answer does not decode")
	}
	return nil
}
