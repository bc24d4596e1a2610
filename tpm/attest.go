package tpm

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// akTemplate is the attestation key: a restricted ECDSA P-256 signing key
// that never leaves the TPM (TCG EK Credential Profile §2.2.1.5's AK
// template attributes), as a primary of the endorsement hierarchy, so the
// same TPM always makes the same AK and nothing is stored. Being
// restricted, it signs only digests the TPM computed itself or that do not
// begin with TPM_GENERATED_VALUE: a TPMS_ATTEST it signs was made by the TPM.
var akTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
		UserWithAuth: true, NoDA: true, Restricted: true, SignEncrypt: true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
		Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
	}),
}

// ErrNotVerified is the use of the endorsement (attestation) before
// VerifyEndorsement has succeeded on the connection.
var ErrNotVerified = errors.New("tpm: endorsement not verified on this connection")

// AttestationIdentity is what a verifier needs to challenge this TPM's
// attestation key: the EK certificate and its chain, the EK's public area
// (whose parameters the credential is made with) and the AK's.
type AttestationIdentity struct {
	EKCertificate []byte   // DER
	EKChain       [][]byte // DER intermediates, EK certificate's issuer first
	EKPublic      []byte   // TPMT_PUBLIC of the certified EK
	AKPublic      []byte   // TPMT_PUBLIC of the attestation key
}

// AttestationIdentity returns the EK and AK of this TPM. VerifyEndorsement
// must have succeeded first (ErrNotVerified).
func (t *TPM) AttestationIdentity(ctx context.Context) (*AttestationIdentity, error) {
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	e := t.anyEndorsement()
	if e == nil {
		return nil, ErrNotVerified
	}
	ekPub := e.ek.public // as verified; no need to bring the EK in
	ak, err := t.createPrimary(ctx, tpm2.TPMRHEndorsement, akTemplate)
	if err != nil {
		return nil, fmt.Errorf("tpm: create attestation key: %w", err)
	}
	akPub := tpm2.Marshal(ak.public)
	ak.release(t)
	id := &AttestationIdentity{EKCertificate: e.Certificate.Raw, EKPublic: ekPub, AKPublic: akPub}
	if len(e.Chain) > 2 {
		for _, c := range e.Chain[1 : len(e.Chain)-1] {
			id.EKChain = append(id.EKChain, c.Raw)
		}
	}
	return id, nil
}

// KeyCertification is TPM2_Certify of a key by the attestation key, with
// the activated credential that proves the AK lives with the EK.
type KeyCertification struct {
	Proof       []byte // the credential the TPM activated for the AK
	KeyPublic   []byte // TPMT_PUBLIC of the certified key
	CertifyInfo []byte // TPMS_ATTEST the AK signed
	Signature   []byte // TPMT_SIGNATURE over CertifyInfo
}

// Certify answers a verifier's challenge for this TPM's attestation key
// (TPM2_ActivateCredential of credentialBlob and encryptedSecret, made to
// the EK for the AK's Name) and has the AK certify k (TPM2_Certify, Part 3
// §18.2) with qualifyingData, the verifier's nonce. k's authorization
// travels as an HMAC in the shared session. VerifyEndorsement must have
// succeeded first.
func (t *TPM) Certify(ctx context.Context, k *Key, credentialBlob, encryptedSecret, qualifyingData []byte) (*KeyCertification, error) {
	if k == nil || k.t != t {
		return nil, errors.New("tpm: certify: the key is not of this TPM")
	}
	if len(qualifyingData) > 64 {
		return nil, errors.New("tpm: certify: qualifying data longer than 64 bytes")
	}
	if err := t.lock(); err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	if k.closed {
		return nil, ErrClosed
	}
	e := t.anyEndorsement()
	if e == nil {
		return nil, ErrNotVerified
	}
	ak, err := t.createPrimary(ctx, tpm2.TPMRHEndorsement, akTemplate)
	if err != nil {
		return nil, fmt.Errorf("tpm: create attestation key: %w", err)
	}
	defer ak.release(t)
	proof, err := t.activateAK(ctx, e, ak, credentialBlob, encryptedSecret)
	if err != nil {
		return nil, err
	}
	if k.handle == 0 {
		h, err := t.load(ctx, k.obj, k)
		if err != nil {
			return nil, fmt.Errorf("tpm: certify: reload key: %w", err)
		}
		k.handle = h
	}
	var rsp *tpm2.CertifyResponse
	err = t.withSession(ctx, k.secret.auth, encryptNone, func() (err error) {
		rsp, err = tpm2.Certify{
			ObjectHandle:   tpm2.AuthHandle{Handle: k.handle, Name: k.obj.name, Auth: t.sess},
			SignHandle:     tpm2.AuthHandle{Handle: ak.handle, Name: ak.name, Auth: tpm2.PasswordAuth(nil)},
			QualifyingData: tpm2.TPM2BData{Buffer: qualifyingData},
			InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		}.Execute(t.tr)
		return err
	}, nil)
	if err != nil {
		if aerr := t.authErr(ctx, err); aerr != nil {
			err = aerr
		}
		return nil, fmt.Errorf("tpm: certify: %w", err)
	}
	return &KeyCertification{
		Proof:       proof,
		KeyPublic:   tpm2.Marshal(k.obj.pub),
		CertifyInfo: rsp.CertifyInfo.Bytes(),
		Signature:   tpm2.Marshal(rsp.Signature),
	}, nil
}

// activateAK activates the verifier's credential for the AK with the
// certified EK. t.mu must be held.
func (t *TPM) activateAK(ctx context.Context, e *Endorsement, ak *loadedEK, blob, enc []byte) ([]byte, error) {
	ek, err := t.bringEK(ctx, e)
	if err != nil {
		return nil, err
	}
	defer ek.release(t)
	rsp, err := t.activateCredential(ctx, ek, tpm2.AuthHandle{Handle: ak.handle, Name: ak.name, Auth: tpm2.PasswordAuth(nil)}, blob, enc)
	if err != nil {
		if !isTPMRC(err) && !isCtxErr(err) {
			t.reclaim()
		}
		return nil, fmt.Errorf("tpm: activate attestation key credential: %w", err)
	}
	return rsp.CertInfo.Buffer, nil
}

// anyEndorsement is an endorsement verified on this connection, or nil.
// t.mu must be held.
func (t *TPM) anyEndorsement() *Endorsement {
	for _, e := range t.trust.verified {
		return e
	}
	return nil
}

// bringEK loads the verified EK again (the persistent one, or from its
// template). t.mu must be held.
func (t *TPM) bringEK(ctx context.Context, e *Endorsement) (*loadedEK, error) {
	if e.ek.persistent != 0 {
		var rsp *tpm2.ReadPublicResponse
		err := t.roomy(ctx, func() (err error) {
			rsp, err = tpm2.ReadPublic{ObjectHandle: e.ek.persistent}.Execute(t.tr)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("tpm: read endorsement key: %w", err)
		}
		pub, err := rsp.OutPublic.Contents()
		if err != nil {
			return nil, fmt.Errorf("tpm: read endorsement key: %w", err)
		}
		ek := &loadedEK{handle: e.ek.persistent, name: objectName(rsp.OutPublic.Bytes()), public: *pub}
		if k, err := tpm2.Pub(*pub); err != nil || !samePublicKey(k, e.Certificate.PublicKey) {
			return nil, &UntrustedError{Failure: EKMismatch, Index: e.Index, Err: errors.New("the persistent EK changed")}
		}
		return ek, nil
	}
	ek, err := t.createPrimary(ctx, tpm2.TPMRHEndorsement, e.ek.template)
	if err != nil {
		return nil, fmt.Errorf("tpm: create endorsement key: %w", err)
	}
	if k, err := tpm2.Pub(ek.public); err != nil || !samePublicKey(k, e.Certificate.PublicKey) {
		ek.release(t)
		return nil, &UntrustedError{Failure: EKMismatch, Index: e.Index, Err: errors.New("the EK changed")}
	}
	return ek, nil
}
