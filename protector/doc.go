// Package protector implements the PIN reset protector of Windows Hello for
// Business non-destructive PIN reset, and the envelope that carries it to
// the PIN reset service.
//
// The WHfB documentation describes the mechanism in one paragraph: when PIN
// recovery is enabled, the client generates a 256-bit AES key, adds it to
// the Hello container as the PIN reset protector, encrypts it to a public
// key of the PIN reset service and keeps the result. To reset a forgotten
// PIN, the user signs in with MFA, the client sends the encrypted protector
// to the service, the service decrypts it and returns it, and the client
// uses it to set the new PIN and then clears it from memory. This package is
// that paragraph as code, and nothing else: it does no I/O and knows no TPM.
//
// # The protector
//
// A Key is the protector R. Key.Seal encrypts the container secret under it
// with AES-256-GCM, binding the container ID, so the container can hold
// Enc_R(S) beside its TPM-sealed PIN protector. A Key never prints its
// bytes, and Destroy wipes them.
//
// # Wrapping to the service
//
// A ServiceKey is the public half of a service key; ServiceKey.Wrap encrypts
// a protector to it and returns an Envelope. Four schemes exist: HPKE
// (RFC 9180) with DHKEM(X25519), the default; HPKE with the post-quantum
// hybrid ML-KEM-768+X25519; and, for services whose key lives in an HSM,
// RSA-OAEP-SHA256 with RSA-3072 and HPKE with DHKEM(P-256), whose
// Diffie-Hellman a PKCS #11 token computes (see protector/pkcs11). Each
// scheme is one file (scheme_hpke.go, scheme_rsa.go): its name, wire byte
// and sizes, and the public and private halves a ServiceKey and a
// ServicePrivateKey hold (as age's Recipient and Identity), so nothing
// else asks which scheme a key has and a new scheme is a new file.
//
// An envelope binds the tenant ID, the user's object ID, the container ID
// and, from format version 2, the device ID (a Binding): the device whose
// TPM-bound key must prove possession before the service releases the
// protector. The binding and the envelope's header (format version,
// scheme, key ID) are the HPKE info or the RSA-OAEP label, so they are
// authenticated: the service learns them for certain only when decryption
// succeeds, and it hands the protector back only when the access token names
// the same tenant and user. A stolen envelope is useless to anyone else.
// Every other byte of an envelope is either authenticated by the KEM and the
// AEAD or checked against a fixed size, so flipping any single bit makes
// unwrapping fail.
//
// # Key management
//
// The service side is an Unwrapper: the one interface a service needs.
// ServicePrivateKey implements it in software (GenerateServiceKey,
// MarshalBinary, ParsePrivateKey); NewHPKEUnwrapper and NewRSAUnwrapper
// adapt a key held elsewhere, such as an ecdh.KeyExchanger or a
// crypto.Decrypter backed by a KMS or an HSM.
//
// A service publishes its keys as a KeySet, a small JWKS-like JSON
// document. Every key has an ID derived from its public key; an envelope
// names the key it was made for, so a service can rotate: it publishes a new
// current key first in the set and keeps unwrapping with the old ones until
// their envelopes have been re-wrapped.
//
// # Returning the protector
//
// The client sends, with its request, the public half of a fresh ReturnKey.
// The service answers with SealToReturnKey, HPKE again, bound to the
// envelope's hash; ReturnKey.Open recovers the protector. The protector is
// thus never in clear on the wire, in a proxy or in a log.
//
// # Formats
//
// Envelopes and private keys are strict binary formats built with
// golang.org/x/crypto/cryptobyte; ParseEnvelope refuses unknown versions
// (ErrUnsupported) and anything truncated, oversize or followed by trailing
// bytes (ErrMalformed), and never panics. Decryption failures of every kind
// are the single error ErrDecrypt, so that no caller can become an oracle.
package protector
