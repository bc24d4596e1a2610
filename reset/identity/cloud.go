package identity

// Cloud is the Azure AD instance (national cloud) a tenant lives in.
type Cloud int

const (
	// PublicCloud is the worldwide Azure AD (the zero value).
	PublicCloud Cloud = iota
	// AzureGovernment is Azure US Government, where the Microsoft PIN reset
	// service is "not currently available".
	AzureGovernment
)

var cloudNames = []string{"public", "azure-government"}

// String returns "public" or "azure-government".
func (c Cloud) String() string { return enumName(cloudNames, int(c), "Cloud") }

// MarshalText implements encoding.TextMarshaler.
func (c Cloud) MarshalText() ([]byte, error) { return enumMarshal(cloudNames, int(c), "cloud") }

// UnmarshalText accepts the names String returns (case-insensitive).
func (c *Cloud) UnmarshalText(b []byte) error {
	return enumUnmarshal(cloudNames, (*int)(c), b, "cloud")
}

// Known reports whether c is one of the clouds above.
func (c Cloud) Known() bool { return c == PublicCloud || c == AzureGovernment }

// SignInHost is the cloud's Azure AD sign-in host: login.microsoftonline.com,
// or login.microsoftonline.us in Azure Government (the host the PIN reset
// documentation's known issue says ConfigureWebSignInAllowedUrls must list).
func (c Cloud) SignInHost() string {
	if c == AzureGovernment {
		return "login.microsoftonline.us"
	}
	return "login.microsoftonline.com"
}
