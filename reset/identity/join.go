package identity

// JoinType is how a device is joined to a directory. The PIN reset
// documentation's summary table has one row per join type ("Azure Active
// Directory Joined", "Hybrid Azure Active Directory Joined", "On Premises"),
// and its Requirements list adds Azure AD registered devices.
type JoinType int

const (
	// JoinUnknown is the zero value: the join type was not given.
	JoinUnknown JoinType = iota
	// AzureADJoined is a device joined to Azure AD only.
	AzureADJoined
	// HybridAzureADJoined is a device joined to on-premises AD and registered in Azure AD.
	HybridAzureADJoined
	// AzureADRegistered is a personal or BYOD device with a work account
	// added (WorkplaceJoined : YES in dsregcmd).
	AzureADRegistered
	// OnPremises is an on-premises-only deployment: AD joined, no Azure AD identity.
	OnPremises
)

var joinNames = []string{"unknown", "azure-ad-joined", "hybrid-azure-ad-joined", "azure-ad-registered", "on-premises"}

// String returns a stable lower-case name such as "hybrid-azure-ad-joined".
func (j JoinType) String() string { return enumName(joinNames, int(j), "JoinType") }

// MarshalText implements encoding.TextMarshaler.
func (j JoinType) MarshalText() ([]byte, error) { return enumMarshal(joinNames, int(j), "join type") }

// UnmarshalText accepts the names String returns (case-insensitive).
func (j *JoinType) UnmarshalText(b []byte) error {
	return enumUnmarshal(joinNames, (*int)(j), b, "join type")
}

// TrustType is how Windows Hello for Business authenticates to on-premises
// Active Directory; the summary table names all three for each join type.
type TrustType int

const (
	// TrustUnknown is the zero value: the trust type was not given.
	TrustUnknown TrustType = iota
	// KeyTrust: the Hello public key is written to AD (msDS-KeyCredentialLink).
	KeyTrust
	// CertificateTrust: an enterprise CA issues a sign-in certificate (AD FS
	// acts as the enrollment registration authority).
	CertificateTrust
	// CloudKerberosTrust: Azure AD Kerberos issues partial TGTs.
	CloudKerberosTrust
)

var trustNames = []string{"unknown", "key-trust", "certificate-trust", "cloud-kerberos-trust"}

// String returns a stable lower-case name such as "key-trust".
func (t TrustType) String() string { return enumName(trustNames, int(t), "TrustType") }

// MarshalText implements encoding.TextMarshaler.
func (t TrustType) MarshalText() ([]byte, error) {
	return enumMarshal(trustNames, int(t), "trust type")
}

// UnmarshalText accepts the names String returns (case-insensitive).
func (t *TrustType) UnmarshalText(b []byte) error {
	return enumUnmarshal(trustNames, (*int)(t), b, "trust type")
}
