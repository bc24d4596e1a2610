package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/internal/httpjson"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
)

// Grant types.
const (
	grantAuthCode   = "authorization_code"
	grantRefresh    = "refresh_token"
	grantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	grantJWTBearer  = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantHelloNonce = "srv_challenge"
)

// oidcScopes are the OpenID Connect scopes a v2 request may add to one
// resource's.
var oidcScopes = []string{"openid", "profile", "email", "offline_access"}

// authCode is an issued authorization code, bound to its request (client,
// redirect URI, PKCE challenge) and the sign-in.
type authCode struct {
	req     *authRequest
	pending *idp.Pending
	user    idp.User
	expires time.Time
	used    bool
	family  *family // the tokens it yielded, revoked if it is replayed
}

// family is the refresh tokens of one sign-in, each replacing the last;
// replaying a spent one revokes them all (RFC 9700 §4.14.2).
type family struct {
	client   *App
	resource *App
	scopes   []string
	v2       bool
	pending  *idp.Pending
	user     idp.User
	jkt      string // set when the tokens are DPoP-bound to a device key
	revoked  bool
}

type refreshRec struct {
	fam     *family
	used    bool
	expires time.Time
}

// oauthError is a token endpoint error in Entra's shape.
type oauthError struct {
	status   int
	code     string
	aadsts   int
	desc     string
	suberror string
}

func (e *oauthError) Error() string { return e.code + ": " + e.desc }

func badRequest(code string, aadsts int, desc string) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, aadsts: aadsts, desc: desc}
}

// aadDescription is Entra's error_description: the AADSTS code and text,
// then trace and correlation IDs and the time.
func aadDescription(aadsts int, desc string, now time.Time) string {
	return fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
		aadsts, desc, newGUID(), newGUID(), now.UTC().Format("2006-01-02 15:04:05Z"))
}

func newGUID() string {
	g, err := identity.NewGUID(rand.Reader)
	if err != nil {
		return "00000000-0000-0000-0000-000000000000"
	}
	return g.String()
}

func (s *Server) writeError(w http.ResponseWriter, e *oauthError) {
	now := s.dir.Now()
	body := map[string]any{
		"error":             e.code,
		"error_description": aadDescription(e.aadsts, e.desc, now),
		"error_codes":       []int{e.aadsts},
		"timestamp":         now.UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          newGUID(),
		"correlation_id":    newGUID(),
		"error_uri":         s.origin + "/error?code=" + fmt.Sprint(e.aadsts),
	}
	if e.suberror != "" {
		body["suberror"] = e.suberror
	}
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="`+e.code+`"`)
	}
	httpjson.Write(w, e.status, body)
}

// parseScope reads a v2 scope: OpenID Connect scopes and the scopes of at
// most one resource ("<resource>/<permission>", e.g.
// https://cred.microsoft.com/.default). No resource scope means Microsoft
// Graph, as in Entra.
func (s *Server) parseScope(scope string, required bool) (*App, []string, *oauthError) {
	fields := strings.Fields(scope)
	if len(fields) == 0 && required {
		return nil, nil, badRequest("invalid_request", 900144, "The request body must contain the following parameter: 'scope'.")
	}
	if len(scope) > 2048 || len(fields) > 20 {
		return nil, nil, badRequest("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid.")
	}
	var res *App
	for _, f := range fields {
		if slices.Contains(oidcScopes, f) {
			continue
		}
		name := f
		if i := strings.LastIndex(f, "/"); i > 0 {
			name = f[:i]
		}
		a := s.resource(name)
		if a == nil {
			return nil, nil, badRequest("invalid_resource", 500011, "The resource principal named "+clip(name, 100)+" was not found in the tenant.")
		}
		if res != nil && res != a {
			return nil, nil, badRequest("invalid_scope", 28000, "The provided value for the input parameter 'scope' is not valid because it contains more than one resource.")
		}
		res = a
	}
	if res == nil {
		res = s.app(GraphAppID)
	}
	if res == nil {
		return nil, nil, badRequest("invalid_resource", 500011, "No resource named in the scope.")
	}
	return res, fields, nil
}

// parseResource reads a v1 request's resource (and optional scope).
func (s *Server) parseResource(resource, scope string) (*App, []string, *oauthError) {
	fields := strings.Fields(scope)
	if len(scope) > 2048 || len(fields) > 20 {
		return nil, nil, badRequest("invalid_scope", 70011, "The provided value for the input parameter 'scope' is not valid.")
	}
	if resource == "" {
		return s.app(GraphAppID), fields, nil
	}
	a := s.resource(resource)
	if a == nil {
		return nil, nil, badRequest("invalid_resource", 500011, "The resource principal named "+clip(resource, 100)+" was not found in the tenant.")
	}
	return a, fields, nil
}

// serveToken is the token endpoint.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, tenantSeg string, v2 bool) {
	tenant, ok := s.postForm(w, r, tenantSeg)
	if !ok {
		return
	}
	grant := r.PostForm.Get("grant_type")
	if grant == grantHelloNonce || grant == grantJWTBearer {
		if !v2 {
			s.writeError(w, badRequest("unsupported_grant_type", 70003, "Hello sign-in uses the v2.0 token endpoint."))
			return
		}
		s.legacy.ServeHTTP(w, r)
		return
	}
	var resp map[string]any
	var err error
	switch grant {
	case "":
		err = badRequest("invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
	case grantAuthCode:
		resp, err = s.grantCode(r, tenant, v2)
	case grantRefresh:
		resp, err = s.grantRefreshToken(r, tenant, v2)
	case grantDeviceCode:
		resp, err = s.grantDevice(r, tenant)
	default:
		err = badRequest("unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+clip(grant, 60)+"'.")
	}
	var oe *oauthError
	switch {
	case errors.As(err, &oe):
		s.writeError(w, oe)
	case err != nil:
		s.writeError(w, &oauthError{status: http.StatusInternalServerError, code: "server_error", aadsts: 90033, desc: "The token could not be issued."})
	default:
		httpjson.Write(w, http.StatusOK, resp)
	}
}

// postForm reads an endpoint's POST: the path's tenant ("" for common),
// and a form body, each parameter at most once. It answers the error
// itself and says false when the request is refused.
func (s *Server) postForm(w http.ResponseWriter, r *http.Request, tenantSeg string) (string, bool) {
	if r.Method != http.MethodPost {
		s.writeError(w, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", aadsts: 900561, desc: "The endpoint only accepts POST requests."})
		return "", false
	}
	tenant, ok := s.tenantSeg(tenantSeg)
	if !ok {
		s.writeError(w, badRequest("invalid_request", 90002, "Tenant '"+clip(tenantSeg, 64)+"' not found."))
		return "", false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		s.writeError(w, badRequest("invalid_request", 900144, "The request body must be application/x-www-form-urlencoded."))
		return "", false
	}
	if err := r.ParseForm(); err != nil {
		s.writeError(w, badRequest("invalid_request", 900144, "The request body could not be read."))
		return "", false
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			s.writeError(w, badRequest("invalid_request", 900144, "The request has the parameter '"+clip(k, 40)+"' more than once."))
			return "", false
		}
	}
	return tenant, true
}

// publicClient checks the form's client: known, and public (the directory
// holds no client secrets, so a confidential client cannot authenticate).
func (s *Server) publicClient(r *http.Request) (*App, *oauthError) {
	id := r.PostForm.Get("client_id")
	if u, _, ok := r.BasicAuth(); ok && id == "" {
		id = u
	}
	c := s.app(id)
	if c == nil {
		return nil, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 700016,
			desc: "Application with identifier '" + clip(id, 64) + "' was not found in the directory."}
	}
	if !c.Public {
		return nil, &oauthError{status: http.StatusUnauthorized, code: "invalid_client", aadsts: 7000218,
			desc: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'. This directory registers no client credentials: only public clients redeem codes."}
	}
	return c, nil
}

func (s *Server) grantCode(r *http.Request, tenant string, v2 bool) (map[string]any, error) {
	client, oe := s.publicClient(r)
	if oe != nil {
		return nil, oe
	}
	code := r.PostForm.Get("code")
	if code == "" {
		return nil, badRequest("invalid_request", 900144, "The request body must contain the following parameter: 'code'.")
	}
	now := s.dir.Now()
	s.mu.Lock()
	c := s.codes[hashKey(code)]
	if c == nil || c.req.client != client {
		s.mu.Unlock()
		return nil, badRequest("invalid_grant", 9002313, "Invalid request. The authorization code is malformed, unknown, or was issued to another client.")
	}
	if c.used {
		fam := c.family
		if fam != nil {
			fam.revoked = true // RFC 6749 §4.1.2: revoke what the code yielded
		}
		s.mu.Unlock()
		return nil, badRequest("invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	}
	c.used = true // spent by any attempt: a wrong verifier gets no second try
	s.mu.Unlock()
	req := c.req
	switch {
	case now.After(c.expires):
		return nil, badRequest("invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	case r.PostForm.Get("redirect_uri") != req.redirect:
		return nil, badRequest("invalid_grant", 50011, "The redirect URI '"+clip(r.PostForm.Get("redirect_uri"), 200)+"' does not match the one of the authorization request.")
	case req.challenge == "":
		return nil, badRequest("invalid_request", 9002325, "Proof Key for Code Exchange is required: the authorization request had no code_challenge (an admin-consent code is for the consent only).")
	}
	verifier := r.PostForm.Get("code_verifier")
	if !validVerifier(verifier) {
		return nil, badRequest("invalid_request", 501481, "The code_verifier is missing or malformed (43 to 128 characters of A-Z a-z 0-9 - . _ ~).")
	}
	if h := sha256.Sum256([]byte(verifier)); !equalSecret(base64.RawURLEncoding.EncodeToString(h[:]), req.challenge) {
		return nil, badRequest("invalid_grant", 50148, "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.")
	}
	fam := &family{client: client, resource: req.resource, scopes: req.scopes, v2: req.v2, pending: c.pending, user: c.user}
	resp, err := s.issue(r, fam, req.nonce, true)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	c.family = fam
	s.mu.Unlock()
	return resp, nil
}

func (s *Server) grantRefreshToken(r *http.Request, tenant string, v2 bool) (map[string]any, error) {
	client, oe := s.publicClient(r)
	if oe != nil {
		return nil, oe
	}
	rt := r.PostForm.Get("refresh_token")
	if rt == "" {
		return nil, badRequest("invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'.")
	}
	now := s.dir.Now()
	s.mu.Lock()
	rec := s.refreshes[hashKey(rt)]
	switch {
	case rec == nil || rec.fam.client != client:
		s.mu.Unlock()
		return nil, badRequest("invalid_grant", 9002313, "Invalid request. The refresh token is malformed, unknown, or was issued to another client.")
	case rec.fam.revoked:
		s.mu.Unlock()
		return nil, badRequest("invalid_grant", 70000, "The refresh token was revoked: a refresh token of its sign-in was used twice. Sign in again.")
	case rec.used:
		rec.fam.revoked = true
		s.mu.Unlock()
		return nil, badRequest("invalid_grant", 70000, "The refresh token was already used: every refresh token of its sign-in is now revoked. Sign in again.")
	case now.After(rec.expires):
		s.mu.Unlock()
		return nil, badRequest("invalid_grant", 700082, "The refresh token has expired. Sign in again.")
	}
	rec.used = true
	fam := rec.fam
	s.mu.Unlock()
	if tenant != "" && tenant != fam.user.TenantID {
		return nil, badRequest("invalid_grant", 9002313, "The refresh token belongs to another tenant.")
	}
	res, scopes := fam.resource, fam.scopes
	if sc := r.PostForm.Get("scope"); sc != "" && v2 {
		var e *oauthError
		if res, scopes, e = s.parseScope(sc, true); e != nil {
			return nil, e
		}
	}
	if rs := r.PostForm.Get("resource"); rs != "" && !v2 {
		var e *oauthError
		if res, scopes, e = s.parseResource(rs, r.PostForm.Get("scope")); e != nil {
			return nil, e
		}
	}
	next := *fam
	next.resource, next.scopes = res, scopes
	return s.issueIn(r, fam, &next, "", false)
}

// issue answers a grant with tokens for a new family.
func (s *Server) issue(r *http.Request, fam *family, nonce string, idToken bool) (map[string]any, error) {
	return s.issueIn(r, fam, fam, nonce, idToken)
}

// issueIn answers a grant of family fam with tokens for want's resource
// and scopes: the access token, an ID token when openid was asked for, a
// refresh token when offline_access was (always for v1). A DPoP proof
// binds the sign-in, and so every later token, to the device whose key
// signed it (RFC 9449 §5); a bound family refreshes only with a proof by
// the same key.
func (s *Server) issueIn(r *http.Request, fam, want *family, nonce string, idToken bool) (map[string]any, error) {
	ctx := r.Context()
	aud := want.resource.audience()
	if aud == identity.PINResetServiceAppID {
		t, err := s.dir.LookupTenant(fam.user.TenantID)
		if err != nil {
			return nil, err
		}
		if !t.Onboarded() {
			missing := s.app(identity.PINResetServiceAppID)
			if t.HasConsent(identity.PINResetServiceAppID) {
				missing = s.app(identity.PINResetClientAppID)
			}
			name, id := "", identity.PINResetClientAppID
			if missing != nil {
				name, id = missing.Name, missing.ID
			}
			return nil, &oauthError{status: http.StatusBadRequest, code: "invalid_grant", aadsts: 65001, suberror: "consent_required",
				desc: "The user or administrator has not consented to use the application with ID '" + id + "' named '" + name + "'. Send an interactive authorization request for this user and resource."}
		}
	}
	if err := s.bindProof(ctx, r, fam); err != nil {
		return nil, err
	}
	at, err := fam.pending.TokenFor(ctx, aud, fam.client.ID)
	if err != nil {
		return nil, tokenRefusal(err)
	}
	resp := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": expiresIn(at, s.dir.Now())}
	if fam.jkt != "" {
		resp["token_type"] = "DPoP"
	}
	if want.v2 {
		resp["scope"] = strings.Join(want.scopes, " ")
	} else {
		resp["resource"] = want.resource.IdentifierURIsOrID()
	}
	if idToken && (slices.Contains(want.scopes, "openid") || !want.v2) {
		it, err := fam.pending.IDToken(ctx, fam.client.ID, nonce)
		if err != nil {
			return nil, tokenRefusal(err)
		}
		resp["id_token"] = it
	}
	if !want.v2 || slices.Contains(want.scopes, "offline_access") {
		rt := randomToken(32)
		now := s.dir.Now()
		s.mu.Lock()
		err := s.roomLocked(func() int { return len(s.refreshes) }, now)
		if err == nil {
			fam.resource, fam.scopes = want.resource, want.scopes
			s.refreshes[hashKey(rt)] = &refreshRec{fam: fam, expires: now.Add(RefreshLifetime)}
		}
		s.mu.Unlock()
		if err != nil {
			return nil, &oauthError{status: http.StatusServiceUnavailable, code: "temporarily_unavailable", aadsts: 90033, desc: "The directory is busy; try again shortly."}
		}
		resp["refresh_token"] = rt
	}
	return resp, nil
}

// IdentifierURIsOrID is the resource name a v1 answer echoes.
func (a *App) IdentifierURIsOrID() string {
	if len(a.IdentifierURIs) > 0 {
		return a.IdentifierURIs[0]
	}
	return a.ID
}

// bindProof checks the request's DPoP proof, if any, and binds the
// family's sign-in to the device whose key signed it.
func (s *Server) bindProof(ctx context.Context, r *http.Request, fam *family) error {
	proof := r.Header.Get("DPoP")
	if proof == "" {
		if fam.jkt != "" {
			return badRequest("invalid_dpop_proof", 9002341, "The tokens of this sign-in are bound to a device key: send a DPoP proof of it.")
		}
		return nil
	}
	pr, err := dpop.Parse(proof)
	if err != nil {
		return badRequest("invalid_dpop_proof", 9002341, "The DPoP proof is not valid: "+err.Error())
	}
	tid := fam.user.TenantID
	if s.origin+r.URL.Path != s.dir.TokenEndpoint(tid) {
		return badRequest("invalid_dpop_proof", 9002341, "A DPoP-bound token is issued at the tenant's own token endpoint, "+s.dir.TokenEndpoint(tid)+".")
	}
	if fam.jkt != "" && pr.JKT != fam.jkt {
		return badRequest("invalid_dpop_proof", 9002341, "The DPoP proof is signed by another key than the one the tokens are bound to.")
	}
	dev, err := s.dir.DeviceForKey(tid, pr.JKT)
	if err != nil {
		return badRequest("invalid_dpop_proof", 9002341, "The DPoP proof's key is not the key of a device registered in the tenant.")
	}
	if err := fam.pending.BindDevice(ctx, dev, proof); err != nil {
		return badRequest("invalid_dpop_proof", 9002341, "The DPoP proof was refused: "+strings.TrimPrefix(err.Error(), "bind device: "))
	}
	s.mu.Lock()
	fam.jkt = pr.JKT
	s.mu.Unlock()
	return nil
}

// tokenRefusal maps a directory error at issuance to the OAuth answer.
func tokenRefusal(err error) error {
	switch {
	case errors.Is(err, idp.ErrLocked):
		return badRequest("invalid_grant", 50053, "The account is locked.")
	case errors.Is(err, idp.ErrDisabled):
		return badRequest("invalid_grant", 50057, "The user account is disabled.")
	case errors.Is(err, idp.ErrSignInExpired), errors.Is(err, idp.ErrMFANotCompleted), errors.Is(err, idp.ErrUnknownUser):
		return badRequest("invalid_grant", 50173, "The sign-in is no longer valid (expired or revoked). Sign in again.")
	}
	return err
}

// expiresIn reads a token's exp: its lifetime left in seconds.
func expiresIn(token string, now time.Time) int {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return 0
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0
	}
	var c struct {
		Exp int64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil {
		return 0
	}
	return int(time.Unix(c.Exp, 0).Sub(now) / time.Second)
}

// validVerifier: RFC 7636 §4.1, 43 to 128 unreserved characters (the
// challenge, base64url of a SHA-256, is the same alphabet).
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}
