package service

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/protector"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/service/state"
)

// attempt is one recover request as the checks learn about it. The
// request (r, rid, client) is known before any check; every other field is
// a fact that exactly one check sets and only the checks after it read
// (see fact and recoverChecks).
type attempt struct {
	r      *http.Request
	rid    string
	client clientAddr

	body   []byte              // factBody
	req    recoverRequest      // factBody
	uw     protector.Unwrapper // factServiceKey
	token  string              // factCredentials
	proof  string              // factCredentials: the DPoP header
	claims *Claims             // factClaims
	pr     *dpop.Proof         // factProof
	check  string              // the check running, for the audit (the runner's, no check's)
}

// fact is something a check learns about the request and hands to the
// checks after it. Each is set by one check; a check may read only the
// facts of the checks before it. TestRecoverCheckOrder holds the list to
// that, and reads the checks' code to hold their declarations to what
// they do.
type fact uint8

const (
	factBody        fact = 1 << iota // body, req: the request, decoded
	factServiceKey                   // uw: the service key the envelope names
	factCredentials                  // token, proof: the Authorization and DPoP headers, not yet verified
	factClaims                       // claims: the verified access token
	factProof                        // pr: the verified proof of possession of the token's key
	// factLimited is no field: the user is not locked out and the user's
	// and the tenant's buckets have paid for this request. Every check
	// that can refuse an authenticated request reads it, so no request
	// that names a user escapes the user's limits, whatever check refuses
	// it.
	factLimited
)

// refusal is a check's verdict against the request: what the client is
// told (status, code, message, challenge, Retry-After), what the audit
// records (reason, the true cause), and whether it counts as a failure
// against the user's lockout.
type refusal struct {
	status     int
	code       string
	message    string
	challenge  string
	retryAfter time.Duration
	reason     string
	countFail  bool
}

// check is one named step of the recover path: what it reads, what it
// sets, and the step itself, which returns nil to go on.
type check struct {
	name  string
	reads fact
	sets  fact
	run   func(*Service, context.Context, *attempt) *refusal
}

// recoverChecks are the recover path, in the order they run. First what
// needs only the request (shape, return key, key ID), then the address's
// bucket, the one limit drawn before authentication. Then the
// authentication: the token (signature, issuer, audience, time), issued to
// the PIN reset client with a fresh MFA and bound to a device key, and the
// proof made with that key. Then at once the user's lockout, the proof's
// jti and the user's and tenant's buckets, so every authenticated request
// pays, whatever check refuses it later; then the directory (tenant,
// account, device) and the envelope's binding; and last the token's jti.
// Only when every check has passed is the envelope unwrapped.
var recoverChecks = []check{
	{name: "content_type", run: (*Service).checkContentType},
	{name: "body", sets: factBody, run: (*Service).checkBody},
	{name: "return_key", reads: factBody, run: (*Service).checkReturnKey},
	{name: "service_key", reads: factBody, sets: factServiceKey, run: (*Service).checkServiceKey},
	{name: "envelope_device", reads: factBody, run: (*Service).checkEnvelopeNamesDevice},
	{name: "credentials_present", sets: factCredentials, run: (*Service).checkCredentialsPresent},
	{name: "address_limit", run: (*Service).checkAddressLimit},
	{name: "token", reads: factCredentials, sets: factClaims, run: (*Service).checkToken},
	{name: "client_app", reads: factClaims, run: (*Service).checkClientApp},
	{name: "mfa", reads: factClaims, run: (*Service).checkMFA},
	{name: "token_bound", reads: factClaims, run: (*Service).checkTokenBound},
	{name: "proof", reads: factBody | factCredentials | factClaims, sets: factProof, run: (*Service).checkProof},
	{name: "user_limit", reads: factClaims | factProof, sets: factLimited, run: (*Service).checkUserLimit},
	{name: "tenant", reads: factClaims | factLimited, run: (*Service).checkTenant},
	{name: "account", reads: factClaims | factLimited, run: (*Service).checkAccount},
	{name: "device", reads: factClaims | factLimited, run: (*Service).checkDevice},
	{name: "binding", reads: factBody | factClaims | factLimited, run: (*Service).checkBinding},
	{name: "replay", reads: factClaims | factLimited, run: (*Service).checkReplay},
}

// RecoverChecks names the recover path's checks in the order they run;
// the audit's "check" attribute is one of them, or "unwrap".
func RecoverChecks() []string {
	out := make([]string, len(recoverChecks))
	for i, c := range recoverChecks {
		out[i] = c.name
	}
	return out
}

// recover handles POST /v1/recover: every check in order, then the unwrap.
func (s *Service) recover(w http.ResponseWriter, at *attempt) {
	ctx := at.r.Context()
	for _, c := range recoverChecks {
		at.check = c.name
		if ref := c.run(s, ctx, at); ref != nil {
			s.refuse(w, at, ref)
			return
		}
	}
	at.check = "unwrap"
	key, err := at.uw.Unwrap(at.req.Envelope)
	if err != nil {
		s.refuse(w, at, &refusal{status: http.StatusBadRequest, code: CodeBadEnvelope, message: "envelope does not open",
			reason: "unwrap failed", countFail: true})
		return
	}
	sealed, err := protector.SealToReturnKey(at.req.ReturnKey, key, at.req.Envelope)
	key.Destroy()
	if err != nil {
		s.refuse(w, at, &refusal{status: http.StatusInternalServerError, code: CodeInternal, message: "could not seal the protector",
			reason: "seal to return key failed"})
		return
	}
	out, _ := json.Marshal(struct {
		SealedKey string `json:"sealed_key"`
	}{b64().EncodeToString(sealed)})
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(http.StatusOK)
	w.Write(out)
	at.check = ""
	s.record(at, slog.LevelInfo, "pin reset decision", http.StatusOK, nil)
}

func (s *Service) checkContentType(_ context.Context, at *attempt) *refusal {
	if !isJSON(at.r.Header.Get("Content-Type")) {
		return &refusal{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMediaType, message: "send application/json"}
	}
	return nil
}

func (s *Service) checkBody(_ context.Context, at *attempt) *refusal {
	body, ref := s.readBody(at.r)
	if ref != nil {
		return ref
	}
	req, err := decodeRecoverRequest(body)
	if err != nil {
		return &refusal{status: http.StatusBadRequest, code: CodeMalformedRequest, message: "malformed request body", reason: err.Error()}
	}
	at.body, at.req = body, req
	return nil
}

func (s *Service) checkReturnKey(_ context.Context, at *attempt) *refusal {
	if protector.CheckReturnKey(at.req.ReturnKey) != nil {
		return &refusal{status: http.StatusBadRequest, code: CodeMalformedRequest, message: "return_key is not a usable X25519 public key",
			reason: "return key of small order or invalid"}
	}
	return nil
}

func (s *Service) checkServiceKey(_ context.Context, at *attempt) *refusal {
	kid := at.req.Envelope.KeyID()
	uw, ok := s.keys[kid]
	switch {
	case ok:
		at.uw = uw
		return nil
	case s.retired[kid]:
		return &refusal{status: http.StatusGone, code: CodeKeyRetired, message: "service key retired: re-enrol the protector"}
	}
	return &refusal{status: http.StatusBadRequest, code: CodeUnknownKey, message: "unknown service key"}
}

func (s *Service) checkEnvelopeNamesDevice(_ context.Context, at *attempt) *refusal {
	if at.req.Envelope.Binding().DeviceID == "" {
		return &refusal{status: http.StatusBadRequest, code: CodeEnvelopeNotBound,
			message: "envelope names no device: re-enrol the protector on this device", reason: "version 1 envelope"}
	}
	return nil
}

// dpopChallenge is the WWW-Authenticate of a 401 (RFC 9449 §7.1).
func dpopChallenge(code, desc string) string {
	c := `DPoP realm="` + realm + `", algs="ES256"`
	if code != "" {
		c += `, error="` + code + `", error_description="` + desc + `"`
	}
	return c
}

func (s *Service) checkCredentialsPresent(_ context.Context, at *attempt) *refusal {
	authz := at.r.Header.Get("Authorization")
	token, ok := authScheme(authz, "dpop")
	if !ok {
		reason := "no DPoP authorization"
		if _, bearer := authScheme(authz, "bearer"); bearer {
			// RFC 9449 §7.1: a bound token presented as a bearer token is
			// refused; here every token must be bound.
			reason = "bearer scheme: a device-bound token and a proof are required"
		}
		return &refusal{status: http.StatusUnauthorized, code: CodeInvalidToken, message: "DPoP-bound access token required",
			challenge: dpopChallenge("", ""), reason: reason}
	}
	proofs := at.r.Header.Values("DPoP")
	if len(proofs) != 1 || proofs[0] == "" {
		return &refusal{status: http.StatusUnauthorized, code: CodeInvalidProof, message: "exactly one DPoP proof required",
			challenge: dpopChallenge(CodeInvalidProof, "one proof required"), reason: "no or several DPoP headers"}
	}
	at.token, at.proof = token, proofs[0]
	return nil
}

func (s *Service) checkAddressLimit(ctx context.Context, at *attempt) *refusal {
	b, ok := s.limits.address.bucket("addr:" + at.client.addr)
	if !ok {
		return nil
	}
	v, err := s.store.Admit(ctx, state.Admission{Buckets: []state.Bucket{b}})
	if err != nil {
		return unavailable("state store: " + err.Error())
	}
	if v.Outcome != state.Admitted {
		return &refusal{status: http.StatusTooManyRequests, code: CodeRateLimited, message: "too many requests from this address",
			retryAfter: v.RetryAfter, reason: "address limit"}
	}
	return nil
}

func unavailable(reason string) *refusal {
	return &refusal{status: http.StatusServiceUnavailable, code: CodeUnavailable, message: "service unavailable, try again later",
		retryAfter: 5 * time.Second, reason: reason}
}

func (s *Service) checkToken(ctx context.Context, at *attempt) *refusal {
	claims, err := s.verifier.Verify(ctx, at.token)
	if err == nil && claims == nil {
		err = &TokenError{Reason: "verifier returned no claims"}
	}
	if errors.Is(err, ErrUnavailable) {
		// The verifier cannot check any token now: fail closed, and
		// tell the client to come back rather than that its token is bad.
		return unavailable("token verifier unavailable")
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
		return &refusal{status: http.StatusUnauthorized, code: CodeInvalidToken, message: "access token refused: " + reason,
			challenge: dpopChallenge("invalid_token", reason), reason: reason}
	}
	at.claims = claims
	if !s.now().Before(claims.Expiry.Add(s.skew)) {
		// The verifier accepted a token the replay records would no
		// longer hold (a verifier with a larger skew than ReplaySkew, or a
		// clock behind the service's): refuse it, or it could be replayed.
		return &refusal{status: http.StatusUnauthorized, code: CodeInvalidToken, message: "access token refused: expired",
			challenge: dpopChallenge("invalid_token", "expired"), reason: "expired past the replay window"}
	}
	return nil
}

func (s *Service) checkClientApp(_ context.Context, at *attempt) *refusal {
	if !strings.EqualFold(at.claims.AZP, s.clientApp) {
		return &refusal{status: http.StatusForbidden, code: CodeClientNotAllowed, message: "token issued to another client application",
			reason: "azp " + sanitize(at.claims.AZP, 40)}
	}
	return nil
}

func (s *Service) checkMFA(_ context.Context, at *attempt) *refusal {
	c := at.claims
	now := s.now()
	stale := ""
	switch {
	case !c.HasMFA():
		stale = "no mfa in amr"
	case c.AuthTime.IsZero():
		stale = "no auth_time"
	case now.Sub(c.AuthTime) > s.mfaMaxAge:
		stale = "mfa older than " + s.mfaMaxAge.String()
	case c.AuthTime.After(now.Add(s.skew)):
		stale = "auth_time in the future"
	}
	if stale == "" {
		return nil
	}
	// RFC 9470 step-up: tell the client to come back with a fresh MFA.
	return &refusal{status: http.StatusForbidden, code: CodeMFARequired, message: "recent multi-factor authentication required",
		challenge: `DPoP realm="` + realm + `", error="insufficient_user_authentication", error_description="fresh mfa required", max_age=` +
			strconv.Itoa(int(s.mfaMaxAge/time.Second)),
		reason: stale}
}

func (s *Service) checkTokenBound(_ context.Context, at *attempt) *refusal {
	if at.claims.JKT == "" || at.claims.DeviceID == "" {
		return &refusal{status: http.StatusForbidden, code: CodeDeviceNotAllowed, message: "token is not bound to a device",
			reason: "no cnf.jkt or deviceid"}
	}
	return nil
}

// recoverURL is the htu a proof must name, and whether it was derived
// rather than configured. Without Config.PublicURL it is the URL of the
// listener the request arrived on (scheme from the connection, host and
// port from its local address), never the Host header: a proxy relaying a
// client's Host would otherwise make a proof made for another server good
// here. A request that came over no connection (a handler called in
// process) has no listener; only then is the Host used.
func (s *Service) recoverURL(r *http.Request) (htu string, derived bool) {
	if s.htu != "" {
		return s.htu, false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	// The path as it arrived, before any prefix was stripped by a mux in
	// front of the service.
	path := r.URL.Path
	if u, err := url.ParseRequestURI(r.RequestURI); err == nil && u.Path != "" {
		path = u.Path
	}
	host := r.Host
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la != nil {
		host = la.String()
	}
	return scheme + "://" + host + path, true
}

func (s *Service) checkProof(_ context.Context, at *attempt) *refusal {
	htu, derived := s.recoverURL(at.r)
	pr, err := dpop.Parse(at.proof)
	if err == nil {
		err = pr.Check(dpop.Expect{
			HTM: http.MethodPost, HTU: htu,
			ATH: dpop.Hash([]byte(at.token)), RKH: dpop.Hash(at.req.ReturnKey),
			JKT: at.claims.JKT, Now: s.now(), MaxAge: s.proofAge, Skew: s.skew,
		})
	}
	if err != nil {
		reason := "proof refused"
		var re *dpop.ProofError
		if errors.As(err, &re) {
			reason = re.Reason
		}
		audit := "proof: " + reason
		if derived && pr != nil && pr.HTU != htu {
			// Tell the operator what was expected, and why.
			audit += " (expected " + sanitize(htu, 120) + ", from the listener: set Config.PublicURL)"
		}
		return &refusal{status: http.StatusUnauthorized, code: CodeInvalidProof, message: "DPoP proof refused: " + reason,
			challenge: dpopChallenge(CodeInvalidProof, reason), reason: audit}
	}
	at.pr = pr
	return nil
}

func (s *Service) checkTenant(ctx context.Context, at *attempt) *refusal {
	tenant, err := s.directory.Tenant(ctx, at.claims.TenantID)
	switch {
	case errors.Is(err, identity.ErrUnknownTenant):
		tenant = identity.Tenant{}
	case err != nil:
		return unavailable("tenant lookup failed")
	}
	if !tenant.Onboarded() {
		return &refusal{status: http.StatusForbidden, code: CodeNotOnboarded, message: "tenant has not consented to the PIN reset applications"}
	}
	if tenant.Cloud != identity.PublicCloud {
		return &refusal{status: http.StatusForbidden, code: CodeUnavailableInCloud, message: "the PIN reset service is not available in " + tenant.Cloud.String()}
	}
	return nil
}

func (s *Service) checkAccount(ctx context.Context, at *attempt) *refusal {
	c := at.claims
	a, err := s.directory.Account(ctx, c.TenantID, c.ObjectID)
	if err != nil {
		return unavailable("account lookup failed")
	}
	if a.Standing != identity.StandingEnabled {
		return &refusal{status: http.StatusForbidden, code: CodeAccountInactive, message: "account is not active",
			reason: "account " + a.Standing.String()}
	}
	// Whole seconds: iat has no finer grain, so a token issued in the
	// second of the revocation is honoured.
	if !a.SessionsRevokedAt.IsZero() && c.IssuedAt.Before(a.SessionsRevokedAt.Truncate(time.Second)) {
		return &refusal{status: http.StatusUnauthorized, code: CodeInvalidToken, message: "access token refused: sessions revoked",
			challenge: dpopChallenge("invalid_token", "sessions revoked"), reason: "sessions revoked after the token was issued"}
	}
	return nil
}

func (s *Service) checkDevice(ctx context.Context, at *attempt) *refusal {
	c := at.claims
	d, err := s.directory.Device(ctx, c.TenantID, c.DeviceID)
	switch {
	case errors.Is(err, identity.ErrDeviceElsewhere):
		return &refusal{status: http.StatusForbidden, code: CodeDeviceNotAllowed, message: "device is not active",
			reason: "device not in the token's tenant"}
	case err != nil:
		return unavailable("device lookup failed")
	}
	switch {
	case d.Standing != identity.StandingEnabled:
		return &refusal{status: http.StatusForbidden, code: CodeDeviceNotAllowed, message: "device is not active",
			reason: "device " + d.Standing.String()}
	case d.KeyThumbprint != c.JKT:
		return &refusal{status: http.StatusForbidden, code: CodeDeviceNotAllowed, message: "device key does not match",
			reason: "token bound to a key the device no longer holds"}
	}
	return nil
}

func (s *Service) checkBinding(_ context.Context, at *attempt) *refusal {
	b, c := at.req.Envelope.Binding(), at.claims
	switch {
	case !strings.EqualFold(b.TenantID, c.TenantID) || !strings.EqualFold(b.UserID, c.ObjectID):
		return &refusal{status: http.StatusForbidden, code: CodeBindingMismatch, message: "envelope is bound to another tenant or user",
			reason: "binding names another tenant or user", countFail: true}
	case !strings.EqualFold(b.DeviceID, c.DeviceID):
		return &refusal{status: http.StatusForbidden, code: CodeBindingMismatch, message: "envelope is bound to another device",
			reason: "binding names another device", countFail: true}
	}
	return nil
}

// userKey names the user for limits and lockouts.
func userKey(c *Claims) string {
	return strings.ToLower(c.TenantID) + "/" + strings.ToLower(c.ObjectID)
}

// checkUserLimit is the first step after authentication: the user not
// locked out, the proof's jti new in the tenant's partition, and one token
// from the user's and the tenant's buckets, in one atomic admission. It
// comes before every check that can refuse an authenticated request, so a
// request refused later (an envelope of another user, a stale MFA) still
// pays, and a locked-out user is refused whatever the request carries.
func (s *Service) checkUserLimit(ctx context.Context, at *attempt) *refusal {
	c, pr := at.claims, at.pr
	tenant := strings.ToLower(c.TenantID)
	user := userKey(c)
	a := state.Admission{
		Partition: tenant,
		IssuedAt:  c.IssuedAt,
		Locks:     []string{user},
		Once: []state.Once{
			{ID: "dpop\x00" + pr.JKT + "\x00" + pr.JTI, Expires: time.Unix(pr.IAT, 0).Add(s.proofAge + s.skew)},
		},
	}
	var names []string
	if b, ok := s.limits.user.bucket("user:" + user); ok {
		a.Buckets, names = append(a.Buckets, b), append(names, "user")
	}
	if b, ok := s.limits.tenant.bucket("tenant:" + tenant); ok {
		a.Buckets, names = append(a.Buckets, b), append(names, "tenant")
	}
	return s.admit(ctx, a, names)
}

// checkReplay is the last check: the token's jti new in the tenant's
// partition (and the user still not locked out). A token is spent only on
// a request every other check has passed, so a request refused for a
// reason the user can mend (a directory that did not answer) can be sent
// again with the same token and a fresh proof.
func (s *Service) checkReplay(ctx context.Context, at *attempt) *refusal {
	c := at.claims
	return s.admit(ctx, state.Admission{
		Partition: strings.ToLower(c.TenantID),
		IssuedAt:  c.IssuedAt,
		Locks:     []string{userKey(c)},
		Once: []state.Once{
			{ID: "at\x00" + c.Issuer + "\x00" + c.JTI, Expires: c.Expiry.Add(s.skew)},
		},
	}, nil)
}

// admit asks the state store for a and turns its verdict into a refusal;
// buckets names a's buckets for the audit.
func (s *Service) admit(ctx context.Context, a state.Admission, buckets []string) *refusal {
	v, err := s.store.Admit(ctx, a)
	if err != nil {
		return unavailable("state store: " + err.Error())
	}
	switch v.Outcome {
	case state.Admitted:
		return nil
	case state.BeforeEpoch:
		return &refusal{status: http.StatusUnauthorized, code: CodeInvalidToken, message: "access token refused: issued before the service's records begin; sign in again",
			challenge: dpopChallenge("invalid_token", "sign in again"), reason: "token issued before the store's epoch"}
	case state.LockedOut:
		return &refusal{status: http.StatusTooManyRequests, code: CodeLockedOut, message: "too many failed recoveries for this user",
			retryAfter: v.RetryAfter, reason: "user locked out"}
	case state.Replayed:
		if v.Index < len(a.Once) && strings.HasPrefix(a.Once[v.Index].ID, "dpop\x00") {
			return &refusal{status: http.StatusUnauthorized, code: CodeInvalidProof, message: "DPoP proof already used",
				challenge: dpopChallenge(CodeInvalidProof, "proof replayed"), reason: "proof jti replayed"}
		}
		return &refusal{status: http.StatusUnauthorized, code: CodeTokenReplayed, message: "access token already used",
			challenge: dpopChallenge("invalid_token", "token replayed"), reason: "token jti replayed"}
	case state.Expired:
		return &refusal{status: http.StatusUnauthorized, code: CodeInvalidToken, message: "access token refused: expired",
			challenge: dpopChallenge("invalid_token", "expired"), reason: "one-time id already expired"}
	case state.Full:
		return unavailable("replay partition of this tenant full")
	case state.RateLimited:
		what := "limit"
		if v.Index < len(buckets) {
			what = buckets[v.Index]
		}
		msg := "too many recoveries for this user"
		if what == "tenant" {
			msg = "tenant quota exhausted"
		}
		return &refusal{status: http.StatusTooManyRequests, code: CodeRateLimited, message: msg,
			retryAfter: v.RetryAfter, reason: what + " limit"}
	}
	return unavailable("state store: outcome " + v.Outcome.String())
}

// refuse is the one place a refusal is written: status, headers, the JSON
// error body, the failure count when the refusal counts against the user,
// and the audit record.
func (s *Service) refuse(w http.ResponseWriter, at *attempt, ref *refusal) {
	var fails *state.Failures
	if ref.countFail && at.claims != nil {
		f, err := s.store.Fail(context.WithoutCancel(at.r.Context()), strings.ToLower(at.claims.TenantID), userKey(at.claims), s.lockout)
		if err != nil {
			// The failure went uncounted: say so, and release nothing
			// (nothing was going to be released).
			ref = unavailable("state store: failure not counted: " + err.Error())
		} else {
			fails = &f
		}
	}
	h := w.Header()
	if ref.challenge != "" {
		h["Www-Authenticate"] = []string{ref.challenge}
	}
	retry := 0
	if ref.retryAfter > 0 {
		retry = max(1, int((ref.retryAfter+time.Second-1)/time.Second))
		h["Retry-After"] = []string{strconv.Itoa(retry)}
	}
	out, _ := json.Marshal(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{ref.code, ref.message})
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(ref.status)
	w.Write(out)

	extra := []slog.Attr{slog.String("code", ref.code)}
	if ref.reason != "" {
		extra = append(extra, slog.String("reason", ref.reason))
	}
	if retry > 0 {
		extra = append(extra, slog.Int("retry_after_s", retry))
	}
	if fails != nil {
		extra = append(extra, slog.Int("failures", fails.Count))
		if !fails.LockedUntil.IsZero() {
			extra = append(extra, slog.Time("locked_until", fails.LockedUntil))
		}
	}
	s.record(at, slog.LevelWarn, "pin reset decision", ref.status, extra)
}

// record writes one audit record for at: who asked (address, trusted
// forwarded chain, user agent), about whom (tenant, user, device, a hash
// of the token's jti), which check decided, and the outcome.
func (s *Service) record(at *attempt, level slog.Level, msg string, status int, extra []slog.Attr) {
	r := at.r
	attrs := make([]slog.Attr, 0, 20)
	decision := "allow"
	if status != http.StatusOK {
		decision = "deny"
	}
	attrs = append(attrs,
		slog.String("request_id", at.rid),
		slog.String("decision", decision),
		slog.Int("status", status),
		slog.String("method", sanitize(r.Method, 16)),
		slog.String("path", auditPath(r.URL.Path)),
		slog.String("client", at.client.addr),
	)
	if len(at.client.chain) > 0 {
		attrs = append(attrs, slog.Any("forwarded", at.client.chain))
	}
	if at.client.untrusted != "" {
		attrs = append(attrs, slog.String("forwarded_ignored", at.client.untrusted))
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		attrs = append(attrs, slog.String("user_agent", sanitize(ua, 128)))
	}
	if at.check != "" {
		attrs = append(attrs, slog.String("check", at.check))
	}
	if c := at.claims; c != nil {
		attrs = append(attrs, slog.String("tenant", c.TenantID), slog.String("user", c.ObjectID), slog.String("jti_hash", jtiHash(c.JTI)))
		if c.DeviceID != "" {
			attrs = append(attrs, slog.String("device", sanitize(c.DeviceID, 64)))
		}
	}
	if env := at.req.Envelope; env != nil {
		attrs = append(attrs, slog.String("kid", env.KeyID()))
		if d := env.Binding().DeviceID; d != "" && (at.claims == nil || !strings.EqualFold(d, at.claims.DeviceID)) {
			attrs = append(attrs, slog.String("envelope_device", sanitize(d, 64)))
		}
	}
	attrs = append(attrs, extra...)
	s.audit.LogAttrs(context.WithoutCancel(r.Context()), level, msg, attrs...)
}

// jtiHash names a token in the audit log without the jti itself: enough to
// match records of one token, not to present it.
func jtiHash(jti string) string {
	h := sha256.Sum256([]byte(jti))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// authScheme extracts the credentials of an Authorization header in the
// given scheme (lower case; the scheme is case-insensitive, RFC 9110 §11.1).
func authScheme(h, scheme string) (string, bool) {
	if len(h) <= len(scheme)+1 || !strings.EqualFold(h[:len(scheme)], scheme) || h[len(scheme)] != ' ' {
		return "", false
	}
	t := strings.TrimSpace(h[len(scheme)+1:])
	return t, t != ""
}
