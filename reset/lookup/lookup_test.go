package lookup

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset/identity"
)

// source is a directory of one tenant, one user and one device.
type source struct{ disabled, noConsent bool }

const (
	tid = "11111111-2222-4333-8444-555555555555"
	oid = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
	did = "99999999-8888-4777-8666-555555555555"
)

func (s *source) Tenant(_ context.Context, id string) (identity.Tenant, error) {
	if id != tid {
		return identity.Tenant{}, identity.ErrUnknownTenant
	}
	if s.noConsent {
		return identity.Tenant{ID: tid, ConsentedApps: []string{identity.PINResetClientAppID}}, nil
	}
	return identity.Tenant{ID: tid, ConsentedApps: []string{identity.PINResetServiceAppID}}, nil
}

func (s *source) Account(_ context.Context, t, o string) (identity.Account, error) {
	if t != tid || o != oid {
		return identity.Account{TenantID: t, ObjectID: o, Standing: identity.StandingDeleted}, nil
	}
	st := identity.StandingEnabled
	if s.disabled {
		st = identity.StandingDisabled
	}
	return identity.Account{TenantID: t, ObjectID: o, Standing: st, SessionsRevokedAt: time.Unix(1700000000, 0)}, nil
}

func (s *source) Device(_ context.Context, t, d string) (identity.Device, error) {
	return identity.Device{TenantID: t, DeviceID: d, Standing: identity.StandingEnabled, KeyThumbprint: "tp"}, nil
}

func newPair(t *testing.T, ttl time.Duration) (*source, *Client, *ecdsa.PrivateKey, string) {
	t.Helper()
	src := &source{}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(nil)
	srv.Start()
	t.Cleanup(srv.Close)
	h, err := NewHandler(HandlerConfig{Source: src, Audience: srv.URL, Apps: []AppCredential{{ClientID: identity.PINResetServiceAppID, PublicKey: &key.PublicKey}}})
	require.NoError(t, err)
	srv.Config.Handler = h
	c, err := NewClient(ClientConfig{BaseURL: srv.URL, ClientID: identity.PINResetServiceAppID, Key: key, TTL: ttl})
	require.NoError(t, err)
	return src, c, key, srv.URL
}

func TestLookupAnswers(t *testing.T) {
	ctx := context.Background()
	_, c, _, _ := newPair(t, -1)
	ten, err := c.Tenant(ctx, tid)
	require.NoError(t, err)
	assert.Equal(t, []string{identity.PINResetServiceAppID}, ten.ConsentedApps)
	_, err = c.Tenant(ctx, "00000000-0000-4000-8000-000000000001")
	require.ErrorIs(t, err, identity.ErrUnknownTenant)
	a, err := c.Account(ctx, tid, oid)
	require.NoError(t, err)
	assert.Equal(t, identity.StandingEnabled, a.Standing)
	assert.True(t, a.SessionsRevokedAt.Equal(time.Unix(1700000000, 0)))
	d, err := c.Device(ctx, tid, did)
	require.NoError(t, err)
	assert.Equal(t, "tp", d.KeyThumbprint)
	require.NoError(t, c.Ping(ctx))
}

func TestLookupCacheLifetime(t *testing.T) {
	ctx := context.Background()
	src, c, _, _ := newPair(t, 30*time.Second)
	now := time.Now()
	c.now = func() time.Time { return now }
	a, err := c.Account(ctx, tid, oid)
	require.NoError(t, err)
	require.Equal(t, identity.StandingEnabled, a.Standing)
	src.disabled = true
	a, _ = c.Account(ctx, tid, oid)
	assert.Equal(t, identity.StandingEnabled, a.Standing, "cached within the lifetime")
	now = now.Add(30 * time.Second)
	a, err = c.Account(ctx, tid, oid)
	require.NoError(t, err)
	assert.Equal(t, identity.StandingDisabled, a.Standing, "asked again after it")
}

func TestLookupRefusesOtherAppTokens(t *testing.T) {
	ctx := context.Background()
	_, _, key, url := newPair(t, -1)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	cases := map[string]func() string{
		"none": func() string { return "" },
		"unknown key": func() string {
			s, _ := signAppToken(other, identity.PINResetServiceAppID, url, now, time.Minute)
			return s
		},
		"other client": func() string {
			s, _ := signAppToken(key, identity.PINResetClientAppID, url, now, time.Minute)
			return s
		},
		"other aud": func() string {
			s, _ := signAppToken(key, identity.PINResetServiceAppID, "https://x.test", now, time.Minute)
			return s
		},
		"expired": func() string {
			s, _ := signAppToken(key, identity.PINResetServiceAppID, url, now.Add(-time.Hour), time.Minute)
			return s
		},
		"too long-lived": func() string { s, _ := signAppToken(key, identity.PINResetServiceAppID, url, now, time.Hour); return s },
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+PathPrefix+tid, nil)
			req.Header.Set("Authorization", "Bearer "+tok())
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		})
	}
	t.Run("good", func(t *testing.T) {
		s, err := signAppToken(key, identity.PINResetServiceAppID, url, now, time.Minute)
		require.NoError(t, err)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+PathPrefix+tid, nil)
		req.Header.Set("Authorization", "Bearer "+s)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	})
}

func TestLookupUnreachableIsLookupError(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	c, err := NewClient(ClientConfig{BaseURL: url, ClientID: "x", Key: key})
	require.NoError(t, err)
	_, err = c.Account(context.Background(), tid, oid)
	require.ErrorIs(t, err, ErrLookup)
}

// A tenant that has not consented to the calling app shows it none of its
// users and devices (403), though the tenant itself stays readable, so the
// service can tell "not onboarded" from "no such tenant".
func TestLookupNeedsTheTenantsConsent(t *testing.T) {
	ctx := context.Background()
	src, c, _, _ := newPair(t, -1)
	src.noConsent = true
	ten, err := c.Tenant(ctx, tid)
	require.NoError(t, err)
	assert.False(t, ten.HasConsent(identity.PINResetServiceAppID))
	_, err = c.Account(ctx, tid, oid)
	var le *LookupError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, http.StatusForbidden, le.Status)
	assert.Equal(t, codeForbidden, le.Reason)
	_, err = c.Device(ctx, tid, did)
	require.ErrorAs(t, err, &le)
	assert.Equal(t, http.StatusForbidden, le.Status)

	// An unknown tenant's users are not found, as before.
	a, err := c.Account(ctx, "00000000-0000-4000-8000-000000000001", oid)
	require.NoError(t, err)
	assert.Equal(t, identity.StandingDeleted, a.Standing)

	src.noConsent = false
	a, err = c.Account(ctx, tid, oid)
	require.NoError(t, err)
	assert.Equal(t, identity.StandingEnabled, a.Standing)
}
