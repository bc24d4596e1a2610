package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/federation"
)

// Directory is what the sign-in pages and OAuth endpoints need from the
// directory; *idp.IdP satisfies it.
type Directory interface {
	// SignIn checks a password and returns the pending sign-in (MFA next).
	SignIn(ctx context.Context, upn, password string) (*idp.Pending, error)
	// SignInFederated starts the sign-in of a user whom the federation
	// service at federationHost authenticated (the pages verified its
	// assertion); MFA next.
	SignInFederated(ctx context.Context, upn, federationHost string) (*idp.Pending, error)
	LookupUser(upn string) (idp.User, error)
	LookupTenant(tenantID string) (idp.Tenant, error)
	// GrantConsent records an administrator's consent to appID: its
	// service principal in the tenant.
	GrantConsent(tenantID, appID string) error
	// Issuer is the iss of tenantID's tokens; its origin is the server's.
	Issuer(tenantID string) string
	// TokenEndpoint is the URL a device's DPoP proof names (htu).
	TokenEndpoint(tenantID string) string
	JWKS() *jose.JSONWebKeySet
	Now() time.Time
	// DeviceForKey names the device whose key has thumbprint jkt.
	DeviceForKey(tenantID, jkt string) (string, error)
	// OIDCHandler serves the grants the directory had before this package
	// (Hello sign-in: srv_challenge and jwt-bearer).
	OIDCHandler() http.Handler
}

// Lifetimes and limits.
const (
	// CodeLifetime bounds an authorization code's life (RFC 6749 §4.1.2
	// recommends at most ten minutes; Entra's are short-lived).
	CodeLifetime = 60 * time.Second
	// FlowLifetime bounds a sign-in in the browser, page to page.
	FlowLifetime = 10 * time.Minute
	// SessionLifetime bounds the browser session the admin page reads.
	SessionLifetime = time.Hour
	// RefreshLifetime bounds a refresh token's life; the sign-in's own
	// session lifetime (idp.DefaultSessionLifetime) bounds it too.
	RefreshLifetime = 24 * time.Hour
	// DeviceCodeLifetime is Entra's: 15 minutes.
	DeviceCodeLifetime = 15 * time.Minute
	// DefaultDeviceCodeInterval is the polling interval Entra announces.
	DefaultDeviceCodeInterval = 5 * time.Second
	// maxRecords bounds each table (flows, codes, refresh tokens, device
	// codes): a flood of requests fills it, then is refused, never grows
	// memory without end.
	maxRecords = 20000
	maxForm    = 64 << 10
	// maxUserCodeTries: wrong user codes one device-login page survives.
	maxUserCodeTries = 5
)

// Config configures a Server.
type Config struct {
	// Directory is the directory behind the pages; required.
	Directory Directory
	// Apps are the applications it knows; nil means DefaultApps.
	Apps []App
	// DeviceCodeInterval is the polling interval of the device code grant;
	// 0 means DefaultDeviceCodeInterval.
	DeviceCodeInterval time.Duration
	// Federation is the trust in each federated tenant's federation
	// service, by tenant ID: a user of such a tenant's domain signs in at
	// the tenant's FederationSignInURL, and the directory accepts the
	// assertions that trust verifies (package reset/idp/federation).
	Federation map[string]federation.Trust
}

// Server serves the directory's sign-in pages and OAuth 2.0 / OpenID
// Connect endpoints. It is safe for concurrent use.
type Server struct {
	dir      Directory
	origin   string
	apps     []App
	interval time.Duration
	pages    *template.Template
	legacy   http.Handler
	fed      map[string]federation.Trust // by tenant ID

	mu        sync.Mutex
	flows     map[string]*flow       // by flow ID (the cookie)
	sessions  map[string]*session    // by session ID (the cookie)
	codes     map[string]*authCode   // by SHA-256 of the code
	refreshes map[string]*refreshRec // by SHA-256 of the token
	devices   map[string]*deviceAuth // by SHA-256 of the device code
	userCodes map[string]*deviceAuth // by normalised user code
	spCreated map[string]time.Time   // tenant/app → when consent created it
	fedSeen   map[string]time.Time   // federation assertions used: SHA-256 of iss and jti → expiry
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Directory == nil {
		return nil, fmt.Errorf("new web server: %w: no directory", idp.ErrInvalid)
	}
	iss, err := url.Parse(cfg.Directory.Issuer("common"))
	if err != nil || iss.Scheme != "https" || iss.Host == "" {
		return nil, fmt.Errorf("new web server: %w: issuer must be an https URL", idp.ErrInvalid)
	}
	apps := cfg.Apps
	if apps == nil {
		apps = DefaultApps()
	}
	for i := range apps {
		id, err := identity.CanonicalGUID(apps[i].ID)
		if err != nil || apps[i].Name == "" {
			return nil, fmt.Errorf("new web server: %w: app %q", idp.ErrInvalid, apps[i].ID)
		}
		apps[i].ID = id
	}
	interval := cfg.DeviceCodeInterval
	if interval == 0 {
		interval = DefaultDeviceCodeInterval
	}
	if interval < time.Second {
		return nil, fmt.Errorf("new web server: %w: device code interval under a second", idp.ErrInvalid)
	}
	fed := map[string]federation.Trust{}
	for id, tr := range cfg.Federation {
		cid, err := identity.CanonicalGUID(id)
		if err != nil || tr.Issuer == "" || tr.Key == nil {
			return nil, fmt.Errorf("new web server: %w: federation trust for tenant %q", idp.ErrInvalid, id)
		}
		fed[cid] = tr
	}
	return &Server{
		dir: cfg.Directory, fed: fed, fedSeen: map[string]time.Time{}, origin: iss.Scheme + "://" + iss.Host, apps: apps, interval: interval,
		pages: pageTemplates, legacy: cfg.Directory.OIDCHandler(),
		flows: map[string]*flow{}, sessions: map[string]*session{}, codes: map[string]*authCode{},
		refreshes: map[string]*refreshRec{}, devices: map[string]*deviceAuth{}, userCodes: map[string]*deviceAuth{},
		spCreated: map[string]time.Time{},
	}, nil
}

// Origin is the scheme and host every URL of the metadata names.
func (s *Server) Origin() string { return s.origin }

// app returns the app with that ID, or nil.
func (s *Server) app(id string) *App {
	id = strings.ToLower(strings.TrimSpace(id))
	for i := range s.apps {
		if s.apps[i].ID == id {
			return &s.apps[i]
		}
	}
	return nil
}

// resource returns the app a resource name (v1 resource, v2 scope prefix)
// names, or nil.
func (s *Server) resource(name string) *App {
	for i := range s.apps {
		if s.apps[i].matchesResource(name) {
			return &s.apps[i]
		}
	}
	return nil
}

// ServeHTTP routes, in Entra's layout ({t} is a tenant ID, "common" or
// "organizations"):
//
//	GET  /{t}/oauth2/authorize            v1 authorize (resource)
//	GET  /{t}/oauth2/v2.0/authorize       v2 authorize (scope)
//	POST /{t}/oauth2/token, /{t}/oauth2/v2.0/token
//	POST /{t}/oauth2/devicecode, /{t}/oauth2/v2.0/devicecode
//	GET  /{t}/v2.0/.well-known/openid-configuration, /.well-known/openid-configuration
//	GET  /{t}/discovery/v2.0/keys, /{t}/discovery/keys
//	GET, POST /devicelogin                the device code entry page
//	POST /login/{upn,password,mfa,consent,confirm}   the sign-in pages' forms
//	GET  /login/federation                a federation service's answer (wresult)
//	GET  /{t}/enterpriseApplications      the admin page (?search=, &format=json)
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	n := len(parts)
	switch {
	case r.URL.Path == "/.well-known/openid-configuration":
		s.serveMetadata(w, r, "common")
	case n == 4 && parts[1] == "v2.0" && parts[2] == ".well-known" && parts[3] == "openid-configuration":
		s.serveMetadata(w, r, parts[0])
	case n == 4 && parts[1] == "discovery" && parts[2] == "v2.0" && parts[3] == "keys",
		n == 3 && parts[1] == "discovery" && parts[2] == "keys":
		s.serveKeys(w, r, parts[0])
	case n == 3 && parts[1] == "oauth2" && parts[2] == "authorize":
		s.serveAuthorize(w, r, parts[0], false)
	case n == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "authorize":
		s.serveAuthorize(w, r, parts[0], true)
	case n == 3 && parts[1] == "oauth2" && parts[2] == "token":
		s.serveToken(w, r, parts[0], false)
	case n == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "token":
		s.serveToken(w, r, parts[0], true)
	case n == 3 && parts[1] == "oauth2" && parts[2] == "devicecode":
		s.serveDeviceCode(w, r, parts[0], false)
	case n == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "devicecode":
		s.serveDeviceCode(w, r, parts[0], true)
	case r.URL.Path == "/devicelogin":
		s.serveDeviceLogin(w, r)
	case r.URL.Path == federationReturnPath:
		s.serveFederationReturn(w, r)
	case n == 2 && parts[0] == "login":
		s.serveLogin(w, r, parts[1])
	case n == 2 && parts[1] == "enterpriseApplications":
		s.serveEnterpriseApps(w, r, parts[0])
	default:
		s.errorPage(w, r, http.StatusNotFound, 0, "The page you asked for does not exist.")
	}
}

// tenantSeg is a path's tenant: "" for common/organizations (the user's
// own tenant), the canonical ID of a known tenant, or an error.
func (s *Server) tenantSeg(seg string) (string, bool) {
	switch strings.ToLower(seg) {
	case "common", "organizations":
		return "", true
	}
	id, err := identity.CanonicalGUID(seg)
	if err != nil {
		return "", false
	}
	if _, err := s.dir.LookupTenant(id); err != nil {
		return "", false
	}
	return id, true
}

// randomToken returns n random bytes, base64url.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashKey is the table key of a secret handed out: its SHA-256, so a
// dump of the tables yields nothing usable.
func hashKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return string(h[:])
}

func equalSecret(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// Cookies.
const (
	flowCookie    = "hellosim_flow"
	sessionCookie = "hellosim_session"
)

// setCookie sets an HttpOnly, SameSite=Lax cookie, Secure under TLS.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > 128 {
		return ""
	}
	return c.Value
}

// errTableFull: a table is at maxRecords even after sweeping.
var errTableFull = errors.New("web: too many requests in progress")

// sweepLocked drops expired records when a table is full; s.mu is held.
func (s *Server) sweepLocked(now time.Time) {
	maps.DeleteFunc(s.flows, func(_ string, f *flow) bool { return now.After(f.expires) })
	maps.DeleteFunc(s.sessions, func(_ string, se *session) bool { return now.After(se.expires) })
	maps.DeleteFunc(s.codes, func(_ string, c *authCode) bool { return now.After(c.expires) })
	maps.DeleteFunc(s.refreshes, func(_ string, rt *refreshRec) bool { return now.After(rt.expires) })
	maps.DeleteFunc(s.fedSeen, func(_ string, exp time.Time) bool { return now.After(exp.Add(time.Minute)) })
	for k, d := range s.devices {
		if now.After(d.expires) {
			delete(s.devices, k)
			delete(s.userCodes, d.userCode)
		}
	}
}

// roomLocked makes room in a table whose size is size(): expired records
// go when it is full; errTableFull if it stays full.
func (s *Server) roomLocked(size func() int, now time.Time) error {
	if size() < maxRecords {
		return nil
	}
	s.sweepLocked(now)
	if size() >= maxRecords {
		return errTableFull
	}
	return nil
}
