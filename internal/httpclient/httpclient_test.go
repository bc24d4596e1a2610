package httpclient

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The one loopback rule: plain http to "localhost" (any case) or a literal
// loopback address, IPv4-mapped included; https anywhere; nothing that
// could carry credentials or change the request.
func TestParseBaseURL(t *testing.T) {
	for _, ok := range []string{
		"https://svc.test", "https://svc.test/prefix/", "http://127.0.0.1:8080", "http://127.9.9.9",
		"http://localhost:1", "http://LOCALHOST", "http://[::1]:8080", "http://[::ffff:127.0.0.1]:80",
	} {
		u, r := ParseBaseURL(ok)
		if assert.Nil(t, r, ok) {
			assert.NotNil(t, u)
		}
	}
	for raw, insecure := range map[string]bool{
		"http://svc.test": true, "http://10.0.0.1": true, "http://localhost.svc.test": true, "http://[::2]": true,
		"ftp://svc.test": false, "https://": false, "http://:80": false, "https://u:p@svc.test": false,
		"https://svc.test?a=1": false, "https://svc.test?": false, "https://svc.test#f": false, "%zz": false,
	} {
		_, r := ParseBaseURL(raw)
		if assert.NotNil(t, r, raw) {
			assert.Equal(t, insecure, r.Insecure, raw)
			assert.NotContains(t, r.Reason, "svc.test", "the reason never repeats the URL")
		}
	}
}

func TestInProcessAndNoRedirects(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, "https://elsewhere.test/", http.StatusFound)
			return
		}
		w.Header().Set("X-Before", "1")
		w.WriteHeader(http.StatusTeapot)
		w.Header().Set("X-After", "1") // not sent, as on the wire
		_, _ = io.WriteString(w, r.RemoteAddr)
	})
	c := InProcess(h)
	resp, err := c.Get("http://" + InProcessHost + "/x")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusTeapot, resp.StatusCode)
	assert.Equal(t, "1", resp.Header.Get("X-Before"))
	assert.Empty(t, resp.Header.Get("X-After"))
	assert.Equal(t, InProcessHost, string(body))

	resp, err = c.Get("http://" + InProcessHost + "/away")
	require.NoError(t, err)
	assert.Equal(t, http.StatusFound, resp.StatusCode, "the redirect comes back, not followed")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+InProcessHost+"/x", nil)
	require.NoError(t, err)
	_, err = c.Do(req)
	assert.ErrorIs(t, err, context.Canceled)

	assert.Equal(t, 7, int(New(nil, 7).Timeout), "nil: a fresh client with the timeout")
	base := &http.Client{Timeout: 9}
	cp := New(base, 7)
	assert.Equal(t, 9, int(cp.Timeout))
	assert.Nil(t, base.CheckRedirect, "the caller's client is copied, not changed")
}

// With changes the copy only.
func TestWith(t *testing.T) {
	type client struct{ base, key string }
	c := &client{base: "b", key: "old"}
	n := With(c, func(n *client) { n.key = "new" })
	assert.Equal(t, client{base: "b", key: "new"}, *n)
	assert.Equal(t, client{base: "b", key: "old"}, *c, "the original is unchanged")
}
