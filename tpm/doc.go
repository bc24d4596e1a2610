// Package tpm gives Windows-Hello-style access to a TPM 2.0: a storage root
// key, secrets sealed under an authValue, and signing keys that work as
// crypto.Signer. It knows nothing of Hello itself; the container package
// builds the Hello container on top of it.
//
// # Opening a TPM
//
// OpenSimulator opens the TCG reference simulator embedded through
// go-tpm-tools (it needs cgo); WithSeed makes it reproducible so blobs
// survive a process restart, and WithState keeps its whole NV memory (seeds,
// dictionary-attack counter, NV indices) in a state file, saved after every
// command that changes it, so that successive processes use one TPM — one
// process at a time (the file is locked). OpenDevice opens a hardware TPM
// (/dev/tpmrm0 on Linux, TPM Base Services on Windows), Open parses a spec
// string ("sim", "sim:seed=42", "sim:state=FILE", "tcp://127.0.0.1:2321" for
// swtpm, a device path) and New
// takes any go-tpm transport. Whatever the TPM, opening it creates the TCG
// reference ECC P-256 storage root key (SRK) in the owner hierarchy — the
// same key on every open of the same TPM — and starts one session.
//
// # Never trusting the bus
//
// Every authorization that proves knowledge of an authValue is an HMAC in
// one salted session: its key is derived from a salt encrypted to the SRK,
// so only this TPM can compute it (TPM 2.0 Part 1 §19.6). Secrets that must
// cross the interface — the sealed secret and a new authValue in
// TPM2_Create, the secret coming back from TPM2_Unseal — travel under
// AES-128-CFB parameter encryption in that session (Part 1 §21). An
// interposer on the bus sees neither secrets nor authValues, and cannot
// forge responses. Callers pin the SRK with SRKName and CheckSRK, so an
// interposer cannot substitute its own key for the salt.
//
// The session is started once per connection and kept (continueSession):
// starting a salted session costs the TPM an ECDH, more than everything else
// in a seal and unseal. Because go-tpm's own HMAC session fixes its
// authValue and encryption direction at creation (and, in go-tpm v0.9.8,
// cuts the authValue at its first zero byte), this package implements the
// session itself and sets both per command. An authValue may hold any bytes;
// only trailing zeros are ignored, as the TPM ignores them.
//
// # Sealing and keys
//
// Seal creates a sealed-data object (one TPM2_Create) that is not noDA: a
// wrong authValue counts toward the TPM's dictionary-attack lockout, which
// is what makes a short PIN safe. Unseal is TPM2_Load, TPM2_Unseal and
// TPM2_FlushContext. Wrong authValues surface as *AuthError with the number
// of tries left, a locked TPM as *LockoutError; LockoutStatus,
// SetLockoutParameters and ResetLockout read and manage the
// dictionary-attack state (Part 1 §19.8).
//
// CreateKey makes RSA-2048 or ECC P-256 signing keys, noDA since their
// authValues are high-entropy. LoadKey returns a *Key that stays loaded and
// signs digests (ECDSA, RSA PKCS #1 v1.5 or PSS) for crypto/x509 and
// crypto/tls. The simulator has only three object slots and no resource
// manager, so when a load finds no free slot the least recently used Key is
// flushed and later reloads itself.
//
// Everything the TPM creates comes back as a Blob under the SRK, except the
// secrets of DefineSecret: an NV index (0x013C0000–0x013FFFFF) holding 32
// bytes under an authValue, read with ReadSecret, whose authValue only its
// holder can change (ChangeSecretAuth) and which the owner can undefine
// (UndefineSecret); Secrets lists them. Unlike a blob, of which every copy
// works for ever, the TPM holds one copy of such a secret under one
// authValue. PersistentNV says whether the TPM keeps them across processes
// (a seeded simulator does not; one with a state file does).
//
// # Concurrency, faults and accounting
//
// A TPM is safe for concurrent use; each operation holds one lock around
// its whole command sequence, and between operations nothing but the SRK,
// the session and open Keys stays loaded. Commands the TPM answers with
// TPM_RC_RETRY, TPM_RC_YIELDED or TPM_RC_TESTING are sent again; a session
// the TPM lost is restarted once; a wrong authValue is never retried, as
// each try costs a dictionary-attack count. When a response is lost on the
// way back, whatever the command left loaded is found (TPM2_GetCapability)
// and flushed, and a flush that fails is tried again.
//
// Stats counts the commands sent by command code, which is how tests and
// benchmarks show that a seal is one command (TPM2_Create), an unseal three
// (TPM2_Load, TPM2_Unseal, TPM2_FlushContext) and a signature with a loaded
// key one. The commands on these paths are framed by hand rather
// than by go-tpm's reflection-driven encoder, which would cost more than the
// simulator's own work; a test proves the bytes identical to go-tpm's.
package tpm
