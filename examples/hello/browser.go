package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"flag"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// signInFlags are the sign-in flags of the commands that sign in at a
// remote directory (provision -directory, reset): -device-code and
// -no-browser.
type signInFlags struct{ deviceCode, noBrowser bool }

func (f *signInFlags) add(fs *flag.FlagSet) {
	fs.BoolVar(&f.deviceCode, "device-code", false, "sign in at the directory (provision -directory) by device code: print the code and the page to enter it on, and wait (default: in a browser, with a redirect back to this program on 127.0.0.1)")
	fs.BoolVar(&f.noBrowser, "no-browser", false, "print the sign-in address but do not open it with xdg-open")
}

// signIn signs the user in at the directory: in a browser (authorization
// code with PKCE and a loopback redirect), or by device code when
// -device-code is given or the lock-screen web host shows the page.
func (r *remote) signIn(ctx context.Context, a *app) (tokens, error) {
	if a.signIn.deviceCode || a.webHost != nil {
		return r.deviceCodeSignIn(ctx, a)
	}
	return r.browserSignIn(ctx, a)
}

// signInScope is what every sign-in asks for: an ID token, a refresh
// token (bound to the device key later, see bound), and a token for the
// PIN reset service.
const signInScope = "openid offline_access " + serviceScope

// browserWait is how long a browser sign-in waits for the redirect.
var browserWait = 10 * time.Minute

// Browser sign-in failures (exit 7, as every failed sign-in).
var (
	errWrongState    = fmt.Errorf("%w: an answer for another sign-in came back to this program (its state does not match): refused, and its code was not used; run the command again", errSignIn)
	errNoRedirect    = fmt.Errorf("%w: no answer came back from the browser in time", errSignIn)
	errNoAuthorize   = fmt.Errorf("%w: the directory's discovery document names no authorization endpoint: sign in with -device-code", errSignIn)
	errNonceMismatch = fmt.Errorf("%w: the ID token is not for this sign-in (its nonce does not match): refused", errSignIn)
)

// browserSignIn signs the user in as native apps do (RFC 8252): the
// authorization code flow with PKCE (S256) in the system browser, the
// redirect coming back to a listener of this program on 127.0.0.1 and an
// ephemeral port (§7.3). It prints the address, opens it with xdg-open
// where there is a display (not with -no-browser), takes exactly one
// redirect, answers the browser with a page saying it may be closed,
// closes the listener, and redeems the code with the verifier at the
// token endpoint. The code and the tokens are never printed.
func (r *remote) browserSignIn(ctx context.Context, a *app) (tokens, error) {
	if r.authorizeURL == "" {
		return tokens{}, errNoAuthorize
	}
	lb, err := listenLoopback()
	if err != nil {
		return tokens{}, fmt.Errorf("%w: listen on 127.0.0.1 for the browser's redirect: %w", errSignIn, err)
	}
	defer lb.close()
	req, err := newAuthRequest(r.authorizeURL, r.clientID, lb.uri, r.cfg.UPN)
	if err != nil {
		return tokens{}, err
	}
	lb.state = req.state
	go lb.serve()
	fmt.Fprintf(a.stdout, "To sign in, open this address in a browser: %s\n", req.url)
	fmt.Fprintf(a.stdout, "Waiting for the browser to come back to %s ...\n", lb.uri)
	if !a.signIn.noBrowser {
		openBrowser(req.url)
	}
	code, err := lb.wait(ctx, browserWait)
	lb.close() // one redirect only: nothing more is taken
	if err != nil {
		return tokens{}, err
	}
	t, status, err := r.postToken(ctx, url.Values{"grant_type": {"authorization_code"}, "client_id": {r.clientID},
		"code": {code}, "redirect_uri": {lb.uri}, "code_verifier": {req.verifier}}, nil)
	switch {
	case err != nil:
		return tokens{}, err
	case status != http.StatusOK || t.Access == "":
		return tokens{}, fmt.Errorf("%w: the directory did not redeem the authorization code: %s: %s", errSignIn, t.Error, t.Desc)
	}
	if err := checkNonce(t.ID, req.nonce); err != nil {
		return tokens{}, err
	}
	fmt.Fprintln(a.stdout, "Signed in.")
	return t, nil
}

// checkNonce checks that the ID token names nonce. The ID token came over
// TLS from the token endpoint itself (OpenID Connect Core §3.1.3.7, 6):
// its nonce is what ties it to this request.
func checkNonce(idToken, nonce string) error {
	claims, err := unverifiedClaims(idToken)
	if got, _ := claims["nonce"].(string); err != nil || !equalString(got, nonce) {
		return errNonceMismatch
	}
	return nil
}

// authRequest is one authorization request: its URL, and the secrets
// that stay here (the PKCE verifier) or come back (state, nonce).
type authRequest struct {
	url                    string
	verifier, state, nonce string
}

// newAuthRequest builds the authorization request for redirect: a fresh
// 32-byte PKCE verifier, of which only the S256 challenge is in the URL
// (RFC 7636 §4.2), and a fresh state and nonce.
func newAuthRequest(endpoint, clientID, redirect, loginHint string) (authRequest, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" {
		return authRequest{}, fmt.Errorf("%w: the directory's authorization endpoint %q is not an https URL", errSignIn, endpoint)
	}
	req := authRequest{verifier: randomString(), state: randomString(), nonce: randomString()}
	challenge := sha256.Sum256([]byte(req.verifier))
	q := u.Query()
	q.Set("client_id", clientID)
	q.Set("response_type", "code")
	q.Set("redirect_uri", redirect)
	q.Set("scope", signInScope)
	q.Set("state", req.state)
	q.Set("nonce", req.nonce)
	q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(challenge[:]))
	q.Set("code_challenge_method", "S256")
	if loginHint != "" {
		q.Set("login_hint", loginHint)
	}
	u.RawQuery = q.Encode()
	req.url = u.String()
	return req, nil
}

// randomString is 32 random bytes, base64url: 43 characters, a valid PKCE
// verifier (RFC 7636 §4.1) and an unguessable state or nonce.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func equalString(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// loopbackPath is the path of the redirect URI.
const loopbackPath = "/signin"

// loopback is the listener the browser's redirect comes back to: on
// 127.0.0.1 only (never every interface), an ephemeral port. It takes
// the first request for loopbackPath and no other.
type loopback struct {
	ln    net.Listener
	srv   *http.Server
	uri   string
	state string
	taken atomic.Bool
	got   chan redirect
}

// redirect is what the one redirect brought: a code, or why not.
type redirect struct {
	code string
	err  error
}

func listenLoopback() (*loopback, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	lb := &loopback{ln: ln, uri: "http://" + ln.Addr().String() + loopbackPath, got: make(chan redirect, 1)}
	lb.srv = &http.Server{Handler: lb, ReadHeaderTimeout: 10 * time.Second}
	return lb, nil
}

func (lb *loopback) serve() { _ = lb.srv.Serve(lb.ln) }

// close stops the listener; a request being answered is let finish.
func (lb *loopback) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if lb.srv.Shutdown(ctx) != nil {
		_ = lb.srv.Close()
	}
}

// wait returns the code of the redirect, or why there is none.
func (lb *loopback) wait(ctx context.Context, d time.Duration) (string, error) {
	select {
	case r := <-lb.got:
		return r.code, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	case <-time.After(d):
		return "", fmt.Errorf("%w: nothing came back to %s within %s; run the command again (or sign in with -device-code)", errNoRedirect, lb.uri, d)
	}
}

func (lb *loopback) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != loopbackPath || req.Method != http.MethodGet {
		http.NotFound(w, req)
		return
	}
	if !lb.taken.CompareAndSwap(false, true) {
		answerPage(w, http.StatusConflict, "This sign-in is already finished", "hello took an earlier answer and used no other. You can close this tab.")
		return
	}
	q := req.URL.Query()
	var r redirect
	switch {
	case !equalString(q.Get("state"), lb.state):
		r.err = errWrongState
		answerPage(w, http.StatusBadRequest, "This answer is not for hello's sign-in", "Its state does not match the sign-in hello started, so hello refused it. You can close this tab.")
	case q.Get("error") != "":
		r.err = fmt.Errorf("%w: the directory answered %s: %s", errSignIn, clipText(q.Get("error"), 64), clipText(firstLine(q.Get("error_description")), 300))
		answerPage(w, http.StatusOK, "The sign-in did not complete", "The directory answered "+q.Get("error")+". You can close this tab; hello says what happened.")
	case q.Get("code") == "":
		r.err = fmt.Errorf("%w: the browser came back without a code", errSignIn)
		answerPage(w, http.StatusBadRequest, "The sign-in did not complete", "The answer has no code. You can close this tab.")
	default:
		r.code = q.Get("code")
		answerPage(w, http.StatusOK, "You are signed in", "hello has the answer it waited for. You can close this tab and go back to the terminal.")
	}
	lb.got <- r
}

// answerPage is the small page the browser shows at the end: it loads
// and runs nothing, is not cached, sends no referrer (the address holds
// the code) and is not shown in another site's frame.
func answerPage(w http.ResponseWriter, status int, title, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><html><head><meta charset="utf-8"><title>%[1]s</title><style>body{font-family:sans-serif;margin:3em}</style></head>`+
		`<body><h1 id="hello-signin">%[1]s</h1><p id="text">%[2]s</p></body></html>`, html.EscapeString(title), html.EscapeString(text))
}

// clipText is s for the terminal: control characters (an escape
// sequence the redirect's query carried) as '?', and at most n bytes,
// cut on a rune boundary.
func clipText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r")
	line, _, _ = strings.Cut(line, "\n")
	return line
}

// openBrowser runs xdg-open u where it is on the PATH and there is a
// display; it does not wait for it, and a failure is no error (the
// address is printed).
func openBrowser(u string) {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" || (os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "") {
		return
	}
	p, err := exec.LookPath("xdg-open")
	if err != nil {
		return
	}
	cmd := exec.Command(p, u)
	if cmd.Start() == nil {
		go func() { _ = cmd.Wait() }()
	}
}
