// Package attest verifies TPM key attestations, the verifier's half of
// what Windows calls TPM key attestation: a directory learns that a key it
// registers was made inside a genuine TPM and cannot leave it.
//
// The protocol (TPM 2.0 Part 1 §24, credential protection; Part 3 §18.2,
// TPM2_Certify) has one round trip:
//
//  1. the client sends its tpm.AttestationIdentity: the EK certificate
//     with its chain, the EK's public area and the attestation key's (AK, a
//     restricted signing key);
//  2. the verifier checks the EK certificate against its trusted roots and
//     answers with NewChallenge: a secret encrypted to the EK for the AK's
//     Name, and a nonce;
//  3. the client's TPM activates the credential (only the TPM holding that
//     EK can, and only for an AK with that Name it holds) and has the AK
//     certify the key with the nonce (tpm.TPM.Certify);
//  4. the verifier runs Verify on the result.
//
// Verify is a pure function of its inputs: no TPM, no I/O. Every parser it
// runs on client input is strict and fuzzed.
package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/hellosim/hellosim/tpm"
)

// ErrNotAttested is an attestation that does not verify. Errors are
// *AttestationError, naming the check that failed.
var ErrNotAttested = errors.New("attest: key not attested")

// Error is a failed check.
type AttestationError struct {
	Check string // which check failed, e.g. "ek certificate", "certified name"
	Err   error
}

func (e *AttestationError) Error() string {
	if e.Err == nil {
		return "attest: " + e.Check
	}
	return "attest: " + e.Check + ": " + e.Err.Error()
}

// Is makes errors.Is(err, ErrNotAttested) true.
func (e *AttestationError) Is(target error) bool { return target == ErrNotAttested }

// Unwrap returns the cause.
func (e *AttestationError) Unwrap() error { return e.Err }

func fail(check string, format string, args ...any) error {
	return &AttestationError{Check: check, Err: fmt.Errorf(format, args...)}
}

// Challenge is what the verifier sends back in step 2.
type Challenge struct {
	CredentialBlob  []byte // TPM2B_ID_OBJECT contents
	EncryptedSecret []byte // TPM2B_ENCRYPTED_SECRET contents
	Nonce           []byte // qualifying data for TPM2_Certify
}

// Pending is what the verifier keeps between the challenge and Verify.
// It holds the credential secret: keep it server-side.
type Pending struct {
	secret []byte
	nonce  []byte
	id     tpm.AttestationIdentity
	ek     *x509.Certificate
	tpm    tpm.TPMIdentity
}

// NewChallenge checks the client's identity (the EK certificate against
// roots at now, the EK public area against the certificate, the AK's
// attributes) and makes a credential for the AK's Name encrypted to the
// EK, and a nonce.
func NewChallenge(rand io.Reader, id tpm.AttestationIdentity, roots *x509.CertPool, now time.Time) (*Challenge, *Pending, error) {
	cert, tid, err := tpm.VerifyEKCertificate(id.EKCertificate, id.EKChain, roots, now)
	if err != nil {
		return nil, nil, &AttestationError{Check: "ek certificate", Err: err}
	}
	ekPub, err := parsePublic(id.EKPublic)
	if err != nil {
		return nil, nil, &AttestationError{Check: "ek public area", Err: err}
	}
	if k, err := tpm2.Pub(*ekPub); err != nil || !samePublicKey(k, cert.PublicKey) {
		return nil, nil, fail("ek public area", "not the certified key")
	}
	a := ekPub.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.Restricted || !a.Decrypt || a.SignEncrypt {
		return nil, nil, fail("ek public area", "not a restricted decryption key fixed to the TPM")
	}
	akPub, err := parsePublic(id.AKPublic)
	if err != nil {
		return nil, nil, &AttestationError{Check: "ak public area", Err: err}
	}
	if err := checkAK(akPub); err != nil {
		return nil, nil, err
	}
	kem, err := tpm2.ImportEncapsulationKey(ekPub)
	if err != nil {
		return nil, nil, &AttestationError{Check: "ek public area", Err: err}
	}
	secret := make([]byte, 32)
	nonce := make([]byte, 32)
	if _, err := io.ReadFull(rand, secret); err != nil {
		return nil, nil, err
	}
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, nil, err
	}
	blob, enc, err := tpm2.CreateCredential(rand, kem, name(id.AKPublic), secret)
	if err != nil {
		return nil, nil, &AttestationError{Check: "make credential", Err: err}
	}
	return &Challenge{CredentialBlob: blob, EncryptedSecret: enc, Nonce: bytes.Clone(nonce)},
		&Pending{secret: secret, nonce: nonce, id: id, ek: cert, tpm: tid}, nil
}

// Result is what a verified attestation establishes.
type Result struct {
	EKCertificate *x509.Certificate
	TPM           tpm.TPMIdentity
}

// Verify checks the client's answer to p's challenge for the key pub:
//
//   - the activated credential equals the secret (the AK lives in the TPM
//     of the certified EK);
//   - the certification is a TPMS_ATTEST of type certify, made by a TPM
//     (TPM_GENERATED_VALUE), with the challenge's nonce, signed by the AK;
//   - the certified Name is the Name of the key's public area, which has
//     fixedTPM, fixedParent and sensitiveDataOrigin set (made in the TPM,
//     never to leave it) and holds pub.
func Verify(p *Pending, c *tpm.KeyCertification, pub crypto.PublicKey) (*Result, error) {
	if p == nil || c == nil {
		return nil, fail("input", "nothing to verify")
	}
	if subtle.ConstantTimeCompare(c.Proof, p.secret) != 1 {
		return nil, fail("credential activation", "the TPM did not activate the credential for this AK")
	}
	akPub, err := parsePublic(p.id.AKPublic)
	if err != nil {
		return nil, &AttestationError{Check: "ak public area", Err: err}
	}
	ak, err := tpm2.Pub(*akPub)
	if err != nil {
		return nil, &AttestationError{Check: "ak public area", Err: err}
	}
	akKey, ok := ak.(*ecdsa.PublicKey)
	if !ok {
		return nil, fail("ak public area", "not an ECDSA key")
	}
	sig, err := parseSignature(c.Signature)
	if err != nil {
		return nil, &AttestationError{Check: "signature", Err: err}
	}
	digest := sha256.Sum256(c.CertifyInfo)
	if !ecdsa.Verify(akKey, digest[:], sig.r, sig.s) {
		return nil, fail("signature", "does not verify with the attestation key")
	}
	info, err := parseAttest(c.CertifyInfo)
	if err != nil {
		return nil, &AttestationError{Check: "certify info", Err: err}
	}
	if info.Magic != tpm2.TPMGeneratedValue || info.Type != tpm2.TPMSTAttestCertify {
		return nil, fail("certify info", "not a TPM-generated certification")
	}
	if subtle.ConstantTimeCompare(info.ExtraData.Buffer, p.nonce) != 1 {
		return nil, fail("certify info", "not for this challenge's nonce")
	}
	ci, err := info.Attested.Certify()
	if err != nil {
		return nil, &AttestationError{Check: "certify info", Err: err}
	}
	keyPub, err := parsePublic(c.KeyPublic)
	if err != nil {
		return nil, &AttestationError{Check: "key public area", Err: err}
	}
	if keyPub.NameAlg != tpm2.TPMAlgSHA256 || !bytes.Equal(ci.Name.Buffer, name(c.KeyPublic)) {
		return nil, fail("certified name", "the AK certified another key")
	}
	a := keyPub.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		return nil, fail("key attributes", "the key is not fixedTPM, fixedParent and sensitiveDataOrigin")
	}
	k, err := tpm2.Pub(*keyPub)
	if err != nil || !samePublicKey(k, pub) {
		return nil, fail("key", "the certified key is not the registered key")
	}
	return &Result{EKCertificate: p.ek, TPM: p.tpm}, nil
}

// checkAK requires a restricted signing key fixed to the TPM and made in
// it, with SHA-256 Names, P-256 ECDSA (what tpm.TPM makes).
func checkAK(p *tpm2.TPMTPublic) error {
	a := p.ObjectAttributes
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.Restricted || !a.SignEncrypt || a.Decrypt {
		return fail("ak public area", "not a restricted signing key made in and fixed to the TPM")
	}
	if p.Type != tpm2.TPMAlgECC || p.NameAlg != tpm2.TPMAlgSHA256 {
		return fail("ak public area", "not an ECC key with SHA-256 Names")
	}
	return nil
}

// parsePublic is a strict TPMT_PUBLIC decoder: SHA-256 Names, and no
// trailing bytes (the bytes re-encode to themselves).
func parsePublic(b []byte) (pub *tpm2.TPMTPublic, err error) {
	defer func() {
		if recover() != nil {
			pub, err = nil, errors.New("malformed public area")
		}
	}()
	if len(b) == 0 || len(b) > 1024 {
		return nil, errors.New("public area of the wrong size")
	}
	p, err := tpm2.Unmarshal[tpm2.TPMTPublic](b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(p), b) {
		return nil, errors.New("public area has trailing or non-canonical bytes")
	}
	if p.NameAlg != tpm2.TPMAlgSHA256 && p.NameAlg != tpm2.TPMAlgSHA384 {
		return nil, errors.New("unsupported name algorithm")
	}
	return p, nil
}

// parseAttest is a strict TPMS_ATTEST decoder.
func parseAttest(b []byte) (att *tpm2.TPMSAttest, err error) {
	defer func() {
		if recover() != nil {
			att, err = nil, errors.New("malformed attestation")
		}
	}()
	if len(b) == 0 || len(b) > 2048 {
		return nil, errors.New("attestation of the wrong size")
	}
	a, err := tpm2.Unmarshal[tpm2.TPMSAttest](b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(a), b) {
		return nil, errors.New("attestation has trailing or non-canonical bytes")
	}
	return a, nil
}

type ecdsaSig struct{ r, s *big.Int }

// parseSignature is a strict TPMT_SIGNATURE decoder for ECDSA-SHA256.
func parseSignature(b []byte) (sig *ecdsaSig, err error) {
	defer func() {
		if recover() != nil {
			sig, err = nil, errors.New("malformed signature")
		}
	}()
	if len(b) == 0 || len(b) > 1024 {
		return nil, errors.New("signature of the wrong size")
	}
	s, err := tpm2.Unmarshal[tpm2.TPMTSignature](b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(s), b) {
		return nil, errors.New("signature has trailing or non-canonical bytes")
	}
	if s.SigAlg != tpm2.TPMAlgECDSA {
		return nil, errors.New("not an ECDSA signature")
	}
	e, err := s.Signature.ECDSA()
	if err != nil {
		return nil, err
	}
	if e.Hash != tpm2.TPMAlgSHA256 {
		return nil, errors.New("not a SHA-256 signature")
	}
	return &ecdsaSig{r: new(big.Int).SetBytes(e.SignatureR.Buffer), s: new(big.Int).SetBytes(e.SignatureS.Buffer)}, nil
}

// name is the Name of a public area with a SHA-256 nameAlg:
// 0x000B || SHA-256(public area) (TPM 2.0 Part 1 §16).
func name(public []byte) []byte {
	sum := sha256.Sum256(public)
	return append([]byte{0x00, 0x0B}, sum[:]...)
}

func samePublicKey(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}
