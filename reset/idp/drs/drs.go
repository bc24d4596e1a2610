// Package drs is the device registration service's Hello key endpoint,
// both sides of the wire: Handler serves it for a directory (an *idp.IdP),
// Client calls it, as Windows calls Entra's enterprise registration host.
//
// POST /EnrollmentServer/key/?api-version=1.0 with a bearer (or DPoP-bound)
// token and the JSON body {"kngc": "<base64 of the BCRYPT public key
// blob>"} is answered with {"kid": "...", "upn": "..."}; errors are JSON
// {"code", "message"}. The directory decides; this package only carries
// requests and answers, and maps the directory's sentinels to status codes
// and back (RefusalError matches the idp sentinel of its code).
package drs

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

	"github.com/hellosim/hellosim/internal/httpjson"
	"github.com/hellosim/hellosim/reset/idp"
)

// The device registration service's Hello key endpoint, as Windows (and
// roadtx's winhello, AADInternals' Set-AADIntDeviceWHfBKey) call it on the
// enterprise registration host.
const (
	KeyPath        = "/EnrollmentServer/key/"
	APIVersion     = "1.0"
	maxBody        = 16 << 10
	maxBearerToken = 8 << 10
)

// Directory is what the endpoint needs of a directory; *idp.IdP satisfies
// it (idp.IdP.RegisterHelloKey says what it refuses).
type Directory interface {
	RegisterHelloKey(ctx context.Context, token string, kngc []byte, proof idp.Proof) (idp.RegisteredKey, error)
}

// Result is the service's answer: the key's identifier and the user it
// was registered for.
type Result struct {
	KID string `json:"kid"`
	UPN string `json:"upn"`
}

// RefusalError is the endpoint's error body, and what Client returns for it. Is
// matches the idp sentinel the code stands for.
type RefusalError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *RefusalError) Error() string {
	return fmt.Sprintf("device registration service: %d %s: %s", e.Status, e.Code, e.Message)
}

// Is matches the sentinel of the error's code (token_used also matches
// idp.ErrTokenRefused, as the directory's own error does).
func (e *RefusalError) Is(target error) bool {
	if e.Code == "token_used" && target == idp.ErrTokenRefused {
		return true
	}
	for _, r := range refusals {
		if r.code == e.Code && target == r.err {
			return true
		}
	}
	return false
}

// refusals is the one place that says how each refusal is answered,
// first match wins.
var refusals = []struct {
	err    error
	status int
	code   string
}{
	{idp.ErrTokenUsed, http.StatusUnauthorized, "token_used"},
	{idp.ErrTokenRefused, http.StatusUnauthorized, "invalid_token"},
	{idp.ErrDeviceNotBound, http.StatusForbidden, "device_not_bound"},
	{idp.ErrTokenWithoutMFA, http.StatusForbidden, "ngcmfa_required"},
	{idp.ErrUnsupportedKey, http.StatusBadRequest, "invalid_key"},
	{idp.ErrUnknownUser, http.StatusForbidden, "user_not_found"},
	{idp.ErrDisabled, http.StatusForbidden, "user_disabled"},
	{idp.ErrExists, http.StatusConflict, "key_exists"},
	{idp.ErrAttestationRequired, http.StatusForbidden, "attestation_required"},
	{errRequest, http.StatusBadRequest, "invalid_request"},
}

var errRequest = errors.New("malformed request")

// Handler serves the Hello key endpoint (KeyPath) for dir.
func Handler(dir Directory) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(KeyPath, func(w http.ResponseWriter, r *http.Request) { serve(dir, w, r) })
	return mux
}

func serve(dir Directory, w http.ResponseWriter, r *http.Request) {
	if !postTo(w, r, KeyPath) {
		return
	}
	reg, err := readRegistration(r)
	if err != nil {
		writeError(w, errorFor(err))
		return
	}
	k, err := dir.RegisterHelloKey(r.Context(), reg.token, reg.kngc, reg.proof)
	if err != nil {
		writeError(w, errorFor(err))
		return
	}
	httpjson.Write(w, http.StatusOK, Result{KID: k.KID, UPN: k.UPN})
}

// registration is a request as read from the wire.
type registration struct {
	token string
	kngc  []byte
	proof idp.Proof
}

func readRegistration(r *http.Request) (registration, error) {
	bad := func(format string, a ...any) (registration, error) {
		return registration{}, fmt.Errorf("%w: "+format, append([]any{errRequest}, a...)...)
	}
	if q := r.URL.Query(); len(q) != 1 || len(q["api-version"]) != 1 || q.Get("api-version") != APIVersion {
		return bad("want api-version=%s", APIVersion)
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	dpopScheme := strings.EqualFold(scheme, "DPoP")
	if !ok || !dpopScheme && !strings.EqualFold(scheme, "Bearer") || token == "" || len(token) > maxBearerToken {
		return registration{}, fmt.Errorf("%w: no bearer or DPoP token", idp.ErrTokenRefused)
	}
	var proof string
	if proofs := r.Header.Values("DPoP"); dpopScheme {
		if len(proofs) != 1 || proofs[0] == "" {
			return registration{}, fmt.Errorf("%w: exactly one DPoP proof required", idp.ErrTokenRefused)
		}
		proof = proofs[0]
	} else if len(proofs) != 0 {
		return registration{}, fmt.Errorf("%w: a DPoP proof with a bearer token", idp.ErrTokenRefused)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return bad("content type must be application/json")
	}
	// One object whose only member is "kngc", spelled so: encoding/json
	// would match member names case-insensitively into a struct.
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	var body map[string]json.RawMessage
	if err := dec.Decode(&body); err != nil {
		return bad("body: %v", err)
	}
	if dec.InputOffset() > maxBody {
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
	return registration{token: token, kngc: blob, proof: idp.Proof{JWT: proof, URL: scheme + "://" + r.Host + KeyPath}}, nil
}

func errorFor(err error) *RefusalError {
	for _, r := range refusals {
		if errors.Is(err, r.err) {
			msg := err.Error()
			if r.err == idp.ErrTokenRefused {
				msg = "the access token was refused" // reveal nothing of why
			}
			return &RefusalError{Status: r.status, Code: r.code, Message: msg}
		}
	}
	return &RefusalError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "internal error"}
}

// postTo reports whether r is a POST to path; else it answers 404 (another
// path) or 405 and returns false.
func postTo(w http.ResponseWriter, r *http.Request, path string) bool {
	if r.URL.Path != path {
		http.NotFound(w, r)
		return false
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &RefusalError{Status: http.StatusMethodNotAllowed, Code: "invalid_request", Message: "POST only"})
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, e *RefusalError) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	httpjson.Write(w, e.Status, e)
}
