package identity

import (
	"errors"
	"slices"
	"strings"
)

// Identifiers of the two Azure AD applications a tenant consents to when it
// onboards the Microsoft PIN reset service ("Enable the Microsoft PIN Reset
// Service in your Azure AD tenant"). Access tokens for the service carry
// PINResetServiceAppID as their audience; PINResetClientAppID is the client
// on the device that asks for them.
const (
	PINResetServiceAppID = "b8456c59-1230-44c7-a4a2-99b085333e84" // Microsoft PIN Reset Service Production
	PINResetClientAppID  = "9115dd05-fad5-4f9c-acc7-305d08b1b04e" // Microsoft PIN Reset Client Production
)

// ErrUnknownTenant is a directory's answer for a tenant it does not hold.
var ErrUnknownTenant = errors.New("identity: unknown tenant")

// Tenant is a tenant as the directory knows it: its ID, its cloud, the
// applications its administrator consented to, and the sign-in page of its
// federated identity provider.
type Tenant struct {
	// ID is the tenant (directory) ID, a GUID in lower case.
	ID string
	// Cloud is where the tenant lives.
	Cloud Cloud
	// ConsentedApps are the application IDs with admin consent in the tenant.
	// The tenant is onboarded to the PIN reset service when both
	// PINResetServiceAppID and PINResetClientAppID are present.
	ConsentedApps []string
	// FederationSignInURL is the sign-in page of the tenant's federated
	// identity provider (AD FS or a third party); empty for a managed tenant.
	FederationSignInURL string
}

// Onboarded reports whether both PIN reset applications have consent, as
// the WHfB documentation requires before non-destructive reset.
func (t Tenant) Onboarded() bool {
	return t.HasConsent(PINResetServiceAppID) && t.HasConsent(PINResetClientAppID)
}

// HasConsent reports whether appID is among the consented applications
// (case and surrounding spaces do not matter).
func (t Tenant) HasConsent(appID string) bool {
	return slices.ContainsFunc(t.ConsentedApps, func(a string) bool {
		return strings.EqualFold(strings.TrimSpace(a), appID)
	})
}

// Federated reports whether sign-in is handled by a federated identity provider.
func (t Tenant) Federated() bool { return t.FederationSignInURL != "" }

// Clone returns a copy of t that shares no memory with it.
func (t Tenant) Clone() Tenant {
	t.ConsentedApps = slices.Clone(t.ConsentedApps)
	return t
}
