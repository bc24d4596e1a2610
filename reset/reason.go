package reset

import (
	"errors"
	"fmt"
)

// Reason is why a PIN reset is not allowed. Each value is one rule of the PIN
// reset documentation; Message is the text a user would see. A Reason is an
// error, so callers branch with errors.Is(err, reset.ReasonGovernmentCloud).
type Reason int

const (
	// ReasonIncomplete: a fact Check needs (join type, trust type, edition,
	// version, account type, entry point or reset kind) is unknown.
	ReasonIncomplete Reason = iota + 1
	// ReasonEdition: only Windows Enterprise and Pro editions.
	ReasonEdition
	// ReasonVersion: non-destructive reset needs Enterprise from Windows 10
	// 1709, Pro from 1903, or Windows 11.
	ReasonVersion
	// ReasonEnterpriseOnly: non-destructive reset is for enterprise accounts;
	// a Microsoft account (MSA) can only reset destructively.
	ReasonEnterpriseOnly
	// ReasonNoAzureAD: non-destructive reset relies on Azure AD identities, so
	// it is not available to on-premises deployments.
	ReasonNoAzureAD
	// ReasonGovernmentCloud: the Microsoft PIN reset service is not available
	// in Azure Government.
	ReasonGovernmentCloud
	// ReasonNotOnboarded: the tenant has not consented to both the PIN Reset
	// Service and the PIN Reset Client applications.
	ReasonNotOnboarded
	// ReasonPolicyDisabled: the EnablePinRecovery policy is not on.
	ReasonPolicyDisabled
	// ReasonHybridKeyTrustLockScreen: key trust on hybrid joined devices does
	// not support destructive reset from above the lock screen.
	ReasonHybridKeyTrustLockScreen
	// ReasonNoDomainController: destructive reset on a hybrid joined device
	// needs corporate network connectivity to a domain controller.
	ReasonNoDomainController
	// ReasonNoFederationService: where AD FS is used for certificate trust or
	// on-premises deployments, the federation service must be reachable.
	ReasonNoFederationService
	// ReasonNotSignedIn: the Settings entry point needs a user signed in with
	// an alternate credential.
	ReasonNotSignedIn
	// ReasonLockScreenRestricted: a limitation of self-service password reset
	// at the sign-in screen applies, so the lock screen reset does not work.
	ReasonLockScreenRestricted
	// ReasonLockScreenJoinType: reset above the lock screen is described for
	// Azure AD joined and hybrid joined devices only.
	ReasonLockScreenJoinType
	// ReasonWebSignInNotAllowed: on an Azure AD joined device of a federated
	// tenant, the identity provider's sign-in page is not in the
	// ConfigureWebSignInAllowedUrls policy.
	ReasonWebSignInNotAllowed
	// ReasonGovernmentWebSignIn: the Azure Government known issue; Azure AD
	// joined devices need login.microsoftonline.us in
	// ConfigureWebSignInAllowedUrls.
	ReasonGovernmentWebSignIn
)

type reasonInfo struct{ name, message string }

var reasons = map[Reason]reasonInfo{
	ReasonIncomplete: {"incomplete",
		"PIN reset can't be offered because this device is not fully described."},
	ReasonEdition: {"edition",
		"PIN reset needs Windows Enterprise or Pro."},
	ReasonVersion: {"version",
		"Resetting your PIN without losing your keys needs Windows 10, version 1709 or later (Enterprise), Windows 10, version 1903 or later (Pro), or Windows 11."},
	ReasonEnterpriseOnly: {"enterprise-only",
		"Resetting your PIN without losing your keys is available for work or school accounts only."},
	ReasonNoAzureAD: {"no-azure-ad",
		"Resetting your PIN without losing your keys needs an Azure Active Directory account; it isn't available for on-premises accounts."},
	ReasonGovernmentCloud: {"government-cloud",
		"The PIN reset service isn't available in Azure Government."},
	ReasonNotOnboarded: {"not-onboarded",
		"Your organization hasn't set up the PIN reset service."},
	ReasonPolicyDisabled: {"policy-disabled",
		"PIN recovery isn't turned on for this device."},
	ReasonHybridKeyTrustLockScreen: {"hybrid-key-trust-lock-screen",
		"You can't reset your PIN from the lock screen on this device. Sign in another way and reset it from Settings."},
	ReasonNoDomainController: {"no-domain-controller",
		"Connect to your organization's network to reset your PIN (a domain controller must be reachable)."},
	ReasonNoFederationService: {"no-federation-service",
		"Connect to your organization's network to reset your PIN (the federation service must be reachable)."},
	ReasonNotSignedIn: {"not-signed-in",
		"Sign in with another sign-in option first, then go to Settings > Accounts > Sign-in options to reset your PIN."},
	ReasonLockScreenRestricted: {"lock-screen-restricted",
		"PIN reset isn't available from the lock screen on this device. Sign in another way and reset it from Settings."},
	ReasonLockScreenJoinType: {"lock-screen-join-type",
		"PIN reset isn't available from the lock screen for this account. Sign in another way and reset it from Settings."},
	ReasonWebSignInNotAllowed: {"web-sign-in-not-allowed",
		"We can't open that page right now."},
	ReasonGovernmentWebSignIn: {"government-web-sign-in",
		"We can't open that page right now."},
}

// String returns a stable identifier such as "government-cloud".
func (r Reason) String() string {
	if i, ok := reasons[r]; ok {
		return i.name
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Message returns the text a user would see.
func (r Reason) Message() string {
	if i, ok := reasons[r]; ok {
		return i.message
	}
	return "PIN reset isn't available."
}

// Error makes a Reason usable as a target of errors.Is. It returns the
// same identifier as String, so fmt prints a Reason the same either way.
func (r Reason) Error() string { return r.String() }

// ErrNotAllowed matches every *NotAllowedError.
var ErrNotAllowed = errors.New("reset: not allowed")

// NotAllowedError is Check's answer when a reset may not run. errors.Is
// matches ErrNotAllowed and the Reason.
type NotAllowedError struct {
	Kind   Kind
	Entry  EntryPoint
	Reason Reason
	// Detail is for administrators and logs: which fact or setting failed.
	// It never holds a secret.
	Detail string
}

// Error gives the kind, entry point, reason, user message and detail.
func (e *NotAllowedError) Error() string {
	s := fmt.Sprintf("reset: %s PIN reset from %s not allowed (%s): %s", e.Kind, e.Entry, e.Reason, e.Reason.Message())
	if e.Detail != "" {
		s += " [" + e.Detail + "]"
	}
	return s
}

// Is matches ErrNotAllowed and e.Reason.
func (e *NotAllowedError) Is(target error) bool {
	if target == ErrNotAllowed {
		return true
	}
	r, ok := target.(Reason)
	return ok && r == e.Reason
}
