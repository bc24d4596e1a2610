package lookup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hellosim/hellosim/internal/httpclient"
	"github.com/hellosim/hellosim/reset/identity"
)

// Client defaults.
const (
	// DefaultTTL is how long a Client keeps an answer. The PIN reset
	// service asks three questions per recovery; a short cache keeps the
	// directory out of the hot path while a user disabled at the
	// directory is refused within seconds (Entra's continuous access
	// evaluation promises minutes for critical events).
	DefaultTTL = 5 * time.Second
	// DefaultTimeout bounds one lookup when no *http.Client is given.
	DefaultTimeout = 5 * time.Second
	// appTokenLifetime is how long the tokens a Client signs live; it signs
	// a new one when less than a quarter is left.
	appTokenLifetime = 5 * time.Minute
	maxResponseBytes = 64 << 10
	maxCacheEntries  = 100000
)

// ClientConfig configures a Client.
type ClientConfig struct {
	// BaseURL is the directory's origin ("https://directory.example"):
	// https, or http to a loopback host. It is also the audience of the
	// app tokens.
	BaseURL string
	// HTTPClient; nil means one with DefaultTimeout. Redirects are never
	// followed.
	HTTPClient *http.Client
	// ClientID is the caller's application ID (for the PIN reset service,
	// identity.PINResetServiceAppID).
	ClientID string
	// Key is the application credential the app tokens are signed with
	// (P-256).
	Key *ecdsa.PrivateKey
	// TTL is how long an answer is kept; 0 means DefaultTTL, negative
	// means never.
	TTL time.Duration
	// Clock; nil means time.Now.
	Clock func() time.Time
}

// Client asks a directory's lookup API. It implements the PIN reset
// service's Directory interface (service.Directory) by shape, and is safe
// for concurrent use.
type Client struct {
	base     string
	hc       *http.Client
	clientID string
	key      *ecdsa.PrivateKey
	ttl      time.Duration
	now      func() time.Time

	mu       sync.Mutex
	cache    map[string]cached
	token    string
	tokenExp time.Time
}

type cached struct {
	v   any
	exp time.Time
}

// NewClient returns a Client for cfg.
func NewClient(cfg ClientConfig) (*Client, error) {
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.ClientID == "" || cfg.Key == nil || cfg.Key.Curve != elliptic.P256() {
		return nil, errors.New("lookup client: a client ID and a P-256 app credential are required")
	}
	c := &Client{base: base, hc: cfg.HTTPClient, clientID: cfg.ClientID, key: cfg.Key, ttl: cfg.TTL, now: cfg.Clock,
		cache: make(map[string]cached)}
	c.hc = httpclient.New(c.hc, DefaultTimeout)
	if c.ttl == 0 {
		c.ttl = DefaultTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// checkBaseURL applies the module's loopback rule (internal/httpclient)
// and wants an origin: no path.
func checkBaseURL(raw string) (string, error) {
	u, ref := httpclient.ParseBaseURL(raw)
	if ref != nil {
		return "", errors.New("lookup client: base url: " + ref.Reason)
	}
	if strings.Trim(u.Path, "/") != "" {
		return "", errors.New("lookup client: base url must be an origin, https://host[:port]")
	}
	return u.Scheme + "://" + u.Host, nil
}

// Tenant returns the tenant; an unknown one is identity.ErrUnknownTenant.
func (c *Client) Tenant(ctx context.Context, tenantID string) (identity.Tenant, error) {
	tid, err := identity.CanonicalGUID(tenantID)
	if err != nil {
		return identity.Tenant{}, fmt.Errorf("lookup tenant: %w", identity.ErrUnknownTenant)
	}
	t, err := lookup(ctx, c, PathPrefix+tid, func(doc *tenantDoc, found bool) (identity.Tenant, error) {
		if !found {
			return identity.Tenant{}, nil
		}
		if doc.ID != tid {
			return identity.Tenant{}, mismatch()
		}
		return identity.Tenant{ID: doc.ID, Cloud: doc.Cloud, ConsentedApps: doc.ConsentedApps, FederationSignInURL: doc.FederationSignInURL}, nil
	})
	if err == nil && t.ID == "" {
		err = fmt.Errorf("lookup tenant %s: %w", tid, identity.ErrUnknownTenant)
	}
	return t, err
}

// Account returns the user's standing now; a user the directory does not
// hold stands identity.StandingDeleted.
func (c *Client) Account(ctx context.Context, tenantID, objectID string) (identity.Account, error) {
	tid, err1 := identity.CanonicalGUID(tenantID)
	oid, err2 := identity.CanonicalGUID(objectID)
	if err1 != nil || err2 != nil {
		return identity.Account{TenantID: tenantID, ObjectID: objectID, Standing: identity.StandingDeleted}, nil
	}
	return lookup(ctx, c, PathPrefix+tid+"/users/"+oid, func(doc *accountDoc, found bool) (identity.Account, error) {
		a := identity.Account{TenantID: tid, ObjectID: oid, Standing: identity.StandingDeleted}
		if !found {
			return a, nil
		}
		st, err := parseStanding(doc.Standing)
		if err != nil || doc.TenantID != tid || doc.ID != oid {
			return identity.Account{}, mismatch()
		}
		a.Standing = st
		if doc.SessionsValidFrom != nil {
			a.SessionsRevokedAt = doc.SessionsValidFrom.UTC()
		}
		return a, nil
	})
}

// Device returns the device's standing now; a device the directory does
// not hold stands identity.StandingDeleted.
func (c *Client) Device(ctx context.Context, tenantID, deviceID string) (identity.Device, error) {
	tid, err1 := identity.CanonicalGUID(tenantID)
	did, err2 := identity.CanonicalGUID(deviceID)
	if err1 != nil || err2 != nil {
		return identity.Device{TenantID: tenantID, DeviceID: deviceID, Standing: identity.StandingDeleted}, nil
	}
	return lookup(ctx, c, PathPrefix+tid+"/devices/"+did, func(doc *deviceDoc, found bool) (identity.Device, error) {
		d := identity.Device{TenantID: tid, DeviceID: did, Standing: identity.StandingDeleted}
		if !found {
			return d, nil
		}
		st, err := parseStanding(doc.Standing)
		if err != nil || doc.TenantID != tid || doc.DeviceID != did {
			return identity.Device{}, mismatch()
		}
		d.Standing, d.KeyThumbprint = st, doc.KeyThumbprint
		return d, nil
	})
}

func mismatch() error {
	return &LookupError{Status: http.StatusOK, Reason: "answer does not match the question"}
}

// Ping asks whether the lookup API answers and accepts the app token: the
// readiness check of a service that depends on it. It bypasses the cache.
func (c *Client) Ping(ctx context.Context) error {
	var doc tenantDoc
	_, err := c.fetch(ctx, PathPrefix+"00000000-0000-0000-0000-000000000000", &doc)
	return err
}

// lookup answers path from the cache or, on a miss, from the directory
// through build (found is false for a 404). Answers are cached, errors
// are not.
func lookup[D, T any](ctx context.Context, c *Client, path string, build func(doc *D, found bool) (T, error)) (T, error) {
	now := c.now()
	if c.ttl > 0 {
		c.mu.Lock()
		e, ok := c.cache[path]
		c.mu.Unlock()
		if ok && now.Before(e.exp) {
			return e.v.(T), nil
		}
	}
	var doc D
	raw, err := c.fetch(ctx, path, &doc)
	if err != nil {
		var zero T
		return zero, err
	}
	v, err := build(&doc, raw != nil)
	if err != nil {
		return v, err
	}
	if c.ttl > 0 {
		c.mu.Lock()
		if len(c.cache) >= maxCacheEntries {
			clear(c.cache)
		}
		c.cache[path] = cached{v: v, exp: now.Add(c.ttl)}
		c.mu.Unlock()
	}
	return v, nil
}

// fetch asks the directory; a 404 returns nil bytes and no error.
func (c *Client) fetch(ctx context.Context, path string, out any) ([]byte, error) {
	tok, err := c.appToken()
	if err != nil {
		return nil, &LookupError{Reason: "sign app token: " + err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, &LookupError{Reason: "build request"}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, &LookupError{Reason: "directory unreachable: " + transportReason(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	switch {
	case err != nil:
		return nil, &LookupError{Status: resp.StatusCode, Reason: "answer cut short"}
	case len(body) > maxResponseBytes:
		return nil, &LookupError{Status: resp.StatusCode, Reason: "answer too large"}
	case resp.StatusCode == http.StatusNotFound:
		return nil, nil
	case resp.StatusCode != http.StatusOK:
		var e errorDoc
		reason := http.StatusText(resp.StatusCode)
		if json.Unmarshal(body, &e) == nil && e.Error.Code != "" {
			reason = e.Error.Code
		}
		return nil, &LookupError{Status: resp.StatusCode, Reason: reason}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return nil, &LookupError{Status: resp.StatusCode, Reason: "answer does not decode"}
	}
	return body, nil
}

// appToken returns the current app token, signing a new one when less
// than a quarter of its life is left.
func (c *Client) appToken() (string, error) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && now.Before(c.tokenExp.Add(-appTokenLifetime/4)) {
		return c.token, nil
	}
	tok, err := signAppToken(c.key, c.clientID, c.base, now, appTokenLifetime)
	if err != nil {
		return "", err
	}
	c.token, c.tokenExp = tok, now.Add(appTokenLifetime)
	return tok, nil
}

// transportReason names a transport failure without the URL.
func transportReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}
