// Package lookup is the directory lookup a relying party makes at request
// time over HTTP: the tenant (onboarded, cloud), the user (standing,
// sessions revoked) and the device (standing, key thumbprint), in the shape
// of a small Microsoft Graph–like API. The PIN reset service asks it on
// every recovery when the directory runs in another process; a Client
// answers the service's Directory interface from it, caching each answer
// for a short time (DefaultTTL), and a Handler serves it from anything with
// the same three methods (the simulated directory, *idp.IdP).
//
// # Paths
//
//	GET /v1.0/tenants/{tid}                    Tenant
//	GET /v1.0/tenants/{tid}/users/{oid}        Account
//	GET /v1.0/tenants/{tid}/devices/{deviceid} Device
//
// # The app token
//
// Every call carries the caller's own app token: an ES256 JWT it signs
// with its application credential (RFC 7523 §2.2 shape: iss and sub are
// the client ID, aud the lookup base URL, a lifetime of at most
// MaxAppTokenLifetime), as an application authenticates with a
// certificate credential instead of a user. The Handler accepts only the
// credentials it was given (Handler's keys), so the lookup answers the PIN
// reset service and nobody else, and it shows a tenant's users and devices
// only to an app the tenant has consented to (403 otherwise). A Client
// signs one token and reuses it until shortly before it expires.
package lookup
