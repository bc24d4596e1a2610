package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
)

// Paths served.
const (
	PathKeys    = "/v1/keys"
	PathRecover = "/v1/recover"
)

// realm names the service in WWW-Authenticate challenges (RFC 6750 §3).
const realm = "hellosim-pin-reset"

// decision is one audited outcome.
type decision struct {
	status     int
	code       string // "" on success
	message    string
	retryAfter int // seconds, for 429
	challenge  string
	tenant     string // verified tenant ID, when known
	user       string // verified object ID, when known
	kid        string
	reason     string // detail for the audit log only (never secret)
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := s.reqPrefix + strconv.FormatUint(s.reqSeq.Add(1), 10)
	h := w.Header()
	h["X-Request-Id"] = []string{rid}
	h["Cache-Control"] = []string{"no-store"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	switch r.URL.Path {
	case PathKeys:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h["Allow"] = []string{"GET, HEAD"}
			s.deny(w, r, rid, decision{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed, message: "use GET"})
			return
		}
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(s.keySet))}
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(s.keySet)
		}
		s.audit.LogAttrs(r.Context(), slog.LevelInfo, "pin reset keys",
			slog.String("request_id", rid), slog.String("decision", "allow"), slog.Int("status", http.StatusOK))
	case PathRecover:
		if r.Method != http.MethodPost {
			h["Allow"] = []string{"POST"}
			s.deny(w, r, rid, decision{status: http.StatusMethodNotAllowed, code: CodeMethodNotAllowed, message: "use POST"})
			return
		}
		s.recover(w, r, rid)
	default:
		s.deny(w, r, rid, decision{status: http.StatusNotFound, code: CodeNotFound, message: "no such resource"})
	}
}

// recover handles POST /v1/recover. Every check runs before anything is
// decrypted, in this order: content type, body size, strict JSON, token
// (signature, iss, aud, time), MFA, tenant onboarding, cloud, binding of the
// envelope to the token's tenant and user, replay, rate limit, key ID. Only
// then is the envelope unwrapped and the protector sealed to the client's
// one-time key.
func (s *Service) recover(w http.ResponseWriter, r *http.Request, rid string) {
	ctx := r.Context()
	if !isJSON(r.Header.Get("Content-Type")) {
		s.deny(w, r, rid, decision{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType, message: "send application/json"})
		return
	}
	body, d := s.readBody(w, r)
	if d != nil {
		s.deny(w, r, rid, *d)
		return
	}
	req, err := decodeRecoverRequest(body)
	if err != nil {
		s.deny(w, r, rid, decision{status: http.StatusBadRequest, code: CodeMalformedRequest, message: "malformed request body", reason: err.Error()})
		return
	}
	env := req.Envelope

	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		s.deny(w, r, rid, decision{status: http.StatusUnauthorized, code: CodeInvalidToken, message: "bearer token required",
			challenge: `Bearer realm="` + realm + `"`})
		return
	}
	claims, err := s.verifier.Verify(ctx, token)
	if err == nil && claims == nil {
		err = &TokenError{Reason: "verifier returned no claims"}
	}
	if err != nil {
		reason := "token refused"
		var te *TokenError
		if errors.As(err, &te) {
			// From a pluggable verifier: keep it short and fit for a
			// quoted header parameter.
			reason = strings.NewReplacer(`"`, "'", `\`, "/").Replace(sanitize(te.Reason, 80))
		} else if ctx.Err() != nil {
			reason = "request cancelled"
		}
		s.deny(w, r, rid, decision{status: http.StatusUnauthorized, code: CodeInvalidToken, message: "access token refused: " + reason,
			challenge: `Bearer realm="` + realm + `", error="invalid_token", error_description="` + reason + `"`, reason: reason})
		return
	}
	d0 := decision{tenant: claims.TenantID, user: claims.ObjectID, kid: env.KeyID()}
	if !s.now().Before(claims.Expiry.Add(s.skew)) {
		// The verifier accepted a token the replay cache would no longer
		// remember (a verifier with a larger skew than ReplaySkew, or a
		// clock behind the service's): refuse it, or it could be replayed.
		d := d0
		d.status, d.code, d.message = http.StatusUnauthorized, CodeInvalidToken, "access token refused: expired"
		d.challenge = `Bearer realm="` + realm + `", error="invalid_token", error_description="expired"`
		d.reason = "expired past the replay window"
		s.deny(w, r, rid, d)
		return
	}

	if !claims.HasMFA() {
		d := d0
		d.status, d.code, d.message = http.StatusForbidden, CodeMFARequired, "multi-factor authentication required"
		// RFC 9470 step-up: tell the client to come back with MFA.
		d.challenge = `Bearer realm="` + realm + `", error="insufficient_user_authentication", error_description="mfa required"`
		s.deny(w, r, rid, d)
		return
	}
	tenant, err := s.directory.Tenant(ctx, claims.TenantID)
	switch {
	case errors.Is(err, identity.ErrUnknownTenant):
		tenant = identity.Tenant{}
	case err != nil:
		d := d0
		d.status, d.code, d.message, d.reason = http.StatusServiceUnavailable, CodeUnavailable, "directory unavailable", "tenant lookup failed"
		s.deny(w, r, rid, d)
		return
	}
	if !tenant.Onboarded() {
		d := d0
		d.status, d.code, d.message = http.StatusForbidden, CodeNotOnboarded, "tenant has not consented to the PIN reset applications"
		s.deny(w, r, rid, d)
		return
	}
	if tenant.Cloud != identity.PublicCloud {
		d := d0
		d.status, d.code, d.message = http.StatusForbidden, CodeUnavailableInCloud, "the PIN reset service is not available in "+tenant.Cloud.String()
		s.deny(w, r, rid, d)
		return
	}
	b := env.Binding()
	if !strings.EqualFold(b.TenantID, claims.TenantID) || !strings.EqualFold(b.UserID, claims.ObjectID) {
		d := d0
		d.status, d.code, d.message = http.StatusForbidden, CodeBindingMismatch, "envelope is bound to another tenant or user"
		s.deny(w, r, rid, d)
		return
	}
	user := strings.ToLower(claims.TenantID) + "/" + strings.ToLower(claims.ObjectID)
	switch res, wait := s.guard.admit(claims.Issuer+"\x00"+claims.JTI, user, claims.Expiry.Add(s.skew), s.now()); res {
	case guardReplay:
		d := d0
		d.status, d.code, d.message = http.StatusUnauthorized, CodeTokenReplayed, "access token already used"
		d.challenge = `Bearer realm="` + realm + `", error="invalid_token", error_description="token replayed"`
		s.deny(w, r, rid, d)
		return
	case guardRateLimited:
		d := d0
		d.status, d.code, d.message = http.StatusTooManyRequests, CodeRateLimited, "too many recoveries for this user"
		d.retryAfter = max(1, int((wait+999_999_999)/1_000_000_000))
		s.deny(w, r, rid, d)
		return
	case guardFull:
		d := d0
		d.status, d.code, d.message, d.reason = http.StatusServiceUnavailable, CodeUnavailable, "service busy", "replay cache full"
		d.retryAfter = 60
		s.deny(w, r, rid, d)
		return
	}
	uw, ok := s.keys[env.KeyID()]
	if !ok {
		d := d0
		if s.retired[env.KeyID()] {
			d.status, d.code, d.message = http.StatusGone, CodeKeyRetired, "service key retired: re-enrol the protector"
		} else {
			d.status, d.code, d.message = http.StatusBadRequest, CodeUnknownKey, "unknown service key"
		}
		s.deny(w, r, rid, d)
		return
	}
	key, err := uw.Unwrap(env)
	if err != nil {
		d := d0
		d.status, d.code, d.message, d.reason = http.StatusBadRequest, CodeBadEnvelope, "envelope does not open", "unwrap failed"
		s.deny(w, r, rid, d)
		return
	}
	sealed, err := protector.SealToReturnKey(req.ReturnKey, key, env)
	key.Destroy()
	if err != nil {
		d := d0
		d.status, d.code, d.message, d.reason = http.StatusBadRequest, CodeMalformedRequest, "return_key unusable", "seal to return key failed"
		s.deny(w, r, rid, d)
		return
	}
	out := make([]byte, 0, len(`{"sealed_key":""}`)+b64().EncodedLen(len(sealed)))
	out = append(out, `{"sealed_key":"`...)
	out = b64().AppendEncode(out, sealed)
	out = append(out, `"}`...)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	s.audit.LogAttrs(ctx, slog.LevelInfo, "pin reset decision",
		slog.String("request_id", rid),
		slog.String("decision", "allow"),
		slog.Int("status", http.StatusOK),
		slog.String("tenant", d0.tenant),
		slog.String("user", d0.user),
		slog.String("kid", d0.kid),
	)
}

// readBody reads at most maxBody bytes, in one allocation when the client
// sent a Content-Length.
func (s *Service) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *decision) {
	if r.ContentLength > s.maxBody {
		return nil, s.tooLarge()
	}
	n := s.maxBody + 1
	if r.ContentLength >= 0 {
		n = r.ContentLength + 1 // one more, to see the end
	}
	lr := io.LimitReader(r.Body, s.maxBody+1)
	buf := make([]byte, 0, n)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &decision{status: http.StatusBadRequest, code: CodeMalformedRequest, message: "could not read the body"}
		}
	}
	if int64(len(buf)) > s.maxBody {
		return nil, s.tooLarge()
	}
	return buf, nil
}

func (s *Service) tooLarge() *decision {
	return &decision{status: http.StatusRequestEntityTooLarge, code: CodeBodyTooLarge,
		message: "request body over " + strconv.FormatInt(s.maxBody, 10) + " bytes"}
}

// deny writes an error response and audits it.
func (s *Service) deny(w http.ResponseWriter, r *http.Request, rid string, d decision) {
	h := w.Header()
	if d.challenge != "" {
		h["Www-Authenticate"] = []string{d.challenge}
	}
	if d.retryAfter > 0 {
		h["Retry-After"] = []string{strconv.Itoa(d.retryAfter)}
	}
	out := make([]byte, 0, 64+len(d.message))
	out = append(out, `{"error":`...)
	out = strconv.AppendQuote(out, d.code)
	out = append(out, `,"message":`...)
	out = strconv.AppendQuote(out, d.message)
	out = append(out, '}')
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(d.status)
	w.Write(out)

	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.String("request_id", rid),
		slog.String("decision", "deny"),
		slog.Int("status", d.status),
		slog.String("code", d.code),
		slog.String("method", sanitize(r.Method, 16)),
		slog.String("path", auditPath(r.URL.Path)),
	)
	if d.tenant != "" {
		attrs = append(attrs, slog.String("tenant", d.tenant), slog.String("user", d.user))
	}
	if d.kid != "" {
		attrs = append(attrs, slog.String("kid", d.kid))
	}
	if d.reason != "" {
		attrs = append(attrs, slog.String("reason", d.reason))
	}
	if d.retryAfter > 0 {
		attrs = append(attrs, slog.Int("retry_after_s", d.retryAfter))
	}
	s.audit.LogAttrs(context.WithoutCancel(r.Context()), slog.LevelWarn, "pin reset decision", attrs...)
}

// bearer extracts the token from an Authorization header (RFC 6750 §2.1;
// the scheme is case-insensitive).
func bearer(h string) (string, bool) {
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	t := strings.TrimSpace(h[len(p):])
	return t, t != ""
}

// isJSON accepts application/json, with at most a utf-8 charset parameter.
func isJSON(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// auditPath names the path for the audit log: unknown paths are not
// logged verbatim, since a client could have put anything there.
func auditPath(p string) string {
	if p == PathKeys || p == PathRecover {
		return p
	}
	return "(other)"
}

// sanitize bounds and cleans an attacker-chosen string for the audit log.
func sanitize(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\ufffd' {
			return '?'
		}
		return r
	}, s)
}
