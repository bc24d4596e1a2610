// Package container is the Windows Hello for Business container as a value:
// the user's login key on a TPM 2.0, the PIN that authorizes it, the keys
// and certificates added later, and the PIN reset protector that makes a
// non-destructive PIN reset possible. Keeping containers on disk is
// package container/store; the device's own identity is package device.
//
// # The container
//
// WHfB describes a container as a logical group of keys, each gesture (here,
// the PIN) holding a protector that unlocks the user's keys. This package
// follows that shape with one secret in the middle. Provision draws a 32-byte
// container secret S and puts it in the TPM under the PIN — the PIN
// protector: an NV index whose authValue is HMAC-SHA256(salt, NFC(PIN)) and
// which counts toward the TPM's dictionary-attack lockout (or, where the
// TPM keeps no NV, a sealed-data object with that authValue; see
// RollbackProtection). Every key of the container (the login key,
// RSA-2048 by default as in WHfB, or ECC P-256; and any key added with
// Session.AddKey) is a TPM key whose authValue is HKDF-SHA256(S, the key's
// name); those keys are noDA, since their authorization is high-entropy. So
// the PIN opens S, S opens the keys, and changing the PIN changes the
// index's authValue without touching a key.
//
// # Rollback protection
//
// The TPM holds one S under one PIN, so an old copy of a container file (a
// backup, a disk image) does not open with the PIN of its time once the PIN
// changed: the TPM refuses it. A reset cannot prove the old PIN, so it puts
// S (or a new S) in a new index and records the old one as retired; Retire,
// called once the new container is saved, undefines the old index, and the
// old container is refused from then on. The store (container/store)
// deletes a container with its index and cleans up after a process killed
// between defining an index and saving its container.
//
// Unlock turns a container and a PIN into a Session, which holds S and
// offers the login key as a crypto.Signer for crypto/x509 and crypto/tls.
// A wrong PIN is a *PINError that says how many tries remain; a locked TPM a
// *PINLockedError that says when to try again. Windows configures TPM 2.0 to
// lock after 32 failures and forgive one every 10 minutes.
//
// Before the TPM is asked anything, the container checks that the TPM's
// storage root key is the one it was made under, so that an interposed TPM
// cannot collect the PIN; S and every authValue travel to the TPM only
// encrypted, in a session salted to that key.
//
// # Values, not objects
//
// A *Container is an immutable value. Provision, ChangePIN, ResetPIN,
// Reprovision and the Session methods that change a container return a new
// one, a generation on, sharing no memory with the old; the input value stays
// unchanged. A reset that fails half-way therefore loses nothing: the old
// container opens as before until the caller stores the new one and calls
// Retire, and the store refuses to replace a container by an older or equal
// generation. ChangePIN changes the TPM in place, as its last step: from
// then on the old value (and file) opens with the new PIN only.
//
// # PIN policy
//
// PINPolicy is the PassportForWork CSP's PINComplexity: minimum and maximum
// length (4 to 127), digits, lowercase and uppercase letters and special
// characters each allowed, required or disallowed, a history of 0 to 50 PINs
// and an expiration of 0 to 730 days. The zero value is the Windows default.
// As in Windows, PINs whose digits climb or fall by a constant step (1111,
// 1234, 9753) are refused. PINs are compared in Unicode NFC. The history
// holds HMACs under a key derived from S, encrypted under another such key,
// never plain hashes; a PIN reset clears it, as in WHfB.
//
// An expired PIN still unlocks the container, as in Windows, which then asks
// the user for a new one: Session.PINExpired reports it (and Unlock emits
// event.PINExpired), and ChangePIN, ResetPIN and Reprovision restart the
// clock.
//
// The container records its policy, but the record is authenticated only
// with S, which a destructive reset never holds. The policy device management
// sets (WithPINPolicy) takes precedence over the recorded one, and the
// containers made under it record it.
//
// # PIN reset
//
// The WHfB documentation describes two resets. The destructive one deletes
// the keys and certificates and provisions a new login key and PIN:
// Reprovision. The non-destructive one needs the PIN reset protector, a
// 256-bit key R enrolled with Session.EnablePINRecovery: the container keeps
// S encrypted under R, and R wrapped to the PIN reset service's public key,
// bound to the tenant, the user and the container (Container.Envelope). When
// the user has forgotten the PIN and passed MFA, the service unwraps R and the
// client calls ResetPIN, which recovers S, seals it under the new PIN and
// keeps every key. UserState reports which resets are possible in the words
// of dsregcmd /status.
//
// # Storage
//
// MarshalBinary and Parse give a strict, versioned binary form with a
// checksum and a tag: Parse refuses damaged data with a *FormatError, and the
// tag, an HMAC under a key derived from S, makes Unlock, ChangePIN and
// ResetPIN refuse a container altered outside this package. Package
// container/store keeps containers in a directory, through MarshalBinary,
// Parse and the accessors alone.
//
// # Events
//
// Operations report lifecycle events — created (WHfB event 300), unlocked,
// wrong PIN, locked out, PIN changed, recovery enabled, reset — to a
// *slog.Logger (WithLogger) or a callback (WithEventHandler), in the
// vocabulary of package container/event. Events carry identifiers and
// counters, never a PIN or a secret.
package container
