package web

import (
	"net/url"
	"strings"

	"github.com/hellosim/hellosim/reset/identity"
	"github.com/hellosim/hellosim/reset/idp"
)

// Application IDs of resources the directory issues tokens for, besides
// the PIN reset applications (package identity) and the device
// registration service (idp.DRSResource).
const (
	// GraphAppID is Microsoft Graph: the audience of a token asked for with
	// OpenID Connect scopes only, as Entra's v2 endpoint does.
	GraphAppID = "00000003-0000-0000-c000-000000000000"
	// AADGraphAppID is the Azure AD Graph ("Windows Azure Active
	// Directory"), the resource https://graph.windows.net the PIN Reset
	// Service's consent link names.
	AADGraphAppID = "00000002-0000-0000-c000-000000000000"
	// DRSAppID is the device registration service's application.
	DRSAppID = "01cb2876-7ebd-4aa4-9cc9-d28bd4d359a9"
)

// App is an application the directory knows: a client that may ask for
// codes and tokens (RedirectURIs, Public, DeviceCode), a resource tokens
// may be issued for (IdentifierURIs, Audience), or both. Consent to an app
// in a tenant creates its service principal there, named Name.
type App struct {
	// ID is the application (client) ID, a lower-case GUID.
	ID string
	// Name is the display name, also the service principal's.
	Name string
	// Public clients (a device, a native app) hold no secret: they must
	// use PKCE with S256 for the authorization code flow.
	Public bool
	// RedirectURIs are matched exactly, as registered.
	RedirectURIs []string
	// Loopback also allows http://127.0.0.1, http://[::1] and
	// http://localhost on any port and path (RFC 8252 §7.3), for native
	// apps that listen on an ephemeral port.
	Loopback bool
	// DeviceCode allows the device authorization grant (RFC 8628).
	DeviceCode bool
	// IdentifierURIs name the app as a resource (v1 resource, v2 scope
	// prefix); its ID names it too.
	IdentifierURIs []string
	// Audience is the aud of tokens for the resource; "" means ID.
	Audience string
	// Permissions are what the consent page lists.
	Permissions []string
}

// DefaultApps are the applications of the PIN reset story, named and
// registered as the PIN reset documentation's consent links show them, and
// the resources their tokens are for.
func DefaultApps() []App {
	return []App{
		{
			ID: identity.PINResetServiceAppID, Name: "Microsoft Pin Reset Service Production",
			RedirectURIs:   []string{"https://cred.microsoft.com"},
			IdentifierURIs: []string{"https://cred.microsoft.com/"},
			Permissions:    []string{"Sign in and read user profile"},
		},
		{
			ID: identity.PINResetClientAppID, Name: "Microsoft Pin Reset Client Production",
			Public: true, Loopback: true, DeviceCode: true,
			RedirectURIs: []string{"ms-appx-web://Microsoft.AAD.BrokerPlugin/" + identity.PINResetClientAppID},
			Permissions:  []string{"Access Microsoft Pin Reset Service Production", "Sign in and read user profile"},
		},
		{
			ID: idp.DeviceRegistrationClientAppID, Name: "Microsoft Device Registration Client",
			Public: true, Loopback: true, DeviceCode: true,
			RedirectURIs: []string{"ms-appx-web://Microsoft.AAD.BrokerPlugin/" + idp.DeviceRegistrationClientAppID},
			Permissions:  []string{"Register your device with your organization", "Sign in and read user profile"},
		},
		{ID: DRSAppID, Name: "Device Registration Service", IdentifierURIs: []string{idp.DRSResource}, Audience: idp.DRSResource},
		{ID: AADGraphAppID, Name: "Windows Azure Active Directory", IdentifierURIs: []string{"https://graph.windows.net/"}, Audience: "https://graph.windows.net"},
		{ID: GraphAppID, Name: "Microsoft Graph", IdentifierURIs: []string{"https://graph.microsoft.com/"}},
	}
}

func (a *App) audience() string {
	if a.Audience != "" {
		return a.Audience
	}
	return a.ID
}

// allowsRedirect reports whether uri is one of the app's redirect URIs:
// exactly as registered, or a loopback one (RFC 8252 §7.3: any port).
func (a *App) allowsRedirect(uri string) bool {
	for _, r := range a.RedirectURIs {
		if uri == r {
			return true
		}
	}
	if !a.Loopback {
		return false
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return false
	}
	switch u.Hostname() {
	case "127.0.0.1", "::1", "localhost":
		return true
	}
	return false
}

// matchesResource reports whether name names the app as a resource: its
// ID or an identifier URI, with or without the trailing slash.
func (a *App) matchesResource(name string) bool {
	n := strings.TrimSuffix(strings.ToLower(name), "/")
	if n == a.ID {
		return true
	}
	for _, u := range a.IdentifierURIs {
		if n == strings.TrimSuffix(strings.ToLower(u), "/") {
			return true
		}
	}
	return false
}
