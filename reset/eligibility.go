package reset

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/policy"
)

// GovernmentSignInHost is the Azure US Government sign-in host. The PIN reset
// documentation's known issue: PIN reset on Azure AD joined devices in Azure
// Government fails with "We can't open that page right now." unless
// ConfigureWebSignInAllowedUrls lists this host.
const GovernmentSignInHost = "login.microsoftonline.us"

// Check reports whether a reset of kind k may start from entry point e on
// device d under policy p for a user of tenant t: nil, or a *NotAllowedError
// whose Reason names the rule of the PIN reset documentation that refuses
// it. Check is a pure function of its arguments.
//
// The rules, in the order Check applies them (the first failing rule wins):
//
//  1. Every fact the rules need is known (ReasonIncomplete).
//  2. Windows Enterprise or Pro ("Windows editions and versions" row;
//     Requirements: "Windows Enterprise and Pro editions").
//  3. Settings needs a user signed in with an alternate credential ("Reset
//     PIN from Settings", step 1; "PIN reset from settings only works post
//     login"). Above the lock screen: the documented steps exist for Azure AD
//     joined and hybrid joined devices only, and a matching limitation of
//     self-service password reset at the sign-in screen disables it.
//  4. Destructive: hybrid joined key trust cannot reset above the lock
//     screen (the sync delay of a new key; Settings works), and every hybrid
//     destructive reset needs a domain controller ("users must have corporate
//     network connectivity to domain controllers to complete destructive PIN
//     reset").
//  5. Non-destructive: enterprise accounts only ("MSA/Enterprise" row); Azure
//     AD identities only ("On Premises" row); not in Azure Government; the
//     edition's minimum version (Enterprise: Windows 10 1709; Pro: 1903;
//     Windows 11); the tenant onboarded to both applications; policy
//     EnablePinRecovery on. No domain controller is needed ("No network
//     connection is required for the DC").
//  6. Where AD FS is used for certificate trust or an on-premises deployment,
//     the federation service must be reachable, for either kind ("to reset
//     their PIN").
//  7. Azure AD joined devices: in Azure Government the allowed URLs must
//     include login.microsoftonline.us (known issue); with a federated tenant
//     the identity provider's sign-in host must be allowed
//     (ConfigureWebSignInAllowedUrls, "Applies to: Azure AD joined devices").
//
// Where the documentation leaves room for more than one reading (the join
// types of non-destructive reset, the editions, the federation service
// note), docs/PINRESET-MAPPING.md, "How Check reads the documentation",
// says which reading Check takes and why.
func Check(d Device, p Policy, t Tenant, e EntryPoint, k Kind) error {
	deny := func(r Reason, format string, args ...any) error {
		return &NotAllowedError{Kind: k, Entry: e, Reason: r, Detail: fmt.Sprintf(format, args...)}
	}

	// 1. Facts.
	switch {
	case k != KindDestructive && k != KindNonDestructive:
		return deny(ReasonIncomplete, "reset kind %s", k)
	case e != EntrySettings && e != EntryLockScreen:
		return deny(ReasonIncomplete, "entry point %s", e)
	case d.Join < identity.AzureADJoined || d.Join > identity.OnPremises:
		return deny(ReasonIncomplete, "join type %s", d.Join)
	case d.Account != EnterpriseAccount && d.Account != MicrosoftAccount:
		return deny(ReasonIncomplete, "account type %s", d.Account)
	case d.Edition < Enterprise || d.Edition > EditionOther:
		return deny(ReasonIncomplete, "edition %s", d.Edition)
	case d.Join != identity.AzureADRegistered && (d.Trust < identity.KeyTrust || d.Trust > identity.CloudKerberosTrust):
		return deny(ReasonIncomplete, "trust type %s", d.Trust)
	case k == KindNonDestructive && d.Version <= 0:
		return deny(ReasonIncomplete, "windows version unknown")
	case t.Cloud != identity.PublicCloud && t.Cloud != identity.AzureGovernment:
		return deny(ReasonIncomplete, "cloud %s", t.Cloud)
	}

	// 2. Edition.
	if d.Edition != Enterprise && d.Edition != Pro {
		return deny(ReasonEdition, "edition %s", d.Edition)
	}

	// 3. Entry point.
	switch e {
	case EntrySettings:
		if !d.SignedIn {
			return deny(ReasonNotSignedIn, "settings entry point without a signed-in user")
		}
	case EntryLockScreen:
		if d.Join != identity.AzureADJoined && d.Join != identity.HybridAzureADJoined {
			return deny(ReasonLockScreenJoinType, "join type %s", d.Join)
		}
		if d.LockScreenRestricted {
			return deny(ReasonLockScreenRestricted, "self-service password reset limitation at the sign-in screen")
		}
	}

	// 4 and 5. The kind.
	switch k {
	case KindDestructive:
		if d.Join == identity.HybridAzureADJoined && d.Trust == identity.KeyTrust && e == EntryLockScreen {
			return deny(ReasonHybridKeyTrustLockScreen, "hybrid key trust, lock screen")
		}
		if d.Join == identity.HybridAzureADJoined && !d.Network.DomainController {
			return deny(ReasonNoDomainController, "hybrid joined, domain controller unreachable")
		}
	case KindNonDestructive:
		if d.Account != EnterpriseAccount {
			return deny(ReasonEnterpriseOnly, "account type %s", d.Account)
		}
		if d.Join == identity.OnPremises {
			return deny(ReasonNoAzureAD, "join type %s", d.Join)
		}
		if t.Cloud == identity.AzureGovernment {
			return deny(ReasonGovernmentCloud, "tenant %s in %s", t.ID, t.Cloud)
		}
		if least := MinimumVersion(d.Edition); d.Version < least {
			return deny(ReasonVersion, "%s on %s; needs %s or later", d.Edition, d.Version, least)
		}
		if !t.Onboarded() {
			var missing []string
			if !t.HasConsent(identity.PINResetServiceAppID) {
				missing = append(missing, "PIN Reset Service "+identity.PINResetServiceAppID)
			}
			if !t.HasConsent(identity.PINResetClientAppID) {
				missing = append(missing, "PIN Reset Client "+identity.PINResetClientAppID)
			}
			return deny(ReasonNotOnboarded, "tenant %s lacks consent to %s", t.ID, strings.Join(missing, " and "))
		}
		if !p.EnablePINRecovery {
			return deny(ReasonPolicyDisabled, "EnablePinRecovery is off (%s)", p.Source)
		}
	}

	// 6. Federation service.
	if t.ADFS && (d.Trust == identity.CertificateTrust || d.Join == identity.OnPremises) && !d.Network.FederationService {
		return deny(ReasonNoFederationService, "AD FS unreachable")
	}

	// 7. Web sign-in allowed URLs (Azure AD joined only).
	if d.Join == identity.AzureADJoined {
		if t.Cloud == identity.AzureGovernment && !p.AllowsHost(GovernmentSignInHost) {
			return deny(ReasonGovernmentWebSignIn, "set ConfigureWebSignInAllowedUrls to %s", GovernmentSignInHost)
		}
		if t.Federated() {
			host, err := signInHost(t.FederationSignInURL)
			if err != nil {
				return deny(ReasonIncomplete, "tenant federation sign-in URL: %v", err)
			}
			if !p.AllowsHost(host) {
				return deny(ReasonWebSignInNotAllowed, "%s is not in ConfigureWebSignInAllowedUrls", host)
			}
		}
	}
	return nil
}

// MinimumVersion is the first Windows version on which edition ed supports
// non-destructive PIN reset: "The Microsoft PIN Reset service only works with
// Enterprise Edition for Windows 10, version 1709 to 1809 and later, and
// Windows 11. The feature works with Enterprise Edition and Pro edition with
// Windows 10, version 1903 and later, Windows 11." Other editions: never
// (a version no build reaches).
func MinimumVersion(ed Edition) Version {
	switch ed {
	case Enterprise:
		return Windows10v1709
	case Pro:
		return Windows10v1903
	}
	return Version(1 << 31)
}

// signInHost extracts the host of a federation sign-in URL (a bare host is
// accepted too).
func signInHost(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", raw)
	}
	h, err := policy.ParseDomain(u.Hostname())
	if err != nil {
		return "", fmt.Errorf("%q: %v", raw, err)
	}
	return h, nil
}

// CanReset is what the device can offer under its configuration, as dsregcmd
// reports it: DestructiveAndNonDestructive, DestructiveOnly,
// NonDestructiveOnly, or Unknown (no reset possible, or facts missing).
// Transient conditions (who is signed in, which networks are reachable,
// lock screen limitations) are taken as favourable: CanReset answers "could
// the user reset here", Check answers "may this reset run now".
//
// dsregcmd's value also needs a PIN reset protector in the container; see
// ContainerCanReset.
func CanReset(d Device, p Policy, t Tenant) container.CanReset {
	d.SignedIn = true
	d.Network = Network{DomainController: true, FederationService: true}
	d.LockScreenRestricted = false
	ok := func(k Kind) bool {
		return Check(d, p, t, EntrySettings, k) == nil || Check(d, p, t, EntryLockScreen, k) == nil
	}
	switch des, non := ok(KindDestructive), ok(KindNonDestructive); {
	case des && non:
		return container.DestructiveAndNonDestructive
	case des:
		return container.DestructiveOnly
	case non:
		return container.NonDestructiveOnly
	}
	return container.Unknown
}
