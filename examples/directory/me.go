package main

import (
	"net/http"
	"strings"

	"github.com/hellosim/hellosim/internal/accesstoken"
	"github.com/hellosim/hellosim/internal/httpjson"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
)

// mePath is the Graph-like read of the signed-in user's own directory
// objects (hello directory, against this directory): the user as
// idp.DirectoryUser, in JSON — its keys with their msDS-KeyCredentialLink
// values, and the devices those keys were registered from.
const mePath = "/v1.0/me"

// meHandler serves GET /v1.0/me to the bearer of an access token this
// directory issued for the device registration service (the token of a
// sign-in with the Hello key, or of a device code sign-in for that
// resource) to a user still enabled whose sessions were not revoked since.
// A token bound to a key (cnf.jkt) is refused: this read takes no proof
// of possession. Every refusal is 401 with the same body, naming nothing
// of the token.
func meHandler(dir *idp.IdP) http.Handler {
	verify := accesstoken.Config{Keys: dir.JWKS, Issuer: dir.IssuerTemplate(), Audience: idp.DRSResource, Clock: dir.Now}.WithDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != mePath {
			writeGraphError(w, http.StatusNotFound, "Request_ResourceNotFound", "no such resource")
			return
		}
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeGraphError(w, http.StatusMethodNotAllowed, "Request_BadRequest", "GET only")
			return
		}
		u, ok := meUser(r, dir, verify)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeGraphError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is missing or invalid.")
			return
		}
		httpjson.Write(w, http.StatusOK, u)
	})
}

// meUser is the user the request's bearer token names, when the token is
// good for this read.
func meUser(r *http.Request, dir *idp.IdP, verify accesstoken.Config) (idp.DirectoryUser, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return idp.DirectoryUser{}, false
	}
	c, err := verify.Verify(r.Context(), token)
	if err != nil || c.JKT != "" || c.UPN == "" {
		return idp.DirectoryUser{}, false
	}
	a, err := dir.Account(r.Context(), c.TenantID, c.ObjectID)
	if err != nil || a.Standing != identity.StandingEnabled || !a.SessionsRevokedAt.IsZero() && !c.IssuedAt.After(a.SessionsRevokedAt) {
		return idp.DirectoryUser{}, false
	}
	u, err := dir.DirectoryUser(c.UPN)
	if err != nil || u.ObjectID != c.ObjectID || u.TenantID != c.TenantID {
		return idp.DirectoryUser{}, false
	}
	return u, true
}

// writeGraphError answers an error in Microsoft Graph's shape.
func writeGraphError(w http.ResponseWriter, status int, code, msg string) {
	httpjson.Write(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
