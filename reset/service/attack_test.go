package service_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/reset/service/state"
)

// countingStore counts what the service records: one-time IDs admitted and
// failures counted. It can be made to fail.
type countingStore struct {
	state.Store
	mu     sync.Mutex
	once   int
	fails  int
	broken bool
}

func (c *countingStore) Admit(ctx context.Context, a state.Admission) (state.Verdict, error) {
	c.mu.Lock()
	broken := c.broken
	c.mu.Unlock()
	if broken {
		return state.Verdict{}, &state.UnavailableError{Op: "admit", Err: errors.New("connection refused")}
	}
	v, err := c.Store.Admit(ctx, a)
	if err == nil && v.Outcome == state.Admitted {
		c.mu.Lock()
		c.once += len(a.Once)
		c.mu.Unlock()
	}
	return v, err
}

func (c *countingStore) Fail(ctx context.Context, partition, key string, p state.Lockout) (state.Failures, error) {
	c.mu.Lock()
	c.fails++
	c.mu.Unlock()
	return c.Store.Fail(ctx, partition, key, p)
}

// breakDown makes every Admit fail as a store that does not answer.
func (c *countingStore) breakDown() {
	c.mu.Lock()
	c.broken = true
	c.mu.Unlock()
}

func (c *countingStore) counts() (once, fails int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.once, c.fails
}

// attackWorld is a world whose service records into a countingStore.
func attackWorld(t *testing.T, opts ...worldOption) (*world, *countingStore) {
	t.Helper()
	var cs *countingStore
	w := newWorld(t, append([]worldOption{func(c *service.Config) {
		cs = &countingStore{Store: state.NewMemory(state.MemoryOptions{Clock: c.Clock, Epoch: c.Clock().Add(-time.Hour)})}
		c.State = cs
	}}, opts...)...)
	return w, cs
}

// attempt is one attack: the request the attacker sends.
type attackRequest struct {
	token     string
	env       *protector.Envelope
	returnKey []byte            // nil: a fresh, valid one
	signer    *ecdsa.PrivateKey // signs the proof; nil: no proof
	proofRK   []byte            // the return key the proof names; nil: returnKey
	scheme    string            // Authorization scheme; "" means DPoP
	jti       string            // the proof's jti; "": a fresh one
	header    http.Header       // more request headers
	host      string            // the Host header, and the proof's htu host; "": the server's
}

func (w *world) send(t *testing.T, a attackRequest) (*http.Response, string) {
	t.Helper()
	rk := a.returnKey
	if rk == nil {
		k, err := protector.NewReturnKey()
		require.NoError(t, err)
		t.Cleanup(k.Destroy)
		rk = k.PublicKey()
	}
	raw, err := a.env.MarshalBinary()
	require.NoError(t, err)
	body, _ := json.Marshal(map[string]string{"envelope": base64.RawURLEncoding.EncodeToString(raw), "return_key": base64.RawURLEncoding.EncodeToString(rk)})
	req, err := http.NewRequest(http.MethodPost, w.srv.URL+service.PathRecover, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	scheme := a.scheme
	if scheme == "" {
		scheme = "DPoP"
	}
	req.Header.Set("Authorization", scheme+" "+a.token)
	for k, v := range a.header {
		req.Header[k] = v
	}
	if a.signer != nil {
		prk := a.proofRK
		if prk == nil {
			prk = rk
		}
		jti := a.jti
		if jti == "" {
			jti = randString(12)
		}
		htu := w.srv.URL + service.PathRecover
		if a.host != "" {
			req.Host, htu = a.host, "http://"+a.host+service.PathRecover
		}
		p, err := dpop.Sign(a.signer, dpop.Claims{HTM: "POST", HTU: htu, IAT: w.clk.Now().Unix(),
			JTI: jti, ATH: dpop.Hash([]byte(a.token)), RKH: dpop.Hash(prk)})
		require.NoError(t, err)
		req.Header.Set("DPoP", p)
	}
	resp, err := w.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var e struct{ Error string }
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &e)
	return resp, e.Error
}

// TestAttacks is the service attacker's table: each row is an attack over
// real HTTP with real IdP tokens (or tokens validly signed by a key the
// verifier trusts, for claims the IdP never issues), the refusal it must
// meet, and proof that nothing was decrypted and that only refusals after
// the user's limits record anything (the proof's jti).
func TestAttacks(t *testing.T) {
	type row struct {
		name    string
		attack  func(t *testing.T, w *world) attackRequest
		status  int
		code    string
		limited bool // refused after the user's limits: the proof's jti is recorded
		counted bool // the refusal counts toward the user's lockout
		reason  string
	}
	valid := func(t *testing.T, w *world) attackRequest {
		env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
		return attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device}
	}
	// withBinding is a valid request whose envelope is wrapped, to a
	// fresh protector, under p's binding as edit changes it.
	withBinding := func(t *testing.T, w *world, p *person, edit func(*protector.Binding)) attackRequest {
		a := valid(t, w)
		b := p.binding()
		edit(&b)
		r, _ := protector.NewKey(nil)
		env, err := w.keys[protector.HPKEX25519].Public().Wrap(r, b, nil)
		require.NoError(t, err)
		a.env = env
		return a
	}
	rows := []row{
		{name: "thief with token and envelope, no device key", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			thief, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			a.signer = thief
			return a
		}, status: 401, code: service.CodeInvalidProof, reason: "proof: key is not the one the token is bound to"},
		{name: "thief with token and envelope, no proof at all", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			a.signer = nil
			return a
		}, status: 401, code: service.CodeInvalidProof},
		{name: "bound token presented as a bearer token", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			a.scheme = "Bearer"
			return a
		}, status: 401, code: service.CodeInvalidToken},
		{name: "proxy swaps the return key", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			good, _ := protector.NewReturnKey()
			evil, _ := protector.NewReturnKey()
			a.proofRK, a.returnKey = good.PublicKey(), evil.PublicKey() // the device signed good; the proxy sends evil
			return a
		}, status: 401, code: service.CodeInvalidProof, reason: "proof: rkh does not match the return key"},
		{name: "token of another client application", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			c := w.claims(w.alice)
			c["azp"] = "11111111-2222-4333-8444-555555555555"
			a.token = w.minter.sign(t, c)
			return a
		}, status: 403, code: service.CodeClientNotAllowed, reason: "azp 11111111-2222-4333-8444-555555555555"},
		{name: "validly signed token with malformed claims", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			c := w.claims(w.alice)
			c["tid"] = 42
			a.token = w.minter.sign(t, c)
			return a
		}, status: 401, code: service.CodeInvalidToken, reason: "malformed claims"},
		{name: "validly signed token with an unknown critical header", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: w.minter.priv, KeyID: w.minter.kid}},
				(&jose.SignerOptions{}).WithType("JWT").WithHeader("hellosim-ext", true).WithCritical("hellosim-ext"))
			require.NoError(t, err)
			a.token, err = jwt.Signed(s).Claims(w.claims(w.alice)).Serialize()
			require.NoError(t, err)
			return a
		}, status: 401, code: service.CodeInvalidToken, reason: "unsupported critical header"},
		{name: "token not bound to a device", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			c := w.claims(w.alice)
			delete(c, "cnf")
			a.token = w.minter.sign(t, c)
			return a
		}, status: 403, code: service.CodeDeviceNotAllowed, reason: "no cnf.jkt or deviceid"},
		{name: "token bound to a key the device does not hold", attack: func(t *testing.T, w *world) attackRequest {
			// A token (validly signed) naming alice's device but bound to
			// the thief's key: the proof is good, the directory says the
			// device holds another key.
			a := valid(t, w)
			thief, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			jkt, err := dpop.Thumbprint(&thief.PublicKey)
			require.NoError(t, err)
			c := w.claims(w.alice)
			c["cnf"] = map[string]string{"jkt": jkt}
			a.token, a.signer = w.minter.sign(t, c), thief
			return a
		}, status: 403, code: service.CodeDeviceNotAllowed, limited: true, reason: "token bound to a key the device no longer holds"},
		{name: "user disabled after the token was issued", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			require.NoError(t, w.idp.SetDisabled(w.alice.user.UPN, true))
			return a
		}, status: 403, code: service.CodeAccountInactive, limited: true},
		{name: "user deleted after the token was issued", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			require.NoError(t, w.idp.DeleteUser(w.alice.user.UPN))
			return a
		}, status: 403, code: service.CodeAccountInactive, limited: true},
		{name: "sessions revoked after the token was issued", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			w.clk.Advance(2 * time.Second)
			require.NoError(t, w.idp.RevokeSessions(w.alice.user.UPN))
			return a
		}, status: 401, code: service.CodeInvalidToken, limited: true, reason: "sessions revoked after the token was issued"},
		{name: "one MFA refreshed for hours", attack: func(t *testing.T, w *world) attackRequest {
			w.clk.Advance(11 * time.Minute)
			return valid(t, w) // a refresh: new token, the old auth_time
		}, status: 403, code: service.CodeMFARequired, reason: "mfa older than 10m0s"},
		{name: "token naming a device of another tenant", attack: func(t *testing.T, w *world) attackRequest {
			// A token for alice's tenant (validly signed) that names carol's
			// device, in the other tenant, and is bound to its key: to
			// alice's tenant that device does not exist. A refusal, not
			// an outage the device could wait out and retry.
			a := valid(t, w)
			c := w.claims(w.alice)
			c["deviceid"], c["cnf"] = w.carol.deviceID, map[string]string{"jkt": w.carol.jkt}
			a.token, a.signer = w.minter.sign(t, c), w.devices[w.carol.jkt]
			return a
		}, status: 403, code: service.CodeDeviceNotAllowed, limited: true, reason: "device not in the token's tenant"},
		{name: "device disabled", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			require.NoError(t, w.idp.SetDeviceDisabled(w.alice.deviceID, true))
			return a
		}, status: 403, code: service.CodeDeviceNotAllowed, limited: true, reason: "device disabled"},
		{name: "envelope of the same user's other device", attack: func(t *testing.T, w *world) attackRequest {
			return withBinding(t, w, w.alice, func(b *protector.Binding) { b.DeviceID = newGUID(t) })
		}, status: 403, code: service.CodeBindingMismatch, counted: true, limited: true, reason: "binding names another device"},
		{name: "envelope of another user", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			a.env, _ = w.bob.envelope(t, w.keys[protector.HPKEX25519].Public())
			return a
		}, status: 403, code: service.CodeBindingMismatch, counted: true, limited: true, reason: "binding names another tenant or user"},
		{name: "envelope of another user enrolled on the same device", attack: func(t *testing.T, w *world) attackRequest {
			// Bob signed in on alice's device and enrolled there: the
			// envelope names the device alice's token is bound to, so
			// only the tenant and user comparison refuses it.
			return withBinding(t, w, w.bob, func(b *protector.Binding) { b.DeviceID = w.alice.deviceID })
		}, status: 403, code: service.CodeBindingMismatch, counted: true, limited: true, reason: "binding names another tenant or user"},
		{name: "envelope of a user of another tenant enrolled on the same device", attack: func(t *testing.T, w *world) attackRequest {
			return withBinding(t, w, w.carol, func(b *protector.Binding) {
				b.DeviceID = w.alice.deviceID
				b.UserID = w.alice.user.ObjectID // the same object ID, another tenant
			})
		}, status: 403, code: service.CodeBindingMismatch, counted: true, limited: true, reason: "binding names another tenant or user"},
		{name: "envelope without a device (version 1)", attack: func(t *testing.T, w *world) attackRequest {
			return withBinding(t, w, w.alice, func(b *protector.Binding) { b.DeviceID = "" })
		}, status: 400, code: service.CodeEnvelopeNotBound},
		{name: "all-zero (small-order) return key", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			a.returnKey = make([]byte, 32)
			return a
		}, status: 400, code: service.CodeMalformedRequest},
		{name: "token replayed with a fresh proof", attack: func(t *testing.T, w *world) attackRequest {
			a := valid(t, w)
			resp, _ := w.send(t, a)
			require.Equal(t, 200, resp.StatusCode)
			return a // send signs a new proof each time
		}, status: 401, code: service.CodeTokenReplayed, limited: true, reason: "token jti replayed"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, cs := attackWorld(t)
			a := tc.attack(t, w)
			once0, fails0 := cs.counts()
			unwraps0 := w.unwraps()
			resp, code := w.send(t, a)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, unwraps0, w.unwraps(), "R must not be released: nothing may be decrypted")
			once, fails := cs.counts()
			if tc.limited {
				assert.Equal(t, once0+1, once, "refused after the user's limits: the proof's jti recorded, the token's not")
			} else {
				assert.Equal(t, once0, once, "refused before the user's limits: nothing recorded")
			}
			assert.Equal(t, tc.counted, fails > fails0, "failure counted")
			if tc.reason != "" {
				recs := w.audit.records(t)
				last := recs[len(recs)-1]
				assert.Equal(t, tc.reason, last["reason"])
			}
		})
	}
}

// A valid request over the same path is released, and its audit record
// names who asked.
func TestAttackBaselineIsReleasedAndAudited(t *testing.T) {
	w, cs := attackWorld(t)
	env, want := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	rk, err := protector.NewReturnKey()
	require.NoError(t, err)
	defer rk.Destroy()
	c := w.clientFor(w.alice)
	got, err := c.Recover(context.Background(), w.alice.token(t), env)
	require.NoError(t, err)
	assert.True(t, got.Equal(want))
	once, _ := cs.counts()
	assert.Equal(t, 2, once, "the token's and the proof's jti are recorded")
	recs := w.audit.records(t)
	last := recs[len(recs)-1]
	assert.Equal(t, "allow", last["decision"])
	assert.Equal(t, "127.0.0.1", last["client"])
	assert.Equal(t, w.alice.deviceID, last["device"])
	assert.NotEmpty(t, last["jti_hash"])
	assert.NotEmpty(t, last["user_agent"])
}

// Ten envelopes that do not open lock the user out, audited with the
// count; the lockout escalates; and nothing is released meanwhile.
func TestFailuresLockTheUserOut(t *testing.T) {
	w, cs := attackWorld(t, func(c *service.Config) { c.RateLimit = service.RateLimit{Unlimited: true} })
	bad := func() *protector.Envelope { return w.spoiledEnvelope(t, w.alice) }
	for i := range 10 {
		resp, code := w.send(t, attackRequest{token: w.alice.token(t), env: bad(), signer: w.alice.device})
		require.Equal(t, 400, resp.StatusCode, "failure %d", i+1)
		require.Equal(t, service.CodeBadEnvelope, code)
		w.clk.Advance(time.Minute)
	}
	_, fails := cs.counts()
	assert.Equal(t, 10, fails)
	recs := w.audit.records(t)
	assert.NotNil(t, recs[len(recs)-1]["locked_until"], "the lockout is audited")
	u0 := w.unwraps()
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	resp, code := w.send(t, attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device})
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, service.CodeLockedOut, code)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Equal(t, u0, w.unwraps(), "a locked-out user's good envelope is not opened")
	// Bob is not affected.
	benv, _ := w.bob.envelope(t, w.keys[protector.HPKEX25519].Public())
	resp, _ = w.send(t, attackRequest{token: w.bob.token(t), env: benv, signer: w.bob.device})
	assert.Equal(t, 200, resp.StatusCode)
}

// Forged tokens from one address are limited per address before any
// signature is checked; X-Forwarded-For is believed only from a trusted
// proxy.
func TestAddressLimitAndForwardedFor(t *testing.T) {
	w, _ := attackWorld(t, func(c *service.Config) {
		c.AddressLimit = service.RateLimit{Requests: 3, Per: time.Minute}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	forged := func(xff string) int {
		raw, _ := env.MarshalBinary()
		rk, _ := protector.NewReturnKey()
		body, _ := json.Marshal(map[string]string{"envelope": base64.RawURLEncoding.EncodeToString(raw), "return_key": base64.RawURLEncoding.EncodeToString(rk.PublicKey())})
		req, _ := http.NewRequest("POST", w.srv.URL+service.PathRecover, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "DPoP eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
		req.Header.Set("DPoP", "a.b.c")
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := w.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 3 {
		assert.Equal(t, 401, forged("198.51.100.7"))
	}
	assert.Equal(t, 429, forged("198.51.100.7"), "the client behind the trusted proxy is limited")
	assert.Equal(t, 401, forged("203.0.113.9"), "another client behind the same proxy is not")
	// A client that writes its own X-Forwarded-For in front of the proxy's
	// entry gains nothing: the right-most untrusted address is the client.
	assert.Equal(t, 429, forged("10.9.9.9, 198.51.100.7"))
	recs := w.audit.records(t)
	last := recs[len(recs)-1]
	assert.Equal(t, "198.51.100.7", last["client"])
	assert.Equal(t, []any{"127.0.0.1"}, last["forwarded"])

}

// A peer that is not a trusted proxy writes X-Forwarded-For, a new address
// each time: the header is not believed, the peer's own bucket fills, and
// the audit says what was ignored.
func TestForwardedForFromUntrustedPeerIsIgnored(t *testing.T) {
	w, _ := attackWorld(t, func(c *service.Config) {
		c.AddressLimit = service.RateLimit{Requests: 3, Per: time.Minute}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")} // not the test's peer
	})
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	var got []int
	for i := range 5 {
		resp, _ := w.send(t, attackRequest{token: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", env: env, signer: w.alice.device,
			header: http.Header{"X-Forwarded-For": {"198.51.100." + strconv.Itoa(10+i)}}})
		got = append(got, resp.StatusCode)
	}
	assert.Equal(t, []int{401, 401, 401, 429, 429}, got, "the peer's bucket fills whatever the header says")
	recs := w.audit.records(t)
	last := recs[len(recs)-1]
	assert.Equal(t, "127.0.0.1", last["client"])
	assert.Equal(t, "198.51.100.14", last["forwarded_ignored"])
	assert.Nil(t, last["forwarded"])
	assert.Equal(t, "address_limit", last["check"])
}

// A tenant's quota and replay partition are its own: one tenant exhausting
// its quota leaves the other served.
func TestTenantQuotaIsPerTenant(t *testing.T) {
	w, _ := attackWorld(t, func(c *service.Config) {
		c.TenantLimit = service.RateLimit{Requests: 2, Per: time.Hour}
		c.RateLimit = service.RateLimit{Unlimited: true}
	})
	for range 2 {
		env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
		resp, _ := w.send(t, attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device})
		require.Equal(t, 200, resp.StatusCode)
	}
	env, _ := w.bob.envelope(t, w.keys[protector.HPKEX25519].Public())
	resp, code := w.send(t, attackRequest{token: w.bob.token(t), env: env, signer: w.bob.device})
	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, service.CodeRateLimited, code)
	cenv, _ := w.carol.envelope(t, w.keys[protector.HPKEX25519].Public())
	resp, _ = w.send(t, attackRequest{token: w.carol.token(t), env: cenv, signer: w.carol.device})
	assert.Equal(t, 200, resp.StatusCode, "the other tenant is served")
}

// A state store that does not answer: 503, nothing released.
func TestStoreDownReleasesNothing(t *testing.T) {
	w, cs := attackWorld(t)
	cs.breakDown()
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	resp, code := w.send(t, attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device})
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, service.CodeUnavailable, code)
	assert.Zero(t, w.unwraps())
}

// net/http's own refusal of a header block too large (431) reaches the
// audit log through AuditListener.
func TestNetHTTPRefusalsAreAudited(t *testing.T) {
	w, _ := attackWorld(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: w.svc.AuditHandler(w.svc), MaxHeaderBytes: 1 << 10, ConnContext: w.svc.ConnContext,
		ErrorLog: w.svc.ErrorLog(), ReadHeaderTimeout: time.Second}
	go srv.Serve(w.svc.AuditListener(ln))
	t.Cleanup(func() { srv.Close() })
	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+service.PathKeys, nil)
	req.Header.Set("X-Big", strings.Repeat("a", 8<<10))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 431, resp.StatusCode)
	// A normal request on the same server is the handler's, not a refusal.
	resp, err = http.Get("http://" + ln.Addr().String() + service.PathKeys)
	require.NoError(t, err)
	resp.Body.Close()
	require.Eventually(t, func() bool { return strings.Contains(w.audit.String(), `"status":431`) }, 2*time.Second, 10*time.Millisecond)
	var refusals int
	for _, r := range w.audit.records(t) {
		if r["msg"] == "net/http refusal" {
			refusals++
			assert.Equal(t, "127.0.0.1", r["client"])
		}
	}
	assert.Equal(t, 1, refusals)
}

// One user's genuine token and device proofs, twenty requests in one
// second carrying another user's envelope: every one is authenticated, so
// every one draws from the user's bucket and, once the failures have
// locked the user out, meets the lockout, though each would be refused
// later by the binding check.
func TestLimitsHoldForEveryAuthenticatedRequest(t *testing.T) {
	run := func(t *testing.T, w *world, cs *countingStore) []string {
		t.Helper()
		tok := w.alice.token(t)
		env, _ := w.bob.envelope(t, w.keys[protector.HPKEX25519].Public())
		var got []string
		for range 20 {
			resp, code := w.send(t, attackRequest{token: tok, env: env, signer: w.alice.device})
			got = append(got, strconv.Itoa(resp.StatusCode)+" "+code)
		}
		assert.Zero(t, w.unwraps())
		return got
	}
	repeat := func(n int, s string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	mismatch, limited, locked := "403 "+service.CodeBindingMismatch, "429 "+service.CodeRateLimited, "429 "+service.CodeLockedOut

	t.Run("user bucket", func(t *testing.T) {
		w, cs := attackWorld(t) // the default limit: 5 per user per minute
		got := run(t, w, cs)
		assert.Equal(t, append(repeat(5, mismatch), repeat(15, limited)...), got)
		_, fails := cs.counts()
		assert.Equal(t, 5, fails, "only the requests that reached the binding check are failures")
	})
	t.Run("lockout", func(t *testing.T) {
		w, cs := attackWorld(t, func(c *service.Config) { c.RateLimit = service.RateLimit{Unlimited: true} })
		got := run(t, w, cs)
		assert.Equal(t, append(repeat(10, mismatch), repeat(10, locked)...), got)
		recs := w.audit.records(t)
		assert.NotNil(t, recs[9]["locked_until"], "the 10th failure locks the user, and the audit says so")
		for _, r := range recs[10:] {
			assert.Equal(t, "user_limit", r["check"])
			assert.Equal(t, "user locked out", r["reason"])
		}
		// Bob, whose envelope it was, is not locked out.
		benv, _ := w.bob.envelope(t, w.keys[protector.HPKEX25519].Public())
		resp, _ := w.send(t, attackRequest{token: w.bob.token(t), env: benv, signer: w.bob.device})
		assert.Equal(t, 200, resp.StatusCode)
	})
}

// A DPoP proof is good for one request: the same proof sent again, even
// with a request the service refused after authenticating it, is refused
// as a replayed proof.
func TestProofIsUsedOnce(t *testing.T) {
	w, _ := attackWorld(t)
	rk, err := protector.NewReturnKey()
	require.NoError(t, err)
	defer rk.Destroy()
	env, _ := w.bob.envelope(t, w.keys[protector.HPKEX25519].Public())
	a := attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device, returnKey: rk.PublicKey(), jti: "proof-once"}
	resp, code := w.send(t, a)
	require.Equal(t, 403, resp.StatusCode)
	require.Equal(t, service.CodeBindingMismatch, code)
	resp, code = w.send(t, a)
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, service.CodeInvalidProof, code)
	recs := w.audit.records(t)
	assert.Equal(t, "proof jti replayed", recs[len(recs)-1]["reason"])
}

// Replay records are kept per tenant: one tenant filling its partition
// leaves the others served.
func TestReplayRecordsArePerTenant(t *testing.T) {
	w := newWorld(t, func(c *service.Config) {
		c.State = state.NewMemory(state.MemoryOptions{Clock: c.Clock, Epoch: c.Clock().Add(-time.Hour), MaxPerPartition: 4})
		c.RateLimit = service.RateLimit{Unlimited: true}
	})
	recoverAs := func(p *person) (int, string) {
		env, _ := p.envelope(t, w.keys[protector.HPKEX25519].Public())
		resp, code := w.send(t, attackRequest{token: p.token(t), env: env, signer: p.device})
		return resp.StatusCode, code
	}
	for range 2 { // two IDs each: the token's and the proof's jti
		st, _ := recoverAs(w.alice)
		require.Equal(t, 200, st)
	}
	st, code := recoverAs(w.bob)
	assert.Equal(t, 503, st, "alice's tenant's partition is full")
	assert.Equal(t, service.CodeUnavailable, code)
	st, _ = recoverAs(w.carol)
	assert.Equal(t, 200, st, "carol's tenant has a partition of its own")
}

// A proof made for another server, relayed with that server's Host (as a
// proxy in front of the wrong service would), is refused: without
// Config.PublicURL the URL a proof must name is the listener's, never the
// Host header's.
func TestProofForAnotherServerIsRefused(t *testing.T) {
	w, _ := attackWorld(t)
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	resp, code := w.send(t, attackRequest{token: w.alice.token(t), env: env, signer: w.alice.device, host: "pinreset.example"})
	assert.Equal(t, 401, resp.StatusCode)
	assert.Equal(t, service.CodeInvalidProof, code)
	assert.Zero(t, w.unwraps())
	recs := w.audit.records(t)
	assert.Equal(t, "proof: htu does not match the request (expected "+w.srv.URL+service.PathRecover+", from the listener: set Config.PublicURL)",
		recs[len(recs)-1]["reason"])

	// With PublicURL the proof must name it, whatever the listener.
	w2, _ := attackWorld(t, func(c *service.Config) { c.PublicURL = "http://pinreset.example" })
	env2, _ := w2.alice.envelope(t, w2.keys[protector.HPKEX25519].Public())
	resp, _ = w2.send(t, attackRequest{token: w2.alice.token(t), env: env2, signer: w2.alice.device, host: "pinreset.example"})
	assert.Equal(t, 200, resp.StatusCode)
	resp, code = w2.send(t, attackRequest{token: w2.alice.token(t), env: env2, signer: w2.alice.device})
	assert.Equal(t, 401, resp.StatusCode, "a proof naming the listener is not one naming the public URL")
	assert.Equal(t, service.CodeInvalidProof, code)
}
