package service_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/reset/service"
)

// countingTransport records how many requests a client tried to send.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	c.n.Add(1)
	return nil, errors.New("no network in this test")
}

func TestClientAllowsPlainHTTPOnlyToLoopback(t *testing.T) {
	refused := []string{
		"http://pinreset.contoso.com",
		"http://pinreset.contoso.com:8080/prefix",
		"http://10.0.0.1:8080",
		"http://192.168.1.10",
		"http://[2001:db8::1]:8080",
		"http://[::ffff:10.0.0.1]",
		"http://localhost.contoso.com",
		"http://127.0.0.1.nip.io",
		"http://0.0.0.0:8080",
		"http://127.1", // not a literal address Go parses: resolved, so not trusted
	}
	w := newWorld(t)
	env := x25519Env(t, w, w.alice)
	for _, u := range refused {
		rt := &countingTransport{}
		c := service.NewClient(u, &http.Client{Transport: rt}).WithDevice(anyDevice)
		var be *service.BaseURLError
		require.ErrorAs(t, c.Err(), &be, u)
		assert.True(t, be.Insecure, u)
		assert.ErrorIs(t, c.Err(), service.ErrBadBaseURL, u)
		_, err := c.ServiceKey(context.Background())
		assert.ErrorIs(t, err, service.ErrBadBaseURL, u)
		_, err = c.Recover(context.Background(), "a.b.c", env)
		assert.ErrorIs(t, err, service.ErrBadBaseURL, u)
		assert.Zero(t, rt.n.Load(), "%s: a request was sent", u)
	}
	allowed := []string{
		"http://127.0.0.1:8080",
		"http://127.8.9.10",
		"http://[::1]:8080/prefix/",
		"http://localhost:8080",
		"http://LOCALHOST",
		"http://[::ffff:127.0.0.1]:80",
		"https://pinreset.contoso.com",
		"https://10.0.0.1:8443/prefix",
	}
	for _, u := range allowed {
		rt := &countingTransport{}
		c := service.NewClient(u, &http.Client{Transport: rt}).WithDevice(anyDevice)
		require.NoError(t, c.Err(), u)
		_, err := c.ServiceKey(context.Background())
		assert.ErrorIs(t, err, service.ErrUnavailable, u) // the transport refuses: no network here
		assert.Equal(t, int64(1), rt.n.Load(), u)
	}
	for _, u := range []string{"ftp://x", "http://", "https://user:pw@host", "https://host/?q=1", "https://host/#f", "::"} {
		c := service.NewClient(u, nil).WithDevice(anyDevice)
		var be *service.BaseURLError
		require.ErrorAs(t, c.Err(), &be, u)
		assert.False(t, be.Insecure, u)
		assert.NotContains(t, c.Err().Error(), "pw", "the error repeats the URL's credentials")
	}
}

// redirector answers every request with a redirect to target, and target
// records the Authorization headers it receives.
type redirectWorld struct {
	origin, target *httptest.Server
	mu             sync.Mutex
	targetHits     int
	targetAuth     []string
}

func newRedirectWorld(t *testing.T, status int) *redirectWorld {
	rw := &redirectWorld{}
	rw.target = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw.mu.Lock()
		rw.targetHits++
		rw.targetAuth = append(rw.targetAuth, r.Header.Get("Authorization"))
		rw.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(rw.target.Close)
	rw.origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, rw.target.URL+r.URL.Path, status)
	}))
	t.Cleanup(rw.origin.Close)
	return rw
}

func TestClientRefusesRedirects(t *testing.T) {
	w := newWorld(t)
	env := x25519Env(t, w, w.alice)
	tok := w.alice.token(t)
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		rw := newRedirectWorld(t, status)
		follow := 0
		callers := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { follow++; return nil }}
		for name, c := range map[string]*service.Client{
			"default client": service.NewClient(rw.origin.URL, nil).WithDevice(anyDevice),
			"caller client":  service.NewClient(rw.origin.URL, callers).WithDevice(anyDevice),
		} {
			_, err := c.Recover(context.Background(), tok, env)
			var se *service.Error
			require.ErrorAs(t, err, &se, "%d %s", status, name)
			assert.ErrorIs(t, err, service.ErrBadResponse, "%d %s", status, name)
			assert.Equal(t, status, se.Status)
			_, err = c.ServiceKey(context.Background())
			assert.ErrorIs(t, err, service.ErrBadResponse, "%d %s", status, name)
		}
		rw.mu.Lock()
		assert.Zero(t, rw.targetHits, "%d: the redirect was followed (Authorization sent: %v)", status, rw.targetAuth != nil)
		rw.mu.Unlock()
		// The caller's client is copied, not changed: its own policy is
		// still there, and it was never consulted.
		assert.NotNil(t, callers.CheckRedirect)
		assert.Zero(t, follow)
	}
}

func TestNewClientDoesNotChangeCallersClient(t *testing.T) {
	hc := &http.Client{}
	c := service.NewClient("http://127.0.0.1:1", hc).WithDevice(anyDevice)
	require.NoError(t, c.Err())
	assert.Nil(t, hc.CheckRedirect, "NewClient set CheckRedirect on the caller's client")
	assert.Zero(t, hc.Timeout)
}
