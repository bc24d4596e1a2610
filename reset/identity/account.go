package identity

import (
	"errors"
	"time"
)

// Standing is where a directory object (a user, a device) stands at the
// moment it is looked up. The zero value, StandingUnknown, is never good
// enough to act on.
type Standing int

// The standings.
const (
	StandingUnknown  Standing = iota // the directory did not say
	StandingEnabled                  // exists and may sign in
	StandingDisabled                 // exists, disabled by an administrator
	StandingDeleted                  // deleted, or never existed
)

var standingNames = []string{"unknown", "enabled", "disabled", "deleted"}

// String names the standing.
func (s Standing) String() string { return enumName(standingNames, int(s), "Standing") }

// Account is a user as the directory holds them now: what a relying party
// asks at request time, since a token says only what was true when it was
// issued.
type Account struct {
	TenantID string // lower-case GUID
	ObjectID string // lower-case GUID
	Standing Standing
	// SessionsRevokedAt is when an administrator last revoked the user's
	// sessions (zero: never): tokens issued before it are no longer honoured.
	SessionsRevokedAt time.Time
}

// ErrDeviceElsewhere is a directory's answer for a device ID it holds in
// another tenant than the one asked about: to that tenant the device does
// not exist, and nobody may learn more (a refusal, never an outage).
var ErrDeviceElsewhere = errors.New("identity: no such device in this tenant")

// Device is a device object: the device identity a join registers, with the
// thumbprint of its TPM-bound key.
type Device struct {
	TenantID string // lower-case GUID
	DeviceID string // lower-case GUID ("deviceid" in tokens)
	Standing Standing
	// KeyThumbprint is the RFC 7638 SHA-256 thumbprint of the device key,
	// base64url: a token bound to the device carries it as cnf.jkt.
	KeyThumbprint string
}
