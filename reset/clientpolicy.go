package reset

import (
	"slices"
	"strings"

	"github.com/hellosim/hellosim/reset/policy"
)

// Policy is the client policy that governs PIN reset on a device.
type Policy struct {
	// EnablePINRecovery is the PassportForWork EnablePinRecovery policy
	// ("Use PIN Recovery" in Group Policy). Off by default: destructive reset
	// "is the default option, and doesn't require configuration"; the
	// non-destructive form needs this policy.
	EnablePINRecovery bool
	// Source is where EnablePINRecovery came from (see policy.ResolvePINRecovery).
	Source policy.Source
	// WebSignInAllowedURLs is the ConfigureWebSignInAllowedUrls policy: the
	// domains that may be reached during PIN reset on Azure AD joined devices,
	// lower case (policy.ParseDomainList produces it).
	WebSignInAllowedURLs []string
}

// AllowsHost reports whether host is in WebSignInAllowedURLs. Matching is
// exact and case-insensitive (a trailing dot is ignored): the policy lists
// domains, not patterns.
func (p Policy) AllowsHost(host string) bool {
	h := normalizeHost(host)
	for _, a := range p.WebSignInAllowedURLs {
		if normalizeHost(a) == h {
			return true
		}
	}
	return false
}

// NewPolicy resolves the EnablePinRecovery settings for tenantID (see
// policy.ResolvePINRecovery) and combines them with the allowed-URL list.
func NewPolicy(tenantID string, pinRecovery []policy.PINRecoverySetting, webSignInAllowedURLs []string) (Policy, error) {
	s, err := policy.ResolvePINRecovery(tenantID, pinRecovery...)
	if err != nil {
		return Policy{}, err
	}
	return Policy{EnablePINRecovery: s.Enabled, Source: s.Source, WebSignInAllowedURLs: slices.Clone(webSignInAllowedURLs)}, nil
}

func normalizeHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}
