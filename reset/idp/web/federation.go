package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/hellosim/hellosim/reset/idp"
	"github.com/hellosim/hellosim/reset/idp/federation"
)

// federationReturnPath is where a federation service sends the browser
// back (wreply).
const federationReturnPath = "/login/federation"

// homeRealm is home realm discovery: when the user name's domain is a
// federated tenant's the directory trusts a federation service for, the
// browser goes to that tenant's federation sign-in page, carrying the
// flow's context (wctx), and homeRealm reports true. A tenant is found by
// its domain, never by its users, so the answer says nothing about whether
// the user exists.
func (s *Server) homeRealm(w http.ResponseWriter, r *http.Request, f *flow, domain string) bool {
	for id := range s.fed {
		t, err := s.dir.LookupTenant(id)
		if err != nil || t.Domain != domain || !t.Federated() || (f.tenant != "" && f.tenant != id) {
			continue
		}
		to, err := url.Parse(t.FederationSignInURL)
		if err != nil {
			return false
		}
		scheme := "https"
		if r.TLS == nil {
			scheme = "http"
		}
		f.fedTenant, f.fedCtx, f.step = id, randomToken(32), stepFederation
		q := to.Query()
		q.Set("wa", "wsignin1.0")
		q.Set("wtrealm", s.origin)
		// The answer comes back to the name the browser knows this server
		// by, where its flow cookie is; the federation service answers only
		// at reply URLs registered with it.
		q.Set("wreply", scheme+"://"+r.Host+federationReturnPath)
		q.Set("wctx", f.fedCtx)
		q.Set("username", f.upn)
		to.RawQuery = q.Encode()
		http.Redirect(w, r, to.String(), http.StatusFound)
		return true
	}
	return false
}

// federatedTenant reports whether tenantID's users sign in at a federation
// service rather than with a password here.
func (s *Server) federatedTenant(tenantID string) bool {
	t, err := s.dir.LookupTenant(tenantID)
	return err == nil && t.Federated()
}

// serveFederationReturn takes a federation service's answer: wresult, an
// assertion the tenant's trust verifies (signature, issuer, audience this
// directory, a short unexpired lifetime), for this browser's flow (wctx)
// and the user it started with, never used before. Then the sign-in goes
// on as a managed user's after the password: MFA, consent, the code.
func (s *Server) serveFederationReturn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.errorPage(w, r, http.StatusMethodNotAllowed, 900561, "The endpoint only accepts GET requests.")
		return
	}
	f := s.flowFor(r)
	if f == nil {
		s.errorPage(w, r, http.StatusBadRequest, 50058, "Your sign-in session has expired or was not started in this browser. Start the sign-in again.")
		return
	}
	defer f.mu.Unlock()
	// A second answer for the same flow is welcome (the user went back
	// and signed in at the federation service again) until MFA is done.
	if f.fedTenant == "" || (f.step != stepFederation && f.step != stepMFA) {
		s.errorPage(w, r, http.StatusBadRequest, 90023, "This page is out of date. Start the sign-in again.")
		return
	}
	refuse := func(why string) {
		s.endFlow(w, r, f)
		s.errorPage(w, r, http.StatusBadRequest, 50008, "The answer of your organization's sign-in service was not accepted: "+why+". Start the sign-in again.")
	}
	trust := s.fed[f.fedTenant]
	now := s.dir.Now()
	a, err := federation.Verify(r.URL.Query().Get("wresult"), trust, s.origin, now)
	if err != nil {
		refuse(strings.TrimPrefix(err.Error(), federation.ErrRefused.Error()+": "))
		return
	}
	if !equalSecret(a.Context, f.fedCtx) {
		refuse("it answers another sign-in")
		return
	}
	if a.UPN != f.upn {
		refuse("it signed in " + clip(a.UPN, 113) + ", not " + f.upn)
		return
	}
	if err := s.spendAssertion(trust.Issuer, a); err != nil {
		refuse(err.Error())
		return
	}
	t, err := s.dir.LookupTenant(f.fedTenant)
	if err != nil {
		refuse("the tenant is gone")
		return
	}
	to, _ := url.Parse(t.FederationSignInURL) // AddTenant checked it
	p, err := s.dir.SignInFederated(r.Context(), a.UPN, to.Hostname())
	var u idp.User
	if err == nil {
		u, err = p.User()
	}
	if err == nil && u.TenantID != f.fedTenant {
		err = idp.ErrUnknownUser
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		s.endFlow(w, r, f)
		s.errorPage(w, r, http.StatusOK, 50053, errSignInText)
		return
	}
	f.pending, f.user, f.step = p, u, stepMFA
	s.render(w, r, http.StatusOK, "mfa", pageData{CSRF: f.csrf, AppName: f.appName(), UPN: f.upn})
}

// errAssertionUsed: a federation assertion reached the directory before.
var errAssertionUsed = errors.New("it was used before")

// spendAssertion records a as used (until it expires), or refuses it when
// it was.
func (s *Server) spendAssertion(issuer string, a federation.Assertion) error {
	key := hashKey(issuer + "\x00" + a.ID)
	now := s.dir.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, used := s.fedSeen[key]; used {
		return errAssertionUsed
	}
	if err := s.roomLocked(func() int { return len(s.fedSeen) }, now); err != nil {
		return err
	}
	s.fedSeen[key] = a.Expiry
	return nil
}
