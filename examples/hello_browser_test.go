package examples_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hellosim/hellosim/internal/chromium"
	"github.com/hellosim/hellosim/internal/chromium/chromiumtest"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
)

// signInInChromium is the user at the directory's real pages in headless
// Chromium, which trusts the directory's CA by its SPKI hash: it opens the
// address hello printed, signs in (user name, password, TOTP code;
// consent if asked) and is redirected to hello's loopback listener, whose
// page it returns.
func (p *threeProcs) signInInChromium(t *testing.T, ctx context.Context, addr string) string {
	t.Helper()
	type css = chromedp.CSS
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(addr),
		chromedp.WaitVisible(css("#upn")),
		chromedp.SetValue(css("#upn"), p.demo.User.UPN), chromedp.Click(css("#next")),
		chromedp.WaitVisible(css("#password")),
		chromedp.SendKeys(css("#password"), p.demo.User.Password), chromedp.Click(css("#signin")),
		chromedp.WaitVisible(css("#code"))))
	// The authenticator's code; if an earlier sign-in spent it (a code is
	// good once), the next one, which the directory takes a step early.
	code := runIn(t, t.TempDir(), t.TempDir(), "", "directory", "totp", p.demo.User.TOTPSecret)
	require.Zero(t, code.code, code.stderr)
	next, err := idp.TOTPCodeAt(p.demo.User.TOTPSecret, time.Now().Add(idp.TOTPPeriod))
	require.NoError(t, err)
	for i, c := range []string{strings.TrimSpace(code.stdout), next} {
		require.NoError(t, chromedp.Do(ctx, chromedp.SetValue(css("#code"), c), chromedp.Click(css("#verify"))))
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			// Between two pages the document goes away under a read:
			// read again on the next turn.
			loc, err := chromedp.Run(ctx, chromedp.Location())
			if err != nil {
				continue
			}
			page, err := chromedp.Run(ctx, chromedp.OuterHTML(css("html")))
			if err != nil {
				continue
			}
			switch {
			case strings.HasPrefix(loc, "http://127.0.0.1:") && strings.Contains(page, `id="hello-signin"`):
				return page
			case strings.Contains(page, `id="accept"`):
				require.NoError(t, chromedp.Do(ctx, chromedp.Click(css("#accept"))))
			case i == 0 && strings.Contains(page, "code didn"):
				deadline = time.Time{} // try the next code
			}
		}
	}
	t.Fatal("the browser did not come back to hello")
	return ""
}

// TestHelloBrowserSignIn: hello reset --non-destructive against the
// directory and the service, without -device-code, signs in as native
// apps do. The test reads the address hello prints and completes the
// sign-in in headless Chromium through the directory's pages; the
// browser is redirected to hello's loopback listener, hello redeems the
// code with its PKCE verifier, binds the tokens to the device key and
// recovers; the new PIN unlocks and the old one is refused.
func TestHelloBrowserSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and Chromium")
	}
	chromiumtest.Require(t)
	p, home, state := provisionedWithRecovery(t)

	start := time.Now()
	ctx := chromiumtest.Start(t, chromium.Options{SPKIHashes: chromium.SPKIHashes([]byte(p.demo.CAPEM))})
	var page string
	r := p.helloWith(t, home, "739164\n739164\n", func(t *testing.T, line string) {
		if m := signInPageRE.FindStringSubmatch(line); m != nil {
			u, err := url.Parse(m[1])
			require.NoError(t, err)
			q := u.Query()
			assert.Equal(t, "S256", q.Get("code_challenge_method"))
			assert.Empty(t, q.Get("code_verifier"))
			assert.True(t, strings.HasPrefix(q.Get("redirect_uri"), "http://127.0.0.1:"), q.Get("redirect_uri"))
			page = p.signInInChromium(t, ctx, m[1])
		}
	}, "-state", state, "reset", "--non-destructive", "-no-browser")
	require.Zero(t, r.code, "reset: %s%s", r.stdout, r.stderr)
	assert.Contains(t, page, "You can close this tab")
	assert.Contains(t, r.stdout, "Signed in.")
	assert.Contains(t, r.stdout, "Token bound to this device's key.")
	assert.Contains(t, r.stdout, "keys and certificates kept")
	t.Logf("browser sign-in and reset: %s", time.Since(start).Round(time.Millisecond))

	r = runIn(t, home, home, "739164\n", "hello", "-state", state, "sign", "-m", "after the browser sign-in")
	require.Zero(t, r.code, "the new PIN unlocks: %s%s", r.stdout, r.stderr)
	r = runIn(t, home, home, "582046\n", "hello", "-state", state, "sign")
	assert.Equal(t, 3, r.code, "the old PIN no longer does: %s", r.stderr)
}

// A redirect to hello's listener with another state is refused, and its
// code (a real one, issued to the user) is not redeemed: the directory
// still holds it unspent, which a wrong verifier shows (AADSTS50148, not
// 54005 "already redeemed").
func TestHelloBrowserSignInRefusesAnotherState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers")
	}
	p := startDirectoryAndService(t)
	home := t.TempDir()
	var code, redirectURI string
	r := p.helloWith(t, home, "", func(t *testing.T, line string) {
		m := signInPageRE.FindStringSubmatch(line)
		if m == nil {
			return
		}
		jar, _ := cookiejar.New(nil)
		user := &browser{t: t, base: p.dirBase, c: &http.Client{Jar: jar, Transport: p.dirClient.Transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
		user.get(m[1])
		resp := user.signIn(p.demo.User.UPN, p.demo.User.Password, p.demo.User.TOTPSecret)
		require.Equal(t, http.StatusFound, resp.StatusCode, user.last)
		back, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		q := back.Query()
		code = q.Get("code")
		require.NotEmpty(t, code)
		q.Set("state", "forged-"+q.Get("state"))
		back.RawQuery = q.Encode()
		redirectURI = back.Scheme + "://" + back.Host + back.Path
		got := user.get(back.String())
		assert.Equal(t, http.StatusBadRequest, got.StatusCode, user.last)
	}, "-state", filepath.Join(home, "state"), "provision",
		"-directory", p.demo.Issuer, "-service", p.svcBase, "-ca", p.caFile, "-no-browser")
	assert.Equal(t, 7, r.code, "%s%s", r.stdout, r.stderr)
	assert.Contains(t, r.stderr, "state does not match")
	assert.NotContains(t, r.stdout+r.stderr, code, "the code is never printed")
	require.NotEmpty(t, code)

	var meta struct {
		Token string `json:"token_endpoint"`
	}
	resp, err := p.dirClient.Get(p.demo.Issuer + "/.well-known/openid-configuration")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&meta))
	resp.Body.Close()
	resp, err = p.dirClient.PostForm(meta.Token, url.Values{"grant_type": {"authorization_code"},
		"client_id": {identity.PINResetClientAppID}, "code": {code}, "redirect_uri": {redirectURI},
		"code_verifier": {strings.Repeat("A", 43)}})
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Codes []int `json:"error_codes"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	assert.Equal(t, []int{50148}, out.Codes, "the code was not redeemed by hello")
}
