package idp

import (
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/hellosim/hellosim/internal/httpjson"
	"github.com/hellosim/hellosim/reset/identity"
)

// Paths of the sign-in service, in Entra's layout: {tenant} is a tenant ID.
const (
	oidcConfigPath = "/.well-known/openid-configuration"
	jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
)

// OIDCHandler serves the directory's sign-in endpoints, in Entra's layout
// under the issuer's origin (WithIssuer sets it; for the defaults,
// https://login.hellosim.test):
//
//	GET  /.well-known/openid-configuration                   the common document ("{tenantid}" in issuer)
//	GET  /{tenant}/v2.0/.well-known/openid-configuration     a tenant's OpenID Provider metadata
//	GET  /{tenant}/discovery/v2.0/keys, /common/discovery/v2.0/keys   the signing keys (JWKS)
//	POST /{tenant}/oauth2/v2.0/token                         grant_type=srv_challenge: a Hello sign-in
//	     nonce; grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer with
//	     assertion and resource: SignInWithHelloKey
//
// so standard OpenID Connect libraries find the keys from the issuer of
// any token. Password and MFA sign-in through pages, the authorize
// endpoints and the other grants are package reset/idp/web, which serves
// these paths too and hands it the grants above.
func (p *IdP) OIDCHandler() http.Handler {
	return http.HandlerFunc(p.serveOIDC)
}

// origin is the issuer template's scheme and host, the base of every URL
// the metadata names.
func (p *IdP) origin() string {
	u, err := url.Parse(strings.ReplaceAll(p.issuer, "{tid}", "common"))
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func (p *IdP) serveOIDC(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case r.URL.Path == oidcConfigPath:
		p.serveMetadata(w, r, "common")
	case len(parts) == 4 && parts[1] == "v2.0" && "/"+parts[2]+"/"+parts[3] == oidcConfigPath:
		p.serveMetadata(w, r, parts[0])
	case len(parts) == 4 && parts[1] == "discovery" && parts[2] == "v2.0" && parts[3] == "keys":
		if !p.knownTenant(parts[0]) {
			writeOAuthError(w, http.StatusNotFound, "invalid_tenant", "unknown tenant")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "GET only")
			return
		}
		httpjson.Write(w, http.StatusOK, p.JWKS())
	case len(parts) == 4 && parts[1] == "oauth2" && parts[2] == "v2.0" && parts[3] == "token":
		p.serveToken(w, r, parts[0])
	default:
		http.NotFound(w, r)
	}
}

func (p *IdP) knownTenant(t string) bool {
	if t == "common" {
		return true
	}
	id, err := identity.CanonicalGUID(t)
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.tenants[id]
	return ok
}

// providerMetadata is the OpenID Connect Discovery 1.0 document.
type providerMetadata struct {
	Issuer           string   `json:"issuer"`
	AuthorizationURL string   `json:"authorization_endpoint"`
	TokenURL         string   `json:"token_endpoint"`
	JWKSURL          string   `json:"jwks_uri"`
	ResponseTypes    []string `json:"response_types_supported"`
	SubjectTypes     []string `json:"subject_types_supported"`
	SigningAlgs      []string `json:"id_token_signing_alg_values_supported"`
	GrantTypes       []string `json:"grant_types_supported"`
	ClaimsSupported  []string `json:"claims_supported"`
}

func (p *IdP) serveMetadata(w http.ResponseWriter, r *http.Request, tenant string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "GET only")
		return
	}
	if !p.knownTenant(tenant) {
		writeOAuthError(w, http.StatusNotFound, "invalid_tenant", "unknown tenant")
		return
	}
	issuer := strings.ReplaceAll(p.issuer, "{tid}", "{tenantid}") // Entra's common form
	if tenant != "common" {
		issuer = p.Issuer(tenant)
		tenant = strings.ToLower(tenant)
	}
	base := p.origin() + "/" + tenant
	httpjson.Write(w, http.StatusOK, providerMetadata{
		Issuer:           issuer,
		AuthorizationURL: base + "/oauth2/v2.0/authorize",
		TokenURL:         base + "/oauth2/v2.0/token",
		JWKSURL:          base + "/discovery/v2.0/keys",
		ResponseTypes:    []string{"code", "id_token", "code id_token", "id_token token"},
		SubjectTypes:     []string{"pairwise"},
		SigningAlgs:      []string{string(jose.ES256)},
		GrantTypes:       []string{"srv_challenge", jwtBearerGrant},
		ClaimsSupported:  []string{"sub", "iss", "aud", "exp", "iat", "nbf", "auth_time", "tid", "oid", "upn", "amr", "azp", "deviceid", "uti", "jti", "ver"},
	})
}

func (p *IdP) serveToken(w http.ResponseWriter, r *http.Request, tenant string) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	if tenant == "common" || !p.knownTenant(tenant) {
		writeOAuthError(w, http.StatusBadRequest, "invalid_tenant", "unknown tenant")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxAssertionBytes+4<<10)
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "want a form body")
		return
	}
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "want a form body")
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "srv_challenge":
		n, err := p.HelloNonce()
		if errors.Is(err, ErrTooManyNonces) {
			writeOAuthError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many sign-ins in progress")
			return
		}
		if err != nil {
			writeOAuthError(w, http.StatusInternalServerError, "server_error", "no nonce")
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]string{"Nonce": n})
	case jwtBearerGrant:
		tok, err := p.SignInWithHelloKey(r.Context(), r.PostForm.Get("assertion"), r.PostForm.Get("resource"))
		if err != nil {
			writeOAuthError(w, http.StatusBadRequest, "invalid_grant", err.Error())
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(p.tokenTTL.Seconds())})
	default:
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "srv_challenge or jwt-bearer")
	}
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	httpjson.Write(w, status, map[string]string{"error": code, "error_description": desc})
}
