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
// at enrolment. To reset, the device signs the user in and sends
//
//	POST /v1/recover
//	Authorization: Bearer <access token>
//	Content-Type: application/json
//
//	{"envelope": "<base64url envelope>", "return_key": "<base64url X25519 public key>"}
//
// where return_key is the public half of a one-time key made for this call.
// The answer, {"sealed_key": "..."}, is the protector sealed to that key
// with HPKE and bound to the envelope: it is never in clear on the wire, in
// a TLS-terminating proxy or in a log. Errors are JSON too,
// {"error": code, "message": text}, with a status and a code for each
// refusal (see the Code constants), a Bearer challenge on 401 (RFC 6750)
// and Retry-After on 429.
//
// # What is checked, in order
//
// Nothing is decrypted until every check has passed: method and path;
// content type; body size (16 KiB); strict JSON (exactly the two members,
// no duplicates, nothing trailing) and a well-formed envelope; the access
// token — an ES256 signature by a key of the identity provider's key set,
// the issuer, the audience (the PIN Reset Service's application ID), expiry
// and not-before with a minute of skew; the token not past its expiry plus
// Config.ReplaySkew, however lenient the verifier (never less than the
// verifier's skew, so a token is refused before its jti is forgotten); "mfa"
// among the authentication methods; the tenant's consent to both PIN reset applications; a cloud
// where the service exists (the documentation: "not currently available in
// Azure Government"); the token's tenant and user equal to the envelope's
// binding; the token's jti not seen before; the user's rate limit; a service
// key that is known and not retired. Only then does the service unwrap the
// envelope — under whichever of its keys the envelope names, so keys can be
// rotated — and seal the result to the client's key.
//
// Every decision, allow or deny, is one record in the audit log (log/slog,
// JSON in production), naming the request ID and, once the token is
// verified, the tenant, the user's object ID and the key ID. Tokens,
// envelopes, keys and protectors never reach it.
//
// # Pieces
//
// Service is the http.Handler; Config gives it a TokenVerifier (JWTVerifier
// checks tokens against a JSON Web Key Set, as any relying party of Azure
// AD does), a Directory (tenant lookups), and its keys as protector.Unwrapper values,
// so a KMS or an HSM can hold them. Client implements the reset.Service
// interface over HTTP; NewInProcess gives the same client over a handler in
// the same process, for tests. Because the client carries the user's access
// token, it speaks https to any host and plain http only to a loopback one,
// and it follows no redirect (BaseURLError, ErrBadBaseURL).
package service
