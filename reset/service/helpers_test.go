package service_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/clocktest"
	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/internal/syncbuf"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/reset/service"
)

// auditLog is a concurrency-safe audit sink.
type auditLog struct{ syncbuf.Buffer }

// records parses the JSON audit log.
func (s *auditLog) records(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "audit line %q", line)
		out = append(out, m)
	}
	return out
}

// person is a user with a completed sign-in bound to their device, able to
// mint fresh device-bound tokens.
type person struct {
	user     idp.User
	password string
	session  *idp.Pending
	deviceID string
	device   *ecdsa.PrivateKey // the device key (a software key here; resettest uses the TPM's)
	jkt      string
}

// minter signs arbitrary tokens with a key the service's verifier trusts:
// the way to test claim checks (audience, issuer, ...) in isolation, with a
// valid signature.
type minter struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func (m *minter) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &m.priv.PublicKey, KeyID: m.kid, Algorithm: "ES256", Use: "sig"}
}

func (m *minter) sign(t testing.TB, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: m.priv, KeyID: m.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	require.NoError(t, err)
	return tok
}

// world is an IdP with tenants and users, a service and a client.
type world struct {
	clk      *clocktest.Clock // shared by the IdP and the service
	idp      *idp.IdP
	tenant   idp.Tenant // onboarded, public cloud
	alice    *person    // in tenant
	bob      *person    // in tenant
	other    idp.Tenant // a second onboarded tenant
	carol    *person    // in other
	keys     map[protector.Scheme]*protector.ServicePrivateKey
	retired  *protector.ServicePrivateKey // its kid is in Config.Retired
	stranger *protector.ServicePrivateKey // not known to the service
	counters []*countingUnwrapper         // the service's keys, counting
	minter   *minter
	audit    *auditLog
	svc      *service.Service
	srv      *httptest.Server
	client   *service.Client              // alice's device
	devices  map[string]*ecdsa.PrivateKey // by jkt
}

type worldOption func(*service.Config)

func newWorld(t testing.TB, opts ...worldOption) *world {
	t.Helper()
	w := &world{clk: clocktest.New(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)), audit: &auditLog{}, keys: map[protector.Scheme]*protector.ServicePrivateKey{},
		devices: map[string]*ecdsa.PrivateKey{}}
	var err error
	w.idp, err = idp.New(idp.WithClock(w.clk.Now), idp.WithArgon2(resettest.CheapArgon2()))
	require.NoError(t, err)
	w.tenant = w.addTenant(t, idp.TenantConfig{Domain: "contoso.test", ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}})
	w.other = w.addTenant(t, idp.TenantConfig{Domain: "fabrikam.test", ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}})
	w.alice = w.addPerson(t, w.tenant, "alice")
	w.bob = w.addPerson(t, w.tenant, "bob")
	w.carol = w.addPerson(t, w.other, "carol")

	w.keys[protector.HPKEX25519] = cachedKey(t, "x25519")
	w.keys[protector.HPKEXWing] = cachedKey(t, "wing")
	w.keys[protector.RSAOAEP3072] = cachedKey(t, "rsa")
	w.retired = cachedKey(t, "retired")
	w.stranger = cachedKey(t, "stranger")
	for _, s := range []protector.Scheme{protector.HPKEX25519, protector.HPKEXWing, protector.RSAOAEP3072} {
		w.counters = append(w.counters, &countingUnwrapper{Unwrapper: w.keys[s]})
	}

	mk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	w.minter = &minter{kid: "test-minter", priv: mk}
	keys := func() *jose.JSONWebKeySet {
		set := &jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), w.idp.JWKS().Keys...)}
		set.Keys = append(set.Keys, w.minter.jwk())
		return set
	}
	v, err := service.NewJWTVerifier(service.VerifierConfig{
		Keys: keys, Issuer: w.idp.IssuerTemplate(), Audience: identity.PINResetServiceAppID, Clock: w.clk.Now,
	})
	require.NoError(t, err)
	cfg := service.Config{
		Verifier:  v,
		Directory: w.idp,
		Keys:      []protector.Unwrapper{w.counters[0], w.counters[1], w.counters[2]},
		Retired:   []string{w.retired.Public().ID()},
		Audit:     slog.New(slog.NewJSONHandler(w.audit, nil)),
		Clock:     w.clk.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	w.svc, err = service.New(cfg)
	require.NoError(t, err)
	w.srv = httptest.NewServer(w.svc)
	t.Cleanup(w.srv.Close)
	w.client = w.clientFor(w.alice)
	return w
}

// clientForToken is a client on the device tok is bound to (alice's when
// the world knows none).
func (w *world) clientForToken(tok string) *service.Client {
	key := w.alice.device
	if k, ok := w.devices[tokenJKT(tok)]; ok {
		key = k
	}
	return service.NewClient(w.srv.URL, w.srv.Client()).WithDevice(key).WithClock(w.clk.Now)
}

// clientFor is a client on p's device.
func (w *world) clientFor(p *person) *service.Client {
	return service.NewClient(w.srv.URL, w.srv.Client()).WithDevice(p.device).WithClock(w.clk.Now)
}

// cachedKeys holds one service key per scheme and role for the whole test
// binary: RSA-3072 generation is too slow to repeat per test.
var cachedKeys = sync.OnceValues(func() (map[string]*protector.ServicePrivateKey, error) {
	m := map[string]*protector.ServicePrivateKey{}
	for name, s := range map[string]protector.Scheme{
		"x25519": protector.HPKEX25519, "wing": protector.HPKEXWing, "rsa": protector.RSAOAEP3072,
		"retired": protector.HPKEX25519, "stranger": protector.HPKEX25519,
	} {
		k, err := protector.GenerateServiceKey(s)
		if err != nil {
			return nil, err
		}
		m[name] = k
	}
	return m, nil
})

func cachedKey(t testing.TB, name string) *protector.ServicePrivateKey {
	t.Helper()
	m, err := cachedKeys()
	require.NoError(t, err)
	return m[name]
}

// countingUnwrapper counts Unwrap calls, to prove refusals come before any
// decryption.
type countingUnwrapper struct {
	protector.Unwrapper
	mu sync.Mutex
	n  int
}

func (c *countingUnwrapper) Unwrap(env *protector.Envelope) (*protector.Key, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Unwrapper.Unwrap(env)
}

func (w *world) unwraps() int {
	n := 0
	for _, c := range w.counters {
		c.mu.Lock()
		n += c.n
		c.mu.Unlock()
	}
	return n
}

func (w *world) addTenant(t testing.TB, cfg idp.TenantConfig) idp.Tenant {
	t.Helper()
	tn, err := w.idp.AddTenant(cfg)
	require.NoError(t, err)
	return tn
}

// addPerson creates a user and signs them in with password and TOTP.
func (w *world) addPerson(t testing.TB, tn idp.Tenant, name string) *person {
	t.Helper()
	pw := "correct horse " + name
	u, err := w.idp.AddUser(idp.UserConfig{TenantID: tn.ID, UPN: name + "@" + tn.Domain, Password: pw})
	require.NoError(t, err)
	return w.addPersonFor(t, u, pw)
}

// addPersonFor signs an existing user in with password and TOTP, joins a
// device for them with that sign-in, and binds the sign-in to it.
func (w *world) addPersonFor(t testing.TB, u idp.User, pw string) *person {
	t.Helper()
	ctx := context.Background()
	p := &person{user: u, password: pw, deviceID: newGUID(t)}
	var err error
	p.device, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p.jkt, err = dpop.Thumbprint(&p.device.PublicKey)
	require.NoError(t, err)
	w.devices[p.jkt] = p.device
	p.session, err = w.idp.SignIn(ctx, u.UPN, pw)
	require.NoError(t, err)
	code, err := w.idp.TOTPCode(u.UPN)
	require.NoError(t, err)
	tok, err := p.session.CompleteMFA(ctx, code)
	require.NoError(t, err)
	require.NoError(t, w.idp.RegisterDevice(ctx, tok, p.deviceID, &p.device.PublicKey))
	require.NoError(t, p.session.BindDevice(ctx, p.deviceID, w.bindProof(t, p)))
	return p
}

// bindProof is p's device proof to the IdP's token endpoint.
func (w *world) bindProof(t testing.TB, p *person) string {
	t.Helper()
	s, err := dpop.Sign(p.device, dpop.Claims{HTM: "POST", HTU: w.idp.TokenEndpoint(p.user.TenantID), IAT: w.clk.Now().Unix(), JTI: randString(12)})
	require.NoError(t, err)
	return s
}

func newGUID(t testing.TB) string {
	t.Helper()
	g, err := identity.NewGUID(rand.Reader)
	require.NoError(t, err)
	return g.String()
}

// token mints a fresh access token with MFA for p.
func (p *person) token(t testing.TB) string {
	t.Helper()
	tok, err := p.session.Refresh(context.Background())
	require.NoError(t, err)
	return tok
}

// envelope wraps a fresh protector for p to key; it returns both.
func (p *person) envelope(t testing.TB, key protector.ServiceKey) (*protector.Envelope, *protector.Key) {
	t.Helper()
	r, err := protector.NewKey(nil)
	require.NoError(t, err)
	env, err := key.Wrap(r, p.binding(), nil)
	require.NoError(t, err)
	return env, r
}

// spoiledEnvelope is p's binding wrapped to the service's HPKE X25519 key
// with its last byte changed: it parses and names p's device, as if made
// by someone else's key under the service's key ID, and does not open.
func (w *world) spoiledEnvelope(t testing.TB, p *person) *protector.Envelope {
	t.Helper()
	env, _ := p.envelope(t, w.keys[protector.HPKEX25519].Public())
	raw, _ := env.MarshalBinary()
	raw[len(raw)-1] ^= 1
	e, err := protector.ParseEnvelope(raw)
	require.NoError(t, err)
	return e
}

// binding is what p's device enrols.
func (p *person) binding() protector.Binding {
	return protector.Binding{TenantID: p.user.TenantID, UserID: p.user.ObjectID, ContainerID: "{FA0DB076-A5D7-4844-82D8-50A2FB42EC7B}", DeviceID: p.deviceID}
}

// claims builds token claims for p as the IdP would.
func (w *world) claims(p *person) map[string]any {
	now := w.clk.Now()
	return map[string]any{
		"iss":       w.idp.Issuer(p.user.TenantID),
		"aud":       identity.PINResetServiceAppID,
		"tid":       p.user.TenantID,
		"oid":       p.user.ObjectID,
		"upn":       p.user.UPN,
		"amr":       []string{"pwd", "mfa"},
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"exp":       now.Add(10 * time.Minute).Unix(),
		"jti":       randString(16),
		"azp":       identity.PINResetClientAppID,
		"auth_time": now.Unix(),
		"deviceid":  p.deviceID,
		"cnf":       map[string]string{"jkt": p.jkt},
	}
}

func randString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// requestBody is a valid recover body for env with a fresh return key.
func requestBody(t testing.TB, env *protector.Envelope) ([]byte, *protector.ReturnKey) {
	t.Helper()
	rk, err := protector.NewReturnKey()
	require.NoError(t, err)
	raw, err := env.MarshalBinary()
	require.NoError(t, err)
	body, err := json.Marshal(map[string]string{
		"envelope":   base64.RawURLEncoding.EncodeToString(raw),
		"return_key": base64.RawURLEncoding.EncodeToString(rk.PublicKey()),
	})
	require.NoError(t, err)
	return body, rk
}

// proofFor signs, with the device key token is bound to (alice's when it
// names none the world knows), a DPoP proof for a recover request whose
// body is body.
func (w *world) proofFor(t testing.TB, method, path, token string, body []byte) string {
	t.Helper()
	key := w.alice.device
	if k, ok := w.devices[tokenJKT(token)]; ok {
		key = k
	}
	var rkh string
	var b struct {
		ReturnKey string `json:"return_key"`
	}
	if json.Unmarshal(body, &b) == nil {
		if rk, err := base64.RawURLEncoding.DecodeString(b.ReturnKey); err == nil {
			rkh = dpop.Hash(rk)
		}
	}
	s, err := dpop.Sign(key, dpop.Claims{HTM: method, HTU: w.srv.URL + path, IAT: w.clk.Now().Unix(), JTI: randString(12),
		ATH: dpop.Hash([]byte(token)), RKH: rkh})
	require.NoError(t, err)
	return s
}

// tokenJKT reads cnf.jkt from a token without verifying it.
func tokenJKT(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		CNF struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	json.Unmarshal(raw, &c)
	return c.CNF.JKT
}

// post sends a raw request to the test server, with the token as a
// DPoP-bound token and a proof by its device.
func (w *world) post(t testing.TB, method, path, contentType, token string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "DPoP "+token)
		req.Header.Set("DPoP", w.proofFor(t, method, path, token, body))
	}
	resp, err := w.srv.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// errorBody decodes a JSON error body.
func errorBody(t testing.TB, resp *http.Response) (code, message string) {
	t.Helper()
	var e struct{ Error, Message string }
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	return e.Error, e.Message
}

// mustVerifier is the PIN reset service's verifier for iss's tokens.
func mustVerifier(iss service.TokenIssuer) *service.JWTVerifier {
	v, err := service.VerifierFor(iss)
	if err != nil {
		panic(err)
	}
	return v
}

// anyDevice is a device key for clients whose requests never reach a
// service that checks it (fake servers, transport tests).
var anyDevice = func() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}()
