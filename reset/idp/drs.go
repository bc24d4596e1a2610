package idp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/hellosim/hellosim/internal/dpop"
	"github.com/hellosim/hellosim/reset/keycred"
)

// The device registration service's Hello key endpoint, as Windows (and
// roadtx's winhello, AADInternals' Set-AADIntDeviceWHfBKey) call it on the
// enterprise registration host.
const (
	DRSKeyPath     = "/EnrollmentServer/key/"
	DRSAPIVersion  = "1.0"
	maxDRSBody     = 16 << 10
	maxBearerToken = 8 << 10
)

// ErrDeviceNotBound: a key registration whose token names no device
// ("deviceid"), or a device that is not in the user's tenant.
var ErrDeviceNotBound = errors.New("idp: token is not bound to a registered device")

// KeyRegistration is a Hello key registration as the device registration
// service receives it.
type KeyRegistration struct {
	// Token is the bearer token: audience DRSResource, a "deviceid", and
	// "ngcmfa" in amr.
	Token string
	// KNGC is the login key's BCRYPT public key blob: RSA1, as Windows
	// sends it, or ECS1 for this module's P-256 login keys — an extension:
	// Entra's service is not known to take ECC keys as kngc.
	KNGC []byte
	// Attested: the caller verified an attestation of the key (a TPM
	// certification of it); recorded as the Attestation flag. The JSON
	// endpoint does not take attestations, so it never sets it.
	Attested bool
	// Proof is the DPoP proof (RFC 9449) that goes with a token bound to
	// a device key (cnf.jkt, from a sign-in bound with BindDevice): signed
	// by that key over POST, URL and the token's hash. "" with a bearer
	// token; a proof with a token that is not bound is refused.
	Proof string
	// URL is what the proof must name as its htu: scheme, host and path,
	// no query. DRSHandler sets it from the request.
	URL string
}

// KeyRegistrationResult is the service's answer: the key's identifier and
// the user it was registered for.
type KeyRegistrationResult struct {
	KID string `json:"kid"`
	UPN string `json:"upn"`
}

// RegisterHelloKey registers a user's Windows Hello login key the way
// Entra's device registration service does. In order it refuses: a token
// that does not verify for DRSResource (ErrTokenRefused); one without a
// "deviceid" naming a device of the user's tenant (ErrDeviceNotBound); for
// a device whose key the directory holds (RegisterDevice, AddDeviceKey), a
// token not bound to that key (ErrDeviceNotBound) or without a fresh,
// unused DPoP proof of it (ErrTokenRefused), so that a token caught in
// flight registers nothing without the device's TPM;
// one without "ngcmfa" in amr (ErrTokenWithoutMFA); a kngc that is not a
// BCRYPT public key blob of an RSA-2048-or-larger or P-256 key
// (ErrUnsupportedKey); an unknown or disabled user; a token that already
// registered another key (ErrTokenUsed); a key that is another user's
// (ErrExists). Registering the same key again is a no-op that answers the
// same. A new key from a device replaces the keys the user had registered
// from that device: one Hello container per user per device, so a
// destructive reset's new key takes the old one's place.
//
// The key's ID in the directory (RegisteredKey.KeyID, and KID) is
// keycred.Identifier of the blob.
func (p *IdP) RegisterHelloKey(ctx context.Context, reg KeyRegistration) (KeyRegistrationResult, error) {
	res, err := p.registerHelloKey(ctx, reg)
	if err != nil {
		return KeyRegistrationResult{}, fmt.Errorf("register hello key: %w", err)
	}
	return res, nil
}

func (p *IdP) registerHelloKey(ctx context.Context, reg KeyRegistration) (KeyRegistrationResult, error) {
	drs := p.verifier
	drs.Audience = DRSResource
	claims, err := drs.Verify(ctx, reg.Token)
	if err != nil {
		if ctx.Err() != nil {
			return KeyRegistrationResult{}, ctx.Err()
		}
		return KeyRegistrationResult{}, fmt.Errorf("%w: %w", ErrTokenRefused, err)
	}
	deviceID, jkt := bindingClaims(reg.Token) // read only after the token verified
	if deviceID == "" {
		return KeyRegistrationResult{}, fmt.Errorf("%w: no deviceid claim", ErrDeviceNotBound)
	}
	proofUse, err := p.checkDRSProof(reg, jkt)
	if err != nil {
		return KeyRegistrationResult{}, err
	}
	if !hasAMR(claims.AMR, "ngcmfa") {
		return KeyRegistrationResult{}, fmt.Errorf("%w: amr has no ngcmfa", ErrTokenWithoutMFA)
	}
	pub, err := keycred.ParsePublicKey(reg.KNGC)
	if err != nil {
		return KeyRegistrationResult{}, fmt.Errorf("%w: kngc: %w", ErrUnsupportedKey, err)
	}
	if err := checkHelloKey(pub); err != nil {
		return KeyRegistrationResult{}, err
	}
	kid := keycred.Identifier(reg.KNGC)
	now := p.now()

	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.users[strings.ToLower(claims.UPN)]
	if !ok || u.ObjectID != strings.ToLower(claims.ObjectID) || u.TenantID != strings.ToLower(claims.TenantID) {
		return KeyRegistrationResult{}, ErrUnknownUser
	}
	if u.Disabled {
		return KeyRegistrationResult{}, ErrDisabled
	}
	d, ok := p.objects.devices[strings.ToLower(deviceID)]
	if !ok || d.TenantID != u.TenantID {
		return KeyRegistrationResult{}, fmt.Errorf("%w: device %s", ErrDeviceNotBound, deviceID)
	}
	// A device whose key the directory holds registers only through a
	// token bound to that key; a bound token names the key of its device.
	if k, hasKey := p.devices[strings.ToLower(deviceID)]; hasKey && k.KeyThumbprint != jkt || !hasKey && jkt != "" {
		return KeyRegistrationResult{}, fmt.Errorf("%w: the token is not bound to device %s's key", ErrDeviceNotBound, deviceID)
	}
	if proofUse != "" {
		if prev, used := p.tokenUses[proofUse]; used && now.Before(prev.until) {
			return KeyRegistrationResult{}, fmt.Errorf("%w: DPoP proof already used", ErrTokenRefused)
		}
	}
	use := claims.Issuer + "\x00" + claims.JTI
	if prev, used := p.tokenUses[use]; used && now.Before(prev.until) && prev.keyID != kid {
		return KeyRegistrationResult{}, fmt.Errorf("%w (%w)", ErrTokenUsed, ErrTokenRefused)
	}
	if proofUse != "" {
		p.recordTokenUse(proofUse, "", now.Add(DeviceProofMaxAge+p.verifier.Skew), now)
	}
	answer := KeyRegistrationResult{KID: kid, UPN: u.UPN}
	if old, taken := p.regKeys[kid]; taken {
		if old.ObjectID == u.ObjectID && old.TenantID == u.TenantID {
			p.recordTokenUse(use, kid, claims.Expiry, now)
			return answer, nil
		}
		return KeyRegistrationResult{}, fmt.Errorf("key %s: %w", kid, ErrExists)
	}
	for id, k := range p.regKeys {
		if k.ObjectID == u.ObjectID && k.TenantID == u.TenantID && k.DeviceID == d.DeviceID {
			delete(p.regKeys, id)
		}
	}
	p.regKeys[kid] = &RegisteredKey{
		KeyID: kid, KID: kid, TenantID: u.TenantID, ObjectID: u.ObjectID, Public: pub,
		RegisteredAt: now, DeviceID: d.DeviceID, Attested: reg.Attested,
	}
	p.recordTokenUse(use, kid, claims.Expiry, now)
	return answer, nil
}

// bindingClaims reads the "deviceid" and "cnf.jkt" claims of a token whose
// signature and claims accesstoken has already verified.
func bindingClaims(token string) (deviceID, jkt string) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return "", ""
	}
	var c struct {
		DeviceID string    `json:"deviceid"`
		CNF      *tokenCNF `json:"cnf"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return "", ""
	}
	if c.CNF != nil {
		jkt = c.CNF.JKT
	}
	return c.DeviceID, jkt
}

// checkDRSProof checks the DPoP proof a bound token (jkt) must come with,
// and returns the key under which its jti is remembered ("" for a bearer
// token, which must come with no proof).
func (p *IdP) checkDRSProof(reg KeyRegistration, jkt string) (string, error) {
	switch {
	case jkt == "" && reg.Proof == "":
		return "", nil
	case jkt == "":
		return "", fmt.Errorf("%w: a DPoP proof with a token that is not DPoP-bound", ErrTokenRefused)
	case reg.Proof == "":
		return "", fmt.Errorf("%w: a DPoP-bound token needs a DPoP proof", ErrTokenRefused)
	case reg.URL == "":
		return "", fmt.Errorf("%w: no URL to check the DPoP proof's htu against", ErrInvalid)
	}
	pr, err := dpop.Parse(reg.Proof)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrTokenRefused, err)
	}
	if err := pr.Check(dpop.Expect{HTM: http.MethodPost, HTU: reg.URL, ATH: dpop.Hash([]byte(reg.Token)), JKT: jkt,
		Now: p.now(), MaxAge: DeviceProofMaxAge, Skew: p.verifier.Skew}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrTokenRefused, err)
	}
	return "dpop\x00" + pr.JKT + "\x00" + pr.JTI, nil
}

// DRSError is the registration endpoint's error body, and what DRSClient
// returns for it. Is matches the sentinel the code stands for.
type DRSError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *DRSError) Error() string {
	return fmt.Sprintf("device registration service: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is matches the sentinel of the error's code (token_used also matches
// ErrTokenRefused, as the directory's own error does).
func (e *DRSError) Is(target error) bool {
	if e.Code == "token_used" && target == ErrTokenRefused {
		return true
	}
	for _, r := range drsRefusals {
		if r.code == e.Code && target == r.err {
			return true
		}
	}
	return false
}

// drsRefusals is the one place that says how each refusal is answered,
// first match wins.
var drsRefusals = []struct {
	err    error
	status int
	code   string
}{
	{ErrTokenUsed, http.StatusUnauthorized, "token_used"},
	{ErrTokenRefused, http.StatusUnauthorized, "invalid_token"},
	{ErrDeviceNotBound, http.StatusForbidden, "device_not_bound"},
	{ErrTokenWithoutMFA, http.StatusForbidden, "ngcmfa_required"},
	{ErrUnsupportedKey, http.StatusBadRequest, "invalid_key"},
	{ErrUnknownUser, http.StatusForbidden, "user_not_found"},
	{ErrDisabled, http.StatusForbidden, "user_disabled"},
	{ErrExists, http.StatusConflict, "key_exists"},
	{errDRSRequest, http.StatusBadRequest, "invalid_request"},
}

var errDRSRequest = errors.New("malformed request")

// DRSHandler serves the device registration service's Hello key endpoint:
// POST /EnrollmentServer/key/?api-version=1.0 with a bearer token and the
// JSON body {"kngc": "<base64 of the BCRYPT public key blob>"}, answered
// with {"kid": "...", "upn": "..."}. Errors are JSON {"code", "message"}.
func (p *IdP) DRSHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(DRSKeyPath, p.serveKeyRegistration)
	return mux
}

func (p *IdP) serveKeyRegistration(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != DRSKeyPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeDRSError(w, &DRSError{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Message: "POST only"})
		return
	}
	reg, err := readKeyRegistration(r)
	if err != nil {
		writeDRSError(w, drsErrorFor(err))
		return
	}
	res, err := p.registerHelloKey(r.Context(), reg)
	if err != nil {
		writeDRSError(w, drsErrorFor(err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func readKeyRegistration(r *http.Request) (KeyRegistration, error) {
	bad := func(format string, a ...any) (KeyRegistration, error) {
		return KeyRegistration{}, fmt.Errorf("%w: "+format, append([]any{errDRSRequest}, a...)...)
	}
	if q := r.URL.Query(); len(q) != 1 || len(q["api-version"]) != 1 || q.Get("api-version") != DRSAPIVersion {
		return bad("want api-version=%s", DRSAPIVersion)
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	dpopScheme := strings.EqualFold(scheme, "DPoP")
	if !ok || !dpopScheme && !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxBearerToken {
		return KeyRegistration{}, fmt.Errorf("%w: no bearer or DPoP token", ErrTokenRefused)
	}
	var proof string
	if proofs := r.Header.Values("DPoP"); dpopScheme {
		if len(proofs) != 1 || proofs[0] == "" {
			return KeyRegistration{}, fmt.Errorf("%w: exactly one DPoP proof required", ErrTokenRefused)
		}
		proof = proofs[0]
	} else if len(proofs) != 0 {
		return KeyRegistration{}, fmt.Errorf("%w: a DPoP proof with a bearer token", ErrTokenRefused)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return bad("content type must be application/json")
	}
	// One object whose only member is "kngc", spelled so: encoding/json
	// would match member names case-insensitively into a struct.
	dec := json.NewDecoder(io.LimitReader(r.Body, maxDRSBody+1))
	var body map[string]json.RawMessage
	if err := dec.Decode(&body); err != nil {
		return bad("body: %v", err)
	}
	if dec.InputOffset() > maxDRSBody {
		return bad("body too large")
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("body: trailing data")
	}
	raw, ok := body["kngc"]
	if !ok || len(body) != 1 {
		return bad(`want {"kngc": "..."}`)
	}
	var kngc string
	if err := json.Unmarshal(raw, &kngc); err != nil {
		return bad("kngc is not a string")
	}
	blob, err := base64.StdEncoding.Strict().DecodeString(kngc)
	if err != nil {
		return bad("kngc is not base64")
	}
	scheme = "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return KeyRegistration{Token: token, KNGC: blob, Proof: proof, URL: scheme + "://" + r.Host + DRSKeyPath}, nil
}

func drsErrorFor(err error) *DRSError {
	for _, r := range drsRefusals {
		if errors.Is(err, r.err) {
			msg := err.Error()
			if r.err == ErrTokenRefused {
				msg = "the access token was refused" // reveal nothing of why
			}
			return &DRSError{Status: r.status, Code: r.code, Message: msg}
		}
	}
	return &DRSError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error"}
}

func writeDRSError(w http.ResponseWriter, e *DRSError) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeJSON(w, e.Status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
