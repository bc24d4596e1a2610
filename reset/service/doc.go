// Package service is a reference implementation of the PIN reset service of
// Windows Hello for Business non-destructive PIN reset, and a Go client for
// it.
//
// The WHfB documentation gives the service one job: "After a user initiates
// a PIN reset, completes authentication and multi-factor authentication to
// Azure AD, the encrypted PIN reset protector is sent to the Microsoft PIN
// reset service, decrypted, and returned to the client." Everything here
// serves that sentence while making sure that only the right person gets
// their own protector back, and that nobody on the way sees it.
//
// # The protocol
//
// The service publishes its public keys at GET /v1/keys (a protector.KeySet,
// the current key first); a device wraps its protector to the current key
// at enrolment, bound to the device (protector.Binding.DeviceID). To reset,
// the device signs the user in — the sign-in bound to the device's TPM key,
// so the access token carries cnf.jkt and deviceid — and sends
//
//	POST /v1/recover
//	Authorization: DPoP <access token>
//	DPoP: <proof: ES256 by the device key over htm, htu, iat, jti, ath, rkh>
//	Content-Type: application/json
//
//	{"envelope": "<base64url envelope>", "return_key": "<base64url X25519 public key>"}
//
// where return_key is the public half of a one-time key made for this call.
// The answer, {"sealed_key": "..."}, is the protector sealed to that key
// with HPKE and bound to the envelope: it is never in clear on the wire, in
// a TLS-terminating proxy or in a log. Errors are JSON too,
// {"error": code, "message": text}, with a status and a code for each
// refusal (see the Code constants), a DPoP challenge on 401 (RFC 9449
// §7.1), a step-up challenge with max_age on 403 mfa_required (RFC 9470)
// and Retry-After on 429.
//
// # What is checked, in order
//
// The recover path is a list of named checks (RecoverChecks), each
// declaring the facts it reads and sets, so the order is code and a test
// holds it; nothing is decrypted or recorded until the checks before it
// have passed: content type; body size (16 KiB); strict JSON and a
// well-formed envelope; a return key of the right size and not of small
// order; a known, unretired service key; an envelope that names a device
// (format version 2); a DPoP authorization and one proof; the client
// address's bucket (X-Forwarded-For believed only from
// Config.TrustedProxies), the only limit drawn before authentication. Then
// the authentication: the access token (ES256 by the identity provider,
// issuer, audience, time with a minute of skew, not past its replay
// window); azp/appid the PIN Reset Client; "mfa" with an auth_time within
// Config.MFAMaxAge; the token bound to a device (cnf.jkt, deviceid); the
// proof (ES256 under its own JWK, whose thumbprint is cnf.jkt, htm, htu —
// Config.PublicURL, else the URL of the listener the request arrived on,
// never the Host header —, fresh iat, ath the token's hash, rkh the return
// key's hash). Then, in one
// atomic admission by the state store (Config.State), the user not locked
// out, the proof's jti new in the tenant's partition and the user's and the
// tenant's buckets not empty: every authenticated request pays, whatever
// check refuses it later. Then the tenant onboarded and in a cloud where
// the service exists; the account enabled and its sessions not revoked
// since the token was issued, and the device enabled with the token's key,
// both asked of the Directory now; the envelope's tenant, user and device
// equal to the token's (a mismatch counts toward the user's lockout); and
// last the token's jti new in the tenant's partition, so a token is spent
// only by a request that passed everything else. Only then is the envelope
// unwrapped (an envelope that does not open counts toward the lockout) and
// the result sealed to the client's key. Any error of the state store is
// 503, and so is a verifier that cannot check tokens now (its error
// matches ErrUnavailable: the issuer's keys cannot be fetched).
//
// Every decision, allow or deny, is one record in the audit log (log/slog,
// JSON in production), naming the request ID, the client address and
// trusted forwarded chain, the user agent, the check that decided and its
// reason and, once the token is verified, the tenant, the user's object ID,
// the device, a hash of the jti and the key ID. AuditListener, AuditHandler
// and ErrorLog add what net/http refuses on its own. Tokens,
// envelopes, keys and protectors never reach it.
//
// # Pieces
//
// Service is the http.Handler; Config gives it a TokenVerifier (JWTVerifier
// checks tokens against a JSON Web Key Set, as any relying party of Azure
// AD does), a Directory (tenants, accounts and devices), and its keys as protector.Unwrapper values,
// so a KMS or an HSM can hold them. Client implements the reset.Service
// interface over HTTP; NewInProcess gives the same client over a handler in
// the same process, for tests. Because the client carries the user's access
// token, it speaks https to any host and plain http only to a loopback one,
// and it follows no redirect (BaseURLError, ErrBadBaseURL).
package service
