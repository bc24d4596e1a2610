package remote

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/service"
)

// Verifier verifies access tokens under a remote directory's keys: a
// service.JWTVerifier over the cached key set, which asks Keys for a key it
// has not seen before verifying.
type Verifier struct {
	keys *Keys
	jwt  *service.JWTVerifier
}

var (
	_ service.TokenVerifier = (*Verifier)(nil)
	_ service.VerifierSkew  = (*Verifier)(nil)
)

// NewVerifier returns a verifier for the tokens keys' directory issues to
// the PIN reset service (audience identity.PINResetServiceAppID). clock nil
// means time.Now.
func NewVerifier(keys *Keys, clock func() time.Time) (*Verifier, error) {
	v, err := service.NewJWTVerifier(service.VerifierConfig{
		Keys: keys.JWKS, Issuer: keys.IssuerTemplate(), Audience: identity.PINResetServiceAppID, Clock: clock,
	})
	if err != nil {
		return nil, err
	}
	return &Verifier{keys: keys, jwt: v}, nil
}

// Skew is the underlying verifier's skew.
func (v *Verifier) Skew() time.Duration { return v.jwt.Skew() }

// Verify fetches the keys when token names one not cached (subject to
// MinRefetch) and verifies token. An error matching ErrKeysUnavailable
// means the keys could not be fetched; any other is a refusal.
func (v *Verifier) Verify(ctx context.Context, token string) (*service.Claims, error) {
	if err := v.keys.Ensure(ctx, keyID(token)); err != nil {
		return nil, err
	}
	return v.jwt.Verify(ctx, token)
}

// keyID reads the kid of a compact JWS without verifying anything; ""
// when there is none or the header does not decode.
func keyID(token string) string {
	h, _, ok := strings.Cut(token, ".")
	if !ok || len(h) > 1024 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return ""
	}
	var hdr struct {
		KID string `json:"kid"`
	}
	if json.Unmarshal(raw, &hdr) != nil || len(hdr.KID) > 128 {
		return ""
	}
	return hdr.KID
}

// Guard answers a recovery with 503 while the token's key is not cached
// and cannot be fetched: the service never sees it, so nothing is
// unwrapped and the client is told to come back, not that its token is
// bad. Everything else goes to next.
func (v *Verifier) Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == service.PathRecover {
			_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			if err := v.keys.Ensure(r.Context(), keyID(strings.TrimSpace(tok))); err != nil {
				h := w.Header()
				h.Set("Content-Type", "application/json")
				h.Set("Retry-After", "5")
				h.Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte(`{"error":"` + service.CodeUnavailable + `","message":"service unavailable, try again later"}`))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
