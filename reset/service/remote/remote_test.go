package remote_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/syncbuf"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/lookup"
	"github.com/hellosim/hellosim/reset/resettest"
	"github.com/hellosim/hellosim/reset/service"
	"github.com/hellosim/hellosim/reset/service/remote"
)

// world is a directory served over TLS on loopback and a PIN reset
// service trusting it through discovery and the lookup API.
type world struct {
	dir       *idp.IdP
	dirSrv    *httptest.Server
	jwksHits  atomic.Int64
	down      atomic.Bool
	keys      *remote.Keys
	verifier  *remote.Verifier
	svc       *service.Service
	svcSrv    *httptest.Server
	session   *idp.Pending
	tenant    idp.Tenant
	user      idp.User
	password  string
	deviceID  string
	deviceKey *ecdsa.PrivateKey
	svcKey    *protector.ServicePrivateKey
	clock     *clock
	lookupTTL time.Duration
	audit     syncbuf.Buffer
}

// auditRecords returns the service's audit records written so far.
func auditRecords(t *testing.T, log *syncbuf.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log.String()), "\n") {
		var r map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		out = append(out, r)
	}
	return out
}

// clock is a settable clock for the key cache and lookup cache; the
// directory and service keep real time.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

func newWorld(t *testing.T, lookupTTL time.Duration) *world {
	t.Helper()
	w := &world{clock: &clock{}, password: "correct horse battery", lookupTTL: lookupTTL}
	appKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)

	var dirHandler http.Handler
	w.dirSrv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if w.down.Load() {
			// The directory is unreachable: drop the connection.
			hj, ok := rw.(http.Hijacker)
			require.True(t, ok)
			c, _, err := hj.Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		dirHandler.ServeHTTP(rw, r)
	}))
	w.dirSrv.StartTLS()
	t.Cleanup(w.dirSrv.Close)

	w.dir, err = idp.New(idp.WithArgon2(resettest.CheapArgon2()), idp.WithIssuer(w.dirSrv.URL+"/{tid}/v2.0"))
	require.NoError(t, err)
	lh, err := lookup.NewHandler(lookup.HandlerConfig{Source: w.dir, Audience: w.dirSrv.URL,
		Apps: []lookup.AppCredential{{ClientID: identity.PINResetServiceAppID, PublicKey: &appKey.PublicKey}}})
	require.NoError(t, err)
	mux := http.NewServeMux()
	oidc := w.dir.OIDCHandler()
	mux.Handle("/", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if len(r.URL.Path) > 5 && r.URL.Path[len(r.URL.Path)-5:] == "/keys" {
			w.jwksHits.Add(1)
		}
		oidc.ServeHTTP(rw, r)
	}))
	mux.Handle(lookup.PathPrefix, lh)
	dirHandler = mux

	w.tenant, err = w.dir.AddTenant(idp.TenantConfig{Domain: "contoso.test",
		ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}})
	require.NoError(t, err)
	w.user, err = w.dir.AddUser(idp.UserConfig{TenantID: w.tenant.ID, UPN: "alice@contoso.test", Password: w.password})
	require.NoError(t, err)
	w.deviceKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	w.deviceID = "6d1a3c1e-8f7b-4c2a-9d7e-5a4b3c2d1e0f"
	require.NoError(t, w.dir.AddDeviceKey(w.tenant.ID, w.user.ObjectID, w.deviceID, &w.deviceKey.PublicKey))

	hc := w.dirSrv.Client()
	w.keys, err = remote.NewKeys(remote.Config{Issuer: w.dirSrv.URL + "/common/v2.0", HTTPClient: hc,
		MinRefetch: 10 * time.Second, Clock: w.clock.now})
	require.NoError(t, err)
	w.verifier, err = remote.NewVerifier(w.keys, nil)
	require.NoError(t, err)
	dirClient, err := lookup.NewClient(lookup.ClientConfig{BaseURL: w.dirSrv.URL, HTTPClient: hc,
		ClientID: identity.PINResetServiceAppID, Key: appKey, TTL: lookupTTL, Clock: w.clock.now})
	require.NoError(t, err)
	w.svcKey, err = protector.GenerateServiceKey(protector.HPKEX25519)
	require.NoError(t, err)
	w.svc, err = service.New(service.Config{Verifier: w.verifier, Directory: dirClient, Keys: []protector.Unwrapper{w.svcKey},
		RateLimit: service.RateLimit{Unlimited: true}, AddressLimit: service.RateLimit{Unlimited: true},
		Audit: slog.New(slog.NewJSONHandler(&w.audit, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { w.svc.Close() })
	w.svcSrv = httptest.NewServer(w.svc)
	t.Cleanup(w.svcSrv.Close)
	return w
}

// token signs the user in with password, TOTP and the device once, and
// returns a fresh token of that session.
func (w *world) token(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	if w.session != nil {
		tok, err := w.session.Refresh(ctx)
		require.NoError(t, err)
		return tok
	}
	p, err := w.dir.SignIn(ctx, w.user.UPN, w.password)
	require.NoError(t, err)
	code, err := w.dir.TOTPCode(w.user.UPN)
	require.NoError(t, err)
	bind, err := w.dir.DeviceProof(w.deviceKey, w.tenant.ID, w.dir.Now())
	require.NoError(t, err)
	_, err = p.CompleteMFA(ctx, code)
	require.NoError(t, err)
	require.NoError(t, p.BindDevice(ctx, w.deviceID, bind))
	w.session = p
	tok, err := p.Refresh(ctx)
	require.NoError(t, err)
	return tok
}

// recover asks the service to release a fresh protector with tok.
func (w *world) recover(t *testing.T, tok string) error {
	t.Helper()
	r, err := protector.NewKey(nil)
	require.NoError(t, err)
	defer r.Destroy()
	env, err := w.svcKey.Public().Wrap(r, protector.Binding{TenantID: w.tenant.ID, UserID: w.user.ObjectID,
		ContainerID: "c1", DeviceID: w.deviceID}, nil)
	require.NoError(t, err)
	got, err := service.NewClient(w.svcSrv.URL, nil).WithDevice(w.deviceKey).Recover(context.Background(), tok, env)
	if err != nil {
		return err
	}
	defer got.Destroy()
	require.True(t, got.Equal(r), "released protector differs")
	return nil
}

func TestRemoteRecoveryVerifiesByDiscovery(t *testing.T) {
	w := newWorld(t, time.Second)
	require.NoError(t, w.recover(t, w.token(t)))
	assert.Equal(t, int64(1), w.keys.Fetches(), "one fetch serves every later token")
	require.NoError(t, w.recover(t, w.token(t)))
	assert.Equal(t, int64(1), w.keys.Fetches())
}

func TestRemoteKeyRotationOneFetch(t *testing.T) {
	w := newWorld(t, time.Second)
	old := w.token(t)
	oldSpare := w.token(t)
	require.NoError(t, w.recover(t, old))
	require.Equal(t, int64(1), w.jwksHits.Load())

	_, err := w.dir.RotateSigningKey()
	require.NoError(t, err)
	w.clock.advance(11 * time.Second) // past MinRefetch since the first fetch
	fresh := w.token(t)
	require.NoError(t, w.recover(t, fresh), "the new kid is fetched")
	assert.Equal(t, int64(2), w.jwksHits.Load(), "one fetch picks up the new kid")
	require.NoError(t, w.recover(t, oldSpare), "a token under the old key verifies until it expires")
	require.NoError(t, w.recover(t, w.token(t)))
	assert.Equal(t, int64(2), w.jwksHits.Load(), "known kids fetch nothing")
}

func TestRemoteRotationWithinRefetchWindowWaits(t *testing.T) {
	w := newWorld(t, time.Second)
	require.NoError(t, w.recover(t, w.token(t)))
	_, err := w.dir.RotateSigningKey()
	require.NoError(t, err)
	err = w.recover(t, w.token(t))
	require.ErrorIs(t, err, service.ErrUnauthorized, "within MinRefetch of the last fetch, an unknown kid is refused unseen")
	assert.Equal(t, int64(1), w.jwksHits.Load())
	w.clock.advance(11 * time.Second)
	require.NoError(t, w.recover(t, w.token(t)))
	assert.Equal(t, int64(2), w.jwksHits.Load())
}

// forged signs a token with a key of its own under a random kid.
func forged(t *testing.T, w *world) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	var kid [12]byte
	_, err = rand.Read(kid[:])
	require.NoError(t, err)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k, KeyID: base64.RawURLEncoding.EncodeToString(kid[:])}}, nil)
	require.NoError(t, err)
	now := time.Now()
	tok, err := jwt.Signed(s).Claims(map[string]any{
		"iss": w.dir.Issuer(w.tenant.ID), "aud": identity.PINResetServiceAppID, "tid": w.tenant.ID, "oid": w.user.ObjectID,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": fmt.Sprint(now.UnixNano()), "amr": []string{"pwd", "mfa"},
		"auth_time": now.Unix(), "azp": identity.PINResetClientAppID, "deviceid": w.deviceID,
	}).Serialize()
	require.NoError(t, err)
	return tok
}

func TestRemoteForgedKidsFetchRateLimited(t *testing.T) {
	w := newWorld(t, time.Second)
	require.NoError(t, w.recover(t, w.token(t)))
	base := w.jwksHits.Load()
	for range 50 {
		err := w.recover(t, forged(t, w))
		require.ErrorIs(t, err, service.ErrUnauthorized)
	}
	assert.Equal(t, base, w.jwksHits.Load(), "forged kids within the window fetch nothing")
	for i := range 5 {
		w.clock.advance(10 * time.Second)
		for range 20 {
			require.ErrorIs(t, w.recover(t, forged(t, w)), service.ErrUnauthorized)
		}
		assert.Equal(t, base+int64(i+1), w.jwksHits.Load(), "at most one fetch per MinRefetch")
	}
}

func TestRemoteDirectoryDownFailsClosed(t *testing.T) {
	ctx := context.Background()
	t.Run("before the first fetch", func(t *testing.T) {
		w := newWorld(t, time.Second)
		tok := w.token(t)
		w.down.Store(true)
		err := w.recover(t, tok)
		require.ErrorIs(t, err, service.ErrUnavailable)
		var se *service.Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusServiceUnavailable, se.Status)
		require.ErrorIs(t, w.keys.Refresh(ctx), remote.ErrKeysUnavailable)
		recs := auditRecords(t, &w.audit)
		require.NotEmpty(t, recs)
		last := recs[len(recs)-1]
		assert.Equal(t, float64(http.StatusServiceUnavailable), last["status"], "the 503 is audited: %v", last)
		assert.Equal(t, service.CodeUnavailable, last["code"])
		assert.Equal(t, "token verifier unavailable", last["reason"])
		assert.NotContains(t, last, "tenant", "no claims from a token nobody could verify")
		w.down.Store(false)
		w.clock.advance(11 * time.Second)
		require.NoError(t, w.recover(t, tok), "back when the directory is")
	})
	t.Run("keys cached, lookups fail", func(t *testing.T) {
		w := newWorld(t, time.Second)
		require.NoError(t, w.recover(t, w.token(t)))
		tok := w.token(t)
		w.down.Store(true)
		w.clock.advance(2 * time.Second) // past the lookup cache
		err := w.recover(t, tok)
		require.ErrorIs(t, err, service.ErrUnavailable, "a cached key verifies, but standing cannot be asked: 503")
	})
	t.Run("new kid while down", func(t *testing.T) {
		w := newWorld(t, time.Second)
		require.NoError(t, w.recover(t, w.token(t)))
		_, err := w.dir.RotateSigningKey()
		require.NoError(t, err)
		tok := w.token(t)
		w.down.Store(true)
		w.clock.advance(11 * time.Second)
		require.ErrorIs(t, w.recover(t, tok), service.ErrUnavailable)
		require.ErrorIs(t, w.recover(t, tok), service.ErrUnavailable, "still 503 inside the refetch window")
	})
}

func TestRemoteUserDisabledAtDirectory(t *testing.T) {
	w := newWorld(t, time.Second)
	require.NoError(t, w.recover(t, w.token(t)))
	tok := w.token(t)
	require.NoError(t, w.dir.DeleteUser(w.user.UPN))
	w.clock.advance(time.Second) // the lookup cache's lifetime
	require.ErrorIs(t, w.recover(t, tok), service.ErrAccountInactive)
}

func TestRemoteDeviceDisabledAtDirectory(t *testing.T) {
	w := newWorld(t, time.Second)
	tok := w.token(t)
	spare := w.token(t)
	require.NoError(t, w.recover(t, tok))
	require.NoError(t, w.dir.SetDeviceDisabled(w.deviceID, true))
	w.clock.advance(time.Second)
	require.ErrorIs(t, w.recover(t, spare), service.ErrDeviceNotAllowed)
}

func TestRemoteDiscoveryIssuerMismatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		json.NewEncoder(rw).Encode(map[string]string{"issuer": "https://login.other.test/common/v2.0", "jwks_uri": "http://127.0.0.1:1/keys"})
	}))
	defer srv.Close()
	k, err := remote.NewKeys(remote.Config{Issuer: srv.URL + "/common/v2.0"})
	require.NoError(t, err)
	err = k.Refresh(context.Background())
	require.ErrorIs(t, err, remote.ErrIssuerMismatch)
	require.ErrorIs(t, err, remote.ErrKeysUnavailable)
}

func TestRemoteIssuerMustBeHTTPSOrLoopback(t *testing.T) {
	_, err := remote.NewKeys(remote.Config{Issuer: "http://login.example/common/v2.0"})
	require.Error(t, err)
	_, err = remote.NewKeys(remote.Config{Issuer: "https://login.example/common/v2.0?x=1"})
	require.Error(t, err)
	k, err := remote.NewKeys(remote.Config{Issuer: "https://login.example/common/v2.0"})
	require.NoError(t, err)
	assert.Equal(t, "https://login.example/{tid}/v2.0", k.IssuerTemplate())
}

var _ = errors.Is
