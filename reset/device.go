package reset

import (
	"github.com/hellosim/hellosim/internal/enum"
	"github.com/hellosim/hellosim/reset/identity"
)

// Edition is the Windows edition. The documentation names only Enterprise and
// Pro ("Windows Enterprise and Pro editions"); every other edition is
// EditionOther and Check refuses it, since the seed gives no basis to allow it.
type Edition int

const (
	// EditionUnknown is the zero value: the edition was not given.
	EditionUnknown Edition = iota
	// Enterprise is Windows Enterprise.
	Enterprise
	// Pro is Windows Pro.
	Pro
	// EditionOther is any edition the PIN reset documentation does not name (Home, …).
	EditionOther
)

var editionNames = []string{"unknown", "enterprise", "pro", "other"}

// String returns a stable lower-case name such as "enterprise".
func (e Edition) String() string { return enum.Name(editionNames, int(e), "Edition") }

// MarshalText implements encoding.TextMarshaler.
func (e Edition) MarshalText() ([]byte, error) {
	return enum.Marshal("reset", editionNames, int(e), "edition")
}

// UnmarshalText accepts the names String returns (case-insensitive).
func (e *Edition) UnmarshalText(b []byte) error {
	return enum.Unmarshal("reset", editionNames, (*int)(e), b, "edition")
}

// AccountType is the kind of account that owns the Hello container (the
// summary table's "MSA/Enterprise" row).
type AccountType int

const (
	// AccountUnknown is the zero value: the account type was not given.
	AccountUnknown AccountType = iota
	// EnterpriseAccount is a work or school account (Azure AD or AD).
	EnterpriseAccount
	// MicrosoftAccount is a personal Microsoft account (MSA).
	MicrosoftAccount
)

var accountNames = []string{"unknown", "enterprise", "msa"}

// String returns "enterprise" or "msa".
func (a AccountType) String() string { return enum.Name(accountNames, int(a), "AccountType") }

// MarshalText implements encoding.TextMarshaler.
func (a AccountType) MarshalText() ([]byte, error) {
	return enum.Marshal("reset", accountNames, int(a), "account type")
}

// UnmarshalText accepts the names String returns (case-insensitive).
func (a *AccountType) UnmarshalText(b []byte) error {
	return enum.Unmarshal("reset", accountNames, (*int)(a), b, "account type")
}

// EntryPoint is where the user starts "I forgot my PIN".
type EntryPoint int

const (
	// EntryUnknown is the zero value.
	EntryUnknown EntryPoint = iota
	// EntrySettings is Settings > Accounts > Sign-in options > PIN (Windows
	// Hello) > I forgot my PIN, after signing in with an alternate credential.
	EntrySettings
	// EntryLockScreen is the PIN credential provider above the lock screen.
	EntryLockScreen
)

var entryNames = []string{"unknown", "settings", "lock-screen"}

// String returns "settings" or "lock-screen".
func (e EntryPoint) String() string { return enum.Name(entryNames, int(e), "EntryPoint") }

// MarshalText implements encoding.TextMarshaler.
func (e EntryPoint) MarshalText() ([]byte, error) {
	return enum.Marshal("reset", entryNames, int(e), "entry point")
}

// UnmarshalText accepts the names String returns (case-insensitive).
func (e *EntryPoint) UnmarshalText(b []byte) error {
	return enum.Unmarshal("reset", entryNames, (*int)(e), b, "entry point")
}

// Kind is the form of PIN reset.
type Kind int

const (
	// KindUnknown is the zero value.
	KindUnknown Kind = iota
	// KindDestructive deletes the container's keys and certificates and
	// provisions a new login key and PIN (the default; no configuration).
	KindDestructive
	// KindNonDestructive keeps the container and keys and changes only the
	// PIN, using the PIN reset protector and the PIN reset service.
	KindNonDestructive
)

var kindNames = []string{"unknown", "destructive", "non-destructive"}

// String returns "destructive" or "non-destructive".
func (k Kind) String() string { return enum.Name(kindNames, int(k), "Kind") }

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) {
	return enum.Marshal("reset", kindNames, int(k), "reset kind")
}

// UnmarshalText accepts the names String returns (case-insensitive).
func (k *Kind) UnmarshalText(b []byte) error {
	return enum.Unmarshal("reset", kindNames, (*int)(k), b, "reset kind")
}

// Method is an authentication method a tenant enables. Above the lock screen
// an Azure AD joined device lists the tenant's methods ("like Password, PIN,
// Security key"); a hybrid joined device asks for the password.
type Method string

// Methods the documentation names.
const (
	MethodPassword    Method = "Password"
	MethodPIN         Method = "PIN"
	MethodSecurityKey Method = "Security key"
)

// Network is what the device can reach when the reset runs.
type Network struct {
	// DomainController: corporate network connectivity to a domain
	// controller, needed by destructive reset on hybrid joined devices.
	DomainController bool
	// FederationService: connectivity to AD FS, needed where AD FS is used for
	// certificate trust or on-premises deployments.
	FederationService bool
}

// Device describes the device and the user at the moment of a reset.
type Device struct {
	Join    identity.JoinType
	Trust   identity.TrustType
	Edition Edition
	Version Version
	Account AccountType
	Network Network
	// SignedIn: a user is signed in with an alternate credential (password,
	// security key, …), which the Settings entry point needs ("PIN reset from
	// settings only works post login").
	SignedIn bool
	// LockScreenRestricted: a limitation of self-service password reset at
	// the Windows sign-in screen applies to this device (for example a
	// third-party credential provider or lock screen notifications turned off);
	// the lock screen PIN reset then does not work either.
	LockScreenRestricted bool
}

// Tenant describes the user's Azure AD tenant (or on-premises directory)
// as Check needs it: the directory's view of the tenant, and what the
// deployment adds.
type Tenant struct {
	identity.Tenant
	// ADFS reports that AD FS is part of the deployment (the registration
	// authority of certificate trust, or the IdP of an on-premises deployment).
	ADFS bool
	// Methods are the authentication methods enabled in the tenant, offered
	// above the lock screen on Azure AD joined devices. Empty means password only.
	Methods []Method
}
