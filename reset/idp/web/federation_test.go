package web_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/federation"
)

// commonAuthURL is authURL at /common: the user's domain picks the tenant.
func (w *world) commonAuthURL(verifier string) string {
	u := w.authURL(url.Values{"code_challenge": {challengeOf(verifier)}, "code_challenge_method": {"S256"}})
	return strings.Replace(u, "/"+w.tenant.ID+"/", "/common/", 1)
}

// toFederation opens an authorization request and posts the user name; it
// returns where the directory sends the browser (home realm discovery).
func (a *agent) toFederation(upn string) *url.URL {
	a.w.t.Helper()
	if resp := a.get(a.w.commonAuthURL("federated-verifier-" + strings.Repeat("v", 30))); resp.StatusCode != http.StatusOK {
		a.w.t.Fatalf("authorize: %d %s", resp.StatusCode, a.last)
	}
	return a.redirectTo(a.post("/login/upn", url.Values{"upn": {upn}}, ""), http.StatusFound, "user name, to the federation service")
}

// federationAnswer signs in at the federation page at u and returns where
// the service sends the browser back, wresult in it.
func (a *agent) federationAnswer(u *url.URL, upn, pw string) *url.URL {
	a.w.t.Helper()
	if resp := a.get(u.String()); resp.StatusCode != http.StatusOK || !strings.Contains(a.last, `name="password"`) {
		a.w.t.Fatalf("federation page: %d %s", resp.StatusCode, a.last)
	}
	q := u.Query()
	form := url.Values{"wa": {q.Get("wa")}, "wtrealm": {q.Get("wtrealm")}, "wreply": {q.Get("wreply")}, "wctx": {q.Get("wctx")},
		"username": {upn}, "password": {pw}}
	req, err := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		a.w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.redirectTo(a.do(req), http.StatusSeeOther, "federation sign-in, back to the directory")
}

func tokenClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Home realm discovery: a user name in a federated tenant's domain goes to
// that tenant's federation sign-in page, with the directory as realm, its
// return URL and a context; the page authenticates the user and sends the
// browser back with a signed assertion; the directory asks for the TOTP
// code and the code it issues makes a token naming the federation service.
// A user name the directory does not know in that domain goes there too.
func TestFederatedSignIn(t *testing.T) {
	w := newWorld(t, withFederation("fabrikam.test"))
	fab := w.fed["fabrikam.test"]
	if err := w.dir.Onboard(fab.tenant.ID); err != nil {
		t.Fatal(err)
	}
	a := w.agent()
	to := a.toFederation("Bob@Fabrikam.test")
	q := to.Query()
	if to.Host != fab.host || to.Path != federation.SignInPath || q.Get("wa") != "wsignin1.0" || q.Get("wtrealm") != w.base ||
		q.Get("wreply") != w.base+"/login/federation" || len(q.Get("wctx")) < 40 || q.Get("username") != fab.user.UPN {
		t.Fatalf("sent to %s", to)
	}
	// A wrong password at the federation page: its own answer, no assertion.
	if resp := a.get(to.String()); resp.StatusCode != http.StatusOK {
		t.Fatal(a.last)
	}
	back := a.federationAnswer(to, fab.user.UPN, password)
	if back.Host != strings.TrimPrefix(w.base, "https://") || back.Path != "/login/federation" || back.Query().Get("wresult") == "" {
		t.Fatalf("sent back to %s", back)
	}
	if resp := a.get(back.String()); resp.StatusCode != http.StatusOK || !strings.Contains(a.last, `name="code"`) {
		t.Fatalf("after the federation service: %d %s", resp.StatusCode, a.last)
	}
	resp := a.post("/login/mfa", url.Values{"code": {w.totp(fab.user.UPN)}}, "")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code, err := callback(loc, "s1")
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("after MFA: %d %v %s", resp.StatusCode, err, a.last)
	}
	status, te, raw := w.redeem(code, "federated-verifier-"+strings.Repeat("v", 30))
	if status != http.StatusOK {
		t.Fatalf("redeem: %d %+v", status, te)
	}
	c := tokenClaims(t, raw["access_token"].(string))
	if c["idp"] != "https://"+fab.host+"/adfs/ls" || c["tid"] != fab.tenant.ID || c["upn"] != fab.user.UPN {
		t.Fatalf("token claims %v", c)
	}

	// No user enumeration: an unknown name in the domain goes there too.
	if to := w.agent().toFederation("nobody@fabrikam.test"); to.Host != fab.host {
		t.Fatalf("unknown user sent to %s", to)
	}
}

// The federation page answers only its relying party at its registered
// reply URL, and a wrong password gets the page again, never an assertion.
func TestFederationPageRefusals(t *testing.T) {
	w := newWorld(t, withFederation("fabrikam.test"))
	fab := w.fed["fabrikam.test"]
	to := w.agent().toFederation(fab.user.UPN)
	for name, change := range map[string]func(q url.Values){
		"unregistered reply URL": func(q url.Values) { q.Set("wreply", "https://evil.test/login/federation") },
		"another realm":          func(q url.Values) { q.Set("wtrealm", "https://evil.test") },
		"no context":             func(q url.Values) { q.Del("wctx") },
	} {
		u := *to
		q := u.Query()
		change(q)
		u.RawQuery = q.Encode()
		a := w.agent()
		if resp := a.get(u.String()); resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || strings.Contains(a.last, `name="password"`) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, a.last)
		}
	}
	a := w.agent()
	to = a.toFederation(fab.user.UPN)
	q := to.Query()
	form := url.Values{"wa": {"wsignin1.0"}, "wtrealm": {q.Get("wtrealm")}, "wreply": {q.Get("wreply")}, "wctx": {q.Get("wctx")},
		"username": {fab.user.UPN}, "password": {"wrong password"}}
	resp, err := a.c.PostForm(to.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" {
		t.Fatalf("wrong password: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Every answer the directory must not accept: each is refused with its
// reason, ends the sign-in, and never reaches the code page.
func TestFederationAnswerRefusals(t *testing.T) {
	w := newWorld(t, withFederation("fabrikam.test", "northwind.test"))
	fab, north := w.fed["fabrikam.test"], w.fed["northwind.test"]
	issuer := fab.srv.Trust().Issuer
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(key *ecdsa.PrivateKey, iss, aud, upn, wctx string, life time.Duration) string {
		tok, err := federation.Issue(key, iss, aud, upn, wctx, w.clock.Now(), life)
		if err != nil {
			t.Fatal(err)
		}
		return w.base + "/login/federation?wresult=" + url.QueryEscape(tok)
	}
	for _, c := range []struct {
		name string
		// answer returns the URL the agent opens, given its flow's context.
		answer func(a *agent, to *url.URL) string
		want   string
	}{
		{"bad signature", func(_ *agent, to *url.URL) string {
			return forge(otherKey, issuer, w.base, fab.user.UPN, to.Query().Get("wctx"), time.Minute)
		}, "signature"},
		{"another tenant's federation service", func(_ *agent, to *url.URL) string {
			return forge(north.key, north.srv.Trust().Issuer, w.base, fab.user.UPN, to.Query().Get("wctx"), time.Minute)
		}, "signature"},
		{"another issuer name", func(_ *agent, to *url.URL) string {
			return forge(fab.key, north.srv.Trust().Issuer, w.base, fab.user.UPN, to.Query().Get("wctx"), time.Minute)
		}, "issued by https://adfs.northwind.test/adfs/services/trust"},
		{"wrong audience", func(_ *agent, to *url.URL) string {
			return forge(fab.key, issuer, "https://login.microsoftonline.com", fab.user.UPN, to.Query().Get("wctx"), time.Minute)
		}, "another audience"},
		{"lifetime too long", func(_ *agent, to *url.URL) string {
			return forge(fab.key, issuer, w.base, fab.user.UPN, to.Query().Get("wctx"), time.Hour)
		}, "lifetime is longer"},
		{"expired", func(a *agent, to *url.URL) string {
			back := a.federationAnswer(to, fab.user.UPN, password)
			w.clock.Advance(federation.DefaultLifetime + time.Minute)
			return back.String()
		}, "expired"},
		{"replayed", func(a *agent, to *url.URL) string {
			back := a.federationAnswer(to, fab.user.UPN, password)
			if a.get(back.String()); !strings.Contains(a.last, `name="code"`) {
				t.Fatalf("first use: %s", a.last)
			}
			return back.String()
		}, "used before"},
		{"answers another pending sign-in", func(_ *agent, _ *url.URL) string {
			other := w.agent()
			return other.federationAnswer(other.toFederation(fab.user.UPN), fab.user.UPN, password).String()
		}, "answers another sign-in"},
		{"another user", func(_ *agent, to *url.URL) string {
			return forge(fab.key, issuer, w.base, "eve@fabrikam.test", to.Query().Get("wctx"), time.Minute)
		}, "signed in eve@fabrikam.test"},
		{"no assertion", func(_ *agent, _ *url.URL) string { return w.base + "/login/federation" }, "no assertion"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := w.agent()
			to := a.toFederation(fab.user.UPN)
			resp := a.get(c.answer(a, to))
			if resp.StatusCode != http.StatusBadRequest || strings.Contains(a.last, `name="code"`) || !strings.Contains(a.last, c.want) {
				t.Fatalf("want a refusal saying %q, got %d: %s", c.want, resp.StatusCode, errorText(a.last))
			}
			// The sign-in is over: a good answer no longer helps.
			if a.get(w.base + "/login/federation"); !strings.Contains(a.last, "Start the sign-in again") {
				t.Fatalf("the flow lives on: %s", errorText(a.last))
			}
		})
	}
	// An answer opened in a flow that never went to a federation service.
	m := w.agent()
	m.get(w.commonAuthURL("federated-verifier-" + strings.Repeat("v", 30)))
	if resp := m.get(forge(fab.key, issuer, w.base, fab.user.UPN, "x", time.Minute)); resp.StatusCode != http.StatusBadRequest || !strings.Contains(m.last, "out of date") {
		t.Fatalf("a flow not at the federation service: %d %s", resp.StatusCode, m.last)
	}
	// An answer opened in a browser that did not start the sign-in.
	back := w.agent().federationAnswer(w.agent().toFederation(fab.user.UPN), fab.user.UPN, password)
	a := w.agent()
	if resp := a.get(back.String()); resp.StatusCode != http.StatusBadRequest || !strings.Contains(a.last, "not started in this browser") {
		t.Fatalf("another browser: %d %s", resp.StatusCode, errorText(a.last))
	}
}

// A second answer for the same sign-in (the user went back and signed in
// at the federation service again) is accepted: what refuses a replay is
// the used assertion, not the page the flow is on.
func TestFederationSecondAnswerAccepted(t *testing.T) {
	w := newWorld(t, withFederation("fabrikam.test"))
	fab := w.fed["fabrikam.test"]
	a := w.agent()
	to := a.toFederation(fab.user.UPN)
	for i := range 2 {
		back := a.federationAnswer(to, fab.user.UPN, password)
		if resp := a.get(back.String()); resp.StatusCode != http.StatusOK || !strings.Contains(a.last, `name="code"`) {
			t.Fatalf("answer %d: %d %s", i+1, resp.StatusCode, errorText(a.last))
		}
	}
}

// A federated tenant's user never signs in with a password at the
// directory, even where the directory trusts no federation service for the
// tenant (it cannot send the user anywhere, so the password page shows).
func TestFederatedUserPasswordRefused(t *testing.T) {
	w := newWorld(t)
	tn, err := w.dir.AddTenant(idp.TenantConfig{Domain: "untrusted.test", FederationSignInURL: "https://adfs.untrusted.test/adfs/ls/"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.dir.AddUser(idp.UserConfig{TenantID: tn.ID, UPN: "dan@untrusted.test", Password: password}); err != nil {
		t.Fatal(err)
	}
	a := w.agent()
	a.get(w.commonAuthURL("federated-verifier-" + strings.Repeat("v", 30)))
	a.post("/login/upn", url.Values{"upn": {"dan@untrusted.test"}}, "")
	if resp := a.post("/login/password", url.Values{"password": {password}}, ""); resp.StatusCode != http.StatusOK || strings.Contains(a.last, `name="code"`) ||
		!strings.Contains(a.last, "Your account or password is incorrect") {
		t.Fatalf("password of a federated user: %d %s", resp.StatusCode, a.last)
	}
}
