package reset

import (
	"errors"
	"strings"
	"testing"

	"github.com/hellosim/hellosim/container"
	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testTenant = "6f1f3c4e-2b1a-4d7e-9c3b-1a2b3c4d5e6f"

// base is an Azure AD joined Enterprise device on Windows 11 with a work
// account signed in, every network reachable, in an onboarded public-cloud
// tenant with PIN recovery on: everything allowed. Rows change one thing.
func base() (Device, Policy, Tenant) {
	return Device{
			Join: identity.AzureADJoined, Trust: identity.KeyTrust, Edition: Enterprise, Version: Windows11v23H2,
			Account: EnterpriseAccount, SignedIn: true,
			Network: Network{DomainController: true, FederationService: true},
		},
		Policy{EnablePINRecovery: true, Source: policy.DeviceMDM},
		Tenant{Tenant: identity.Tenant{ID: testTenant, ConsentedApps: []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}}}
}

type row struct {
	name  string // "L<line of pin-reset.md>: what"
	edit  func(d *Device, p *Policy, t *Tenant)
	entry EntryPoint
	kind  Kind
	want  Reason // 0: allowed
}

func hybrid(tr identity.TrustType) func(*Device, *Policy, *Tenant) {
	return func(d *Device, _ *Policy, _ *Tenant) { d.Join, d.Trust = identity.HybridAzureADJoined, tr }
}

func aadj(tr identity.TrustType) func(*Device, *Policy, *Tenant) {
	return func(d *Device, _ *Policy, _ *Tenant) { d.Join, d.Trust = identity.AzureADJoined, tr }
}

func both(fs ...func(*Device, *Policy, *Tenant)) func(*Device, *Policy, *Tenant) {
	return func(d *Device, p *Policy, t *Tenant) {
		for _, f := range fs {
			f(d, p, t)
		}
	}
}

func noDC(d *Device, _ *Policy, _ *Tenant) { d.Network.DomainController = false }
func noFS(d *Device, _ *Policy, _ *Tenant) { d.Network.FederationService = false }
func adfs(_ *Device, _ *Policy, t *Tenant) { t.ADFS = true }
func policyOff(_ *Device, p *Policy, _ *Tenant) {
	p.EnablePINRecovery, p.Source = false, policy.NotConfigured
}
func gov(_ *Device, _ *Policy, t *Tenant) { t.Cloud = identity.AzureGovernment }
func none(*Device, *Policy, *Tenant)      {}

// TestCheckSummaryTable has one row per cell and note of the PIN reset
// documentation; each name starts with the line it comes from.
func TestCheckSummaryTable(t *testing.T) {
	const (
		S  = EntrySettings
		LS = EntryLockScreen
		D  = KindDestructive
		N  = KindNonDestructive
	)
	rows := []row{
		// Line 17/21: destructive is the default and needs no configuration.
		{"L17: destructive without policy or onboarding", both(policyOff, func(_ *Device, _ *Policy, t *Tenant) { t.ConsentedApps = nil }), S, D, 0},
		// Line 18: non-destructive needs the service and client policy.
		{"L18: non-destructive needs EnablePinRecovery", policyOff, S, N, ReasonPolicyDisabled},
		// Line 23/30: Settings after signing in with an alternate credential.
		{"L30: settings with signed-in user", none, S, N, 0},
		{"L30: settings without signed-in user (destructive)", func(d *Device, _ *Policy, _ *Tenant) { d.SignedIn = false }, S, D, ReasonNotSignedIn},
		{"L30: settings without signed-in user (non-destructive)", func(d *Device, _ *Policy, _ *Tenant) { d.SignedIn = false }, S, N, ReasonNotSignedIn},
		// Line 23: no alternate credential: start from the lock screen.
		{"L23: lock screen needs no signed-in user", func(d *Device, _ *Policy, _ *Tenant) { d.SignedIn = false }, LS, N, 0},
		// Line 26: hybrid destructive needs a domain controller.
		{"L26: hybrid destructive without DC", both(hybrid(identity.CertificateTrust), noDC), S, D, ReasonNoDomainController},
		{"L26: hybrid destructive with DC", hybrid(identity.CertificateTrust), S, D, 0},
		// Line 26: AD FS for certificate trust or on-premises needs the federation service.
		{"L26: AD FS cert trust destructive without federation service", both(hybrid(identity.CertificateTrust), adfs, noFS), S, D, ReasonNoFederationService},
		{"L26: AD FS cert trust non-destructive without federation service", both(hybrid(identity.CertificateTrust), adfs, noFS), S, N, ReasonNoFederationService},
		{"L26: AD FS cert trust with federation service", both(hybrid(identity.CertificateTrust), adfs), S, D, 0},
		{"L26: AD FS key trust needs no federation service", both(hybrid(identity.KeyTrust), adfs, noFS), S, N, 0},
		// Lines 36-42: Azure AD joined, above the lock screen.
		{"L36: AADJ lock screen destructive", none, LS, D, 0},
		{"L36: AADJ lock screen non-destructive", none, LS, N, 0},
		// Lines 44-50: hybrid joined, above the lock screen (password).
		{"L44: hybrid cert trust lock screen non-destructive", hybrid(identity.CertificateTrust), LS, N, 0},
		// Line 53 (and 82): hybrid key trust, destructive, above the lock screen.
		{"L53: hybrid key trust lock screen destructive", hybrid(identity.KeyTrust), LS, D, ReasonHybridKeyTrustLockScreen},
		{"L53: hybrid key trust lock screen non-destructive works", hybrid(identity.KeyTrust), LS, N, 0},
		// Line 55: settings only post login; SSPR lock screen limitations.
		{"L55: lock screen with an SSPR limitation", func(d *Device, _ *Policy, _ *Tenant) { d.LockScreenRestricted = true }, LS, D, ReasonLockScreenRestricted},
		{"L55: settings unaffected by lock screen limitation", func(d *Device, _ *Policy, _ *Tenant) { d.LockScreenRestricted = true }, S, D, 0},
		// Lines 59-64: requirements of non-destructive reset.
		{"L61: on-premises has no Azure AD identity", func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.OnPremises }, S, N, ReasonNoAzureAD},
		{"L62: Pro edition destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Edition = Pro }, S, D, 0},
		{"L62: other edition destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Edition = EditionOther }, S, D, ReasonEdition},
		{"L62: other edition non-destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Edition = EditionOther }, S, N, ReasonEdition},
		{"L64: Azure AD registered non-destructive", func(d *Device, _ *Policy, _ *Tenant) {
			d.Join, d.Trust = identity.AzureADRegistered, identity.TrustUnknown
		}, S, N, 0},
		{"L64: Azure AD registered destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.AzureADRegistered }, S, D, 0},
		{"L34: Azure AD registered has no lock screen reset", func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.AzureADRegistered }, LS, D, ReasonLockScreenJoinType},
		{"L34: on-premises has no lock screen reset", func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.OnPremises }, LS, D, ReasonLockScreenJoinType},
		// Line 72: editions and versions of non-destructive reset.
		{"L72: Enterprise 1703 too old", func(d *Device, _ *Policy, _ *Tenant) { d.Version = Windows10v1703 }, S, N, ReasonVersion},
		{"L72: Enterprise 1709", func(d *Device, _ *Policy, _ *Tenant) { d.Version = Windows10v1709 }, S, N, 0},
		{"L72: Enterprise 1809", func(d *Device, _ *Policy, _ *Tenant) { d.Version = Windows10v1809 }, S, N, 0},
		{"L72: Enterprise Windows 11", func(d *Device, _ *Policy, _ *Tenant) { d.Version = Windows11 }, S, N, 0},
		{"L72: Pro 1809 too old", func(d *Device, _ *Policy, _ *Tenant) { d.Edition, d.Version = Pro, Windows10v1809 }, S, N, ReasonVersion},
		{"L72: Pro 1903", func(d *Device, _ *Policy, _ *Tenant) { d.Edition, d.Version = Pro, Windows10v1903 }, S, N, 0},
		{"L72: Pro Windows 11", func(d *Device, _ *Policy, _ *Tenant) { d.Edition, d.Version = Pro, Windows11 }, S, N, 0},
		{"L72: old version does not limit destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Edition, d.Version = Pro, Windows10v1703 }, S, D, 0},
		// Lines 73/89: not in Azure Government.
		{"L73: government non-destructive", gov, S, N, ReasonGovernmentCloud},
		{"L89: government hybrid destructive", both(gov, hybrid(identity.CertificateTrust)), S, D, 0},
		// Line 80: Windows editions and versions row.
		{"L80: Enterprise destructive", none, S, D, 0},
		// Line 81: Azure AD joined, all trusts, both forms.
		{"L81: AADJ cert trust destructive", aadj(identity.CertificateTrust), S, D, 0},
		{"L81: AADJ key trust destructive", aadj(identity.KeyTrust), S, D, 0},
		{"L81: AADJ cloud Kerberos destructive", aadj(identity.CloudKerberosTrust), S, D, 0},
		{"L81: AADJ cert trust non-destructive", aadj(identity.CertificateTrust), S, N, 0},
		{"L81: AADJ key trust non-destructive", aadj(identity.KeyTrust), S, N, 0},
		{"L81: AADJ cloud Kerberos non-destructive", aadj(identity.CloudKerberosTrust), S, N, 0},
		// Line 82: hybrid joined, destructive column.
		{"L82: hybrid cert trust destructive settings", hybrid(identity.CertificateTrust), S, D, 0},
		{"L82: hybrid cert trust destructive lock screen", hybrid(identity.CertificateTrust), LS, D, 0},
		{"L82: hybrid cloud Kerberos destructive settings", hybrid(identity.CloudKerberosTrust), S, D, 0},
		{"L82: hybrid cloud Kerberos destructive lock screen", hybrid(identity.CloudKerberosTrust), LS, D, 0},
		{"L82: hybrid key trust destructive lock screen", hybrid(identity.KeyTrust), LS, D, ReasonHybridKeyTrustLockScreen},
		{"L82: hybrid key trust destructive settings with DC", hybrid(identity.KeyTrust), S, D, 0},
		{"L82: hybrid key trust destructive settings without DC", both(hybrid(identity.KeyTrust), noDC), S, D, ReasonNoDomainController},
		// Line 82: hybrid joined, non-destructive column: no DC needed.
		{"L82: hybrid cert trust non-destructive settings, no DC", both(hybrid(identity.CertificateTrust), noDC), S, N, 0},
		{"L82: hybrid cert trust non-destructive lock screen, no DC", both(hybrid(identity.CertificateTrust), noDC), LS, N, 0},
		{"L82: hybrid key trust non-destructive settings, no DC", both(hybrid(identity.KeyTrust), noDC), S, N, 0},
		{"L82: hybrid key trust non-destructive lock screen, no DC", both(hybrid(identity.KeyTrust), noDC), LS, N, 0},
		{"L82: hybrid cloud Kerberos non-destructive settings, no DC", both(hybrid(identity.CloudKerberosTrust), noDC), S, N, 0},
		{"L82: hybrid cloud Kerberos non-destructive lock screen, no DC", both(hybrid(identity.CloudKerberosTrust), noDC), LS, N, 0},
		// Line 83: on premises.
		{"L83: on-premises destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.OnPremises }, S, D, 0},
		{"L83: on-premises AD FS destructive without federation service", both(func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.OnPremises }, adfs, noFS), S, D, ReasonNoFederationService},
		{"L83: on-premises AD FS destructive with federation service", both(func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.OnPremises }, adfs), S, D, 0},
		{"L83: on-premises non-destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.OnPremises }, S, N, ReasonNoAzureAD},
		// Line 84 and 93-108: onboard both applications.
		{"L95: only the PIN Reset Client consented", func(_ *Device, _ *Policy, t *Tenant) { t.ConsentedApps = []string{identity.PINResetClientAppID} }, S, N, ReasonNotOnboarded},
		{"L96: only the PIN Reset Service consented", func(_ *Device, _ *Policy, t *Tenant) { t.ConsentedApps = []string{identity.PINResetServiceAppID} }, S, N, ReasonNotOnboarded},
		{"L84: not onboarded at all", func(_ *Device, _ *Policy, t *Tenant) { t.ConsentedApps = nil }, S, N, ReasonNotOnboarded},
		// Line 85: MSA and Enterprise / Enterprise only.
		{"L85: MSA destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Account = MicrosoftAccount }, S, D, 0},
		{"L85: MSA non-destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Account = MicrosoftAccount }, S, N, ReasonEnterpriseOnly},
		{"L85: Enterprise non-destructive", none, S, N, 0},
		// Lines 218-224: ConfigureWebSignInAllowedUrls, Azure AD joined, federated.
		{"L224: AADJ federated tenant, sign-in host not allowed", func(_ *Device, _ *Policy, t *Tenant) {
			t.FederationSignInURL = "https://signin.contoso.com/adfs/ls"
		}, LS, N, ReasonWebSignInNotAllowed},
		{"L224: AADJ federated tenant, sign-in host allowed", func(_ *Device, p *Policy, t *Tenant) {
			t.FederationSignInURL = "https://signin.contoso.com/adfs/ls"
			p.WebSignInAllowedURLs = []string{"signin.contoso.com", "portal.contoso.com"}
		}, LS, D, 0},
		{"L222: hybrid federated tenant needs no allowed URLs", both(hybrid(identity.CloudKerberosTrust), func(_ *Device, _ *Policy, t *Tenant) {
			t.FederationSignInURL = "https://signin.contoso.com/"
		}), LS, N, 0},
		// Line 252: Azure Government known issue.
		{"L252: government AADJ destructive without login.microsoftonline.us", gov, S, D, ReasonGovernmentWebSignIn},
		{"L252: government AADJ destructive with login.microsoftonline.us", both(gov, func(_ *Device, p *Policy, _ *Tenant) {
			p.WebSignInAllowedURLs = []string{"LOGIN.microsoftonline.us."}
		}), S, D, 0},
		// Facts Check needs.
		{"unknown join type", func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.JoinUnknown }, S, D, ReasonIncomplete},
		{"unknown account type", func(d *Device, _ *Policy, _ *Tenant) { d.Account = AccountUnknown }, S, D, ReasonIncomplete},
		{"unknown edition", func(d *Device, _ *Policy, _ *Tenant) { d.Edition = EditionUnknown }, S, D, ReasonIncomplete},
		{"unknown trust type on a joined device", func(d *Device, _ *Policy, _ *Tenant) { d.Trust = identity.TrustUnknown }, S, D, ReasonIncomplete},
		{"unknown version for non-destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Version = 0 }, S, N, ReasonIncomplete},
		{"unknown version is fine for destructive", func(d *Device, _ *Policy, _ *Tenant) { d.Version = 0 }, S, D, 0},
		{"unknown entry point", none, EntryUnknown, D, ReasonIncomplete},
		{"unknown kind", none, S, KindUnknown, ReasonIncomplete},
		{"unparsable federation URL", func(_ *Device, _ *Policy, t *Tenant) { t.FederationSignInURL = "https://bad host/" }, S, D, ReasonIncomplete},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			d, p, tn := base()
			r.edit(&d, &p, &tn)
			err := Check(d, p, tn, r.entry, r.kind)
			if r.want == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			var na *NotAllowedError
			require.ErrorAs(t, err, &na)
			assert.Equal(t, r.want, na.Reason, "got %v", err)
			assert.ErrorIs(t, err, r.want)
			assert.ErrorIs(t, err, ErrNotAllowed)
			assert.Equal(t, r.kind, na.Kind)
			assert.Equal(t, r.entry, na.Entry)
			assert.NotEmpty(t, na.Reason.Message())
			assert.Contains(t, err.Error(), na.Reason.Message())
		})
	}
}

func TestCheckDoesNotMatchOtherReasons(t *testing.T) {
	d, p, tn := base()
	err := Check(d, p, tn, EntrySettings, KindNonDestructive)
	require.NoError(t, err)
	tn.Cloud = identity.AzureGovernment
	err = Check(d, p, tn, EntrySettings, KindNonDestructive)
	assert.ErrorIs(t, err, ReasonGovernmentCloud)
	assert.NotErrorIs(t, err, ReasonNotOnboarded)
	assert.NotErrorIs(t, err, errors.New("government-cloud"))
}

func TestReasonsHaveNamesAndMessages(t *testing.T) {
	seen := map[string]bool{}
	for r := ReasonIncomplete; r <= ReasonGovernmentWebSignIn; r++ {
		name := r.String()
		assert.NotContains(t, name, "Reason(", "reason %d has no name", int(r))
		assert.False(t, seen[name], "duplicate name %s", name)
		seen[name] = true
		assert.NotEqual(t, "PIN reset isn't available.", r.Message(), "reason %s has no message", name)
	}
	assert.Equal(t, "Reason(99)", Reason(99).String())
}

func TestCanReset(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Device, *Policy, *Tenant)
		want container.CanReset
	}{
		// Line 178: CanReset DestructiveAndNonDestructive when non-destructive is enabled.
		{"policy on", none, container.DestructiveAndNonDestructive},
		// Line 178: DestructiveOnly when only destructive is enabled.
		{"policy off", policyOff, container.DestructiveOnly},
		{"msa", func(d *Device, _ *Policy, _ *Tenant) { d.Account = MicrosoftAccount }, container.DestructiveOnly},
		{"government hybrid", both(gov, hybrid(identity.KeyTrust)), container.DestructiveOnly},
		{"on-premises", func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.OnPremises }, container.DestructiveOnly},
		// Transient facts do not change CanReset.
		{"hybrid key trust, DC unreachable, nobody signed in", both(hybrid(identity.KeyTrust), noDC, func(d *Device, _ *Policy, _ *Tenant) { d.SignedIn = false }), container.DestructiveAndNonDestructive},
		{"other edition", func(d *Device, _ *Policy, _ *Tenant) { d.Edition = EditionOther }, container.Unknown},
		{"unknown join", func(d *Device, _ *Policy, _ *Tenant) { d.Join = identity.JoinUnknown }, container.Unknown},
		{"federated AADJ without allowed URL", func(_ *Device, _ *Policy, t *Tenant) { t.FederationSignInURL = "sts.fabrikam.com" }, container.Unknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, p, tn := base()
			c.edit(&d, &p, &tn)
			assert.Equal(t, c.want, CanReset(d, p, tn))
		})
	}
}

func TestEnumText(t *testing.T) {
	var j identity.JoinType
	require.NoError(t, j.UnmarshalText([]byte("Hybrid-Azure-AD-Joined")))
	assert.Equal(t, identity.HybridAzureADJoined, j)
	b, err := j.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "hybrid-azure-ad-joined", string(b))
	assert.Error(t, j.UnmarshalText([]byte("domain-joined")))
	_, err = identity.JoinType(42).MarshalText()
	assert.Error(t, err)
	assert.Equal(t, "JoinType(42)", identity.JoinType(42).String())

	assertUnmarshals(t, "non-destructive", KindNonDestructive)
	assertUnmarshals(t, "lock-screen", EntryLockScreen)
	assertUnmarshals(t, "azure-government", identity.AzureGovernment)
	assertUnmarshals(t, "cloud-kerberos-trust", identity.CloudKerberosTrust)
	assertUnmarshals(t, "Pro", Pro)
	assertUnmarshals(t, "msa", MicrosoftAccount)
}

// assertUnmarshals asserts text unmarshals to want.
func assertUnmarshals[T any, P interface {
	*T
	UnmarshalText([]byte) error
}](t *testing.T, text string, want T) {
	t.Helper()
	var got T
	require.NoError(t, P(&got).UnmarshalText([]byte(text)))
	assert.Equal(t, want, got)
}

func TestVersion(t *testing.T) {
	cases := []struct {
		in   string
		want Version
	}{
		{"10.0.19045", Windows10v22H2},
		{"10.0.19045.3803", Windows10v22H2},
		{"18362", Windows10v1903},
		{"1709", Windows10v1709},
		{"Windows 10 1903", Windows10v1903},
		{"Windows 10, version 1809", Windows10v1809},
		{"windows 11 23h2", Windows11v23H2},
		{"Windows 11", Windows11},
		{"Windows 10 21H2", Windows10v21H2},
		{"Windows 11 21H2", Windows11v21H2},
	}
	for _, c := range cases {
		v, err := ParseVersion(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, v, c.in)
	}
	for _, bad := range []string{"", "10.0.", "10.0.abc", "10.0.99", "Windows 10", "Windows 10 2404", "Windows 11 1903", "7", "10.0.19045.x", strings.Repeat("1", 100)} {
		_, err := ParseVersion(bad)
		assert.ErrorIs(t, err, ErrInvalidVersion, bad)
	}
	assert.Equal(t, "Windows 10, version 1903 (10.0.18362)", Windows10v1903.String())
	assert.Equal(t, "Windows 11, version 24H2 (10.0.26100)", Windows11v24H2.String())
	assert.Equal(t, "Windows 11 (10.0.26200)", Version(26200).String())
	assert.Equal(t, "unknown", Version(0).String())
	assert.True(t, Windows11.IsWindows11())
	assert.False(t, Windows10v22H2.IsWindows11())

	var v Version
	require.NoError(t, v.UnmarshalText([]byte("10.0.22631")))
	b, _ := v.MarshalText()
	assert.Equal(t, "10.0.22631", string(b))
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"10.0.19045", "10.0.19045.1", "1709", "Windows 11 23H2", "Windows 10, version 1903", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidVersion) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if v < Windows10v1507 {
			t.Fatalf("accepted %q as %d", s, v)
		}
		// What MarshalText writes parses back to the same version.
		b, _ := v.MarshalText()
		w, err := ParseVersion(string(b))
		if err != nil || w != v {
			t.Fatalf("round trip %q: %v %v", b, w, err)
		}
	})
}

// FuzzCheck: every combination of facts, valid or not, gets nil or a
// *NotAllowedError, and CanReset agrees with Check.
func FuzzCheck(f *testing.F) {
	f.Add(1, 1, 1, 22631, 1, 0, 1, 1, uint8(0xff), "")
	f.Add(2, 1, 2, 16299, 2, 1, 2, 2, uint8(0), "https://sts.fabrikam.com/adfs")
	f.Fuzz(func(t *testing.T, join, trust, edition, version, account, cloud, entry, kind int, bits uint8, fed string) {
		d := Device{
			Join: identity.JoinType(join), Trust: identity.TrustType(trust), Edition: Edition(edition), Version: Version(version),
			Account: AccountType(account), SignedIn: bits&1 != 0, LockScreenRestricted: bits&2 != 0,
			Network: Network{DomainController: bits&4 != 0, FederationService: bits&8 != 0},
		}
		p := Policy{EnablePINRecovery: bits&16 != 0, WebSignInAllowedURLs: []string{"sts.fabrikam.com"}}
		tn := Tenant{Tenant: identity.Tenant{Cloud: identity.Cloud(cloud), FederationSignInURL: fed}, ADFS: bits&32 != 0}
		if bits&64 != 0 {
			tn.ConsentedApps = []string{identity.PINResetServiceAppID, identity.PINResetClientAppID}
		}
		err := Check(d, p, tn, EntryPoint(entry), Kind(kind))
		if err != nil {
			var na *NotAllowedError
			if !errors.As(err, &na) || na.Reason.Message() == "PIN reset isn't available." {
				t.Fatalf("Check returned %v", err)
			}
		}
		cr := CanReset(d, p, tn)
		d.SignedIn, d.LockScreenRestricted = true, false
		d.Network = Network{DomainController: true, FederationService: true}
		des := Check(d, p, tn, EntrySettings, KindDestructive) == nil || Check(d, p, tn, EntryLockScreen, KindDestructive) == nil
		non := Check(d, p, tn, EntrySettings, KindNonDestructive) == nil || Check(d, p, tn, EntryLockScreen, KindNonDestructive) == nil
		if (cr == container.DestructiveAndNonDestructive) != (des && non) || (cr == container.DestructiveOnly) != (des && !non) {
			t.Fatalf("CanReset %v disagrees with Check (destructive %t, non-destructive %t)", cr, des, non)
		}
	})
}
