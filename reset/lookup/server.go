package lookup

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hellosim/hellosim/reset/identity"
)

// Source answers the lookups: the simulated directory (*idp.IdP) has these
// three methods.
type Source interface {
	Tenant(ctx context.Context, tenantID string) (identity.Tenant, error)
	Account(ctx context.Context, tenantID, objectID string) (identity.Account, error)
	Device(ctx context.Context, tenantID, deviceID string) (identity.Device, error)
}

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	// Source answers the lookups (required).
	Source Source
	// Apps are the credentials whose app tokens are accepted (at least
	// one).
	Apps []AppCredential
	// Audience is the aud app tokens must name: the lookup base URL as
	// clients are told it ("https://directory.example"), required.
	Audience string
	// Clock; nil means time.Now.
	Clock func() time.Time
}

type handler struct {
	src      Source
	apps     map[string]trustedApp
	audience string
	now      func() time.Time
}

// NewHandler returns the lookup API for cfg. Mount it at PathPrefix.
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.Source == nil || cfg.Audience == "" || len(cfg.Apps) == 0 {
		return nil, errors.New("lookup handler: source, audience and at least one app credential are required")
	}
	apps, err := trustedSet(cfg.Apps)
	if err != nil {
		return nil, err
	}
	h := &handler{src: cfg.Source, apps: apps, audience: strings.TrimSuffix(cfg.Audience, "/"), now: cfg.Clock}
	if h.now == nil {
		h.now = time.Now
	}
	return h, nil
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		writeError(w, http.StatusMethodNotAllowed, codeBadRequest, "GET only")
		return
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		token = ""
	}
	app, err := verifyAppToken(token, h.apps, h.audience, h.now())
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, codeUnauthorized, "app token refused")
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) == 0 {
		writeError(w, http.StatusNotFound, codeNotFound, "no such resource")
		return
	}
	tid, err := identity.CanonicalGUID(parts[0])
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "tenant id is not a GUID")
		return
	}
	ctx := r.Context()
	switch {
	case len(parts) == 1:
		t, err := h.src.Tenant(ctx, tid)
		if errors.Is(err, identity.ErrUnknownTenant) {
			writeError(w, http.StatusNotFound, codeNotFound, "no such tenant")
			return
		}
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "serviceNotAvailable", "lookup failed")
			return
		}
		writeJSON(w, tenantDoc{ID: t.ID, Cloud: t.Cloud, ConsentedApps: t.ConsentedApps, FederationSignInURL: t.FederationSignInURL})
	case len(parts) == 3 && (parts[1] == "users" || parts[1] == "devices") && !h.consented(w, r, tid, app):
		// refused: the tenant has not consented to the calling app
	case len(parts) == 3 && parts[1] == "users":
		oid, err := identity.CanonicalGUID(parts[2])
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "object id is not a GUID")
			return
		}
		a, err := h.src.Account(ctx, tid, oid)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "serviceNotAvailable", "lookup failed")
			return
		}
		doc := accountDoc{TenantID: tid, ID: oid, Standing: a.Standing.String()}
		if !a.SessionsRevokedAt.IsZero() {
			t := a.SessionsRevokedAt.UTC()
			doc.SessionsValidFrom = &t
		}
		writeJSON(w, doc)
	case len(parts) == 3 && parts[1] == "devices":
		did, err := identity.CanonicalGUID(parts[2])
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "device id is not a GUID")
			return
		}
		d, err := h.src.Device(ctx, tid, did)
		if errors.Is(err, identity.ErrDeviceElsewhere) {
			// Not in this tenant: the same answer as no device at all.
			writeError(w, http.StatusNotFound, codeNotFound, "no such resource")
			return
		}
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "serviceNotAvailable", "lookup failed")
			return
		}
		writeJSON(w, deviceDoc{TenantID: tid, DeviceID: did, Standing: d.Standing.String(), KeyThumbprint: d.KeyThumbprint})
	default:
		writeError(w, http.StatusNotFound, codeNotFound, "no such resource")
	}
}

// consented reports whether tenant tid has given the calling app admin
// consent, answering the request itself when not: without consent an app
// reads nothing of a tenant's users and devices, as Graph refuses an
// application the tenant has no service principal for. The tenant itself
// stays readable, so a service can tell a tenant that has not onboarded
// from one that does not exist.
func (h *handler) consented(w http.ResponseWriter, r *http.Request, tid, app string) bool {
	t, err := h.src.Tenant(r.Context(), tid)
	switch {
	case errors.Is(err, identity.ErrUnknownTenant):
		writeError(w, http.StatusNotFound, codeNotFound, "no such tenant")
		return false
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "serviceNotAvailable", "lookup failed")
		return false
	case !t.HasConsent(app):
		writeError(w, http.StatusForbidden, codeForbidden, "the tenant has not consented to this application")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "generalException", "encode failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var e errorDoc
	e.Error.Code, e.Error.Message = code, msg
	b, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}
