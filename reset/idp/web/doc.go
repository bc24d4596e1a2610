// Package web serves the simulated directory (package reset/idp) on the
// web, in Entra's URL layout: the sign-in pages (user name, password, TOTP
// code), the consent page, the device login page, an admin page listing
// the tenant's service principals ("Enterprise applications"), and the
// OAuth 2.0 / OpenID Connect endpoints standard clients use — authorize
// (v1 with resource, v2 with scope), token, device code and discovery.
//
// # Flows
//
// The authorization code flow (RFC 6749 §4.1) with PKCE (RFC 7636): public
// clients must send an S256 code_challenge ("plain" is refused); the
// redirect URI must be one the application registered, exactly, or a
// loopback one on any port for native apps (RFC 8252 §7.3); codes are
// single-use, bound to client, redirect URI and challenge, and live
// CodeLifetime. Refresh tokens rotate: each use returns a new one, and
// replaying a spent one revokes the whole family (RFC 9700 §4.14.2). The
// device authorization grant (RFC 8628) answers authorization_pending,
// slow_down, expired_token and access_denied as the RFC says. A DPoP
// proof (RFC 9449 §5) at the token endpoint, signed by a registered
// device's key, binds the sign-in to that device: its access tokens carry
// deviceid and cnf.jkt, as idp.Pending.BindDevice does in process, and
// its refresh tokens are used only with proofs of the same key.
//
// # Onboarding
//
// Admin consent is onboarding. The two links of the PIN reset
// documentation (prompt=admin_consent, one for the PIN Reset Service, one
// for the PIN Reset Client) lead a Global Administrator through sign-in to
// the consent page; Accept records the consent (idp.IdP.GrantConsent), which
// creates the application's service principal in the tenant, and the
// tenant is onboarded (identity.Tenant.Onboarded, what reset.Check reads)
// once both are given. Until then the token endpoint refuses a token for
// the PIN reset service with Entra's answer: invalid_grant, suberror
// consent_required, AADSTS65001. A user who is not a Global Administrator
// gets consent_required back at the redirect URI.
//
// # Federated tenants
//
// Home realm discovery: when the user name's domain is a federated
// tenant's (identity.Tenant.Federated) for which Config.Federation holds a
// trust, the user name page sends the browser to the tenant's
// FederationSignInURL with WS-Federation's parameters (wtrealm the
// directory's origin, wreply /login/federation, wctx a random context of
// this sign-in). The tenant is found by domain, never by user, so the
// answer tells nothing about who exists. The federation service (package
// reset/idp/federation) sends the browser back with wresult, a signed
// assertion; the directory accepts it only when the tenant's trust
// verifies it (signature, issuer, audience this directory, at most five
// minutes of lifetime, not expired), it answers this browser's sign-in
// (wctx) for the user who started it, and it was never used before; then
// idp.IdP.SignInFederated starts the sign-in, and MFA, consent and the
// code follow as for a managed user. A federated tenant's user never signs
// in with a password on these pages.
//
// # Defences
//
// Errors before the client and redirect URI are known good are pages,
// never redirects; after, they go to the redirect URI with error= and the
// state. Every form carries a CSRF token bound to the sign-in's cookie;
// cookies are HttpOnly, SameSite=Lax, Secure under TLS; pages send a
// Content-Security-Policy with frame-ancestors 'none' and run no script.
// A wrong password counts toward the user's lockout in the directory; the
// pages answer a wrong password, an unknown user and a locked account with
// the same words. Secrets handed out (codes, refresh tokens, device codes)
// are kept only as SHA-256 hashes.
//
// Server works on a small interface, Directory, which *idp.IdP satisfies;
// the in-process calls (idp.IdP.SignIn and friends) remain.
package web
