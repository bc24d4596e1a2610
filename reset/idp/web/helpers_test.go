package web_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hellosim/hellosim/internal/devcert"
	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/federation"
	"github.com/hellosim/hellosim/reset/idp/web"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/reset/service/state"
)

// shiftClock is real time plus an offset tests move: clients that wait in
// real time (x/oauth2's device polling) see time pass, and a test can
// still jump a TOTP step.
type shiftClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *shiftClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *shiftClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

type clock interface {
	Now() time.Time
	Advance(time.Duration)
}

const (
	adminUPN = "admin@contoso.test"
	userUPN  = "alice@contoso.test"
	password = "correct horse battery"
	deviceID = "5d2c9f3e-8b1a-4c7d-9e6f-0a1b2c3d4e5f"
	// loopback is the redirect URI of a native app: RFC 8252's loopback
	// form, any port.
	loopback = "http://127.0.0.1:53123/callback"
)

// world is a directory served over TLS on loopback, with a tenant (not
// onboarded), a Global Administrator, a user, and the user's device.
type world struct {
	t      testing.TB
	clock  clock
	start  time.Time // the clock when the world was made, whole seconds
	dir    *idp.IdP
	srv    *web.Server
	base   string // https://127.0.0.1:port
	cert   *devcert.Cert
	tenant idp.Tenant
	admin  idp.User
	user   idp.User
	devKey *ecdsa.PrivateKey
	client *http.Client        // trusts the server
	fed    map[string]*fedSide // withFederation: the federated tenants, by domain
}

type worldOpt func(*worldConfig)

type worldConfig struct {
	clock    clock
	lockout  int
	interval time.Duration
	fed      []string // federated tenants' domains
}

func withClock(c clock) worldOpt            { return func(w *worldConfig) { w.clock = c } }
func withLockout(n int) worldOpt            { return func(w *worldConfig) { w.lockout = n } }
func withInterval(d time.Duration) worldOpt { return func(w *worldConfig) { w.interval = d } }

// withFederation adds a federated tenant for each domain, whose federation
// service is served on the same port under the host adfs.DOMAIN; the
// directory trusts each.
func withFederation(domains ...string) worldOpt {
	return func(w *worldConfig) { w.fed = append(w.fed, domains...) }
}

func newWorld(t testing.TB, opts ...worldOpt) *world {
	t.Helper()
	cfg := worldConfig{clock: &shiftClock{}, interval: time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	start := cfg.clock.Now().Truncate(time.Second) // tokens carry whole seconds
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + ln.Addr().String()
	idpOpts := []idp.Option{idp.WithArgon2(resettest.CheapArgon2()), idp.WithClock(cfg.clock.Now), idp.WithIssuer(base + "/{tid}/v2.0")}
	if cfg.lockout > 0 {
		idpOpts = append(idpOpts, idp.WithLockout(cfg.lockout, time.Minute))
	}
	dir, err := idp.New(idpOpts...)
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := dir.AddTenant(idp.TenantConfig{Domain: "contoso.test"})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := dir.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: adminUPN, Password: password, GlobalAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	user, err := dir.AddUser(idp.UserConfig{TenantID: tenant.ID, UPN: userUPN, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	devKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.AddDeviceKey(tenant.ID, user.ObjectID, deviceID, &devKey.PublicKey); err != nil {
		t.Fatal(err)
	}
	fed, trusts := map[string]*fedSide{}, map[string]federation.Trust{}
	names := devcert.Names
	for _, domain := range cfg.fed {
		fs := newFedSide(t, dir, base, domain, cfg.clock.Now)
		fed[domain], trusts[fs.tenant.ID] = fs, fs.srv.Trust()
		names = append(names, fs.host)
	}
	srv, err := web.New(web.Config{Directory: dir, DeviceCodeInterval: cfg.interval, Federation: trusts})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := devcert.New(names)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", srv)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "cred.microsoft.com") {
			srv.RedirectStandIn().ServeHTTP(w, r)
			return
		}
		for _, fs := range fed {
			if strings.HasPrefix(r.Host, fs.host) {
				fs.srv.ServeHTTP(w, r)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
	ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second},
		TLS: &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	// Every host name the client asks for is this server, as the browser
	// tests map them.
	var d net.Dialer
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, ln.Addr().String())
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool}, MaxIdleConnsPerHost: 64, DialContext: dial},
		Timeout: 30 * time.Second}
	return &world{t: t, clock: cfg.clock, start: start, dir: dir, srv: srv, base: base, cert: cert, tenant: tenant,
		admin: admin, user: user, devKey: devKey, client: client, fed: fed}
}

// fedSide is a federated tenant, a user of it, and its federation service.
type fedSide struct {
	host   string // adfs.DOMAIN
	tenant idp.Tenant
	user   idp.User
	key    *ecdsa.PrivateKey // the service's token-signing key
	srv    *federation.Server
}

func newFedSide(t testing.TB, dir *idp.IdP, base, domain string, now func() time.Time) *fedSide {
	t.Helper()
	fs := &fedSide{host: "adfs." + domain}
	var err error
	if fs.tenant, err = dir.AddTenant(idp.TenantConfig{Domain: domain, FederationSignInURL: "https://" + fs.host + federation.SignInPath}); err != nil {
		t.Fatal(err)
	}
	if fs.user, err = dir.AddUser(idp.UserConfig{TenantID: fs.tenant.ID, UPN: "bob@" + domain, Password: password}); err != nil {
		t.Fatal(err)
	}
	if fs.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	// The service checks passwords against the directory's accounts, as
	// AD FS checks them against an Active Directory synchronised with it.
	fs.srv, err = federation.New(federation.Config{
		Issuer: "https://" + fs.host + "/adfs/services/trust", Key: fs.key, Now: now,
		Authenticate: func(ctx context.Context, upn, pw string) error {
			_, err := dir.SignIn(ctx, upn, pw)
			return err
		},
		RelyingParties: []federation.RelyingParty{{Realm: base, ReplyURLs: []string{base + "/login/federation"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func (w *world) tenantURL(path string) string { return w.base + "/" + w.tenant.ID + path }

// totp is the user's current code, after moving the clock a step on so
// that no code is ever reused by accident.
func (w *world) totp(upn string) string {
	w.t.Helper()
	w.clock.Advance(idp.TOTPPeriod)
	c, err := w.dir.TOTPCode(upn)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// agent is a browser without a browser: cookies, forms, no redirects
// followed, for the tests that drive the pages from Go.
type agent struct {
	w    *world
	c    *http.Client
	last string // body of the last page
}

func (w *world) agent() *agent {
	jar, _ := cookiejar.New(nil)
	c := *w.client
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &agent{w: w, c: &c}
}

func (a *agent) do(req *http.Request) *http.Response {
	a.w.t.Helper()
	resp, err := a.c.Do(req)
	if err != nil {
		a.w.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	a.last = string(b)
	return resp
}

func (a *agent) get(u string) *http.Response {
	a.w.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		a.w.t.Fatal(err)
	}
	return a.do(req)
}

// post sends a form; csrf "" sends the page's own token, "-" none.
func (a *agent) post(path string, form url.Values, csrf string) *http.Response {
	a.w.t.Helper()
	if csrf == "" {
		csrf = csrfOf(a.last)
	}
	if csrf != "-" {
		form.Set("csrf", csrf)
	}
	req, err := http.NewRequest(http.MethodPost, a.w.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		a.w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(page string) string {
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		return ""
	}
	return m[1]
}

// signIn fills the user name, password and code pages after a page that
// shows the user name form.
func (a *agent) signIn(upn string) *http.Response {
	a.w.t.Helper()
	a.post("/login/upn", url.Values{"upn": {upn}}, "")
	if !strings.Contains(a.last, `name="password"`) {
		a.w.t.Fatalf("no password page: %s", a.last)
	}
	a.post("/login/password", url.Values{"password": {password}}, "")
	if !strings.Contains(a.last, `name="code"`) {
		a.w.t.Fatalf("no code page: %s", a.last)
	}
	return a.post("/login/mfa", url.Values{"code": {a.w.totp(upn)}}, "")
}

// authorize opens an authorization URL and signs in; it returns the
// redirect the server answers with (consent accepted when asked).
func (a *agent) authorize(authURL, upn string) *url.URL {
	a.w.t.Helper()
	if resp := a.get(authURL); resp.StatusCode != http.StatusOK {
		a.w.t.Fatalf("authorize: %d %s", resp.StatusCode, a.last)
	}
	resp := a.signIn(upn)
	if resp.StatusCode == http.StatusOK && strings.Contains(a.last, `action="/login/consent"`) {
		resp = a.post("/login/consent", url.Values{"action": {"accept"}}, "")
	}
	return a.redirectTo(resp, http.StatusFound, "authorize")
}

// redirectTo is where a redirect answer (status want) sends the browser.
func (a *agent) redirectTo(resp *http.Response, want int, what string) *url.URL {
	a.w.t.Helper()
	if resp.StatusCode != want {
		a.w.t.Fatalf("%s: want a redirect (%d), got %d: %s", what, want, resp.StatusCode, a.last)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		a.w.t.Fatal(err)
	}
	return u
}

// dpopTransport adds a fresh DPoP proof by the device key to every POST to
// the tenant's token endpoint: what a device does (RFC 9449 §5).
type dpopTransport struct {
	base http.RoundTripper
	key  crypto.Signer
	now  func() time.Time
}

func (d *dpopTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		var jti [16]byte
		_, _ = rand.Read(jti[:])
		htu := r.URL.Scheme + "://" + r.URL.Host + r.URL.Path
		p, err := dpop.Sign(d.key, dpop.Claims{HTM: "POST", HTU: htu, IAT: d.now().Unix(), JTI: base64.RawURLEncoding.EncodeToString(jti[:])})
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		r.Header.Set("DPoP", p)
	}
	return d.base.RoundTrip(r)
}

// deviceClient is an HTTP client that trusts the server and proves the
// device key at the token endpoint.
func (w *world) deviceClient() *http.Client {
	return &http.Client{Transport: &dpopTransport{base: w.client.Transport, key: w.devKey, now: w.clock.Now}, Timeout: 30 * time.Second}
}

// serviceAccepts runs a non-destructive reset's recover against the PIN
// reset service with token: the service verifies it (issuer, keys,
// audience, client, MFA, device binding) and releases the protector.
func (w *world) serviceAccepts(token string) {
	w.t.Helper()
	ctx := context.Background()
	verifier, err := service.VerifierFor(w.dir)
	if err != nil {
		w.t.Fatal(err)
	}
	key, err := protector.GenerateServiceKey(protector.HPKEX25519)
	if err != nil {
		w.t.Fatal(err)
	}
	// The service's records begin when the world does: a service made now,
	// after the token was issued, would refuse it as issued before its
	// records begin (a restarted service does, by design) whenever a second
	// has turned since the token was signed.
	records := state.NewMemory(state.MemoryOptions{Clock: w.clock.Now, Epoch: w.start})
	svc, err := service.New(service.Config{Verifier: verifier, Directory: w.dir, Keys: []protector.Unwrapper{key}, Clock: w.clock.Now, State: records})
	if err != nil {
		w.t.Fatal(err)
	}
	client := service.NewInProcess(svc).WithDevice(w.devKey).WithClock(w.clock.Now)
	pub, err := client.ServiceKey(ctx)
	if err != nil {
		w.t.Fatal(err)
	}
	r, err := protector.NewKey(nil)
	if err != nil {
		w.t.Fatal(err)
	}
	defer r.Destroy()
	env, err := pub.Wrap(r, protector.Binding{TenantID: w.tenant.ID, UserID: w.user.ObjectID,
		ContainerID: "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}", DeviceID: deviceID}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	got, err := client.Recover(ctx, token, env)
	if err != nil {
		w.t.Fatalf("the PIN reset service refused the token: %v", err)
	}
	defer got.Destroy()
	if !got.Equal(r) {
		w.t.Fatal("recovered another protector")
	}
}

func (w *world) onboard() {
	w.t.Helper()
	if err := w.dir.Onboard(w.tenant.ID); err != nil {
		w.t.Fatal(err)
	}
}

var _ = identity.PINResetClientAppID
