package web_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/hellosim/hellosim/internal/chromium"
	"github.com/hellosim/hellosim/internal/chromium/chromiumtest"
	"github.com/hellosim/hellosim/reset/identity"
)

// The two admin-consent links of the PIN reset documentation, verbatim.
var consentLinks = []string{
	"https://login.windows.net/common/oauth2/authorize?response_type=code&client_id=b8456c59-1230-44c7-a4a2-99b085333e84&resource=https%3A%2F%2Fgraph.windows.net&redirect_uri=https%3A%2F%2Fcred.microsoft.com&state=e9191523-6c2f-4f1d-a4f9-c36f26f89df0&prompt=admin_consent",
	"https://login.windows.net/common/oauth2/authorize?response_type=code&client_id=9115dd05-fad5-4f9c-acc7-305d08b1b04e&resource=https%3A%2F%2Fcred.microsoft.com%2F&redirect_uri=ms-appx-web%3A%2F%2FMicrosoft.AAD.BrokerPlugin%2F9115dd05-fad5-4f9c-acc7-305d08b1b04e&state=6765f8c5-f4a7-4029-b667-46a6776ad611&prompt=admin_consent",
}

// browser starts headless Chromium with login.windows.net and
// cred.microsoft.com mapped to the test server, every other host name
// unresolvable (nothing leaves the machine), and the test's certificate
// authority trusted by its SPKI hash — certificate checks stay on.
func (w *world) browser(t *testing.T) (context.Context, string) {
	t.Helper()
	hostPort := strings.TrimPrefix(w.base, "https://")
	ctx := chromiumtest.Start(t, chromium.Options{
		Hosts:      map[string]string{"login.windows.net": hostPort, "cred.microsoft.com": hostPort},
		SPKIHashes: w.cert.SPKIHashes,
	})
	dir := os.Getenv("HELLOSIM_ARTIFACTS")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "hellosim-browser-"); err != nil {
			t.Fatal(err)
		}
	}
	dir = filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return ctx, dir
}

// shot saves a screenshot of the page as a test artifact.
func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readText waits for the element wait to show, then reads the text of sel.
func readText(t *testing.T, ctx context.Context, wait, sel string) string {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(wait))); err != nil {
		t.Fatalf("wait for %s: %v", wait, err)
	}
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// signInPages types the user name, password and TOTP code into the pages.
func (w *world) signInPages(t *testing.T, ctx context.Context, dir, upn string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("#upn")), chromedp.SendKeys(chromedp.CSS("#upn"), upn), chromedp.Click(chromedp.CSS("#next")),
		chromedp.WaitVisible(chromedp.CSS("#password")),
	); err != nil {
		t.Fatalf("user name page: %v", err)
	}
	shot(t, ctx, dir, "password")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#password"), password), chromedp.Click(chromedp.CSS("#signin")), chromedp.WaitVisible(chromedp.CSS("#code"))); err != nil {
		t.Fatalf("password page: %v", err)
	}
	shot(t, ctx, dir, "mfa")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#code"), w.totp(upn)), chromedp.Click(chromedp.CSS("#verify"))); err != nil {
		t.Fatalf("code page: %v", err)
	}
}

// In a real browser, the documentation's two consent links, unchanged,
// onboard the tenant: the Global Administrator signs in with password and
// TOTP, accepts, lands on each redirect URI with a code and the link's
// state, and finds both service principals on the Enterprise applications
// page.
func TestBrowserConsentLinksOnboard(t *testing.T) {
	w := newWorld(t)
	ctx, dir := w.browser(t)

	// Redirects the browser cannot follow (ms-appx-web:) are read off the
	// wire: the Location of each redirect response.
	var mu sync.Mutex
	var locations []string
	err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*network.EventResponseReceivedExtraInfo); ok && e.StatusCode/100 == 3 {
			for k, v := range e.Headers {
				if strings.EqualFold(k, "location") {
					mu.Lock()
					locations = append(locations, v.(string))
					mu.Unlock()
				}
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	waitLocation := func(prefix string) *url.URL {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			for _, l := range locations {
				if strings.HasPrefix(l, prefix) {
					mu.Unlock()
					u, err := url.Parse(l)
					if err != nil {
						t.Fatal(err)
					}
					return u
				}
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no redirect to %s; saw %v", prefix, locations)
		return nil
	}

	// 1. Connect Azure Active Directory with the PIN Reset Service.
	if err := chromedp.Do(ctx, chromedp.Navigate(consentLinks[0])); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, dir, "1-signin")
	w.signInPages(t, ctx, dir, adminUPN)
	app := readText(t, ctx, "#accept", "#app-name")
	if app != "Microsoft Pin Reset Service Production" {
		t.Fatalf("consent page names %q", app)
	}
	shot(t, ctx, dir, "1-consent")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#accept"))); err != nil {
		t.Fatal(err)
	}
	state := readText(t, ctx, "#state", "#state")
	code := readText(t, ctx, "#code", "#code")
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, dir, "1-redirect")
	u, _ := url.Parse(loc)
	if u.Host != "cred.microsoft.com" || u.Query().Get("state") != "e9191523-6c2f-4f1d-a4f9-c36f26f89df0" || u.Query().Get("code") == "" || state != u.Query().Get("state") || code == "" {
		t.Fatalf("landed on %s (state %q)", loc, state)
	}
	if tn, _ := w.dir.LookupTenant(w.tenant.ID); !tn.HasConsent(identity.PINResetServiceAppID) || tn.Onboarded() {
		t.Fatalf("after the first link: %v", tn.ConsentedApps)
	}

	// 2. Connect Azure Active Directory with the PIN Reset Client.
	if err := chromedp.Do(ctx, chromedp.Navigate(consentLinks[1])); err != nil {
		t.Fatal(err)
	}
	w.signInPages(t, ctx, dir, adminUPN)
	app = readText(t, ctx, "#accept", "#app-name")
	if app != "Microsoft Pin Reset Client Production" {
		t.Fatalf("consent page names %q", app)
	}
	shot(t, ctx, dir, "2-consent")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#accept"))); err != nil {
		t.Fatal(err)
	}
	r := waitLocation("ms-appx-web://Microsoft.AAD.BrokerPlugin/9115dd05-fad5-4f9c-acc7-305d08b1b04e")
	if r.Query().Get("state") != "6765f8c5-f4a7-4029-b667-46a6776ad611" || r.Query().Get("code") == "" {
		t.Fatalf("redirect %s", r)
	}
	if tn, _ := w.dir.LookupTenant(w.tenant.ID); !tn.Onboarded() {
		t.Fatalf("not onboarded after both links: %v", tn.ConsentedApps)
	}

	// 3. Confirm that the two PIN Reset service principals are registered:
	// Enterprise applications, search "Microsoft PIN".
	// The browser may still be winding down the ms-appx-web navigation
	// it cannot make, which aborts the next one: try a few times.
	apps := "https://login.windows.net/" + w.tenant.ID + "/enterpriseApplications"
	for i := 0; ; i++ {
		err := chromedp.Do(ctx, chromedp.Navigate(apps))
		if err == nil {
			break
		}
		if i == 4 || !strings.Contains(err.Error(), "ERR_ABORTED") {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS("#search")), chromedp.SendKeys(chromedp.CSS("#search"), "Microsoft PIN"), chromedp.Click(chromedp.CSS("#go")),
	); err != nil {
		t.Fatal(err)
	}
	list := readText(t, ctx, ".sp-name", "#apps")
	shot(t, ctx, dir, "3-enterprise-applications")
	for _, name := range []string{"Microsoft Pin Reset Service Production", "Microsoft Pin Reset Client Production"} {
		if !strings.Contains(list, name) {
			t.Errorf("Enterprise applications lacks %q: %s", name, list)
		}
	}
}

// In a real browser, a user signs in through the pages for a native app
// (authorization code + PKCE to a loopback redirect URI), and then
// completes a device code sign-in on /devicelogin; both tokens are ones
// the PIN reset service accepts.
func TestBrowserUserSignInAndDeviceCode(t *testing.T) {
	w := newWorld(t)
	w.onboard()
	ctx, dir := w.browser(t)

	// The native app's loopback listener (RFC 8252 §7.3).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan url.Values, 1)
	app := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.URL.Query():
		default:
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = rw.Write([]byte("<!DOCTYPE html><title>Signed in</title><p id=done>You can close this window.</p>"))
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = app.Serve(ln) }()
	t.Cleanup(func() { _ = app.Close() })

	conf := w.oauthConfig()
	conf.RedirectURL = "http://" + ln.Addr().String() + "/callback"
	verifier, state := oauth2.GenerateVerifier(), "st-"+oauth2.GenerateVerifier()[:12]
	if err := chromedp.Do(ctx, chromedp.Navigate(conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, dir, "1-signin")
	w.signInPages(t, ctx, dir, userUPN)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#done"))); err != nil {
		t.Fatal(err)
	}
	var q url.Values
	select {
	case q = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no callback")
	}
	if q.Get("state") != state {
		t.Fatalf("callback state %q", q.Get("state"))
	}
	tctx := context.WithValue(context.Background(), oauth2.HTTPClient, w.deviceClient())
	tok, err := conf.Exchange(tctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	w.serviceAccepts(tok.AccessToken)

	// Device code: the device shows a code, the user enters it on the page.
	da, err := conf.DeviceAuth(tctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(da.VerificationURI), chromedp.WaitVisible(chromedp.CSS("#code"))); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, dir, "2-devicelogin")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#code"), da.UserCode), chromedp.Click(chromedp.CSS("#next"))); err != nil {
		t.Fatal(err)
	}
	w.signInPages(t, ctx, dir, userUPN)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#accept"))); err != nil {
		t.Fatal(err)
	}
	shot(t, ctx, dir, "2-confirm")
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#accept"))); err != nil {
		t.Fatal(err)
	}
	msg := readText(t, ctx, "#message", "#message")
	shot(t, ctx, dir, "2-done")
	if !strings.Contains(msg, "You have signed in to Microsoft Pin Reset Client Production") {
		t.Fatalf("device login: %q", msg)
	}
	dtok, err := conf.DeviceAccessToken(tctx, da)
	if err != nil {
		t.Fatal(err)
	}
	w.serviceAccepts(dtok.AccessToken)
}
