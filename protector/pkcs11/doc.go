// Package pkcs11 keeps the PIN reset service's private keys in a PKCS #11
// token (an HSM; SoftHSM2 in tests) and opens protector envelopes there.
//
// The keys are made in the token, sensitive and not extractable
// (CKA_SENSITIVE true, CKA_EXTRACTABLE false): their private half never
// leaves it, and the token refuses to read it out (C_GetAttributeValue of
// CKA_VALUE or CKA_PRIVATE_EXPONENT fails with CKR_ATTRIBUTE_SENSITIVE).
// Each key is a protector.Unwrapper, so it plugs into the service as its
// software keys do.
//
// Two schemes run their private operation in the token:
//
//   - protector.RSAOAEP3072: the decryption is C_Decrypt with
//     CKM_RSA_PKCS_OAEP (SHA-256, MGF1-SHA-256, the envelope's header and
//     binding as the label), and only the 32-byte protector comes out.
//     Tokens whose OAEP takes only SHA-1 and no label (SoftHSM2 2.6 among
//     them) refuse those parameters; then the token does the RSA
//     private-key operation alone (CKM_RSA_X_509) and the OAEP decoding
//     runs here, in constant time, so the padded protector of that one
//     envelope leaves the token, and the private key still does not. The
//     choice is made on the first decryption and kept.
//   - protector.HPKEP256: the Diffie-Hellman of DHKEM(P-256) is C_DeriveKey
//     with CKM_ECDH1_DERIVE (CKD_NULL: the x-coordinate, as RFC 9180 uses
//     it); crypto/hpke does the rest in software. The DH output of that one
//     envelope leaves the token (a session object, read and destroyed at
//     once), as it must for HPKE's key schedule to run outside; the private
//     key does not.
//
// X25519 and X-Wing have no PKCS #11 mechanism that SoftHSM2 or most HSMs
// offer; services that keep their key in a token use one of the two above.
//
// # What leaves the token
//
// The private keys never do. What the token returns for one envelope, the
// DH output (P-256) or the padded protector (RSA on a token without
// SHA-256 OAEP), passes through a C buffer that the binding frees without
// wiping, then a Go slice: the padded protector's is wiped after decoding;
// the DH output goes to crypto/hpke, which keeps its copies for the call
// and offers no way to wipe them, as for software keys.
//
// # Failures
//
// A token that cannot be used (closed, removed, a device error) makes
// Unwrap fail with protector.ErrKeyUnavailable rather than
// protector.ErrDecrypt, so that a service answers 503 and does not count
// an HSM outage against the user; only answers that cannot depend on the
// ciphertext are reported that way, so the distinction is no padding
// oracle. A session the token closed, or a login it forgot, is replaced on
// the next operation (a new session, a new login, the key's objects found
// again by CKA_ID): the Token recovers by itself.
//
// # Rotation
//
// Token.Generate makes a new key pair in the token, labelled with its
// creation time; Token.Keys lists the keys of the token, newest (current)
// first, which is the order the service's Config.Keys wants. The old keys
// stay in the token and keep opening the envelopes made for them until
// Token.Destroy removes them.
//
// # Building
//
// The binding (github.com/miekg/pkcs11) needs cgo. Built without cgo, the
// package compiles, and Open fails with ErrNoCgo.
package pkcs11
