package tpm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// ErrUntrustedTPM is a TPM that could not be shown to be genuine: no EK
// certificate chaining to the trusted roots, an EK that is not the
// certified key, or a storage root key that does not live with that EK.
// Errors are *UntrustedError; errors.Is(err, ErrUntrustedTPM) holds.
var ErrUntrustedTPM = errors.New("tpm: not shown to be a genuine TPM")

// TrustFailure says which step of VerifyEndorsement failed.
type TrustFailure int

const (
	// NoEKCertificate: the TPM holds no EK certificate in NV.
	NoEKCertificate TrustFailure = iota + 1
	// BadEKCertificate: an EK certificate does not parse or is not one.
	BadEKCertificate
	// EKChainInvalid: the EK certificate does not chain to the trusted
	// roots (another CA, an expired or not yet valid certificate in the
	// chain, a wrong signature).
	EKChainInvalid
	// EKMismatch: the TPM's endorsement key is not the certified key.
	EKMismatch
	// SRKUnproven: credential activation to the certified EK failed for
	// the storage root key the session is salted to: the key is not in
	// that TPM (an interposer's key, say).
	SRKUnproven
)

func (f TrustFailure) String() string {
	switch f {
	case NoEKCertificate:
		return "no EK certificate"
	case BadEKCertificate:
		return "malformed EK certificate"
	case EKChainInvalid:
		return "EK certificate does not chain to a trusted root"
	case EKMismatch:
		return "endorsement key is not the certified key"
	case SRKUnproven:
		return "storage root key not proven to live with the certified EK"
	}
	return "unknown failure"
}

// UntrustedError is a failed VerifyEndorsement: the step that failed, the
// NV index of the EK certificate it concerns (0 when none), and the cause
// (an x509 error for EKChainInvalid, so errors.As finds
// x509.UnknownAuthorityError or x509.CertificateInvalidError).
type UntrustedError struct {
	Failure TrustFailure
	Index   uint32
	Err     error
}

func (e *UntrustedError) Error() string {
	msg := "tpm: untrusted TPM: " + e.Failure.String()
	if e.Index != 0 {
		msg += fmt.Sprintf(" (NV %#x)", e.Index)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrUntrustedTPM) true.
func (e *UntrustedError) Is(target error) bool { return target == ErrUntrustedTPM }

// Unwrap returns the cause.
func (e *UntrustedError) Unwrap() error { return e.Err }

// Endorsement is what VerifyEndorsement established about a TPM.
type Endorsement struct {
	Certificate *x509.Certificate   // the EK certificate
	Chain       []*x509.Certificate // verified chain, the EK certificate first, a trusted root last
	Index       uint32              // NV index it was read from
	TPM         TPMIdentity         // from the certificate's subject alternative name

	ek ekSource
}

// ekSource says how to bring the certified EK into the TPM again.
type ekSource struct {
	persistent tpm2.TPMHandle // the platform's persistent EK, or 0
	template   tpm2.TPMTPublic
	public     []byte // the EK's TPMT_PUBLIC, as verified
}

// trustState caches the result of VerifyEndorsement on a connection: the
// certificate chain and the activation are checked once per set of roots,
// not per operation. Guarded by t.mu.
type trustState struct {
	verified map[*x509.CertPool]*Endorsement
}

// maxTrustCache bounds the pools remembered per connection.
const maxTrustCache = 8

// forgetTrust drops the cache (the NV contents changed). t.mu must be held.
func (t *TPM) forgetTrust() { t.trust.verified = nil }

// VerifyEndorsement shows that this connection talks to a genuine TPM whose
// endorsement key is certified by a chain to roots, and that the storage
// root key that salts every session lives in that same TPM:
//
//  1. the EK certificates are read from NV (TCG EK Credential Profile
//     §2.2.1.4: RSA-2048 at 0x01C00002, ECC P-256 at 0x01C0000A, the
//     high-range indices 0x01C00012–0x01C0001E), with the intermediates a
//     manufacturer stores at 0x01C00100–0x01C001FF;
//  2. each is verified against roots (TCG subject alternative names
//     handled, nothing else switched off);
//  3. the EK is the platform's persistent one (0x81010000–0x810100FF)
//     whose public key is the certified one, or else it is created from the
//     TCG template of that index (L-1, L-2, H-3), and must be the certified
//     key;
//  4. a credential is made in software to the certified public key for the
//     storage root key's Name (TPM 2.0 Part 1 §24, MakeCredential) and
//     TPM2_ActivateCredential must return it: only a TPM holding the EK's
//     private part decrypts it, and it releases it only for an object with
//     that Name whose private part it holds (a public key loaded with
//     TPM2_LoadExternal has no authorization and is refused).
//
// Nothing here depends on a PIN, and no command is DA-protected: an
// untrusted TPM costs no dictionary-attack try. The result is cached on the
// connection for these roots. Failures are *UntrustedError.
func (t *TPM) VerifyEndorsement(ctx context.Context, roots *x509.CertPool) (*Endorsement, error) {
	if roots == nil {
		return nil, &UntrustedError{Failure: EKChainInvalid, Err: errors.New("no trusted roots given")}
	}
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	if e := t.trust.verified[roots]; e != nil {
		return e, nil
	}
	e, err := t.verifyEndorsement(ctx, roots)
	if err != nil {
		return nil, err
	}
	if t.trust.verified == nil || len(t.trust.verified) >= maxTrustCache {
		// A caller that makes a new pool per operation only loses the
		// cache, not memory.
		t.trust.verified = make(map[*x509.CertPool]*Endorsement)
	}
	t.trust.verified[roots] = e
	return e, nil
}

// ekCertIndices are the EK certificate indices, in the order tried: the
// ECC P-256 EK first (its creation is cheapest), then RSA-2048, then the
// high range.
func ekCertIndices(present []uint32) []uint32 {
	var out []uint32
	has := map[uint32]bool{}
	for _, i := range present {
		has[i] = true
	}
	for _, i := range []uint32{NVECCP256EKCert, NVRSA2048EKCert} {
		if has[i] {
			out = append(out, i)
		}
	}
	for _, i := range present {
		if i >= NVHighRangeFirst && i <= NVHighRangeLast && i%2 == 0 {
			out = append(out, i)
		}
	}
	return out
}

// NVECCP384EKCert holds the ECC NIST P-384 EK certificate of the
// high-range template H-3 (where swtpm writes its ECC EK certificate).
const NVECCP384EKCert uint32 = 0x01C00016

// ekTemplates are the TCG default EK templates (EK Credential Profile
// §B.3.3, §B.3.4 and §B.4.5) of the certificate indices the library can
// recreate the EK for: L-1, L-2 and H-3.
var ekTemplates = map[uint32]tpm2.TPMTPublic{
	NVRSA2048EKCert: tpm2.RSAEKTemplate,
	NVECCP256EKCert: tpm2.ECCEKTemplate,
	NVECCP384EKCert: eccP384EKTemplate,
}

// eccP384EKTemplate is template H-3: SHA-384 Names, userWithAuth set (so
// the EK is used with its empty authValue), PolicyB-SHA384 as the admin
// policy, AES-256-CFB, and an empty unique field. swtpm_setup makes its ECC
// EK (persistent at 0x81010016) from exactly this public area.
var eccP384EKTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA384,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
		UserWithAuth: true, AdminWithPolicy: true, Restricted: true, Decrypt: true,
	},
	AuthPolicy: tpm2.TPM2BDigest{Buffer: []byte{
		0xB2, 0x6E, 0x7D, 0x28, 0xD1, 0x1A, 0x50, 0xBC, 0x53, 0xD8, 0x82, 0xBC,
		0xF5, 0xFD, 0x3A, 0x1A, 0x07, 0x41, 0x48, 0xBB, 0x35, 0xD3, 0xB4, 0xE4,
		0xCB, 0x1C, 0x0A, 0xD9, 0xBD, 0xE4, 0x19, 0xCA, 0xCB, 0x47, 0xBA, 0x09,
		0x69, 0x96, 0x46, 0x15, 0x0F, 0x9F, 0xC0, 0x00, 0xF3, 0xF8, 0x0E, 0x12,
	}},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{
			Algorithm: tpm2.TPMAlgAES,
			KeyBits:   tpm2.NewTPMUSymKeyBits(tpm2.TPMAlgAES, tpm2.TPMKeyBits(256)),
			Mode:      tpm2.NewTPMUSymMode(tpm2.TPMAlgAES, tpm2.TPMAlgCFB),
		},
		CurveID: tpm2.TPMECCNistP384,
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
}

// verifyEndorsement does the work of VerifyEndorsement. t.mu must be held.
func (t *TPM) verifyEndorsement(ctx context.Context, roots *x509.CertPool) (*Endorsement, error) {
	present, err := t.nvIndices(ctx, NVRSA2048EKCert, NVEKChainLast)
	if err != nil {
		return nil, fmt.Errorf("tpm: list NV indices: %w", err)
	}
	certs := ekCertIndices(present)
	if len(certs) == 0 {
		return nil, &UntrustedError{Failure: NoEKCertificate}
	}
	chunk := t.nvBufferMax(ctx)
	var intermediates []*x509.Certificate
	for _, i := range present {
		if i < NVEKChainFirst || i > NVEKChainLast {
			continue
		}
		der, err := t.readNV(ctx, i, chunk, maxNVCert)
		if err != nil {
			return nil, fmt.Errorf("tpm: read EK certificate chain: %w", err)
		}
		// An index may hold several certificates back to back.
		for len(der) > 0 {
			c, rest, ok := splitCert(der)
			if !ok {
				break
			}
			if cert, err := x509.ParseCertificate(c); err == nil {
				intermediates = append(intermediates, cert)
			}
			der = rest
		}
	}
	var first error
	for _, index := range certs {
		e, err := t.tryEKCert(ctx, index, chunk, roots, intermediates)
		if err == nil {
			return e, nil
		}
		var ue *UntrustedError
		if !errors.As(err, &ue) {
			return nil, err // the TPM or the transport failed
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// splitCert cuts the first DER SEQUENCE off b.
func splitCert(b []byte) (cert, rest []byte, ok bool) {
	if len(b) < 2 || b[0] != 0x30 {
		return nil, nil, false
	}
	n, hdr := 0, 2
	switch l := int(b[1]); {
	case l < 0x80:
		n = l
	case l == 0x81 && len(b) >= 3:
		n, hdr = int(b[2]), 3
	case l == 0x82 && len(b) >= 4:
		n, hdr = int(b[2])<<8|int(b[3]), 4
	default:
		return nil, nil, false
	}
	if hdr+n > len(b) {
		return nil, nil, false
	}
	return b[:hdr+n], b[hdr+n:], true
}

// tryEKCert verifies one EK certificate and activates a credential
// through its key. t.mu must be held.
func (t *TPM) tryEKCert(ctx context.Context, index uint32, chunk int, roots *x509.CertPool, intermediates []*x509.Certificate) (*Endorsement, error) {
	der, err := t.readNV(ctx, index, chunk, maxNVCert)
	if err != nil {
		if isTPMRC(err) {
			return nil, &UntrustedError{Failure: BadEKCertificate, Index: index, Err: err}
		}
		return nil, fmt.Errorf("tpm: read EK certificate: %w", err)
	}
	cert, id, err := parseEKCertificate(der)
	if err != nil {
		return nil, &UntrustedError{Failure: BadEKCertificate, Index: index, Err: err}
	}
	chain, err := verifyEKChain(cert, roots, intermediates, time.Now())
	if err != nil {
		return nil, &UntrustedError{Failure: EKChainInvalid, Index: index, Err: err}
	}
	ek, src, err := t.loadEK(ctx, index, cert.PublicKey)
	if err != nil {
		return nil, err
	}
	defer ek.release(t)
	if err := t.activate(ctx, ek, t.srk, t.srkName, tpm2.PasswordAuth(nil)); err != nil {
		var ue *UntrustedError
		if errors.As(err, &ue) {
			ue.Failure, ue.Index = SRKUnproven, index
		}
		return nil, err
	}
	src.public = tpm2.Marshal(ek.public)
	return &Endorsement{Certificate: cert, Chain: chain, Index: index, TPM: id, ek: src}, nil
}

// loadedEK is the certified EK, loaded.
type loadedEK struct {
	handle    tpm2.TPMHandle
	name      tpm2.TPM2BName
	public    tpm2.TPMTPublic
	transient bool // created here; flushed by release
}

func (e *loadedEK) release(t *TPM) {
	if e.transient {
		_ = t.flush(e.handle)
	}
}

// loadEK finds the EK whose public key is certKey: a persistent EK of the
// platform, or the one the default template of index makes. t.mu must be
// held.
func (t *TPM) loadEK(ctx context.Context, index uint32, certKey crypto.PublicKey) (*loadedEK, ekSource, error) {
	persistent, err := t.handles(ctx, 0x81010000)
	if err != nil {
		return nil, ekSource{}, fmt.Errorf("tpm: list persistent handles: %w", err)
	}
	for _, h := range persistent {
		if h > 0x810100FF {
			break
		}
		var rsp *tpm2.ReadPublicResponse
		err := t.roomy(ctx, func() (err error) {
			rsp, err = tpm2.ReadPublic{ObjectHandle: h}.Execute(t.tr)
			return err
		})
		if err != nil {
			continue
		}
		pub, err := rsp.OutPublic.Contents()
		if err != nil || !isEKPublic(pub) {
			continue
		}
		if k, err := tpm2.Pub(*pub); err == nil && samePublicKey(certKey, k) {
			name := objectName(rsp.OutPublic.Bytes())
			return &loadedEK{handle: h, name: name, public: *pub}, ekSource{persistent: h}, nil
		}
	}
	template, ok := ekTemplates[index]
	if !ok {
		return nil, ekSource{}, &UntrustedError{Failure: EKMismatch, Index: index, Err: errors.New("no persistent EK with the certified key, and no template for this index")}
	}
	ek, err := t.createEK(ctx, template)
	if err != nil {
		return nil, ekSource{}, err
	}
	k, err := tpm2.Pub(ek.public)
	if err != nil || !samePublicKey(certKey, k) {
		ek.release(t)
		return nil, ekSource{}, &UntrustedError{Failure: EKMismatch, Index: index, Err: errors.New("the EK the TPM makes from the default template is not the certified key")}
	}
	return ek, ekSource{template: template}, nil
}

// createEK is TPM2_CreatePrimary of template in the endorsement hierarchy
// (empty endorsement authorization, as the TCG provisioning guidance
// leaves it). t.mu must be held.
func (t *TPM) createEK(ctx context.Context, template tpm2.TPMTPublic) (*loadedEK, error) {
	ek, err := t.createPrimary(ctx, tpm2.TPMRHEndorsement, template)
	if err != nil {
		return nil, fmt.Errorf("tpm: create endorsement key: %w", err)
	}
	return ek, nil
}

// roomy is run for a command that needs a free object slot (one that
// creates an object, or reads or uses a persistent one, which the TPM
// loads into a transient slot): on TPM_RC_OBJECT_MEMORY an open Key is
// flushed (it reloads itself when next used) and the command sent again.
// t.mu must be held.
func (t *TPM) roomy(ctx context.Context, f func() error) error {
	for {
		err := t.run(ctx, f)
		if errors.Is(err, tpm2.TPMRCObjectMemory) && t.evictLRU(nil) {
			continue
		}
		return err
	}
}

// createPrimary is TPM2_CreatePrimary of template in hierarchy (empty
// authorization). When the TPM has no free object slot an open Key is
// flushed (it reloads itself when next used) and the command sent again.
// t.mu must be held.
func (t *TPM) createPrimary(ctx context.Context, hierarchy tpm2.TPMHandle, template tpm2.TPMTPublic) (*loadedEK, error) {
	var rsp *tpm2.CreatePrimaryResponse
	err := t.roomy(ctx, func() (err error) {
		rsp, err = tpm2.CreatePrimary{
			PrimaryHandle: tpm2.AuthHandle{Handle: hierarchy, Auth: tpm2.PasswordAuth(nil)},
			InPublic:      tpm2.New2B(template),
		}.Execute(t.tr)
		return err
	})
	if err != nil {
		if !isTPMRC(err) && !isCtxErr(err) {
			t.reclaim()
		}
		return nil, err
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		_ = t.flush(rsp.ObjectHandle)
		return nil, err
	}
	return &loadedEK{handle: rsp.ObjectHandle, name: objectName(rsp.OutPublic.Bytes()), public: *pub, transient: true}, nil
}

// activateCredential is TPM2_ActivateCredential (Part 3 §12.5) of the
// credential (blob, enc) for obj with the EK, made room for. t.mu must be
// held.
func (t *TPM) activateCredential(ctx context.Context, ek *loadedEK, obj tpm2.AuthHandle, blob, enc []byte) (*tpm2.ActivateCredentialResponse, error) {
	var rsp *tpm2.ActivateCredentialResponse
	err := t.roomy(ctx, func() (err error) {
		rsp, err = tpm2.ActivateCredential{
			ActivateHandle: obj,
			KeyHandle:      tpm2.AuthHandle{Handle: ek.handle, Name: ek.name, Auth: ekAuth(&ek.public)},
			CredentialBlob: tpm2.TPM2BIDObject{Buffer: blob},
			Secret:         tpm2.TPM2BEncryptedSecret{Buffer: enc},
		}.Execute(t.tr)
		return err
	})
	return rsp, err
}

// isEKPublic reports the attributes every EK template has: a restricted
// decryption key that never leaves the TPM.
func isEKPublic(p *tpm2.TPMTPublic) bool {
	a := p.ObjectAttributes
	return a.FixedTPM && a.FixedParent && a.SensitiveDataOrigin && a.Restricted && a.Decrypt && !a.SignEncrypt
}

// activate makes a credential for the object (handle, name) to the EK in
// software and has the TPM activate it (TPM 2.0 Part 3 §12.5); it returns
// nil only when the TPM gives the credential back. objAuth authorizes the
// object (ADMIN role). A TPM error is an *UntrustedError with no Failure
// set, for the caller to name. t.mu must be held.
func (t *TPM) activate(ctx context.Context, ek *loadedEK, obj tpm2.TPMHandle, name tpm2.TPM2BName, objAuth tpm2.Session) error {
	kem, err := tpm2.ImportEncapsulationKey(&ek.public)
	if err != nil {
		return &UntrustedError{Err: err}
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	blob, enc, err := tpm2.CreateCredential(rand.Reader, kem, name.Buffer, secret)
	if err != nil {
		return &UntrustedError{Err: err}
	}
	rsp, err := t.activateCredential(ctx, ek, tpm2.AuthHandle{Handle: obj, Name: name, Auth: objAuth}, blob, enc)
	if err != nil {
		if isTPMRC(err) {
			return &UntrustedError{Err: fmt.Errorf("activate credential: %w", err)}
		}
		// A lost response: the policy session may still be loaded.
		t.reclaim()
		return fmt.Errorf("tpm: activate credential: %w", err)
	}
	if subtle.ConstantTimeCompare(rsp.CertInfo.Buffer, secret) != 1 {
		return &UntrustedError{Err: errors.New("activate credential: the TPM returned another secret")}
	}
	return nil
}

// ekAuth authorizes the EK (USER role): with its empty authValue when the
// template allows that (the high-range templates set userWithAuth), else
// with PolicySecret(TPM_RH_ENDORSEMENT), the policy of the low-range
// templates (EK Credential Profile §B.3.3, PolicyA). go-tpm starts the
// policy session for the one command; the TPM flushes it after use and
// go-tpm on failure.
func ekAuth(pub *tpm2.TPMTPublic) tpm2.Session {
	if pub.ObjectAttributes.UserWithAuth {
		return tpm2.PasswordAuth(nil)
	}
	return tpm2.Policy(pub.NameAlg, 16, tpm2.PolicyCallback(func(tr transport.TPM, h tpm2.TPMISHPolicy, _ tpm2.TPM2BNonce) error {
		_, err := tpm2.PolicySecret{
			AuthHandle:    tpm2.AuthHandle{Handle: tpm2.TPMRHEndorsement, Auth: tpm2.PasswordAuth(nil)},
			PolicySession: h,
		}.Execute(tr)
		return err
	}))
}

// EndorsementKey returns the public key of the EK the TCG default template
// makes for alg (RSA-2048 template L-1, ECC P-256 template L-2): the key a
// manufacturer certifies. The EK is created and flushed again.
func (t *TPM) EndorsementKey(ctx context.Context, alg KeyAlgorithm) (crypto.PublicKey, error) {
	index := NVECCP256EKCert
	if alg == RSA2048 {
		index = NVRSA2048EKCert
	}
	return t.EndorsementKeyAt(ctx, index)
}

// EndorsementKeyAt is EndorsementKey for the template of an EK
// certificate index: NVRSA2048EKCert, NVECCP256EKCert or NVECCP384EKCert.
func (t *TPM) EndorsementKeyAt(ctx context.Context, index uint32) (crypto.PublicKey, error) {
	if _, ok := ekTemplates[index]; !ok {
		return nil, fmt.Errorf("tpm: endorsement key: no template for NV index %#x", index)
	}
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	ek, err := t.createEK(ctx, ekTemplates[index])
	if err != nil {
		return nil, err
	}
	defer ek.release(t)
	pk, err := tpm2.Pub(ek.public)
	if err != nil {
		return nil, fmt.Errorf("tpm: endorsement key: %w", err)
	}
	return pk, nil
}
