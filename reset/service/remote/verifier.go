package remote

import (
	"context"
	"encoding/base64"
	"encoding/json"
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
// (and service.ErrUnavailable, so the service answers 503) means the keys
// could not be fetched; any other is a refusal.
func (v *Verifier) Verify(ctx context.Context, token string) (*service.Claims, error) {
	if err := v.keys.Ensure(ctx, keyID(token)); err != nil {
		return nil, &keysUnavailableError{err}
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

// keysUnavailableError is Verify's error while the keys cannot be
// fetched: it matches ErrKeysUnavailable (what it wraps) and
// service.ErrUnavailable, which the service answers with 503.
type keysUnavailableError struct{ err error }

func (e *keysUnavailableError) Error() string { return e.err.Error() }
func (e *keysUnavailableError) Unwrap() error { return e.err }
func (e *keysUnavailableError) Is(target error) bool {
	return target == service.ErrUnavailable
}
