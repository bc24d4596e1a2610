package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/chromium/chromiumtest"
	"github.com/hellosim/hellosim/internal/devcert"
	"github.com/hellosim/hellosim/reset"
)

// startLoopback is a serving loopback listener expecting state, closed at
// cleanup.
func startLoopback(t *testing.T, state string) *loopback {
	t.Helper()
	lb, err := listenLoopback()
	require.NoError(t, err)
	lb.state = state
	go lb.serve()
	t.Cleanup(lb.close)
	return lb
}

// comeBack is the browser's redirect to lb with query q, answered with
// status: the page.
func comeBack(t *testing.T, lb *loopback, q url.Values, status int) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(lb.uri + "?" + q.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, status, resp.StatusCode)
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	require.NoError(t, err)
	return string(body)
}

// The listener is on 127.0.0.1 only: not on every interface, so no other
// machine can send it a redirect.
func TestLoopbackListensOn127001Only(t *testing.T) {
	lb := startLoopback(t, "s")
	addr, ok := lb.ln.Addr().(*net.TCPAddr)
	require.True(t, ok)
	assert.True(t, addr.IP.Equal(net.IPv4(127, 0, 0, 1)), "listens on %s", addr)
	assert.True(t, strings.HasPrefix(lb.uri, "http://127.0.0.1:"), lb.uri)
	addrs, err := net.InterfaceAddrs()
	require.NoError(t, err)
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ipn.IP.String(), lb.uri[len("http://127.0.0.1:"):len(lb.uri)-len(loopbackPath)]), time.Second)
		if err == nil {
			c.Close()
		}
		assert.Error(t, err, "the listener answers on %s", ipn.IP)
	}
}

// The authorization request carries the S256 challenge of a fresh 32-byte
// verifier, never the verifier; state and nonce are fresh each time.
func TestAuthRequestSendsOnlyTheChallenge(t *testing.T) {
	a, err := newAuthRequest("https://login.test/t/oauth2/v2.0/authorize", "client", "http://127.0.0.1:5000/signin", "")
	require.NoError(t, err)
	b, err := newAuthRequest("https://login.test/t/oauth2/v2.0/authorize", "client", "http://127.0.0.1:5000/signin", "")
	require.NoError(t, err)
	assert.Len(t, a.verifier, 43, "32 bytes, base64url")
	assert.NotContains(t, a.url, a.verifier, "the verifier stays here")
	u, err := url.Parse(a.url)
	require.NoError(t, err)
	q := u.Query()
	h := sha256.Sum256([]byte(a.verifier))
	assert.Equal(t, base64.RawURLEncoding.EncodeToString(h[:]), q.Get("code_challenge"))
	assert.Equal(t, "S256", q.Get("code_challenge_method"))
	assert.Equal(t, a.state, q.Get("state"))
	assert.Equal(t, a.nonce, q.Get("nonce"))
	assert.Equal(t, "http://127.0.0.1:5000/signin", q.Get("redirect_uri"))
	assert.NotEqual(t, a.verifier, b.verifier)
	assert.NotEqual(t, a.state, b.state)
	assert.NotEqual(t, a.nonce, b.nonce)
	_, err = newAuthRequest("http://login.test/authorize", "client", "http://127.0.0.1:5000/signin", "")
	assert.ErrorIs(t, err, errSignIn, "an authorization endpoint without TLS is refused")
}

// A redirect with another state is refused: no code comes out of it (so
// none is redeemed), and the sign-in ends with the state named.
func TestLoopbackRefusesAnotherState(t *testing.T) {
	lb := startLoopback(t, "the-state")
	page := comeBack(t, lb, url.Values{"code": {"stolen-code"}, "state": {"another-state"}}, http.StatusBadRequest)
	assert.Contains(t, page, "not for hello")
	code, err := lb.wait(context.Background(), 5*time.Second)
	assert.ErrorIs(t, err, errWrongState)
	assert.ErrorIs(t, err, errSignIn, "exit 7")
	assert.Empty(t, code)
	assert.NotContains(t, err.Error(), "stolen-code")
}

// Only the first redirect counts: a second one, even with the right state,
// is answered "already finished" and its code is not used.
func TestLoopbackTakesTheFirstRedirectOnly(t *testing.T) {
	lb := startLoopback(t, "the-state")
	page := comeBack(t, lb, url.Values{"code": {"first"}, "state": {"the-state"}}, http.StatusOK)
	assert.Contains(t, page, "You can close this tab")
	page = comeBack(t, lb, url.Values{"code": {"second"}, "state": {"the-state"}}, http.StatusConflict)
	assert.Contains(t, page, "already finished")
	code, err := lb.wait(context.Background(), 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "first", code)
	lb.close()
	_, err = http.Get(lb.uri + "?state=the-state&code=third")
	assert.Error(t, err, "the listener is closed after the sign-in")
}

// The directory's error answer (the user declined) and no answer at all
// end the sign-in with exit 7 and say which.
// The page the browser comes back to runs and loads nothing, is not
// cached, sends no referrer (its address holds the code) and cannot be
// framed.
func TestLoopbackAnswerPageHeaders(t *testing.T) {
	lb := startLoopback(t, "the-state")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(lb.uri + "?" + url.Values{"code": {"c"}, "state": {"the-state"}}.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	assert.Contains(t, csp, "default-src 'none'")
	assert.Contains(t, csp, "frame-ancestors 'none'")
	assert.NotContains(t, csp, "script-src")
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	assert.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
	code, err := lb.wait(context.Background(), 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "c", code)
}

func TestLoopbackErrorAnswerAndTimeout(t *testing.T) {
	lb := startLoopback(t, "the-state")
	page := comeBack(t, lb, url.Values{"error": {"access_denied"}, "error_description": {"AADSTS65004: User declined.\r\nTrace ID: x"}, "state": {"the-state"}}, http.StatusOK)
	assert.Contains(t, page, "access_denied")
	_, err := lb.wait(context.Background(), 5*time.Second)
	require.ErrorIs(t, err, errSignIn)
	assert.Equal(t, exitReset, exitCode(err))
	assert.Contains(t, err.Error(), "access_denied: AADSTS65004: User declined.")
	assert.NotContains(t, err.Error(), "Trace ID", "one line")

	// What the query carries reaches the terminal without its control
	// characters: no escape sequence from a redirect.
	lb = startLoopback(t, "the-state")
	comeBack(t, lb, url.Values{"error": {"access_denied\x1b[2J"}, "error_description": {"Declined\x1b]0;title\x07 here"}, "state": {"the-state"}}, http.StatusOK)
	_, err = lb.wait(context.Background(), 5*time.Second)
	require.ErrorIs(t, err, errSignIn)
	assert.NotContains(t, err.Error(), "\x1b")
	assert.NotContains(t, err.Error(), "\x07")
	assert.Contains(t, err.Error(), "access_denied?[2J: Declined?]0;title? here")

	quiet := startLoopback(t, "the-state")
	_, err = quiet.wait(context.Background(), 10*time.Millisecond)
	assert.ErrorIs(t, err, errNoRedirect)
	assert.Equal(t, exitReset, exitCode(err))
	assert.Contains(t, err.Error(), quiet.uri)
}

// An ID token naming another nonce is refused.
func TestCheckNonce(t *testing.T) {
	jwt := func(claims string) string {
		return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2ln"
	}
	assert.NoError(t, checkNonce(jwt(`{"nonce":"n-1"}`), "n-1"))
	for _, tok := range []string{jwt(`{"nonce":"n-2"}`), jwt(`{}`), "", "not.a.jwt"} {
		err := checkNonce(tok, "n-1")
		assert.True(t, errors.Is(err, errNonceMismatch), "%q: %v", tok, err)
	}
}

// -web-host-map takes DNS names mapped to loopback addresses with a port;
// anything else is a usage error that names the pair.
func TestParseHostMap(t *testing.T) {
	m, err := parseHostMap("adfs.fabrikam.test=127.0.0.1:8443, Login.MicrosoftOnline.US=[::1]:9")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"adfs.fabrikam.test": "127.0.0.1:8443", "login.microsoftonline.us": "[::1]:9"}, m)
	m, err = parseHostMap("")
	require.NoError(t, err)
	assert.Nil(t, m)
	for _, bad := range []string{
		"adfs.fabrikam.test",                    // no address
		"adfs.fabrikam.test=192.0.2.1:443",      // not loopback
		"adfs.fabrikam.test=localhost:443",      // a name, not an address
		"adfs.fabrikam.test=127.0.0.1",          // no port
		"adfs.fabrikam.test=127.0.0.1:0",        // no port to reach
		"adfs.fabrikam.test=127.0.0.1:99999",    // no such port
		"127.0.0.2=127.0.0.1:443",               // an address, not a name
		"a.test=127.0.0.1:1,A.test=127.0.0.1:2", // twice
		"bad name!=127.0.0.1:443",
	} {
		_, err := parseHostMap(bad)
		assert.Error(t, err, bad)
	}
	a := &app{}
	for _, tc := range []struct{ host, allowed, hostMap string }{
		{"", "", "a.test=127.0.0.1:1"},         // the map is the web host's
		{"chromium", "", "a.test=192.0.2.1:1"}, // not loopback
		{"chromium", "a.test", "a.test"},       // no address
	} {
		err := a.setWebHost(tc.host, tc.allowed, tc.hostMap, reset.EntryLockScreen)
		assert.ErrorIs(t, err, errUsage, "%+v", tc)
	}
}

// The lock-screen web host resolves a mapped name to its loopback address
// (the directory program's federation host, say), with the TLS name
// checked against the certificate, and opens it when the allowlist has
// it; unmapped, the same page is never asked for. The map does not open
// what the allowlist refuses.
func TestWebHostMapOpensTheMappedName(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	chromiumtest.Require(t)
	const name = "adfs.fabrikam.test"
	cert, err := devcert.New([]string{name})
	require.NoError(t, err)
	hosts := make(chan string, 256) // the Host of each request, in order
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hosts <- r.Host
		if r.URL.Path == "/moves-on" {
			// A page that goes on, by itself, to a host the
			// allowlist does not have: as a user would, clicking on.
			_, _ = w.Write([]byte(`<!doctype html><meta http-equiv="refresh" content="0;url=https://unlisted.test/"><p>moving on</p>`))
			return
		}
		_, _ = w.Write([]byte(`<!doctype html><title>Federation sign-in</title><p id="fed">AD FS</p>`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	page := "https://" + name + "/adfs/ls/"
	var got []string
	seen := func() []string {
		for {
			select {
			case h := <-hosts:
				got = append(got, h)
			default:
				return got
			}
		}
	}

	open := func(allowed, hostMap string) (string, error) {
		var stdout, stderr strings.Builder
		a := &app{stdout: &stdout, stderr: &stderr}
		require.NoError(t, a.setWebHost("chromium", allowed, hostMap, reset.EntryLockScreen))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		host, err := a.openWebHost(ctx, string(cert.CAPEM), page)
		if err == nil {
			host.close()
		}
		return stdout.String() + stderr.String(), err
	}

	// Mapped and allowed: the page opens, and the server sees its name.
	out, err := open(name, name+"="+addr)
	require.NoError(t, err, out)
	assert.Contains(t, out, "open in the lock-screen web host")
	require.NotEmpty(t, seen(), "the mapped name reached its server")
	for _, h := range seen() {
		assert.Equal(t, name, h, "the request names the mapped host")
	}

	// Mapped but not allowed: the host's message, and not one request.
	before := len(seen())
	_, err = open("", name+"="+addr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "We can't open that page right now.")
	assert.Len(t, seen(), before, "the map does not open what the allowlist refuses")

	// A page the host opened goes on to one it refuses: the session says
	// so (the reset's polling stops on it), with the message.
	var stdout, stderr strings.Builder
	a := &app{stdout: &stdout, stderr: &stderr}
	require.NoError(t, a.setWebHost("chromium", name, name+"="+addr, reset.EntryLockScreen))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	host, err := a.openWebHost(ctx, string(cert.CAPEM), "https://"+name+"/moves-on")
	require.NoError(t, err, stderr.String())
	defer host.close()
	require.Eventually(t, func() bool { return host.refused() != nil }, 30*time.Second, 50*time.Millisecond)
	err = host.refused()
	assert.ErrorIs(t, err, errSignIn)
	assert.Contains(t, err.Error(), "did not open unlisted.test")
	assert.Contains(t, stderr.String(), "We can't open that page right now.")
}
