package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/hellosim/hellosim/internal/clocktest"
	"github.com/hellosim/hellosim/reset"
	"github.com/hellosim/hellosim/reset/explain"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/policy"
)

// tokenError is a token endpoint error as Entra shapes it.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Codes       []int  `json:"error_codes"`
	Suberror    string `json:"suberror"`
	TraceID     string `json:"trace_id"`
}

// postToken posts a form to the tenant's v2 token (or devicecode) endpoint.
func (w *world) postToken(path string, form url.Values) (int, tokenError, map[string]any) {
	w.t.Helper()
	resp, err := w.client.PostForm(w.tenantURL(path), form)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		w.t.Fatal(err)
	}
	b, _ := json.Marshal(raw)
	var te tokenError
	_ = json.Unmarshal(b, &te)
	return resp.StatusCode, te, raw
}

func challengeOf(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// authURL is a v2 authorization request of the PIN Reset Client with
// extra parameters.
func (w *world) authURL(extra url.Values) string {
	v := url.Values{"response_type": {"code"}, "client_id": {identity.PINResetClientAppID}, "redirect_uri": {loopback},
		"scope": {"openid offline_access " + pinResetScope}, "state": {"s1"}}
	for k, vs := range extra {
		v[k] = vs
	}
	for k, vs := range v {
		if len(vs) == 1 && vs[0] == "" {
			delete(v, k)
		}
	}
	return w.tenantURL("/oauth2/v2.0/authorize?" + v.Encode())
}

// codeFor runs the pages to a code with PKCE verifier.
func (w *world) codeFor(verifier string) string {
	w.t.Helper()
	cb := w.agent().authorize(w.authURL(url.Values{"code_challenge": {challengeOf(verifier)}, "code_challenge_method": {"S256"}}), userUPN)
	code, err := callback(cb, "s1")
	if err != nil {
		w.t.Fatal(err)
	}
	return code
}

func (w *world) redeem(code, verifier string) (int, tokenError, map[string]any) {
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {identity.PINResetClientAppID},
		"code": {code}, "redirect_uri": {loopback}}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	return w.postToken("/oauth2/v2.0/token", form)
}

// An authorization request of a public client without PKCE, or with the
// plain method, goes back to the (registered) redirect URI with
// invalid_request and the state; no sign-in page is shown.
func TestPKCEMissingOrPlainRefused(t *testing.T) {
	w := newWorld(t)
	for name, extra := range map[string]url.Values{
		"missing":        {},
		"plain":          {"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"plain"}},
		"method omitted": {"code_challenge": {strings.Repeat("a", 43)}},
	} {
		resp := w.agent().get(w.authURL(extra))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != "127.0.0.1:53123" ||
			loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "s1" {
			t.Errorf("%s: %d %s", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

// A wrong verifier is refused with AADSTS50148, and the code is spent.
func TestWrongVerifierRefused(t *testing.T) {
	w := newWorld(t)
	w.onboard()
	verifier := oauth2.GenerateVerifier()
	code := w.codeFor(verifier)
	status, te, _ := w.redeem(code, oauth2.GenerateVerifier())
	if status != 400 || te.Error != "invalid_grant" || len(te.Codes) != 1 || te.Codes[0] != 50148 ||
		!strings.HasPrefix(te.Description, "AADSTS50148: ") || !strings.Contains(te.Description, "\r\nTrace ID: ") {
		t.Fatalf("wrong verifier: %d %+v", status, te)
	}
	if status, te, _ := w.redeem(code, verifier); status != 400 || te.Error != "invalid_grant" {
		t.Fatalf("the right verifier after a wrong one: %d %+v", status, te)
	}
	// Without a verifier at all.
	code = w.codeFor(verifier)
	if status, te, _ := w.redeem(code, ""); status != 400 || te.Error != "invalid_request" {
		t.Fatalf("no verifier: %d %+v", status, te)
	}
}

// A code is single-use: the second redemption is refused (AADSTS54005)
// and the refresh token the first yielded is revoked.
func TestCodeReuseRefusedAndRevokes(t *testing.T) {
	w := newWorld(t)
	w.onboard()
	verifier := oauth2.GenerateVerifier()
	code := w.codeFor(verifier)
	status, _, first := w.redeem(code, verifier)
	if status != 200 {
		t.Fatalf("first redemption: %d %v", status, first)
	}
	status, te, _ := w.redeem(code, verifier)
	if status != 400 || te.Error != "invalid_grant" || te.Codes[0] != 54005 {
		t.Fatalf("second redemption: %d %+v", status, te)
	}
	status, te, _ = w.postToken("/oauth2/v2.0/token", url.Values{"grant_type": {"refresh_token"},
		"client_id": {identity.PINResetClientAppID}, "refresh_token": {first["refresh_token"].(string)}})
	if status != 400 || te.Error != "invalid_grant" {
		t.Fatalf("refresh after the code's replay: %d %+v", status, te)
	}
}

// A code older than 60 s is refused (AADSTS70008), on the fake clock.
func TestCodeAfter60sRefused(t *testing.T) {
	clk := clocktest.New(time.Now())
	w := newWorld(t, withClock(clk))
	w.onboard()
	verifier := oauth2.GenerateVerifier()
	code := w.codeFor(verifier)
	clk.Advance(61 * time.Second)
	status, te, _ := w.redeem(code, verifier)
	if status != 400 || te.Error != "invalid_grant" || te.Codes[0] != 70008 {
		t.Fatalf("old code: %d %+v", status, te)
	}
	// Within the minute it works: the refusal is the age.
	code = w.codeFor(verifier)
	clk.Advance(59 * time.Second)
	if status, _, body := w.redeem(code, verifier); status != 200 {
		t.Fatalf("code at 59 s: %d %v", status, body)
	}
}

// An unregistered redirect URI gets an error page, never a redirect:
// the directory is no open redirector. So does an unknown client.
func TestUnregisteredRedirectNoRedirect(t *testing.T) {
	w := newWorld(t)
	for _, bad := range []string{"https://evil.example/cb", "https://cred.microsoft.com.evil.example", "https://cred.microsoft.com/", "ms-appx-web://Microsoft.AAD.BrokerPlugin/other", "http://evil.example:80/", "https://127.0.0.1:5000/cb"} {
		a := w.agent()
		resp := a.get(w.authURL(url.Values{"redirect_uri": {bad}, "code_challenge": {challengeOf(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(a.last, "AADSTS50011") {
			t.Errorf("%s: %d Location %q", bad, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	a := w.agent()
	resp := a.get(w.authURL(url.Values{"client_id": {"11111111-2222-4333-8444-555555555555"}}))
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Fatalf("unknown client: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Every POST form refuses a request without its CSRF token (403), and
// the flow does not move: the same form with the token then works.
func TestCSRFMissingOnEveryForm(t *testing.T) {
	w := newWorld(t)
	refused := func(a *agent, path string, form url.Values) {
		t.Helper()
		saved := a.last
		resp := a.post(path, form, "-")
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(a.last, "anti-forgery") {
			t.Fatalf("%s without a CSRF token: %d", path, resp.StatusCode)
		}
		resp = a.post(path, form, "wrong-token-of-the-right-length-aaaaaaaaaaa")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s with a wrong CSRF token: %d", path, resp.StatusCode)
		}
		a.last = saved
	}
	// The admin consent flow: user name, password, code, consent.
	a := w.agent()
	a.get(w.base + "/common/oauth2/authorize?response_type=code&client_id=b8456c59-1230-44c7-a4a2-99b085333e84&resource=https%3A%2F%2Fgraph.windows.net&redirect_uri=https%3A%2F%2Fcred.microsoft.com&state=x&prompt=admin_consent")
	refused(a, "/login/upn", url.Values{"upn": {adminUPN}})
	a.post("/login/upn", url.Values{"upn": {adminUPN}}, "")
	refused(a, "/login/password", url.Values{"password": {password}})
	a.post("/login/password", url.Values{"password": {password}}, "")
	code := w.totp(adminUPN)
	refused(a, "/login/mfa", url.Values{"code": {code}})
	a.post("/login/mfa", url.Values{"code": {code}}, "")
	refused(a, "/login/consent", url.Values{"action": {"accept"}})
	if tn, _ := w.dir.LookupTenant(w.tenant.ID); tn.HasConsent(identity.PINResetServiceAppID) {
		t.Fatal("a consent without a CSRF token was recorded")
	}
	if resp := a.post("/login/consent", url.Values{"action": {"accept"}}, ""); resp.StatusCode != http.StatusFound {
		t.Fatalf("consent with the token: %d", resp.StatusCode)
	}
	// The device login: user code, then the confirmation.
	w.onboard()
	_, _, da := w.postToken("/oauth2/v2.0/devicecode", url.Values{"client_id": {identity.PINResetClientAppID}, "scope": {pinResetScope}})
	a = w.agent()
	a.get(w.base + "/devicelogin")
	refused(a, "/devicelogin", url.Values{"code": {da["user_code"].(string)}})
	a.post("/devicelogin", url.Values{"code": {da["user_code"].(string)}}, "")
	a.signIn(userUPN)
	refused(a, "/login/confirm", url.Values{"action": {"accept"}})
	a.post("/login/confirm", url.Values{"action": {"accept"}}, "")
	if !strings.Contains(a.last, "You have signed in") {
		t.Fatalf("confirmation with the token: %s", a.last)
	}
}

// A wrong TOTP code is refused and the page asks again; a code already
// used once is refused too (RFC 6238 §5.2), even in a new sign-in.
func TestWrongAndReusedTOTPRefused(t *testing.T) {
	clk := clocktest.New(time.Now())
	w := newWorld(t, withClock(clk))
	w.onboard()
	start := func() *agent {
		a := w.agent()
		a.get(w.authURL(url.Values{"code_challenge": {challengeOf(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}))
		a.post("/login/upn", url.Values{"upn": {userUPN}}, "")
		a.post("/login/password", url.Values{"password": {password}}, "")
		return a
	}
	a := start()
	code := w.totp(userUPN)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if resp := a.post("/login/mfa", url.Values{"code": {wrong}}, ""); resp.StatusCode != 200 || !strings.Contains(a.last, "That code didn") {
		t.Fatalf("wrong code: %d %s", resp.StatusCode, a.last)
	}
	if resp := a.post("/login/mfa", url.Values{"code": {code}}, ""); resp.StatusCode != http.StatusFound {
		t.Fatalf("right code: %d %s", resp.StatusCode, a.last)
	}
	b := start() // same 30-second step, same code
	if resp := b.post("/login/mfa", url.Values{"code": {code}}, ""); resp.StatusCode != 200 || !strings.Contains(b.last, "That code didn") {
		t.Fatalf("reused code: %d %s", resp.StatusCode, b.last)
	}
}

// Wrong passwords count toward the user's lockout: after the threshold
// the right password is refused too, and the words are those for an
// unknown user: the page never says whether a user exists.
func TestLockoutAndNoUserEnumeration(t *testing.T) {
	w := newWorld(t, withLockout(3))
	try := func(upn, pw string) string {
		a := w.agent()
		a.get(w.authURL(url.Values{"code_challenge": {challengeOf(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}))
		a.post("/login/upn", url.Values{"upn": {upn}}, "")
		a.post("/login/password", url.Values{"password": {pw}}, "")
		return errorText(a.last)
	}
	unknown := try("nobody@contoso.test", "whatever-password")
	if unknown == "" {
		t.Fatal("no error for an unknown user")
	}
	for i := 0; i < 3; i++ {
		if got := try(userUPN, "wrong password!"); got != unknown {
			t.Fatalf("wrong password %d: %q, unknown user: %q", i, got, unknown)
		}
	}
	if got := try(userUPN, password); got != unknown {
		t.Fatalf("locked account with the right password: %q", got)
	}
	// Another user is not locked: the lockout is the user's.
	a := w.agent()
	cb := a.authorize(w.authURL(url.Values{"code_challenge": {challengeOf(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}), adminUPN)
	if cb.Query().Get("code") == "" {
		t.Fatalf("admin: %s", cb)
	}
}

func errorText(page string) string {
	i := strings.Index(page, `role="alert">`)
	if i < 0 {
		return ""
	}
	rest := page[i+len(`role="alert">`):]
	return rest[:strings.Index(rest, "<")]
}

// A user who is not a Global Administrator following an admin-consent
// link gets consent_required at the redirect URI, and nothing is
// consented.
func TestNonAdminConsentRefused(t *testing.T) {
	w := newWorld(t)
	a := w.agent()
	a.get(w.base + "/common/oauth2/authorize?response_type=code&client_id=9115dd05-fad5-4f9c-acc7-305d08b1b04e&resource=https%3A%2F%2Fcred.microsoft.com%2F&redirect_uri=ms-appx-web%3A%2F%2FMicrosoft.AAD.BrokerPlugin%2F9115dd05-fad5-4f9c-acc7-305d08b1b04e&state=6765f8c5-f4a7-4029-b667-46a6776ad611&prompt=admin_consent")
	resp := a.signIn(userUPN)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Scheme != "ms-appx-web" ||
		loc.Query().Get("error") != "consent_required" || loc.Query().Get("state") != "6765f8c5-f4a7-4029-b667-46a6776ad611" || loc.Query().Get("code") != "" {
		t.Fatalf("non-admin consent: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if tn, _ := w.dir.LookupTenant(w.tenant.ID); len(tn.ConsentedApps) != 0 {
		t.Fatalf("consents after a non-admin: %v", tn.ConsentedApps)
	}
}

// Before both consents, a token for the PIN reset service is refused at
// the token endpoint with Entra's answer; after the admin consents
// through the pages (the two links), the same request succeeds; the admin
// consent's own code (no PKCE) redeems nothing.
func TestPINResetTokenBeforeOnboardingRefused(t *testing.T) {
	w := newWorld(t)
	// What a device's non-destructive reset checks first: the tenant's
	// onboarding, as the directory answers it.
	nonDestructive := func() error {
		tn, err := w.dir.Tenant(context.Background(), w.tenant.ID)
		if err != nil {
			t.Fatal(err)
		}
		return reset.Check(reset.Device{Join: identity.AzureADJoined, Trust: identity.KeyTrust, Edition: reset.Enterprise,
			Version: reset.Windows11v23H2, Account: reset.EnterpriseAccount, SignedIn: true,
			Network: reset.Network{DomainController: true, FederationService: true}},
			reset.Policy{EnablePINRecovery: true, Source: policy.DeviceMDM}, reset.Tenant{Tenant: tn},
			reset.EntrySettings, reset.KindNonDestructive)
	}
	if err := nonDestructive(); !errors.Is(err, reset.ReasonNotOnboarded) || explain.Message(err) != reset.ReasonNotOnboarded.Message() {
		t.Fatalf("non-destructive reset before onboarding: %v", err)
	}
	verifier := oauth2.GenerateVerifier()
	status, te, _ := w.redeem(w.codeFor(verifier), verifier)
	if status != 400 || te.Error != "invalid_grant" || te.Suberror != "consent_required" || te.Codes[0] != 65001 ||
		!strings.Contains(te.Description, "has not consented to use the application with ID 'b8456c59-1230-44c7-a4a2-99b085333e84' named 'Microsoft Pin Reset Service Production'") {
		t.Fatalf("before onboarding: %d %+v", status, te)
	}
	links := []string{
		"/common/oauth2/authorize?response_type=code&client_id=b8456c59-1230-44c7-a4a2-99b085333e84&resource=https%3A%2F%2Fgraph.windows.net&redirect_uri=https%3A%2F%2Fcred.microsoft.com&state=e9191523-6c2f-4f1d-a4f9-c36f26f89df0&prompt=admin_consent",
		"/common/oauth2/authorize?response_type=code&client_id=9115dd05-fad5-4f9c-acc7-305d08b1b04e&resource=https%3A%2F%2Fcred.microsoft.com%2F&redirect_uri=ms-appx-web%3A%2F%2FMicrosoft.AAD.BrokerPlugin%2F9115dd05-fad5-4f9c-acc7-305d08b1b04e&state=6765f8c5-f4a7-4029-b667-46a6776ad611&prompt=admin_consent",
	}
	var consentCode string
	for i, l := range links {
		if tn, _ := w.dir.LookupTenant(w.tenant.ID); tn.Onboarded() {
			t.Fatalf("onboarded after %d consents", i)
		}
		cb := w.agent().authorize(w.base+l, adminUPN)
		if cb.Query().Get("code") == "" || cb.Query().Get("state") != map[int]string{0: "e9191523-6c2f-4f1d-a4f9-c36f26f89df0", 1: "6765f8c5-f4a7-4029-b667-46a6776ad611"}[i] {
			t.Fatalf("consent %d: %s", i, cb)
		}
		consentCode = cb.Query().Get("code")
	}
	if tn, _ := w.dir.LookupTenant(w.tenant.ID); !tn.Onboarded() {
		t.Fatal("not onboarded after both consents")
	}
	if err := nonDestructive(); err != nil {
		t.Fatalf("non-destructive reset after onboarding: %v", err)
	}
	if status, te, _ := w.postToken("/oauth2/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {identity.PINResetClientAppID},
		"code": {consentCode}, "redirect_uri": {"ms-appx-web://Microsoft.AAD.BrokerPlugin/9115dd05-fad5-4f9c-acc7-305d08b1b04e"}}); status != 400 || te.Error != "invalid_request" {
		t.Fatalf("the admin consent's code without PKCE: %d %+v", status, te)
	}
	if status, _, body := w.redeem(w.codeFor(verifier), verifier); status != 200 {
		t.Fatalf("after onboarding: %d %v", status, body)
	}
}

// The device code grant's refusals (RFC 8628 §3.5): pending, polled too
// fast (slow_down, the interval grows), denied on the page, expired.
func TestDeviceCodeRefusals(t *testing.T) {
	clk := clocktest.New(time.Now())
	w := newWorld(t, withClock(clk), withInterval(5*time.Second))
	w.onboard()
	start := func() string {
		status, _, da := w.postToken("/oauth2/v2.0/devicecode", url.Values{"client_id": {identity.PINResetClientAppID}, "scope": {pinResetScope}})
		if status != 200 || da["interval"] != float64(5) || da["expires_in"] != float64(900) {
			t.Fatalf("devicecode: %d %v", status, da)
		}
		return da["device_code"].(string) + "\x00" + da["user_code"].(string)
	}
	poll := func(dc string) tokenError {
		_, te, _ := w.postToken("/oauth2/v2.0/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"},
			"client_id": {identity.PINResetClientAppID}, "device_code": {dc}})
		return te
	}
	codes := start()
	dc, uc, _ := strings.Cut(codes, "\x00")
	if te := poll(dc); te.Error != "slow_down" {
		t.Fatalf("poll at once: %+v", te)
	}
	clk.Advance(5 * time.Second)
	if te := poll(dc); te.Error != "slow_down" {
		t.Fatalf("poll 5 s after a slow_down (interval now 10 s): %+v", te)
	}
	clk.Advance(15 * time.Second)
	if te := poll(dc); te.Error != "authorization_pending" {
		t.Fatalf("poll in time: %+v", te)
	}
	// Denied on the page.
	a := w.agent()
	a.get(w.base + "/devicelogin")
	a.post("/devicelogin", url.Values{"code": {uc}}, "")
	a.signIn(userUPN)
	a.post("/login/confirm", url.Values{"action": {"cancel"}}, "")
	clk.Advance(30 * time.Second)
	if te := poll(dc); te.Error != "access_denied" {
		t.Fatalf("after cancel: %+v", te)
	}
	// Expired.
	dc2, _, _ := strings.Cut(start(), "\x00")
	clk.Advance(15*time.Minute + time.Second)
	if te := poll(dc2); te.Error != "expired_token" {
		t.Fatalf("after 15 minutes: %+v", te)
	}
	// A wrong user code on the page is refused.
	a = w.agent()
	a.get(w.base + "/devicelogin")
	a.post("/devicelogin", url.Values{"code": {"BBBB-BBBB"}}, "")
	if !strings.Contains(a.last, "That code didn") {
		t.Fatalf("wrong user code: %s", a.last)
	}
}

// The pages send the security headers, and cookies are HttpOnly,
// SameSite=Lax and Secure (TLS).
func TestPageHeadersAndCookies(t *testing.T) {
	w := newWorld(t)
	a := w.agent()
	resp := a.get(w.authURL(url.Values{"code_challenge": {challengeOf(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"}}))
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src") {
		t.Fatalf("CSP %q", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatal("no X-Frame-Options")
	}
	cookies := resp.Cookies()
	if len(cookies) == 0 {
		t.Fatal("no cookie")
	}
	for _, c := range cookies {
		if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode {
			t.Fatalf("cookie %+v", c)
		}
	}
	_ = context.Background()
}

// The Enterprise applications page asks for a sign-in, shows nothing to a
// user who is not a Global Administrator, and answers JSON with format=json.
func TestEnterpriseApplicationsNeedsAdmin(t *testing.T) {
	w := newWorld(t)
	w.onboard()
	page := w.tenantURL("/enterpriseApplications?search=microsoft+pin&format=json")
	user := w.agent()
	user.get(page)
	if !strings.Contains(user.last, `action="/login/upn"`) {
		t.Fatalf("no sign-in first: %s", user.last)
	}
	resp := user.signIn(userUPN)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-in: %d", resp.StatusCode)
	}
	if resp := user.get(w.base + resp.Header.Get("Location")); resp.StatusCode != http.StatusForbidden || strings.Contains(user.last, "Pin Reset") {
		t.Fatalf("non-admin: %d %s", resp.StatusCode, user.last)
	}
	admin := w.agent()
	admin.get(page)
	resp = admin.signIn(adminUPN)
	admin.get(w.base + resp.Header.Get("Location"))
	var list struct {
		Value []struct {
			Name  string `json:"displayName"`
			AppID string `json:"appId"`
		} `json:"value"`
	}
	if err := json.Unmarshal([]byte(admin.last), &list); err != nil || len(list.Value) != 2 ||
		list.Value[0].Name != "Microsoft Pin Reset Client Production" || list.Value[1].AppID != identity.PINResetServiceAppID {
		t.Fatalf("admin: %v %s", err, admin.last)
	}
}

// The Hello grants the directory had before its pages still answer at the
// tenant's token endpoint: a sign-in nonce (srv_challenge).
func TestHelloGrantsStillServed(t *testing.T) {
	w := newWorld(t)
	status, _, body := w.postToken("/oauth2/v2.0/token", url.Values{"grant_type": {"srv_challenge"}})
	if status != http.StatusOK || body["Nonce"] == "" || body["Nonce"] == nil {
		t.Fatalf("srv_challenge: %d %v", status, body)
	}
	status, te, _ := w.postToken("/oauth2/v2.0/token", url.Values{"grant_type": {"password"}})
	if status != http.StatusBadRequest || te.Error != "unsupported_grant_type" {
		t.Fatalf("password grant: %d %+v", status, te)
	}
}
