package web

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/hellosim/hellosim/internal/httpjson"
)

// Metadata is the OpenID Provider metadata (OpenID Connect Discovery 1.0,
// RFC 8414) of a tenant: every endpoint and grant the server has.
type Metadata struct {
	Issuer                   string   `json:"issuer"`
	AuthorizationEndpoint    string   `json:"authorization_endpoint"`
	TokenEndpoint            string   `json:"token_endpoint"`
	DeviceEndpoint           string   `json:"device_authorization_endpoint"`
	JWKSURI                  string   `json:"jwks_uri"`
	ResponseTypes            []string `json:"response_types_supported"`
	ResponseModes            []string `json:"response_modes_supported"`
	GrantTypes               []string `json:"grant_types_supported"`
	SubjectTypes             []string `json:"subject_types_supported"`
	SigningAlgs              []string `json:"id_token_signing_alg_values_supported"`
	TokenAuthMethods         []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethods     []string `json:"code_challenge_methods_supported"`
	DPoPAlgs                 []string `json:"dpop_signing_alg_values_supported"`
	Scopes                   []string `json:"scopes_supported"`
	Claims                   []string `json:"claims_supported"`
	RequestURIParamSupported bool     `json:"request_uri_parameter_supported"`
	TenantRegionScope        *string  `json:"tenant_region_scope"`
}

// MetadataFor returns the metadata of tenantSeg (a tenant ID or "common").
func (s *Server) MetadataFor(tenantSeg string) Metadata {
	issuer := s.dir.Issuer(tenantSeg)
	if tenantSeg == "common" {
		issuer = s.dir.Issuer("{tenantid}") // Entra's common form
	}
	base := s.origin + "/" + strings.ToLower(tenantSeg)
	return Metadata{
		Issuer:                issuer,
		AuthorizationEndpoint: base + "/oauth2/v2.0/authorize",
		TokenEndpoint:         base + "/oauth2/v2.0/token",
		DeviceEndpoint:        base + "/oauth2/v2.0/devicecode",
		JWKSURI:               base + "/discovery/v2.0/keys",
		ResponseTypes:         []string{"code"},
		ResponseModes:         []string{"query"},
		GrantTypes:            []string{grantAuthCode, grantRefresh, grantDeviceCode, grantHelloNonce, grantJWTBearer},
		SubjectTypes:          []string{"pairwise"},
		SigningAlgs:           []string{"ES256"},
		TokenAuthMethods:      []string{"none"},
		CodeChallengeMethods:  []string{"S256"},
		DPoPAlgs:              []string{"ES256"},
		Scopes:                []string{"openid", "profile", "email", "offline_access"},
		Claims: []string{"sub", "iss", "aud", "exp", "iat", "nbf", "auth_time", "nonce", "tid", "oid", "upn",
			"preferred_username", "amr", "azp", "deviceid", "cnf", "uti", "jti", "ver"},
	}
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request, tenantSeg string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeError(w, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", aadsts: 900561, desc: "GET only."})
		return
	}
	if strings.EqualFold(tenantSeg, "organizations") {
		tenantSeg = "common"
	}
	if !strings.EqualFold(tenantSeg, "common") {
		id, ok := s.tenantSeg(tenantSeg)
		if !ok || id == "" {
			s.writeError(w, &oauthError{status: http.StatusBadRequest, code: "invalid_tenant", aadsts: 90002, desc: "Tenant '" + clip(tenantSeg, 64) + "' not found."})
			return
		}
		tenantSeg = id
	} else {
		tenantSeg = "common"
	}
	httpjson.Write(w, http.StatusOK, s.MetadataFor(tenantSeg))
}

func (s *Server) serveKeys(w http.ResponseWriter, r *http.Request, tenantSeg string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeError(w, &oauthError{status: http.StatusMethodNotAllowed, code: "invalid_request", aadsts: 900561, desc: "GET only."})
		return
	}
	if _, ok := s.tenantSeg(tenantSeg); !ok {
		s.writeError(w, &oauthError{status: http.StatusBadRequest, code: "invalid_tenant", aadsts: 90002, desc: "Tenant '" + clip(tenantSeg, 64) + "' not found."})
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_ = json.NewEncoder(w).Encode(s.dir.JWKS())
}
