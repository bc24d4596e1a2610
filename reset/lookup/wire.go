package lookup

import (
	"errors"
	"fmt"
	"time"

	"github.com/hellosim/hellosim/reset/identity"
)

// Path prefixes served by Handler.
const (
	// PathPrefix begins every lookup path.
	PathPrefix = "/v1.0/tenants/"
)

// ErrLookup matches every error of a Client that is not an answer: the
// directory could not be reached, refused the app token, or sent something
// that does not decode. The PIN reset service treats it as "unavailable"
// (503): it releases nothing on a question it could not ask.
var ErrLookup = errors.New("directory lookup failed")

// LookupError is a failed lookup: Status is the HTTP status (0 when none
// arrived) and Reason says why, naming no user.
type LookupError struct {
	Status int
	Reason string
}

// Error says why.
func (e *LookupError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("directory lookup failed: %d: %s", e.Status, e.Reason)
	}
	return "directory lookup failed: " + e.Reason
}

// Is matches ErrLookup.
func (e *LookupError) Is(target error) bool { return target == ErrLookup }

// tenantDoc is a tenant on the wire.
type tenantDoc struct {
	ID                  string         `json:"id"`
	Cloud               identity.Cloud `json:"cloud"`
	ConsentedApps       []string       `json:"consentedApps"`
	FederationSignInURL string         `json:"federationSignInUrl,omitempty"`
}

// accountDoc is a user on the wire. signInSessionsValidFromDateTime is
// Graph's name for the time sessions were last revoked.
type accountDoc struct {
	TenantID          string     `json:"tenantId"`
	ID                string     `json:"id"`
	Standing          string     `json:"standing"`
	SessionsValidFrom *time.Time `json:"signInSessionsValidFromDateTime,omitempty"`
}

// deviceDoc is a device object on the wire.
type deviceDoc struct {
	TenantID      string `json:"tenantId"`
	DeviceID      string `json:"deviceId"`
	Standing      string `json:"standing"`
	KeyThumbprint string `json:"keyThumbprint,omitempty"`
}

// errorDoc is Graph's error shape.
type errorDoc struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Graph error codes used.
const (
	codeNotFound     = "Request_ResourceNotFound"
	codeUnauthorized = "InvalidAuthenticationToken"
	codeBadRequest   = "Request_BadRequest"
	codeForbidden    = "Authorization_RequestDenied"
)

var standings = []identity.Standing{identity.StandingUnknown, identity.StandingEnabled, identity.StandingDisabled, identity.StandingDeleted}

func parseStanding(s string) (identity.Standing, error) {
	for _, st := range standings {
		if st.String() == s {
			return st, nil
		}
	}
	return identity.StandingUnknown, fmt.Errorf("unknown standing %q", s)
}
