package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hellosim/hellosim/internal/httpjson"
	"github.com/hellosim/hellosim/reset/idp"
)

// flowKind is what a sign-in in the browser is for.
type flowKind int

const (
	kindAuthorize flowKind = iota + 1 // an authorization request: a code for a redirect URI
	kindDevice                        // a device code entered on /devicelogin
	kindPortal                        // the admin page
)

// step is the page a flow waits on.
type step int

const (
	stepUserCode step = iota + 1
	stepUPN
	stepPassword
	stepMFA
	stepConsent
	stepConfirm
	stepFederation // at the tenant's federation service, until its answer
)

// flow is one sign-in in a browser, page to page. Its ID is the flow
// cookie; csrf is the token every form of it carries. mu serialises its
// steps; the table holding it is guarded by Server.mu.
type flow struct {
	id, csrf string
	kind     flowKind
	expires  time.Time

	mu        sync.Mutex
	step      step
	tenant    string // "" for common/organizations
	upn       string
	pending   *idp.Pending
	user      idp.User
	req       *authRequest // kindAuthorize
	device    *deviceAuth  // kindDevice
	codeTries int
	returnTo  string // kindPortal: a path on this server
	fedTenant string // the federated tenant whose service signs the user in
	fedCtx    string // wctx: binds that service's answer to this flow
}

// authRequest is a validated authorization request.
type authRequest struct {
	client       *App
	redirect     string
	state, nonce string
	challenge    string // S256 code challenge; "" only for an admin-consent request
	resource     *App
	scopes       []string
	v2           bool
	adminConsent bool
}

// session is a browser signed in through the pages: what the admin page
// reads.
type session struct {
	upn, tenant string
	admin       bool
	expires     time.Time
}

// newFlow stores a flow and sets its cookie.
func (s *Server) newFlow(w http.ResponseWriter, r *http.Request, f *flow) error {
	now := s.dir.Now()
	f.id, f.csrf, f.expires = randomToken(32), randomToken(32), now.Add(FlowLifetime)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.roomLocked(func() int { return len(s.flows) }, now); err != nil {
		return err
	}
	s.flows[f.id] = f
	setCookie(w, r, flowCookie, f.id, FlowLifetime)
	return nil
}

// flowFor returns the request's live flow, locked, or nil.
func (s *Server) flowFor(r *http.Request) *flow {
	id := cookieValue(r, flowCookie)
	if id == "" {
		return nil
	}
	s.mu.Lock()
	f := s.flows[id]
	if f != nil && s.dir.Now().After(f.expires) {
		delete(s.flows, id)
		f = nil
	}
	s.mu.Unlock()
	if f != nil {
		f.mu.Lock()
	}
	return f
}

func (s *Server) endFlow(w http.ResponseWriter, r *http.Request, f *flow) {
	s.mu.Lock()
	delete(s.flows, f.id)
	s.mu.Unlock()
	setCookie(w, r, flowCookie, "", -time.Second)
}

// serveAuthorize is the authorization endpoint, v1 (resource) or v2
// (scope). Until the client and its redirect URI are known good, errors
// are pages; after, they go back to the redirect URI (RFC 6749 §4.1.2.1),
// so it is never an open redirect.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request, tenantSeg string, v2 bool) {
	tenant, ok := s.pageTenant(w, r, tenantSeg, http.StatusBadRequest, " Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
	if !ok {
		return
	}
	q := r.URL.Query()
	for k, v := range q {
		if len(v) > 1 {
			s.errorPage(w, r, http.StatusBadRequest, 900144, "The request has the parameter '"+clip(k, 40)+"' more than once.")
			return
		}
	}
	client := s.app(q.Get("client_id"))
	if client == nil || (len(client.RedirectURIs) == 0 && !client.Loopback) {
		s.errorPage(w, r, http.StatusBadRequest, 700016, "Application with identifier '"+clip(q.Get("client_id"), 64)+"' was not found in the directory.")
		return
	}
	redirect := q.Get("redirect_uri")
	if redirect == "" && len(client.RedirectURIs) > 0 {
		redirect = client.RedirectURIs[0]
	}
	if !client.allowsRedirect(redirect) {
		s.errorPage(w, r, http.StatusBadRequest, 50011, "The redirect URI '"+clip(redirect, 200)+"' specified in the request does not match the redirect URIs configured for the application '"+client.ID+"'.")
		return
	}
	state := q.Get("state")
	fail := func(code string, aadsts int, desc string) {
		s.redirectError(w, r, redirect, state, code, aadsts, desc)
	}
	req := &authRequest{client: client, redirect: redirect, state: state, nonce: q.Get("nonce"), v2: v2}
	switch {
	case len(state) > 2048 || len(req.nonce) > 512:
		fail("invalid_request", 900144, "The state or nonce parameter is too long.")
		return
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", 700054, "response_type '"+clip(q.Get("response_type"), 40)+"' is not enabled for the application; this directory issues authorization codes only.")
		return
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		fail("invalid_request", 900144, "response_mode must be 'query'.")
		return
	}
	switch q.Get("prompt") {
	case "", "login", "select_account", "consent":
	case "admin_consent":
		req.adminConsent = true
	case "none":
		fail("login_required", 50058, "A silent sign-in request was sent but no user is signed in.")
		return
	default:
		fail("invalid_request", 90023, "The prompt parameter is not valid.")
		return
	}
	var rerr *oauthError
	if v2 {
		req.resource, req.scopes, rerr = s.parseScope(q.Get("scope"), true)
	} else {
		req.resource, req.scopes, rerr = s.parseResource(q.Get("resource"), q.Get("scope"))
	}
	if rerr != nil {
		fail(rerr.code, rerr.aadsts, rerr.desc)
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	switch {
	case challenge == "" && method == "" && client.Public && !req.adminConsent:
		fail("invalid_request", 9002325, "Proof Key for Code Exchange is required for a public client: send code_challenge with code_challenge_method=S256.")
		return
	case challenge == "" && method == "":
	case method != "S256":
		fail("invalid_request", 501481, "The code_challenge_method '"+clip(method, 20)+"' is not supported: only S256 is. ('plain' and a missing method are refused.)")
		return
	case !validVerifier(challenge) || len(challenge) != 43:
		fail("invalid_request", 501491, "Invalid size or characters of the code_challenge parameter.")
		return
	}
	req.challenge = challenge
	f := &flow{kind: kindAuthorize, step: stepUPN, tenant: tenant, req: req}
	if err := s.newFlow(w, r, f); err != nil {
		fail("temporarily_unavailable", 90033, "The directory is busy; try again shortly.")
		return
	}
	s.render(w, r, http.StatusOK, "upn", pageData{CSRF: f.csrf, AppName: client.Name, UPN: clip(q.Get("login_hint"), 113)})
}

// redirectError sends the browser back to a trusted redirect URI with an
// OAuth error.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, redirect, state, code string, aadsts int, desc string) {
	v := url.Values{"error": {code}, "error_description": {aadDescription(aadsts, desc, s.dir.Now())}}
	if state != "" {
		v.Set("state", state)
	}
	http.Redirect(w, r, withQuery(redirect, v), http.StatusFound)
}

// withQuery adds v to a registered redirect URI's query.
func withQuery(base string, v url.Values) string {
	u, err := url.Parse(base)
	if err != nil {
		return base // registered and matched: cannot happen
	}
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// serveLogin takes the sign-in pages' forms. Every form carries the flow's
// CSRF token; without it nothing changes.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodPost {
		s.errorPage(w, r, http.StatusMethodNotAllowed, 900561, "The endpoint only accepts POST requests.")
		return
	}
	want := map[string]step{"upn": stepUPN, "password": stepPassword, "mfa": stepMFA, "consent": stepConsent, "confirm": stepConfirm}[name]
	f := s.formFlow(w, r, "Start the sign-in again.", func(f *flow) bool { return want != 0 && f.step == want })
	if f == nil {
		return
	}
	defer f.mu.Unlock()
	switch name {
	case "upn":
		s.stepUPN(w, r, f)
	case "password":
		s.stepPassword(w, r, f)
	case "mfa":
		s.stepMFA(w, r, f)
	case "consent":
		s.stepConsent(w, r, f)
	case "confirm":
		s.stepConfirm(w, r, f)
	}
}

// pageTenant is the tenant a page's path names (tenantSeg), for a GET or
// HEAD. Another method, or a tenant not found (status, and hint after
// "not found."), gets an error page and false.
func (s *Server) pageTenant(w http.ResponseWriter, r *http.Request, tenantSeg string, status int, hint string) (string, bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.errorPage(w, r, http.StatusMethodNotAllowed, 900561, "The endpoint only accepts GET requests.")
		return "", false
	}
	tenant, ok := s.tenantSeg(tenantSeg)
	if !ok {
		s.errorPage(w, r, status, 90002, "Tenant '"+clip(tenantSeg, 64)+"' not found."+hint)
		return "", false
	}
	return tenant, true
}

// formFlow reads a posted form of a flow: the flow of the request's
// cookie, locked, when the form carries its CSRF token and the flow is at
// the page the form belongs to (current); else it answers with an error
// page (again: what to do next) and returns nil, and nothing changes.
func (s *Server) formFlow(w http.ResponseWriter, r *http.Request, again string, current func(f *flow) bool) *flow {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, 900144, "The form could not be read.")
		return nil
	}
	f := s.flowFor(r)
	if f == nil {
		s.errorPage(w, r, http.StatusBadRequest, 50058, "Your sign-in session has expired or was not started in this browser. "+again)
		return nil
	}
	if !equalSecret(r.PostForm.Get("csrf"), f.csrf) {
		f.mu.Unlock()
		s.errorPage(w, r, http.StatusForbidden, 90023, "The form could not be verified: its anti-forgery token is missing or wrong. "+again)
		return nil
	}
	if !current(f) {
		f.mu.Unlock()
		s.errorPage(w, r, http.StatusBadRequest, 90023, "This page is out of date. "+again)
		return nil
	}
	return f
}

func (f *flow) appName() string {
	switch {
	case f.req != nil:
		return f.req.client.Name
	case f.device != nil:
		return f.device.client.Name
	}
	return "Enterprise applications"
}

func (s *Server) stepUPN(w http.ResponseWriter, r *http.Request, f *flow) {
	upn := strings.ToLower(strings.TrimSpace(r.PostForm.Get("upn")))
	local, domain, ok := strings.Cut(upn, "@")
	if !ok || local == "" || domain == "" || len(upn) > 113 {
		s.render(w, r, http.StatusOK, "upn", pageData{CSRF: f.csrf, AppName: f.appName(), UPN: clip(upn, 113),
			Error: "Enter a valid user name in the form someone@example.com."})
		return
	}
	f.upn, f.step = upn, stepPassword
	if s.homeRealm(w, r, f, domain) {
		return
	}
	s.render(w, r, http.StatusOK, "password", pageData{CSRF: f.csrf, AppName: f.appName(), UPN: upn})
}

// errSignInText is the one answer to a password that did not let the user
// in: a wrong password, an unknown or disabled user, a user of another
// tenant and a locked account read alike, so the page never tells whether
// a user exists.
const errSignInText = "Your account or password is incorrect, or your account is temporarily locked to prevent unauthorized use. Try again later."

func (s *Server) stepPassword(w http.ResponseWriter, r *http.Request, f *flow) {
	pw := r.PostForm.Get("password")
	p, err := s.dir.SignIn(r.Context(), f.upn, pw)
	var u idp.User
	if err == nil {
		u, err = p.User()
	}
	if err == nil && f.tenant != "" && u.TenantID != f.tenant {
		err = idp.ErrUnknownUser
	}
	if err == nil && s.federatedTenant(u.TenantID) {
		// A federated tenant's users sign in at its federation service,
		// never with a password here (as in Entra).
		err = idp.ErrUnknownUser
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		s.render(w, r, http.StatusOK, "password", pageData{CSRF: f.csrf, AppName: f.appName(), UPN: f.upn, Error: errSignInText})
		return
	}
	f.pending, f.user, f.step = p, u, stepMFA
	s.render(w, r, http.StatusOK, "mfa", pageData{CSRF: f.csrf, AppName: f.appName(), UPN: f.upn})
}

func (s *Server) stepMFA(w http.ResponseWriter, r *http.Request, f *flow) {
	code := strings.TrimSpace(r.PostForm.Get("code"))
	_, err := f.pending.CompleteMFA(r.Context(), code)
	switch {
	case errors.Is(err, idp.ErrWrongCode):
		s.render(w, r, http.StatusOK, "mfa", pageData{CSRF: f.csrf, AppName: f.appName(), UPN: f.upn,
			Error: "That code didn't work. Check the code in your authenticator app and try again."})
		return
	case errors.Is(err, idp.ErrLocked):
		s.endFlow(w, r, f)
		s.errorPage(w, r, http.StatusOK, 50053, errSignInText)
		return
	case err != nil:
		s.endFlow(w, r, f)
		s.errorPage(w, r, http.StatusOK, 50132, "The sign-in has expired or too many wrong codes were entered. Start the sign-in again.")
		return
	}
	s.startSession(w, r, f.user)
	switch f.kind {
	case kindPortal:
		s.endFlow(w, r, f)
		http.Redirect(w, r, f.returnTo, http.StatusSeeOther)
	case kindDevice:
		f.step = stepConfirm
		s.render(w, r, http.StatusOK, "confirm", pageData{CSRF: f.csrf, AppName: f.appName(), UPN: f.upn})
	case kindAuthorize:
		req := f.req
		if !req.adminConsent {
			s.finishAuthorize(w, r, f)
			return
		}
		if !f.user.GlobalAdmin {
			s.endFlow(w, r, f)
			s.redirectError(w, r, req.redirect, req.state, "consent_required", 90094,
				"Admin consent is required for the permissions requested by this application: the signed-in user is not a Global Administrator.")
			return
		}
		f.step = stepConsent
		s.render(w, r, http.StatusOK, "consent", pageData{CSRF: f.csrf, AppName: req.client.Name, AppID: req.client.ID,
			UPN: f.upn, Permissions: req.client.Permissions, Admin: true})
	}
}

func (s *Server) stepConsent(w http.ResponseWriter, r *http.Request, f *flow) {
	req := f.req
	if r.PostForm.Get("action") != "accept" {
		s.endFlow(w, r, f)
		s.redirectError(w, r, req.redirect, req.state, "access_denied", 65004, "User declined to consent to access the app.")
		return
	}
	if err := s.dir.GrantConsent(f.user.TenantID, req.client.ID); err != nil {
		s.endFlow(w, r, f)
		s.redirectError(w, r, req.redirect, req.state, "server_error", 90033, "The consent could not be recorded.")
		return
	}
	s.mu.Lock()
	key := f.user.TenantID + "/" + req.client.ID
	if _, ok := s.spCreated[key]; !ok {
		s.spCreated[key] = s.dir.Now()
	}
	s.mu.Unlock()
	s.finishAuthorize(w, r, f)
}

// finishAuthorize issues the code and sends the browser to the redirect URI.
func (s *Server) finishAuthorize(w http.ResponseWriter, r *http.Request, f *flow) {
	req := f.req
	code := randomToken(32)
	now := s.dir.Now()
	s.mu.Lock()
	err := s.roomLocked(func() int { return len(s.codes) }, now)
	if err == nil {
		s.codes[hashKey(code)] = &authCode{req: req, pending: f.pending, user: f.user, expires: now.Add(CodeLifetime)}
	}
	s.mu.Unlock()
	s.endFlow(w, r, f)
	if err != nil {
		s.redirectError(w, r, req.redirect, req.state, "temporarily_unavailable", 90033, "The directory is busy; try again shortly.")
		return
	}
	v := url.Values{"code": {code}}
	if req.state != "" {
		v.Set("state", req.state)
	}
	http.Redirect(w, r, withQuery(req.redirect, v), http.StatusFound)
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u idp.User) {
	id := randomToken(32)
	now := s.dir.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roomLocked(func() int { return len(s.sessions) }, now) != nil {
		return
	}
	s.sessions[id] = &session{upn: u.UPN, tenant: u.TenantID, admin: u.GlobalAdmin, expires: now.Add(SessionLifetime)}
	setCookie(w, r, sessionCookie, id, SessionLifetime)
}

func (s *Server) sessionFor(r *http.Request) *session {
	id := cookieValue(r, sessionCookie)
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.sessions[id]
	if se == nil || s.dir.Now().After(se.expires) {
		return nil
	}
	cp := *se
	return &cp
}

// ServicePrincipal is an application's presence in a tenant, created by
// consent: a row of the Enterprise applications page.
type ServicePrincipal struct {
	DisplayName string    `json:"displayName"`
	AppID       string    `json:"appId"`
	Type        string    `json:"servicePrincipalType"`
	CreatedAt   time.Time `json:"createdDateTime,omitzero"`
}

// ServicePrincipals lists a tenant's service principals whose display name
// contains search (case-insensitive; "" lists all), by name.
func (s *Server) ServicePrincipals(tenantID, search string) ([]ServicePrincipal, error) {
	t, err := s.dir.LookupTenant(tenantID)
	if err != nil {
		return nil, err
	}
	search = strings.ToLower(strings.TrimSpace(search))
	var out []ServicePrincipal
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range t.ConsentedApps {
		name := id
		if a := s.app(id); a != nil {
			name = a.Name
		}
		if search != "" && !strings.Contains(strings.ToLower(name), search) {
			continue
		}
		out = append(out, ServicePrincipal{DisplayName: name, AppID: id, Type: "Application", CreatedAt: s.spCreated[t.ID+"/"+id]})
	}
	slices.SortFunc(out, func(a, b ServicePrincipal) int { return strings.Compare(a.DisplayName, b.DisplayName) })
	return out, nil
}

// serveEnterpriseApps is the admin page: the tenant's service principals,
// searchable, as HTML or (format=json) JSON. It needs a Global
// Administrator signed in through the pages in this browser.
func (s *Server) serveEnterpriseApps(w http.ResponseWriter, r *http.Request, tenantSeg string) {
	tenant, ok := s.pageTenant(w, r, tenantSeg, http.StatusNotFound, "")
	if !ok {
		return
	}
	se := s.sessionFor(r)
	if se == nil {
		f := &flow{kind: kindPortal, step: stepUPN, tenant: tenant, returnTo: r.URL.EscapedPath() + "?" + r.URL.RawQuery}
		if err := s.newFlow(w, r, f); err != nil {
			s.errorPage(w, r, http.StatusServiceUnavailable, 90033, "The directory is busy; try again shortly.")
			return
		}
		s.render(w, r, http.StatusOK, "upn", pageData{CSRF: f.csrf, AppName: f.appName()})
		return
	}
	if !se.admin || (tenant != "" && tenant != se.tenant) {
		s.errorPage(w, r, http.StatusForbidden, 50105, "You need the Global Administrator role in this tenant to see its enterprise applications.")
		return
	}
	search := clip(r.URL.Query().Get("search"), 100)
	sps, err := s.ServicePrincipals(se.tenant, search)
	if err != nil {
		s.errorPage(w, r, http.StatusNotFound, 90002, "Tenant not found.")
		return
	}
	if r.URL.Query().Get("format") == "json" {
		httpjson.Write(w, http.StatusOK, map[string]any{"value": sps})
		return
	}
	s.render(w, r, http.StatusOK, "apps", pageData{UPN: se.upn, TenantID: se.tenant, Search: search, Apps: sps})
}

// clip shortens s to at most n bytes for a page or an error.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
