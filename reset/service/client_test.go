package service_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/service"
)

// fakeServer answers every request with fn.
func fakeServer(t *testing.T, fn http.HandlerFunc) *service.Client {
	t.Helper()
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	return service.NewClient(srv.URL, &http.Client{Timeout: 2 * time.Second}).WithDevice(anyDevice)
}

func TestClientServerErrors(t *testing.T) {
	w := newWorld(t)
	env := x25519Env(t, w, w.alice)
	tok := w.alice.token(t)
	jsonReply := func(status int, body string, hdr ...string) http.HandlerFunc {
		return func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "application/json")
			for i := 0; i+1 < len(hdr); i += 2 {
				rw.Header().Set(hdr[i], hdr[i+1])
			}
			rw.WriteHeader(status)
			io.WriteString(rw, body)
		}
	}
	tests := []struct {
		name       string
		h          http.HandlerFunc
		sentinel   error
		status     int
		code       string
		retryAfter time.Duration
	}{
		{name: "503 with Retry-After", h: jsonReply(503, `{"error":"unavailable","message":"down"}`, "Retry-After", "7"),
			sentinel: service.ErrUnavailable, status: 503, code: "unavailable", retryAfter: 7 * time.Second},
		{name: "500 with html", h: func(rw http.ResponseWriter, r *http.Request) { http.Error(rw, "<html>oops</html>", 500) },
			sentinel: service.ErrUnavailable, status: 500, code: "unavailable"},
		{name: "502 empty", h: jsonReply(502, ``), sentinel: service.ErrUnavailable, status: 502, code: "unavailable"},
		{name: "429 with http-date", h: jsonReply(429, `{"error":"rate_limited","message":"slow down"}`,
			"Retry-After", time.Now().Add(30*time.Second).UTC().Format(http.TimeFormat)),
			sentinel: service.ErrRateLimited, status: 429, code: "rate_limited", retryAfter: 30 * time.Second},
		{name: "401 unknown code", h: jsonReply(401, `{"error":"something_new"}`), sentinel: service.ErrUnauthorized, status: 401, code: "something_new"},
		{name: "400 no body", h: jsonReply(400, ``), sentinel: service.ErrMalformedRequest, status: 400, code: "http_400"},
		{name: "200 malformed json", h: jsonReply(200, `{"sealed_key":`), sentinel: service.ErrBadResponse, status: 0, code: "bad_response"},
		{name: "200 extra member", h: jsonReply(200, `{"sealed_key":"AAAA","x":"y"}`), sentinel: service.ErrBadResponse, code: "bad_response"},
		{name: "200 not base64", h: jsonReply(200, `{"sealed_key":"!!!"}`), sentinel: service.ErrBadResponse, code: "bad_response"},
		{name: "200 garbage sealed key", h: jsonReply(200, `{"sealed_key":"`+base64.RawURLEncoding.EncodeToString(make([]byte, 80))+`"}`),
			sentinel: service.ErrBadResponse, code: "bad_response"},
		{name: "200 text/html", h: func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "text/html")
			io.WriteString(rw, `{"sealed_key":"AAAA"}`)
		}, sentinel: service.ErrBadResponse, status: 200, code: "bad_response"},
		{name: "200 oversize", h: jsonReply(200, `{"sealed_key":"`+strings.Repeat("A", service.MaxResponseBytes)+`"}`),
			sentinel: service.ErrBadResponse, status: 200, code: "bad_response"},
		{name: "200 truncated", h: func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "application/json")
			rw.Header().Set("Content-Length", "1000")
			rw.WriteHeader(200)
			io.WriteString(rw, `{"sealed_key":"AAAA`)
			// The handler returns with fewer bytes than promised: the
			// server closes the connection.
		}, sentinel: service.ErrBadResponse, status: 200, code: "bad_response"},
		{name: "hostile message sanitized", h: jsonReply(403, `{"error":"mfa_required","message":"a\u0000b\nc`+strings.Repeat("x", 1000)+`"}`),
			sentinel: service.ErrMFARequired, status: 403, code: "mfa_required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeServer(t, tc.h)
			key, err := c.Recover(context.Background(), tok, env)
			require.Error(t, err)
			assert.Nil(t, key)
			assert.ErrorIs(t, err, tc.sentinel)
			var se *service.Error
			require.ErrorAs(t, err, &se)
			if tc.status != 0 {
				assert.Equal(t, tc.status, se.Status)
			}
			assert.Equal(t, tc.code, se.Code)
			if tc.retryAfter != 0 {
				assert.InDelta(t, tc.retryAfter.Seconds(), se.RetryAfter.Seconds(), 2)
			}
			assert.LessOrEqual(t, len(se.Message), 200)
			assert.NotContains(t, se.Message, "\n")
		})
	}
}

// TestClientRefusesResponseSealedToAnotherKey puts a proxy between client
// and service that swaps the client's one-time key for its own: the service
// seals to the proxy's key, and the client must refuse what comes back.
func TestClientRefusesResponseSealedToAnotherKey(t *testing.T) {
	w := newWorld(t)
	proxy := func(rw http.ResponseWriter, r *http.Request) {
		resp := forwardEdited(t, w, r, func(req map[string]string) {
			evil, err := protector.NewReturnKey()
			require.NoError(t, err)
			req["return_key"] = base64.RawURLEncoding.EncodeToString(evil.PublicKey())
		})
		defer resp.Body.Close()
		rw.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		rw.WriteHeader(resp.StatusCode)
		io.Copy(rw, resp.Body)
	}
	c := fakeServer(t, proxy).WithDevice(w.alice.device).WithClock(w.clk.Now)
	env, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	key, err := c.Recover(context.Background(), w.alice.token(t), env)
	assert.Nil(t, key)
	// The device signed the hash of its own return key: the service sees
	// the swap and releases nothing.
	assert.ErrorIs(t, err, service.ErrInvalidProof)
	assert.Equal(t, 0, w.unwraps(), "the swapped request reached the service key")
}

// forwardEdited passes the client's request r on to w's service with its
// JSON body changed by edit, as a proxy in the middle could, and returns
// the service's answer.
func forwardEdited(t *testing.T, w *world, r *http.Request, edit func(req map[string]string)) *http.Response {
	t.Helper()
	var req map[string]string
	require.NoError(t, json.NewDecoder(r.Body).Decode(&req))
	edit(req)
	body, _ := json.Marshal(req)
	out, _ := http.NewRequest("POST", w.srv.URL+r.URL.Path, bytes.NewReader(body))
	out.Header = r.Header.Clone()
	out.Host = r.Host // as a TLS-terminating proxy does
	resp, err := w.srv.Client().Do(out)
	require.NoError(t, err)
	return resp
}

// TestClientRefusesResponseForAnotherEnvelope replays a genuine response to
// a different envelope: the seal is bound to the envelope, so it must not
// open.
func TestClientRefusesResponseForAnotherEnvelope(t *testing.T) {
	var proxy http.HandlerFunc
	front := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { proxy(rw, r) }))
	t.Cleanup(front.Close)
	// The service's public URL is the proxy's, as it is behind any proxy.
	w := newWorld(t, func(c *service.Config) { c.PublicURL = front.URL })
	envA, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	envB, _ := w.alice.envelope(t, w.keys[protector.HPKEX25519].Public())
	proxy = func(rw http.ResponseWriter, r *http.Request) {
		resp := forwardEdited(t, w, r, func(req map[string]string) {
			raw, _ := envA.MarshalBinary()
			req["envelope"] = base64.RawURLEncoding.EncodeToString(raw) // the service opens A ...
		})
		defer resp.Body.Close()
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(resp.StatusCode)
		io.Copy(rw, resp.Body)
	}
	c := service.NewClient(front.URL, &http.Client{Timeout: 2 * time.Second}).WithDevice(w.alice.device).WithClock(w.clk.Now)
	_, err := c.Recover(context.Background(), w.alice.token(t), envB) // ... the client asked about B
	assert.ErrorIs(t, err, service.ErrBadResponse)
}

func TestClientTimeoutsAndCancellation(t *testing.T) {
	w := newWorld(t)
	env := x25519Env(t, w, w.alice)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })

	t.Run("http client timeout", func(t *testing.T) {
		c := service.NewClient(slow.URL, &http.Client{Timeout: 100 * time.Millisecond}).WithDevice(anyDevice)
		_, err := c.Recover(context.Background(), w.alice.token(t), env)
		assert.ErrorIs(t, err, service.ErrUnavailable)
	})
	t.Run("context deadline", func(t *testing.T) {
		c := service.NewClient(slow.URL, nil).WithDevice(anyDevice)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := c.Recover(ctx, w.alice.token(t), env)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("cancelled before the call", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := w.client.Recover(ctx, w.alice.token(t), env)
		assert.ErrorIs(t, err, context.Canceled)
		_, err = service.NewInProcess(w.svc).WithDevice(anyDevice).ServiceKey(ctx)
		assert.ErrorIs(t, err, context.Canceled)
	})
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		l.Close()
		_, err = service.NewClient("http://"+addr, nil).WithDevice(anyDevice).ServiceKey(context.Background())
		assert.ErrorIs(t, err, service.ErrUnavailable)
	})
}

func TestClientRefusesBadInput(t *testing.T) {
	w := newWorld(t)
	env := x25519Env(t, w, w.alice)
	for _, u := range []string{"", "ftp://x", "http://", "http://user:pw@host", "http://host/?q=1", "::"} {
		c := service.NewClient(u, nil).WithDevice(anyDevice)
		_, err := c.ServiceKey(context.Background())
		assert.Error(t, err, u)
		_, err = c.Recover(context.Background(), "a.b.c", env)
		assert.Error(t, err, u)
	}
	for _, tok := range []string{"", "a.b.c\r\nX-Evil: 1", "a b", strings.Repeat("a", service.MaxTokenBytes+1)} {
		_, err := w.client.Recover(context.Background(), tok, env)
		assert.ErrorIs(t, err, service.ErrUnauthorized, "%.20q", tok)
	}
	_, err := w.client.Recover(context.Background(), "a.b.c", nil)
	assert.Error(t, err)
	assert.Zero(t, w.unwraps())
}

func TestClientBasePathPrefix(t *testing.T) {
	w := newWorld(t)
	mux := http.NewServeMux()
	mux.Handle("/pinreset/", http.StripPrefix("/pinreset", w.svc))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c := service.NewClient(srv.URL+"/pinreset/", srv.Client()).WithDevice(w.alice.device).WithClock(w.clk.Now)
	k, err := c.ServiceKey(context.Background())
	require.NoError(t, err)
	env, want := w.alice.envelope(t, k)
	got, err := c.Recover(context.Background(), w.alice.token(t), env)
	require.NoError(t, err)
	assert.True(t, got.Equal(want))
}

func TestErrorMatching(t *testing.T) {
	cases := []struct {
		e    *service.Error
		is   []error
		isnt []error
	}{
		{&service.Error{Status: 401, Code: service.CodeTokenReplayed}, []error{service.ErrReplay, service.ErrUnauthorized}, []error{service.ErrRateLimited}},
		{&service.Error{Status: 410, Code: service.CodeKeyRetired}, []error{service.ErrKeyRetired, protector.ErrUnknownKey}, []error{service.ErrMalformedRequest}},
		{&service.Error{Status: 400, Code: service.CodeBadEnvelope}, []error{service.ErrBadEnvelope, service.ErrMalformedRequest}, []error{protector.ErrUnknownKey}},
		{&service.Error{Status: 403, Code: "future_code"}, nil, []error{service.ErrUnauthorized, service.ErrMFARequired, service.ErrUnavailable}},
		{&service.Error{Code: service.CodeUnavailable, Err: errors.New("dial")}, []error{service.ErrUnavailable}, []error{service.ErrBadResponse}},
	}
	for _, c := range cases {
		for _, s := range c.is {
			assert.ErrorIs(t, c.e, s, c.e.Error())
		}
		for _, s := range c.isnt {
			assert.NotErrorIs(t, c.e, s, c.e.Error())
		}
	}
	e := &service.Error{Status: 429, Code: service.CodeRateLimited, Message: "slow", RetryAfter: 12 * time.Second}
	assert.Equal(t, "pin reset service: 429 rate_limited: slow (retry after 12s)", e.Error())
}
